"""Benchmark sequential generators side by side: twinforge's ``sequence`` model, SDV's PARSynthesizer and MOSTLY AI's
engine (TabularARGN in sequential mode), on per-entity time series; plus the digital-twin forecast benchmark.

Usage, from the repository root (heavy: one CPU slot per dataset and side)::

    /work/heavy .venv/bin/python benchmarks/bench_twins.py \\
        [--datasets-only basic_motions,turbines] [--sides twinforge,par,mostlyai] [--max-minutes M]

Other options: ``--par-epochs N`` (default SDV's 128), ``--mostlyai-minutes M`` (default: the engine's own
budget), ``--epochs N`` (twinforge), ``--units N --steps N`` (the simulated fleet, default 80 x 100),
``--ks 10,25 --horizon H --paths P --twin-entities N`` (twin benchmark; default 10 of the holdout entities),
``--draws N``, ``--seed``, ``--warm`` (each side fits once untimed before the timed fit: fit seconds without
first-call imports, measured alike for every side), ``--anchors-dir`` (default ``~/.cache/anchors``),
``--datasets DIR``, ``--out`` (default ``benchmarks/results/twins.json``). Results are merged into ``--out`` per
dataset and side, and written after every step, so sides can be run (and re-run) separately. Runs queued side by
side need their own ``--out`` each (they would overwrite one another's sides); ``--merge FILE ...`` then merges
those files into ``--out``.

Datasets: ``basic_motions`` (``../shared/datasets/sktime__basic_motions.csv``: 80 recordings x 100 steps, six
sensor channels, static ``label``; the ``split`` column is bookkeeping and dropped) and ``turbines`` (a simulated
wind-turbine fleet, ``twinforge.simulate.turbines``; static model, site, rated power, hub height, installation year).

Per dataset:

1. entities are split once (seeded) into 80% train and 20% holdout; every side trains on the train entities;
2. each side fits once and samples ``--draws`` (default 5) times as many entities as the train split has, in a
   fresh process (``_sequence_sides.py``; the anchors with their own venv's Python): fit seconds, sample seconds
   (of all draws), peak memory;
3. this process scores each draw (as many entities as the train split, its own seed and cross-validation folds)
   against the train entities with ``twinforge.evaluate.temporal`` (autocorrelation and cross-correlation
   errors, discriminative AUC, predictive TSTR/TRTR ratio on the holdout entities, sequence-length and static
   fidelity) and reports the mean +/- sd over draws (one draw of 64 entities moved the discriminative AUC by a
   few hundredths between runs); the holdout entities themselves are the real-data ceiling (one draw);
4. twin benchmark (twinforge side): the twin's settings per k are first chosen on training entities held out
   from an inner population fit (``SequenceModel.tune_personalization``); then for each holdout entity and k in
   ``--ks``, the fitted population model's forecast (conditioned on the same k steps), the same population
   model's cold-start forecast from the entity's static attributes alone (``population_cold``: new entities
   generated with those attributes, scored on the same steps k+1..k+H; ``ratio_crps_cold`` is each method's CRPS
   over it; see ``cold_start_forecaster``), its personalised twin's,
   a sequence model trained on that entity's k steps alone, and a per-entity AR(1) forecast the next
   ``--horizon`` steps (``twinforge.evaluate.forecast.twin_benchmark``: CRPS over paths and MAE of the median
   path, in units of the train fleet's standard deviation); and two hindsight ceilings: the population forecast
   shifted to each entity's true future mean level per channel, and also rescaled to its true future spread
   (see ``level_oracle``); a twin fine-tuned on all of the entity's steps after the scored window, forecasting
   from the same k steps (``entity_data_oracle``: what far more of the entity's own data would buy); and, on the
   turbines, a Bayes bound: the simulator itself continued from each unit's true state with its true hidden
   parameters (``simulator_oracle``), which no forecaster that sees only the data can beat in expectation.

Targets (issue 7): twinforge's autocorrelation, cross-correlation and discriminative scores better than both
anchors'; fit time at most 1/3 of PAR's and no more than MOSTLY AI's; twin forecast error at most 0.8x the
population model's and below the from-scratch model's, for k = 10 and k = 25.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
SIDES = ("twinforge", "par", "mostlyai")
VENVS = {"par": "sdv", "mostlyai": "mostlyai"}
DATASETS = ("basic_motions", "turbines")
HOLDOUT_SHARE = 0.2
TIMEOUT_SECONDS = 4 * 3600
HEADLINE = (
    ("autocorrelation_error", "autocorrelation error (0)"),
    ("cross_correlation_error", "cross-correlation error (0)"),
    ("discriminative_auc", "discriminative AUC (0.5)"),
    ("predictive_ratio", "predictive TRTR/TSTR (1)"),
    ("sequence_length", "sequence length KS compl. (1)"),
    ("static_column_shapes", "static shapes (1)"),
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Sequential generators and digital twins, side by side.")
    parser.add_argument("--datasets", type=Path, default=REPO.parent / "shared" / "datasets")
    parser.add_argument("--datasets-only", default=",".join(DATASETS), help=f"comma-separated: {', '.join(DATASETS)}")
    parser.add_argument("--sides", default=",".join(SIDES), help=f"comma-separated: {', '.join(SIDES)}")
    parser.add_argument("--anchors-dir", type=Path, default=Path.home() / ".cache" / "anchors")
    parser.add_argument("--max-minutes", type=float, default=None, help="twinforge's training budget")
    parser.add_argument("--mostlyai-minutes", type=float, default=None, help="MOSTLY AI's budget (default: its own)")
    parser.add_argument("--epochs", type=int, default=None, help="twinforge's sequence model epochs")
    parser.add_argument("--params", default="{}", help="JSON parameters for twinforge's sequence model")
    parser.add_argument("--par-epochs", type=int, default=None, help="PAR epochs (default: SDV's 128)")
    parser.add_argument("--units", type=int, default=80, help="simulated turbines")
    parser.add_argument("--steps", type=int, default=100, help="steps per simulated turbine")
    parser.add_argument("--ks", default="10,25", help="history lengths of the twin benchmark")
    parser.add_argument("--horizon", type=int, default=25, help="steps forecast in the twin benchmark")
    parser.add_argument("--paths", type=int, default=50, help="sample paths per forecast")
    parser.add_argument("--twin-entities", type=int, default=10, help="holdout entities in the twin benchmark")
    parser.add_argument("--no-twins", action="store_true", help="skip the twin benchmark")
    parser.add_argument(
        "--warm",
        action="store_true",
        help="each side fits once untimed before its timed fit (leaves out first-call imports; all sides alike)",
    )
    parser.add_argument(
        "--draws", type=int, default=5, help="synthetic draws scored per side (each of train-split size)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--merge", type=Path, nargs="+", default=None, help="merge these results files (runs per side) into --out"
    )
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "results" / "twins.json")
    args = parser.parse_args(argv)
    args.names = [n.strip() for n in args.datasets_only.split(",") if n.strip()]
    if not args.names or any(n not in DATASETS for n in args.names):
        parser.error(f"unknown dataset in {args.datasets_only!r}; choose from {', '.join(DATASETS)}")
    args.side_names = [s.strip() for s in args.sides.split(",") if s.strip()]
    if not args.side_names or any(s not in SIDES for s in args.side_names):
        parser.error(f"unknown side in {args.sides!r}; choose from {', '.join(SIDES)}")
    try:
        args.k_list = [int(k) for k in args.ks.split(",") if k.strip()]
    except ValueError:
        parser.error(f"--ks must be integers separated by commas, got {args.ks!r}")
    if args.draws < 1:
        parser.error(f"--draws must be at least 1, got {args.draws}")
    missing = [str(python(args, s)) for s in args.side_names if s in VENVS and not python(args, s).exists()]
    if "basic_motions" in args.names and not (args.datasets / "sktime__basic_motions.csv").is_file():
        missing.append(str(args.datasets / "sktime__basic_motions.csv"))
    if missing:
        parser.error("not found: " + ", ".join(missing) + " (build the anchors with ../shared/anchors/setup.sh)")
    return args


def python(args: argparse.Namespace, side: str) -> Path:
    if side not in VENVS:
        return Path(sys.executable)
    return args.anchors_dir / VENVS[side] / "bin" / "python"


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------ data
def load_dataset(name: str, args: argparse.Namespace):
    """(long table with static columns, entity key, time key, static columns, description)."""
    import pandas as pd

    if name == "basic_motions":
        df = pd.read_csv(args.datasets / "sktime__basic_motions.csv").drop(columns="split")
        return df, "instance_id", "t", ["label"], "sktime BasicMotions: 80 recordings x 100 steps, 6 channels"
    import twinforge.simulate as sim

    fleet = sim.turbines(n_units=args.units, n_steps=args.steps, seed=args.seed)
    df = fleet.events.merge(fleet.static, on="unit_id")
    static = [c for c in fleet.static.columns if c != "unit_id"]
    return df, "unit_id", "t", static, f"simulated turbines: {args.units} units x {args.steps} steps (seed {args.seed})"


def split_entities(df, entity_key: str, seed: int):
    import numpy as np

    entities = np.array(sorted(df[entity_key].unique()))
    rng = np.random.default_rng(seed)
    held = set(rng.choice(entities, max(1, round(len(entities) * HOLDOUT_SHARE)), replace=False).tolist())
    mask = df[entity_key].isin(held)
    return df[~mask].reset_index(drop=True), df[mask].reset_index(drop=True)


# ------------------------------------------------------------------------------------------ results file
def load_results(path: Path) -> dict:
    if path.is_file():
        return json.loads(path.read_text())
    return {"datasets": {}}


def save_results(results: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    results["updated"] = datetime.now(UTC).isoformat(timespec="seconds")
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(results, indent=2, default=_json_default))
    os.replace(tmp, path)


def _json_default(v):
    import numpy as np

    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    raise TypeError(f"not JSON serialisable: {type(v).__name__}")


def _clean(obj):
    """JSON-safe copy: arrays to lists, NaN to None."""
    import numpy as np

    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _clean(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


# ------------------------------------------------------------------------------------------ one dataset
def temporal_scores(train, synthetic, holdout, ek: str, tk: str, seed: int) -> dict:
    from twinforge.evaluate import temporal

    full = temporal.temporal_fidelity(train, synthetic, ek, tk, holdout=holdout, seed=seed)
    head = {k: full[k] for k, _ in HEADLINE}
    head["autocorrelation_channels"] = {c: v["error"] for c, v in full["autocorrelation"]["channels"].items()}
    head["telling_features"] = full["discriminative"].get("telling_features", [])
    return head


def draw_scores(train, synthetic, holdout, ek: str, tk: str, n: int, draws: int, seed: int) -> dict:
    """The headline scores of each of ``draws`` disjoint synthetic draws of ``n`` entities (in sampled order), each
    against the same train entities with its own seed (its own cross-validation folds): their mean (``temporal``,
    what the targets compare), standard deviation (``temporal_sd``) and the draws themselves (``temporal_draws``).
    A single draw of 64 entities per side moved the discriminative AUC by a few hundredths between runs."""
    import numpy as np

    keys = list(dict.fromkeys(synthetic[ek]))
    if len(keys) < draws * n:
        raise ValueError(f"{len(keys)} entities sampled, {draws} draws of {n} need {draws * n}")
    runs = []
    for r in range(draws):
        part = synthetic[synthetic[ek].isin(set(keys[r * n : (r + 1) * n]))].reset_index(drop=True)
        runs.append(temporal_scores(train, part, holdout, ek, tk, seed + r))
    mean, sd = dict(runs[0]), {}
    for key, _ in HEADLINE:
        values = [run[key] for run in runs if run[key] is not None]
        mean[key] = float(np.mean(values)) if values else None
        sd[key] = float(np.std(values, ddof=1)) if len(values) > 1 else None
    mean["draws"] = draws
    return {"temporal": mean, "temporal_sd": sd, "temporal_draws": [{k: run[k] for k, _ in HEADLINE} for run in runs]}


def run_side(side: str, args, tmp: Path, train_csv: Path, ek: str, tk: str, static: list[str], n: int) -> dict:
    cmd = [str(python(args, side)), str(BENCH_DIR / "_sequence_sides.py"), side, "--data", str(train_csv),
           "--entity-key", ek, "--time-key", tk, "--static", ",".join(static), "--entities", str(n),
           "--seed", str(args.seed), "--synthetic-out", str(tmp / f"{side}.parquet"),
           "--result-out", str(tmp / f"{side}.json")]  # fmt: skip
    if args.warm:
        cmd.append("--warm")
    if side == "par" and args.par_epochs:
        cmd += ["--epochs", str(args.par_epochs)]
    if side == "mostlyai" and args.mostlyai_minutes:
        cmd += ["--max-minutes", str(args.mostlyai_minutes)]
    if side == "twinforge":
        cmd += ["--params", args.params, "--model-out", str(tmp / "model")]
        if args.max_minutes:
            cmd += ["--max-minutes", str(args.max_minutes)]
        if args.epochs:
            cmd += ["--epochs", str(args.epochs)]
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_SECONDS, check=False, env=env)
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        raise RuntimeError(f"{side} failed (exit {proc.returncode}) after {time.perf_counter() - start:.0f}s:\n{tail}")
    return json.loads((tmp / f"{side}.json").read_text())


def twin_scores(model_dir: Path, holdout, train, ek: str, tk: str, static: list[str], args, name: str = "") -> dict:
    import numpy as np

    import twinforge
    from twinforge.evaluate import forecast as F

    model = twinforge.load(model_dir)
    entities = sorted(holdout[ek].unique())
    if len(entities) > args.twin_entities:  # a seeded subset: the from-scratch model costs a fit per entity and k
        keep = np.random.default_rng(args.seed).choice(len(entities), args.twin_entities, replace=False)
        holdout = holdout[holdout[ek].isin([entities[i] for i in sorted(keep)])]
    channels = [c for c in holdout.columns if c not in (ek, tk, *static)]
    scale = {c: float(np.nanstd(train[c].to_numpy(dtype="float64"))) for c in channels if train[c].dtype.kind in "fiu"}
    scratch_epochs = {"epochs": 40, "patience": 10, "validation_share": 0.0, "progress": False}

    def scratch_model():
        return twinforge.create("sequence", seed=args.seed, **scratch_epochs)

    # how the twin adapts to k steps is chosen on TRAINING entities held out from an inner population fit
    # (never on the holdout entities scored below); the population baseline ignores it (epochs=0, level=0)
    start = time.perf_counter()
    model.tune_personalization(train, ks=args.k_list, horizon=args.horizon, seed=args.seed, progress=False)
    tuning = {"seconds": round(time.perf_counter() - start, 1), **model.twin_policy_}
    progress(
        f"  twin policy (inner entities, {tuning['seconds']}s): "
        + ", ".join(f"k={k} {c['name']}" for k, c in zip(tuning["ks"], tuning["choices"], strict=True))
    )

    methods = {
        "population": F.population_forecaster(model),
        "population_cold": cold_start_forecaster(model, ek, tk, static),
        "twin": F.twin_forecaster(model, progress=False),
        "scratch": F.scratch_forecaster(scratch_model, entity_key=ek, time_key=tk),
        "ar1": F.ar1_forecaster(entity_key=ek, time_key=tk, channels=channels),
    }
    out = F.twin_benchmark(holdout, methods, entity_key=ek, time_key=tk, ks=args.k_list, horizon=args.horizon,
                           paths=args.paths, seed=args.seed, channels=channels, scale=scale)  # fmt: skip
    for table in out["results"].values():  # the twin (and the rest) against the cold-start population too
        cold = table["population_cold"]["crps_scaled"]
        for method, row in table.items():
            if method != "population_cold" and row.get("crps_scaled") is not None and cold:
                row["ratio_crps_cold"] = float(np.round(row["crps_scaled"] / cold, 4))
    out["level_oracle"] = level_oracle(model, holdout, ek, tk, channels, scale, args)
    out["entity_data_oracle"] = entity_data_oracle(model, holdout, ek, tk, channels, scale, args)
    for k, row in out["entity_data_oracle"].items():
        population = out["results"][k]["population"]["crps_scaled"]
        row["ratio_crps"] = float(np.round(row["crps_scaled"] / population, 4)) if population else None
    if name == "turbines":
        out["simulator_oracle"] = simulator_oracle(holdout, ek, tk, channels, scale, args)
        for k, row in out["simulator_oracle"].items():
            population = out["results"][k]["population"]["crps_scaled"]
            row["ratio_crps"] = float(np.round(row["crps_scaled"] / population, 4)) if population else None
    out["tuning"] = tuning
    return out


def cold_start_forecaster(model, ek: str, tk: str, static: list[str]):
    """The fleet model's view of a unit from its static attributes alone, blind to the unit's own k steps: a
    second population baseline beside the history-aware one (``population_forecaster``, which reads the k steps).
    For each held-out entity, ``paths`` new entities are generated conditioned on its static attributes
    (``model.sample(entities=paths, conditions=...)``, cold start) and each generated entity's steps k+1..k+H
    (positions k..k+H-1 of its own sequence) are its paths, relabelled with the entity's key and the times the
    other forecasters give (the step after the history at its spacing), so the same scoring aligns them with
    the same future window. A generated entity shorter than k+H leaves the missing steps empty (NaN), which the
    CRPS skips. Same horizon, paths, seed and scoring as every other method."""
    import numpy as np
    import pandas as pd

    from twinforge.evaluate.forecast import PATH, _next_times

    def run(history, horizon: int, paths: int, seed: int):
        k = len(history)
        conditions = {c: history[c].iloc[0] for c in static}
        conditions = {c: v.item() if isinstance(v, np.generic) else v for c, v in conditions.items()}
        generated = model.sample(entities=paths, conditions=conditions or None, seed=seed)
        times = _next_times(history[tk], horizon)
        frames = []
        for p, (_, rows) in enumerate(generated.groupby(ek, sort=False)):
            window = rows.iloc[k : k + horizon].reset_index(drop=True)
            window = window.reindex(range(horizon))  # a short generated entity: NaN steps
            window[ek] = history[ek].iloc[0]
            window[tk] = times
            window[PATH] = p
            frames.append(window)
        out = pd.concat(frames, ignore_index=True)
        return out[[ek, PATH, tk, *[c for c in out.columns if c not in (ek, PATH, tk, *static)]]]

    return run


def level_oracle(model, holdout, ek: str, tk: str, channels: list[str], scale: dict, args) -> dict:
    """A ceiling, not a method: the population forecast with every numeric channel's paths shifted so that their
    mean over the horizon equals the entity's TRUE future mean (known only in hindsight). No personalisation of
    an entity's level can beat it, so its ratio to the population's CRPS bounds what a level/offset twin can gain.
    The "affine" oracle also rescales the paths' spread to the true future standard deviation (level and scale)."""
    import numpy as np
    import pandas as pd

    from twinforge.evaluate import forecast as F

    out = {}
    for k in args.k_list:
        history, actual, _ = F.split_history(holdout, entity_key=ek, time_key=tk, k=k, horizon=args.horizon)
        plain, shifted, affine = [], [], []
        for entity, rows in history.groupby(ek, sort=False).indices.items():
            truth = actual[actual[ek] == entity]
            fc = model.forecast(history.iloc[rows].reset_index(drop=True), len(truth), args.paths, seed=args.seed)
            plain.append(fc)
            level, both = fc.copy(), fc.copy()
            for c in scale:
                if c in fc and fc[c].dtype.kind == "f":
                    level[c] = fc[c] + (truth[c].mean() - fc[c].mean())
                    spread = truth[c].std() / fc[c].std() if fc[c].std() > 0 else 1.0
                    both[c] = (fc[c] - fc[c].mean()) * spread + truth[c].mean()
            shifted.append(level)
            affine.append(both)
        score = {name: F.forecast_scores(pd.concat(fcs, ignore_index=True), actual, entity_key=ek, time_key=tk,
                                         channels=channels, scale=scale)["crps_scaled"]
                 for name, fcs in (("population", plain), ("oracle", shifted), ("affine", affine))}  # fmt: skip
        ratio = score["oracle"] / score["population"] if score["population"] else None
        both = score["affine"] / score["population"] if score["population"] else None
        out[str(k)] = {
            "crps_scaled": score["oracle"],
            "ratio_crps": None if ratio is None else float(np.round(ratio, 4)),
            "affine_crps_scaled": score["affine"],
            "affine_ratio_crps": None if both is None else float(np.round(both, 4)),
        }
    return out


