"""Benchmark the ``sequence`` model (population and digital twins) against SDV's PARSynthesizer.

Usage, from the repository root (under the shared CPU lock)::

    OMP_NUM_THREADS=1 flock /tmp/twinforge-heavy.lock .venv/bin/python benchmarks/bench_sequence.py \\
        [--parts population,twins] [--max-minutes 2] [--par-from DIR] [--seed 0]

Data: ``../shared/datasets/sktime__basic_motions.csv`` (80 people x 100 steps of a smart watch's 3D accelerometer
and gyroscope, ``dim_0``..``dim_5``; static ``label``; the ``split`` column is bookkeeping and is dropped).

**population**: twinforge fits on all 80 entities (budget ``--max-minutes``), PAR with SDV's defaults in the SDV
anchor venv (``_par_anchor.py``; ``--par-from DIR`` reuses its ``par.csv``/``par.json``); each samples 80 entities.
Scores, real against synthetic (lower is better for all but none):

- ``acf_error``: mean |ACF_real - ACF_syn| over lags 1..10, per channel; the ACF of an entity is taken after
  removing its mean and averaged over entities;
- ``xcorr_error``: mean |difference| of the channel correlation matrices (upper triangle), each matrix the
  average of the entities' within-entity correlations;
- ``discriminative``: |accuracy - 0.5| of a random forest separating real from synthetic entities (5-fold,
  features per channel: mean, std, min, max, lag-1 and lag-5 autocorrelation, mean |step|), as in TimeGAN;
- ``label_tv``: total variation distance of the static label; ``fit_seconds``.

**twins**: 16 entities (4 per label) are held out; the population model fits on the other 64. For each held-out
entity and k in ``--k`` (10, 25), the first k steps are its history and the next ``--horizon`` (25) steps are
scored: MAE of the median of ``--paths`` (50) paths, and CRPS (sample estimate), per channel in units of the
channel's standard deviation, averaged. Compared: the twin (``personalize``, 150 epochs), the population model
without personalisation (``personalize(epochs=0)``: the history only warms up the recurrent state), a ``sequence``
model trained from scratch on the k steps alone, and the last observed value repeated (persistence).
Targets: twin <= 0.8 x population and twin < scratch, for each k.

Writes ``benchmarks/results/sequence.json`` after each part (incrementally) and prints tables.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
DATA = REPO.parent / "shared" / "datasets" / "sktime__basic_motions.csv"
ENTITY, TIME, STATIC = "instance_id", "t", "label"
LAGS = 10


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="twinforge sequence vs SDV PARSynthesizer; twin forecasting.")
    p.add_argument("--data", type=Path, default=DATA)
    p.add_argument("--parts", default="population,twins")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-minutes", type=float, default=2.0, help="twinforge's fit budget (population part)")
    p.add_argument("--params", default="{}", help="extra JSON parameters of the sequence model")
    p.add_argument("--anchors-dir", type=Path, default=Path.home() / ".cache" / "anchors")
    p.add_argument("--par-from", type=Path, default=None, help="folder with par.csv and par.json already run")
    p.add_argument("--par-epochs", type=int, default=None, help="PAR epochs (default: SDV's)")
    p.add_argument("--k", default="10,25")
    p.add_argument("--horizon", type=int, default=25)
    p.add_argument("--paths", type=int, default=50)
    p.add_argument("--holdout-per-label", type=int, default=4)
    p.add_argument("--twin-epochs", type=int, default=150)
    p.add_argument("--out", type=Path, default=BENCH_DIR / "results" / "sequence.json")
    return p.parse_args(argv)


def load(path: Path) -> pd.DataFrame:
    return pd.read_csv(path).drop(columns="split")


def channels(df: pd.DataFrame) -> list[str]:
    return [c for c in df.columns if c.startswith("dim_")]


# ------------------------------------------------------------------------------------------ temporal scores
def _centred(df: pd.DataFrame, cols: list[str]) -> pd.DataFrame:
    return df[cols] - df.groupby(ENTITY)[cols].transform("mean")


def acf(df: pd.DataFrame, cols: list[str], lags: int = LAGS) -> np.ndarray:
    """(channels, lags) autocorrelation, per entity after removing its mean, averaged over entities."""
    out = np.zeros((len(cols), lags))
    groups = [g[cols].to_numpy(dtype=float) for _, g in df.groupby(ENTITY)]
    for j in range(len(cols)):
        per = []
        for g in groups:
            x = g[:, j] - g[:, j].mean()
            var = (x * x).sum()
            if len(x) <= lags or var <= 0:
                continue
            per.append([(x[h:] * x[:-h]).sum() / var for h in range(1, lags + 1)])
        out[j] = np.mean(per, 0) if per else np.nan
    return out


def xcorr(df: pd.DataFrame, cols: list[str]) -> np.ndarray:
    mats = []
    for _, g in df.groupby(ENTITY):
        x = g[cols].to_numpy(dtype=float)
        if len(x) < 3:
            continue
        with np.errstate(invalid="ignore", divide="ignore"):
            c = np.corrcoef(x.T)
        mats.append(np.nan_to_num(c))
    return np.mean(mats, 0)


def entity_features(df: pd.DataFrame, cols: list[str]) -> np.ndarray:
    rows = []
    for _, g in df.groupby(ENTITY):
        x = g[cols].to_numpy(dtype=float)
        f = [x.mean(0), x.std(0), x.min(0), x.max(0)]
        for h in (1, 5):
            xc = x - x.mean(0)
            var = (xc * xc).sum(0)
            f.append(
                np.where(var > 0, (xc[h:] * xc[:-h]).sum(0) / np.where(var > 0, var, 1), 0)
                if len(x) > h
                else np.zeros(len(cols))
            )
        f.append(np.abs(np.diff(x, axis=0)).mean(0) if len(x) > 1 else np.zeros(len(cols)))
        rows.append(np.concatenate(f))
    return np.nan_to_num(np.asarray(rows))


def discriminative(real: pd.DataFrame, syn: pd.DataFrame, cols: list[str], seed: int) -> float:
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    a, b = entity_features(real, cols), entity_features(syn, cols)
    x = np.vstack([a, b])
    y = np.r_[np.zeros(len(a)), np.ones(len(b))]
    clf = RandomForestClassifier(n_estimators=200, random_state=seed, n_jobs=1)
    acc = cross_val_score(clf, x, y, cv=StratifiedKFold(5, shuffle=True, random_state=seed), scoring="accuracy")
    return float(abs(acc.mean() - 0.5))


def population_scores(real: pd.DataFrame, syn: pd.DataFrame, seed: int) -> dict:
    cols = channels(real)
    a_r, a_s = acf(real, cols), acf(syn, cols)
    c_r, c_s = xcorr(real, cols), xcorr(syn, cols)
    iu = np.triu_indices(len(cols), 1)
    p = real.groupby(ENTITY)[STATIC].first().value_counts(normalize=True)
    q = syn.groupby(ENTITY)[STATIC].first().value_counts(normalize=True)
    lengths = syn.groupby(ENTITY).size()
    return {
        "acf_error": float(np.nanmean(np.abs(a_r - a_s))),
        "acf_error_per_channel": dict(zip(cols, np.round(np.nanmean(np.abs(a_r - a_s), 1), 4).tolist(), strict=True)),
        "xcorr_error": float(np.abs(c_r - c_s)[iu].mean()),
        "discriminative": discriminative(real, syn, cols, seed),
        "label_tv": float(0.5 * p.sub(q, fill_value=0).abs().sum()),
        "entities": int(syn[ENTITY].nunique()),
        "length_mean": float(lengths.mean()),
        "length_std": float(lengths.std()),
    }


# ------------------------------------------------------------------------------------------ population
def run_par(args: argparse.Namespace, folder: Path, n: int) -> tuple[pd.DataFrame, dict]:
    if args.par_from is not None:
        return pd.read_csv(args.par_from / "par.csv"), json.loads((args.par_from / "par.json").read_text())
    cmd = [
        str(args.anchors_dir / "sdv" / "bin" / "python"), str(BENCH_DIR / "_par_anchor.py"),
        "--data", str(args.data), "--entity-key", ENTITY, "--time-key", TIME, "--context", STATIC,
        "--drop", "split", "--entities", str(n), "--seed", str(args.seed),
        "--synthetic-out", str(folder / "par.csv"), "--result-out", str(folder / "par.json"),
        *(["--epochs", str(args.par_epochs)] if args.par_epochs else []),
    ]  # fmt: skip
    print("running PAR:", " ".join(cmd), file=sys.stderr, flush=True)
    subprocess.run(cmd, check=True)
    return pd.read_csv(folder / "par.csv"), json.loads((folder / "par.json").read_text())


def model_params(args: argparse.Namespace, max_minutes: float | None) -> dict:
    return {"progress": False, "max_minutes": max_minutes, **json.loads(args.params)}


def part_population(args: argparse.Namespace, real: pd.DataFrame) -> dict:
    import twinforge

    n = real[ENTITY].nunique()
    start = time.perf_counter()
    model = twinforge.create("sequence", seed=args.seed, **model_params(args, args.max_minutes))
    model.fit(real, entity_key=ENTITY, time_key=TIME, static=[STATIC])
    fit_seconds = time.perf_counter() - start
    start = time.perf_counter()
    ours = model.sample(entities=n, seed=args.seed)
    sample_seconds = time.perf_counter() - start
    result = {
        "twinforge": {
            "fit_seconds": round(fit_seconds, 2),
            "sample_seconds": round(sample_seconds, 2),
            "train_info": {k: v for k, v in model.train_info_.items() if k != "history"},
            **population_scores(real, ours, args.seed),
        }
    }
    with tempfile.TemporaryDirectory() as tmp:
        par, info = run_par(args, Path(tmp), n)
    result["sdv_par"] = {**info, **population_scores(real, par, args.seed)}
    result["ceiling"] = _ceiling(real, args.seed)
    t, p = result["twinforge"], result["sdv_par"]
    result["targets"] = {
        "acf_better": t["acf_error"] < p["acf_error"],
        "xcorr_better": t["xcorr_error"] < p["xcorr_error"],
        "discriminative_better": t["discriminative"] < p["discriminative"],
        "fit_time_at_most_a_third": t["fit_seconds"] <= p["fit_seconds"] / 3,
    }
    return result


def _ceiling(real: pd.DataFrame, seed: int) -> dict:
    """Real against real: half the entities against the other half (what sampling noise alone gives)."""
    ids = np.random.default_rng(seed).permutation(real[ENTITY].unique())
    a = real[real[ENTITY].isin(ids[::2])]
    b = real[real[ENTITY].isin(ids[1::2])]
    s = population_scores(a, b, seed)
    return {k: s[k] for k in ("acf_error", "xcorr_error", "discriminative", "label_tv")}


# ------------------------------------------------------------------------------------------ twins
def crps(paths: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Sample CRPS per (step, channel): E|X - y| - 0.5 E|X - X'|; ``paths`` (P, H, C), ``truth`` (H, C)."""
    term1 = np.abs(paths - truth[None]).mean(0)
    term2 = np.abs(paths[:, None] - paths[None, :]).mean((0, 1))
    return term1 - 0.5 * term2


