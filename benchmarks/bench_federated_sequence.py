"""Benchmark federated training of the sequence model: 2 and 5 sites vs the same model centrally and per site.

Usage, from the repository root (heavy: one dataset and seed per ``/work/heavy`` call)::

    /work/heavy .venv/bin/python benchmarks/bench_federated_sequence.py --dataset turbines --seeds 0 \\
        --sites 2,5 --splits iid,skewed --out benchmarks/results/federated_sequence.json
    # ... the same with --dataset basic_motions and other seeds: every call adds its runs to the JSON, then
    .venv/bin/python benchmarks/bench_federated_sequence.py --out benchmarks/results/federated_sequence.json \\
        --summary --markdown benchmarks/results/federated_sequence.md

Datasets (as in ``bench_twins.py``): ``turbines`` (the simulated wind-turbine fleet, 80 units x 100 steps, static
model, site, rated power, hub height, installation year) and ``basic_motions`` (sktime's BasicMotions, 80
recordings x 100 steps, six channels, static ``label``; skipped when ``../shared/datasets`` is absent).

Per seed: the entities are split (seeded) into 80% train and 20% holdout; the train entities are dealt to the sites,
whole entities each:

- ``iid``: at random, equal numbers;
- ``skewed``: by a static column (turbines: ``site``; basic_motions: ``label``): each site "owns" one level and gets
  85% of its entities from it (the rest at random), so the sites differ in size and mix.

Sides: **federated** (``twinforge.federated.simulate``, FedAvg for iid and FedProx for skewed, ``--rounds``
rounds of ``--local-epochs`` local epochs); **central** (the sequence model with its defaults on the pooled train
entities); **site alone** (the same on one site's entities; the first, middle and last site, averaged).

Every side samples as many entities as the train split and is scored against it with
``twinforge.evaluate.temporal`` (the holdout for the predictive score): autocorrelation error, cross-correlation
error, discriminative AUC (0.5 best) and the predictive ratio TRTR/TSTR error (1 best).

Ratios "x central", all oriented so that **higher is better and 1 means as good as central**:

- error metrics (ACF error, cross-correlation error, and the discriminative AUC's excess over 0.5):
  central error / federated error; 0.97 means the federated error is at most 1/0.97 = 1.031x central's;
- the predictive ratio: federated / central.

Target: every ratio >= 0.97 on the seed means; federated clearly better than the site-alone average.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
DATASETS = REPO.parent / "shared" / "datasets"
HOLDOUT_SHARE = 0.2
# metric -> lower is better (an error), and its ideal value
METRICS = {
    "autocorrelation_error": (True, 0.0),
    "cross_correlation_error": (True, 0.0),
    "discriminative_auc": (True, 0.5),
    "predictive_ratio": (False, 1.0),
}


def load(name: str, seed: int) -> tuple[pd.DataFrame, str, str, list[str], str]:
    """(long table, entity key, time key, static columns, the static column the skewed split follows)."""
    if name == "basic_motions":
        df = pd.read_csv(DATASETS / "sktime__basic_motions.csv").drop(columns="split")
        return df, "instance_id", "t", ["label"], "label"
    import twinforge.simulate as sim

    fleet = sim.turbines(n_units=80, n_steps=100, seed=0)
    df = fleet.events.merge(fleet.static, on="unit_id")
    return df, "unit_id", "t", [c for c in fleet.static.columns if c != "unit_id"], "site"


def split_entities(df: pd.DataFrame, ek: str, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    entities = np.array(sorted(df[ek].unique()))
    rng = np.random.default_rng([seed, 1])
    held = set(rng.choice(entities, max(1, round(len(entities) * HOLDOUT_SHARE)), replace=False).tolist())
    mask = df[ek].isin(held)
    return df[~mask].reset_index(drop=True), df[mask].reset_index(drop=True)


def split_sites(train: pd.DataFrame, ek: str, skew_by: str, k: int, how: str, seed: int) -> list[pd.DataFrame]:
    rng = np.random.default_rng([seed, 2, k])
    first = train.groupby(ek, sort=False).head(1)
    keys = first[ek].to_numpy()
    if how == "iid":
        site = rng.permutation(np.arange(len(keys)) % k)
    else:
        levels = sorted(first[skew_by].unique())
        owners = {v: [i for i in range(k) if i % len(levels) == j] for j, v in enumerate(levels)}
        site = np.array(
            [
                rng.choice(owners[v]) if owners[v] and rng.random() < 0.85 else rng.integers(k)
                for v in first[skew_by].to_numpy()
            ]
        )
        for i in range(k):  # every site holds at least two entities
            while (site == i).sum() < 2:
                site[rng.choice(np.flatnonzero(site == np.bincount(site, minlength=k).argmax()))] = i
    where = dict(zip(keys, site, strict=True))
    owner = train[ek].map(where).to_numpy()
    return [train[owner == i].reset_index(drop=True) for i in range(k)]


def scores(train: pd.DataFrame, holdout: pd.DataFrame, model, ek: str, tk: str, seed: int, draws: int = 1) -> dict:
    """Each metric averaged over ``draws`` samples of the model (draw 0 is the one a single draw scores)."""
    from twinforge.evaluate import temporal

    out: dict[str, list[float]] = {m: [] for m in METRICS}
    for d in range(draws):
        s = seed if d == 0 else seed * 1000 + d
        fake = model.sample(entities=int(train[ek].nunique()), seed=s)
        full = temporal.temporal_fidelity(train, fake, ek, tk, holdout=holdout, seed=s)
        for m in METRICS:
            out[m].append(float(full[m]))
    return {m: round(float(np.mean(v)), 4) for m, v in out.items()}


def ratio(metric: str, fed: float, central: float) -> float:
    """Higher is better, 1: as good as central (see the module docstring)."""
    lower, ideal = METRICS[metric]
    if lower:
        return float(abs(central - ideal) / max(abs(fed - ideal), 1e-9))
    return float(fed / central)


def summarise(doc: dict) -> list[dict]:
    out = []
    for name, ds in sorted(doc["datasets"].items()):
        keys = sorted(
            {k for s in ds["seeds"].values() for k in s["runs"]}, key=lambda k: (k.split("-")[0], int(k.split("-")[1]))
        )
        for key in keys:
            seeds = [s for s in sorted(ds["seeds"], key=int) if key in ds["seeds"][s]["runs"]]
            runs = [ds["seeds"][s]["runs"][key] for s in seeds]
            central = [ds["seeds"][s]["central"] for s in seeds]
            row: dict = {"dataset": name, "split": key.split("-")[0], "sites": int(key.split("-")[1]), "seeds": seeds}
            for m in METRICS:
                fed = float(np.mean([r["federated"][m] for r in runs]))
                alone = float(np.mean([r["site_alone_mean"][m] for r in runs]))
                cen = float(np.mean([c[m] for c in central]))
                row[m] = {
                    "federated": round(fed, 4),
                    "central": round(cen, 4),
                    "site_alone": round(alone, 4),
                    "x_central": round(ratio(m, fed, cen), 3),
                    "site_alone_x_central": round(ratio(m, alone, cen), 3),
                }
            row["met_0.97"] = all(row[m]["x_central"] >= 0.97 for m in METRICS)
            row["above_site_alone"] = all(row[m]["x_central"] > row[m]["site_alone_x_central"] for m in METRICS)
            row["round_seconds"] = round(float(np.mean([r["federated"]["round_seconds"] for r in runs])), 3)
            row["mb_per_round"] = round(float(np.mean([r["federated"]["bytes_per_round"] for r in runs])) / 1e6, 3)
            row["fit_seconds"] = {
                "federated": round(float(np.mean([r["federated"]["seconds"] for r in runs])), 1),
                "central": round(float(np.mean([c["seconds"] for c in central])), 1),
            }
            out.append(row)
    return out


def markdown(doc: dict) -> str:
    short = {
        "autocorrelation_error": "ACF err",
        "cross_correlation_error": "xcorr err",
        "discriminative_auc": "disc AUC",
    }
    short["predictive_ratio"] = "predictive"
    head = "| dataset | split | sites | seeds | " + " | ".join(
        f"{short[m]}: fed / central / alone (x central)" for m in METRICS
    )
    lines = [head + " | all >= 0.97x | above alone | s/round | MB/round |", "|" + "---|" * (8 + len(METRICS) - 4 + 4)]
    for r in doc["summary"]:
        cells = [
            f"{r[m]['federated']:.3f} / {r[m]['central']:.3f} / {r[m]['site_alone']:.3f} ({r[m]['x_central']:.2f})"
            for m in METRICS
        ]
        lines.append(
            f"| {r['dataset']} | {r['split']} | {r['sites']} | {len(r['seeds'])} | "
            + " | ".join(cells)
            + f" | {'yes' if r['met_0.97'] else 'no'} | {'yes' if r['above_site_alone'] else 'no'}"
            + f" | {r['round_seconds']:.2f} | {r['mb_per_round']:.2f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", default="turbines", choices=("turbines", "basic_motions"))
    ap.add_argument("--sites", default="2,5")
    ap.add_argument("--splits", default="iid,skewed")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--local-epochs", type=int, default=2)
    ap.add_argument("--skewed-strategy", default="fedprox", choices=("fedavg", "fedprox", "fedavgm"))
    ap.add_argument("--draws", type=int, default=1, help="samples each model is scored on (metrics averaged)")
    ap.add_argument("--params", default="{}", help="JSON parameters of the sequence model (every side)")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "federated_sequence.json"))
    ap.add_argument("--summary", action="store_true", help="only print the summary of --out")
    ap.add_argument("--merge", nargs="*", default=[], help="with --summary: first add these runs' JSONs to --out")
    ap.add_argument("--markdown", default="", help="with --summary: also write the table to this .md file")
    args = ap.parse_args(argv)
    out = Path(args.out)
    doc = json.loads(out.read_text()) if out.exists() else {}
    if args.summary:
        for path in args.merge:  # parallel calls write their own files (one /work/heavy call each)
            part = json.loads(Path(path).read_text())
            for name, ds in part["datasets"].items():
                mine = doc.setdefault("datasets", {}).setdefault(name, {"seeds": {}})
                mine.update({k: v for k, v in ds.items() if k != "seeds"})
                for seed, entry in ds["seeds"].items():
                    have = mine["seeds"].setdefault(seed, {"central": entry["central"], "runs": {}})
                    have["central"] = entry["central"]
                    have["runs"].update(entry["runs"])
            doc.setdefault("benchmark", part.get("benchmark"))
            doc["machine"] = part.get("machine")
        doc["summary"] = summarise(doc)
        if args.merge:
            out.write_text(json.dumps(doc, indent=1))
        print(markdown(doc))
        if args.markdown:
            Path(args.markdown).write_text(markdown(doc))
        return 0
    if args.dataset == "basic_motions" and not (DATASETS / "sktime__basic_motions.csv").is_file():
        print(f"dataset not found in {DATASETS}", file=sys.stderr)
        return 2
    import logging

    import torch

    import twinforge
    from twinforge.federated import simulate

    torch.set_num_threads(1)
    logging.getLogger("flwr").setLevel(logging.WARNING)
    params = json.loads(args.params)
    doc.setdefault("benchmark", "federated_sequence")
    doc.setdefault("datasets", {})
    doc["machine"] = {"python": platform.python_version(), "cpus": os.cpu_count(), "torch_threads": 1}
    ds = doc["datasets"].setdefault(args.dataset, {"seeds": {}})
    ds["params"] = params
    ds["draws"] = args.draws

    def save() -> None:
        doc["summary"] = summarise(doc)
        doc["updated_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc, indent=1))
        os.replace(tmp, out)

    df, ek, tk, static, skew_by = load(args.dataset, 0)
    meta = twinforge.Metadata.detect(df, entity_key=ek, time_index=tk)
    meta.primary_key = None
    for seed in (int(s) for s in args.seeds.split(",")):
        train, holdout = split_entities(df, ek, seed)
        entry = ds["seeds"].setdefault(str(seed), {"central": None, "runs": {}})

        def fit(part: pd.DataFrame, seed: int = seed) -> tuple[object, float]:
            t0 = time.perf_counter()
            m = twinforge.create("sequence", seed=seed, progress=False, **params)
            m.fit(part, meta, entity_key=ek, time_key=tk, static=static)
            return m, time.perf_counter() - t0

        if entry["central"] is None:
            central, secs = fit(train)
            entry["central"] = {
                "seconds": round(secs, 2),
                "epochs": len(central.train_info_.get("history", [])),
                **scores(train, holdout, central, ek, tk, seed, args.draws),
            }
            save()
            print(f"{args.dataset} seed {seed} central: {entry['central']}", flush=True)
        work = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-fedseq-{os.getpid()}"
        for how in args.splits.split(","):
            for k in (int(x) for x in args.sites.split(",")):
                parts = split_sites(train, ek, skew_by, k, how, seed)
                t0 = time.perf_counter()
                model = simulate(
                    parts,
                    work / f"{how}-{k}",
                    metadata=meta,
                    model="sequence",
                    params=params,
                    sequence={"entity_key": ek, "time_key": tk, "static": static},
                    rounds=args.rounds,
                    local_epochs=args.local_epochs,
                    strategy="fedavg" if how == "iid" else args.skewed_strategy,
                    seed=seed,
                    overwrite=True,
                )
                fed_secs = time.perf_counter() - t0
                fed = model.fit_info_["federated"]
                fed_scores = scores(train, holdout, model, ek, tk, seed, args.draws)
                alone = []
                for i in sorted({0, k // 2, k - 1}):
                    m, s = fit(parts[i])
                    n = int(parts[i][ek].nunique())
                    alone.append(
                        {
                            "site": i,
                            "entities": n,
                            "seconds": round(s, 2),
                            **scores(train, holdout, m, ek, tk, seed, args.draws),
                        }
                    )
                entry["runs"][f"{how}-{k}"] = {
                    "site_entities": [int(p[ek].nunique()) for p in parts],
                    "rounds": args.rounds,
                    "local_epochs": args.local_epochs,
                    "strategy": fed["strategy"],
                    "federated": {
                        "seconds": round(fed_secs, 2),
                        "round_seconds": round(float(np.mean([h["seconds"] for h in fed["history"]])), 3),
                        "bytes_per_round": fed["bytes_per_round"],
                        **fed_scores,
                    },
                    "site_alone": alone,
                    "site_alone_mean": {m: round(float(np.mean([a[m] for a in alone])), 4) for m in METRICS},
                }
                save()
                print(
                    f"{args.dataset} seed {seed} {how} k={k}: fed {fed_scores}; central "
                    f"{ {m: entry['central'][m] for m in METRICS} }; "
                    f"alone {entry['runs'][f'{how}-{k}']['site_alone_mean']}; "
                    f"{fed_secs:.0f} s",
                    flush=True,
                )
    save()
    print(markdown(doc))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