def entity_data_oracle(model, holdout, ek: str, tk: str, channels: list[str], scale: dict, args) -> dict:
    """A hindsight ceiling for personalising dynamics: each entity's twin fine-tuned (150 epochs, chosen on its
    held-back steps as ``personalize`` does) on ALL its steps after the scored window (2 to 6 times the history,
    in hindsight), then forecasting from the same first k steps. What a twin could gain if it had far more of the
    entity's own data than the k steps the benchmark allows."""
    import pandas as pd

    from twinforge.evaluate import forecast as F

    out = {}
    for k in args.k_list:
        history, actual, _ = F.split_history(holdout, entity_key=ek, time_key=tk, k=k, horizon=args.horizon)
        rest = F.split_history(holdout, entity_key=ek, time_key=tk, k=k + args.horizon)[1]
        forecasts = []
        for entity, rows in history.groupby(ek, sort=False).indices.items():
            later = rest[rest[ek] == entity].reset_index(drop=True)
            base = model.personalize(history.iloc[rows].reset_index(drop=True), epochs=0, level=0.0, encode=False)
            if len(later) >= 8:
                times = pd.to_numeric(later[tk])
                later[tk] = (times - times.iloc[0]).astype(later[tk].dtype)  # an entity's steps start at 0
                tuned = model.personalize(later, epochs=150, level=0.0, encode=False, select=True, seed=args.seed,
                                          progress=False)  # fmt: skip
                base.model_.net_, base.z_ = tuned.model_.net_, tuned.z_  # its dynamics, from the given history
            forecasts.append(base.forecast(args.horizon, args.paths, seed=args.seed))
        scores = F.forecast_scores(pd.concat(forecasts, ignore_index=True), actual, entity_key=ek, time_key=tk,
                                   channels=channels, scale=scale)  # fmt: skip
        out[str(k)] = {"crps_scaled": scores["crps_scaled"], "mae_scaled": scores["mae_scaled"]}
    return out