def score_forecast(frame: pd.DataFrame, future: pd.DataFrame, cols: list[str], scale: np.ndarray) -> dict:
    horizon = len(future)
    p = frame.sort_values(["path", TIME])[cols].to_numpy(dtype=float).reshape(-1, horizon, len(cols))
    truth = future[cols].to_numpy(dtype=float)
    median = np.median(p, 0)
    return {
        "mae": float((np.abs(median - truth) / scale).mean()),
        "crps": float((crps(p, truth) / scale).mean()),
    }


def part_twins(args: argparse.Namespace, real: pd.DataFrame) -> dict:
    import twinforge

    cols = channels(real)
    rng = np.random.default_rng(args.seed)
    labels = real.groupby(ENTITY)[STATIC].first()
    held = np.concatenate(
        [
            rng.choice(labels.index[labels == lv], args.holdout_per_label, replace=False)
            for lv in sorted(labels.unique())
        ]
    )
    train = real[~real[ENTITY].isin(held)]
    scale = train[cols].std().to_numpy()
    start = time.perf_counter()
    model = twinforge.create("sequence", seed=args.seed, **model_params(args, args.max_minutes))
    model.fit(train, entity_key=ENTITY, time_key=TIME, static=[STATIC])
    out: dict = {"population_fit_seconds": round(time.perf_counter() - start, 2), "held_out": held.tolist()}
    ks = [int(k) for k in args.k.split(",")]
    methods = ("twin", "population", "scratch", "persistence")
    rows = []
    for e in held:
        series = real[real[ENTITY] == e].reset_index(drop=True)
        for k in ks:
            history, future = series.iloc[:k], series.iloc[k : k + args.horizon]
            h = len(future)
            forecasts = {}
            t0 = time.perf_counter()
            twin = model.personalize(history, epochs=args.twin_epochs, seed=args.seed, progress=False)
            forecasts["twin"] = twin.forecast(h, paths=args.paths, seed=args.seed)
            twin_seconds = time.perf_counter() - t0
            forecasts["population"] = model.personalize(history, epochs=0).forecast(h, paths=args.paths, seed=args.seed)
            scratch = twinforge.create(
                "sequence", seed=args.seed, epochs=200, static_epochs=5, progress=False, max_minutes=0.3
            ).fit(history, entity_key=ENTITY, time_key=TIME, static=[STATIC])
            forecasts["scratch"] = scratch.personalize(history, epochs=0).forecast(h, paths=args.paths, seed=args.seed)
            last = history[cols].iloc[-1].to_numpy(dtype=float)
            forecasts["persistence"] = pd.DataFrame(
                {
                    "path": np.zeros(h, int),
                    TIME: future[TIME].to_numpy(),
                    **{c: [last[i]] * h for i, c in enumerate(cols)},
                }
            )
            row = {"entity": int(e), "label": str(labels[e]), "k": k, "twin_seconds": round(twin_seconds, 2)}
            for m in methods:
                s = score_forecast(forecasts[m], future, cols, scale)
                row[f"{m}_mae"], row[f"{m}_crps"] = s["mae"], s["crps"]
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    table = pd.DataFrame(rows)
    summary = {}
    for k in ks:
        sub = table[table.k == k]
        s = {f"{m}_{x}": float(sub[f"{m}_{x}"].mean()) for m in methods for x in ("mae", "crps")}
        s["twin_over_population_mae"] = s["twin_mae"] / s["population_mae"]
        s["twin_over_population_crps"] = s["twin_crps"] / s["population_crps"]
        s["targets"] = {
            "twin_at_most_0.8x_population_mae": s["twin_over_population_mae"] <= 0.8,
            "twin_below_scratch_mae": s["twin_mae"] < s["scratch_mae"],
        }
        summary[f"k={k}"] = s
    out["summary"] = summary
    out["per_entity"] = rows
    return out