def simulator_oracle(holdout, ek: str, tk: str, channels: list[str], scale: dict, args) -> dict:
    """A Bayes bound, not a method: the turbine simulator itself continued from each unit's TRUE state at step k
    (wear, wind and temperature states, hidden wear rate and gains, maintenance phase) with fresh random numbers,
    one simulation per path. No forecaster that sees only the data can beat it in expectation, so its CRPS ratio
    to the population model's bounds what any twin can reach on this benchmark."""
    import numpy as np
    import pandas as pd

    import twinforge.simulate as sim
    from twinforge.evaluate import forecast as F
    from twinforge.simulate._turbines import _simulate

    fleet = sim.turbines(n_units=args.units, n_steps=args.steps, seed=args.seed)
    units = holdout[ek].unique()
    real = fleet.events[fleet.events[ek].isin(units)].reset_index(drop=True)
    out = {}
    for k in args.k_list:
        _, actual, _ = F.split_history(holdout, entity_key=ek, time_key=tk, k=k, horizon=args.horizon)
        paths = []
        for p in range(args.paths):
            events = _simulate(fleet.params, branch=(k, np.random.default_rng([args.seed, k, p]))).events
            events = events[events[ek].isin(units)].reset_index(drop=True)
            step = events.groupby(ek).cumcount()
            # the branch shares the true past exactly and draws a new future
            pd.testing.assert_frame_equal(events[step < k], real[step < k])
            paths.append(events[(step >= k) & (step < k + args.horizon)].assign(path=p))
        scores = F.forecast_scores(pd.concat(paths, ignore_index=True), actual, entity_key=ek, time_key=tk,
                                   channels=channels, scale=scale)  # fmt: skip
        out[str(k)] = {"crps_scaled": scores["crps_scaled"], "mae_scaled": scores["mae_scaled"]}
    return out


def bench_dataset(name: str, args: argparse.Namespace, results: dict) -> None:
    import pandas as pd

    df, ek, tk, static, description = load_dataset(name, args)
    train, holdout = split_entities(df, ek, args.seed)
    entry = results["datasets"].setdefault(name, {"sides": {}})
    entry.update(
        description=description, entity_key=ek, time_key=tk, static=static, rows=len(df),
        train_entities=int(train[ek].nunique()), holdout_entities=int(holdout[ek].nunique()),
    )  # fmt: skip
    progress(f"{name}: {description}; {entry['train_entities']} train / {entry['holdout_entities']} holdout entities")
    if "holdout" not in entry["sides"]:
        entry["sides"]["holdout"] = {"temporal": _clean(temporal_scores(train, holdout, None, ek, tk, args.seed))}
        save_results(results, args.out)
    with tempfile.TemporaryDirectory(prefix=f"bench_twins_{name}_") as tmp:
        tmp = Path(tmp)
        train_csv = tmp / "train.csv"
        train.to_csv(train_csv, index=False)
        n = entry["train_entities"]
        for side in args.side_names:
            progress(f"  {side}: fit on {len(train):,} rows, sample {args.draws} x {n} entities ...")
            try:
                measured = run_side(side, args, tmp, train_csv, ek, tk, static, args.draws * n)
                synthetic = pd.read_parquet(tmp / f"{side}.parquet")
                measured.update(_clean(draw_scores(train, synthetic, holdout, ek, tk, n, args.draws, args.seed)))
            except (RuntimeError, subprocess.TimeoutExpired, ValueError) as exc:
                progress(f"  {side}: {exc}")
                entry["sides"][side] = {"error": str(exc)}
                save_results(results, args.out)
                continue
            measured["ran_at"] = datetime.now(UTC).isoformat(timespec="seconds")
            entry["sides"][side] = _clean(measured)
            save_results(results, args.out)
            progress(f"  {side}: fit {measured['fit_seconds']:.1f}s, " + ", ".join(
                f"{k} {_fmt(measured['temporal'][k])} +/- {_fmt(measured['temporal_sd'][k])}"
                for k, _ in HEADLINE[:3]))  # fmt: skip
            if side == "twinforge" and not args.no_twins:
                progress("  twin benchmark ...")
                twins = twin_scores(tmp / "model", holdout, train, ek, tk, static, args, name)
                entry["twins"] = _clean(_drop_per_entity(twins))
                save_results(results, args.out)
    entry["targets"] = targets(entry)
    save_results(results, args.out)