# ------------------------------------------------------------------------------------------ main
def write(args: argparse.Namespace, document: dict) -> None:
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(document, indent=2) + "\n")
    os.replace(tmp, args.out)


def print_population(r: dict) -> None:
    print("\npopulation (basic_motions, 80 entities)       twinforge   sdv_par   real-vs-real")
    for key in ("acf_error", "xcorr_error", "discriminative", "label_tv", "fit_seconds"):
        ceil = r["ceiling"].get(key, float("nan"))
        print(f"  {key:<42} {r['twinforge'][key]:>10.4g} {r['sdv_par'][key]:>9.4g} {ceil:>14.4g}")
    print("  targets:", r["targets"])


def print_twins(r: dict) -> None:
    print("\ntwins: forecast error (std units) of held-out entities, mean over entities")
    print("  k     twin_mae  pop_mae  scratch_mae  persist_mae | twin_crps  pop_crps  scratch_crps | twin/pop")
    for k, s in r["summary"].items():
        print(
            f"  {k:<5} {s['twin_mae']:>8.3f} {s['population_mae']:>8.3f} {s['scratch_mae']:>12.3f} "
            f"{s['persistence_mae']:>12.3f} | {s['twin_crps']:>9.3f} {s['population_crps']:>9.3f} "
            f"{s['scratch_crps']:>13.3f} | {s['twin_over_population_mae']:.3f}"
        )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.data.is_file():
        print(f"error: {args.data} not found", file=sys.stderr)
        return 2
    import twinforge

    real = load(args.data)
    document: dict = {
        "benchmark": "twins",
        "data": args.data.name,
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "twinforge_version": twinforge.__version__,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "omp_threads": os.environ.get("OMP_NUM_THREADS")},
        "args": {k: str(v) for k, v in vars(args).items()},
    }  # fmt: skip
    parts = args.parts.split(",")
    if "population" in parts:
        document["population"] = part_population(args, real)
        write(args, document)
        print_population(document["population"])
    if "twins" in parts:
        document["twins"] = part_twins(args, real)
        write(args, document)
        print_twins(document["twins"])
    document["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    write(args, document)
    return 0


if __name__ == "__main__":
    sys.exit(main())