def _drop_per_entity(twins: dict) -> dict:
    for table in twins["results"].values():
        for row in table.values():
            row.pop("per_entity", None)
            channels = row["scores"].pop("channels", {})
            row["scores"]["channels"] = {c: {k: v for k, v in d.items() if k != "cells"} for c, d in channels.items()}
    return twins


def targets(entry: dict) -> dict:
    sides = entry["sides"]
    ours = sides.get("twinforge", {})
    if "temporal" not in ours:
        return {}
    out = {}
    anchors = [s for s in ("par", "mostlyai") if "temporal" in sides.get(s, {})]
    for key in ("autocorrelation_error", "cross_correlation_error"):
        out[f"{key}_best"] = all(ours["temporal"][key] < sides[a]["temporal"][key] for a in anchors)
    out["discriminative_auc_best"] = all(
        abs(ours["temporal"]["discriminative_auc"] - 0.5) < abs(sides[a]["temporal"]["discriminative_auc"] - 0.5)
        for a in anchors
    )
    if "fit_seconds" in sides.get("par", {}):
        out["fit_at_most_third_of_par"] = ours["fit_seconds"] <= sides["par"]["fit_seconds"] / 3
    if sides.get("par", {}).get("fit_cpu_seconds") and ours.get("fit_cpu_seconds"):
        out["fit_cpu_at_most_third_of_par"] = ours["fit_cpu_seconds"] <= sides["par"]["fit_cpu_seconds"] / 3
    if "fit_seconds" in sides.get("mostlyai", {}):
        out["fit_at_most_mostlyai"] = ours["fit_seconds"] <= sides["mostlyai"]["fit_seconds"]
    for k, table in entry.get("twins", {}).get("results", {}).items():
        twin = table.get("twin", {})
        if twin.get("ratio_crps") is not None:
            out[f"twin_k{k}_crps_at_most_0.8_population"] = twin["ratio_crps"] <= 0.8
        if twin.get("ratio_crps_cold") is not None:
            out[f"twin_k{k}_crps_at_most_0.8_cold_start_population"] = twin["ratio_crps_cold"] <= 0.8
        if "scratch" in table and twin.get("crps_scaled") is not None and table["scratch"].get("crps_scaled"):
            out[f"twin_k{k}_below_scratch"] = twin["crps_scaled"] < table["scratch"]["crps_scaled"]
    return out


# ------------------------------------------------------------------------------------------ report
def _fmt(v) -> str:
    if v is None:
        return "n/a"
    return f"{v:.3f}" if isinstance(v, float) else str(v)


def _mean_sd(side: dict, key: str) -> str:
    mean = _fmt(side.get("temporal", {}).get(key))
    sd = side.get("temporal_sd", {}).get(key)
    return mean if sd is None else f"{mean} +/- {sd:.3f}"


def format_dataset(name: str, entry: dict) -> str:
    order = [s for s in ("twinforge", "par", "mostlyai", "holdout") if s in entry["sides"]]
    rows = [("", *order)]
    rows.append(("fit seconds", *[_fmt(entry["sides"][s].get("fit_seconds")) for s in order]))
    rows.append(("fit CPU seconds", *[_fmt(entry["sides"][s].get("fit_cpu_seconds")) for s in order]))
    if any(entry["sides"][s].get("warm") for s in order):
        rows.append(("first fit CPU s", *[_fmt(entry["sides"][s].get("first_fit_cpu_seconds")) for s in order]))
    rows.append(("sample seconds", *[_fmt(entry["sides"][s].get("sample_seconds")) for s in order]))
    for key, label in HEADLINE:
        rows.append((label, *[_mean_sd(entry["sides"][s], key) for s in order]))
    errors = {s: entry["sides"][s]["error"].splitlines()[0] for s in order if "error" in entry["sides"][s]}
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [f"== {name}: {entry.get('description', '')}"]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    lines += [f"{s}: {e}" for s, e in errors.items()]
    for k, table in entry.get("twins", {}).get("results", {}).items():
        lines.append(
            f"twin benchmark, k = {k} (CRPS / MAE of the median path in train std units; x population, which reads "
            "the k steps; population_cold: the fleet model from static attributes alone)"
        )
        for method, row in table.items():
            ratio = f"  x{row['ratio_crps']:.2f} / x{row['ratio_mae']:.2f}" if row.get("ratio_crps") else ""
            if row.get("ratio_crps_cold") is not None:
                ratio += f"  (CRPS x{row['ratio_crps_cold']:.2f} cold-start population)"
            lines.append(f"  {method:<11} {_fmt(row['crps_scaled'])} / {_fmt(row['mae_scaled'])}{ratio}")
    for k, row in entry.get("twins", {}).get("level_oracle", {}).items():
        lines.append(
            f"hindsight ceilings, k = {k}: level oracle x{row['ratio_crps']:.2f}, level+spread oracle "
            f"x{row.get('affine_ratio_crps') or float('nan'):.2f} population"
        )
    for k, row in entry.get("twins", {}).get("entity_data_oracle", {}).items():
        ratio = row["ratio_crps"]
        lines.append(f"hindsight, k = {k}: twin fine-tuned on the entity's later steps x{ratio:.2f} population")
    for k, row in entry.get("twins", {}).get("simulator_oracle", {}).items():
        lines.append(
            f"Bayes bound, k = {k}: the simulator continued from the true state x{row['ratio_crps']:.2f} population"
        )
    if entry.get("targets"):
        lines.append("targets: " + ", ".join(f"{k} {'pass' if v else 'FAIL'}" for k, v in entry["targets"].items()))
    return "\n".join(lines)


def merge(files: list[Path], results: dict) -> None:
    """Results of separate runs (one dataset and side each, with their own ``--out``, e.g. queued side by side)
    into ``results``: each file's sides and twin benchmark replace those in ``results``; targets recomputed."""
    for path in files:
        for name, entry in load_results(path)["datasets"].items():
            into = results["datasets"].setdefault(name, {"sides": {}})
            for key, value in entry.items():
                if key == "sides":
                    for side, row in value.items():
                        if side != "holdout" or side not in into["sides"]:
                            into["sides"][side] = row
                elif key != "targets":
                    into[key] = value
    for entry in results["datasets"].values():
        entry["targets"] = targets(entry)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    results = load_results(args.out)
    if args.merge:
        merge(args.merge, results)
        save_results(results, args.out)
        for name in results["datasets"]:
            print(format_dataset(name, results["datasets"][name]))
        print(f"results: {args.out}")
        return 0
    results["command"] = "benchmarks/bench_twins.py " + " ".join(sys.argv[1:] if argv is None else argv)
    failed = False
    for name in args.names:
        try:
            bench_dataset(name, args, results)
        except Exception as exc:  # one dataset failing must not lose the others
            progress(f"{name} failed: {type(exc).__name__}: {exc}")
            failed = True
    for name in args.names:
        if name in results["datasets"]:
            print(format_dataset(name, results["datasets"][name]))
    print(f"results: {args.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
