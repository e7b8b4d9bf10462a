"""Check twinforge's column shapes and column pair trends against SDMetrics' QualityReport on the same data.

Usage, from the repository root::

    .venv/bin/python benchmarks/bench_evaluate_sdmetrics.py [--datasets-only churn,ames] [--seed 0]

Other options: ``--datasets DIR`` (default ``../shared/datasets``), ``--anchor-python PATH`` (default
``~/.cache/anchors/sdv/bin/python``, built by ``../shared/anchors/setup.sh``), ``--out`` (default
``benchmarks/results/evaluate_sdmetrics.json``), ``--tolerance`` (default 0.01). Datasets: churn, ames, covid,
default (see ``bench_copula.py``), and ``mixed``, a generated table with datetime, boolean and missing values
(none of the four real tables has a datetime or boolean column).

Per dataset:

1. the real table is read with ``pandas.read_csv`` (``_measure.load_table``, as SDMetrics' side reads it) and
   twinforge detects its metadata;
2. two synthetic tables as large as the real one: ``copula`` (twinforge's model, fitted and sampled with the
   seed) and ``shuffle`` (every column permuted on its own: the marginals are exact, the relations gone);
3. twinforge scores both (``twinforge.evaluate.fidelity.column_shapes`` / ``column_pair_trends``) in this
   process;
4. the anchor venv's Python scores both with SDMetrics' ``QualityReport`` (``_sdv_anchor.py quality``) on the same
   files and the same column types: twinforge's metadata is translated to SDMetrics' (continuous and integer ->
   numerical, datetime -> datetime with its format, categorical, boolean), and the columns twinforge declares id,
   PII or text are left out of both. SDMetrics is never imported here or by twinforge.

Prints, per dataset and synthetic table, both scores and their difference (Column Shapes; Column Pair Trends with
SDMetrics' default thresholds; pair trends over every pair), the largest per-column difference, and writes every
number to the JSON file. Exit status 0 when every difference is below the tolerance, 1 otherwise or when a step
failed, 2 for a usage problem.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from _measure import load_table
from bench_copula import DATASETS, StepFailed, _usage_exit, progress, run_step

import twinforge
from twinforge.evaluate import fidelity

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
TABLE = "t"
MIXED = "mixed"
SYNTHETIC = ("copula", "shuffle")
SDTYPES = {"continuous": "numerical", "integer": "numerical", "datetime": "datetime", "categorical": "categorical"}
SDTYPES["boolean"] = "boolean"
KEYS = ("column_shapes", "column_pair_trends", "pair_trends_all_pairs")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    names = [*DATASETS, MIXED]
    parser = argparse.ArgumentParser(description="twinforge column shapes / pair trends against SDMetrics.")
    parser.add_argument("--datasets", type=Path, default=REPO.parent / "shared" / "datasets", help="dataset folder")
    parser.add_argument("--datasets-only", default=",".join(names), help=f"comma-separated: {', '.join(names)}")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tolerance", type=float, default=0.01)
    parser.add_argument(
        "--anchor-python",
        type=Path,
        default=Path.home() / ".cache" / "anchors" / "sdv" / "bin" / "python",
        help="Python of the SDV anchor venv (holds SDMetrics)",
    )
    parser.add_argument(
        "--out", type=Path, default=BENCH_DIR / "results" / "evaluate_sdmetrics.json", help="JSON results"
    )
    args = parser.parse_args(argv)
    args.names = [n.strip() for n in args.datasets_only.split(",") if n.strip()]
    unknown = [n for n in args.names if n not in names]
    if unknown or not args.names:
        parser.error(f"unknown dataset(s) {unknown or args.datasets_only!r}; choose from {', '.join(names)}")
    return args


def check_inputs(args: argparse.Namespace) -> None:
    if not args.anchor_python.exists():
        _usage_exit(
            f"SDV anchor Python not found at {args.anchor_python}.\n"
            "Build the anchor venvs once with ../shared/anchors/setup.sh, or pass --anchor-python PATH."
        )
    missing = [
        str(args.datasets / DATASETS[n])
        for n in args.names
        if n != MIXED and not (args.datasets / DATASETS[n]).is_file()
    ]
    if missing:
        _usage_exit("dataset(s) not found: " + ", ".join(missing) + "\nPass the dataset folder with --datasets DIR.")


# ------------------------------------------------------------------------------------------ tables
def make_mixed(n: int = 5000, seed: int = 0) -> pd.DataFrame:
    """A table with every learned kind, missing values, a datetime and a boolean, and real relations."""
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 90, n)
    income = np.round(1000 + 40 * age + rng.normal(0, 300, n), 2)
    income[rng.random(n) < 0.1] = np.nan
    city = rng.choice(["Oslo", "Rome", "Lima", "Pune"], n, p=[0.5, 0.3, 0.15, 0.05]).astype(object)
    city[rng.random(n) < 0.05] = None
    plan = np.where(income > 3000, "pro", rng.choice(["basic", "plus"], n)).astype(object)
    active = (rng.random(n) < np.where(plan == "pro", 0.9, 0.5)).astype(object)
    active[rng.random(n) < 0.05] = None
    joined = pd.Timestamp("2020-01-01") + pd.to_timedelta(age * 5 + rng.integers(0, 300, n), unit="D")
    joined = pd.Series(joined.strftime("%Y-%m-%d"), dtype=object)
    joined[rng.random(n) < 0.03] = None
    return pd.DataFrame({"age": age, "income": income, "city": city, "plan": plan, "active": active, "joined": joined})


def shuffle(real: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Every column permuted on its own: the same marginals, no relation left between columns."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame({c: real[c].to_numpy()[rng.permutation(len(real))] for c in real.columns})


def sdmetrics_metadata(meta: twinforge.Metadata) -> dict:
    """twinforge's metadata in SDMetrics' form, learned columns only (the same column types on both sides)."""
    columns = {}
    for name in meta.learned_columns:
        spec = meta.columns[name]
        columns[name] = {"sdtype": SDTYPES[spec.kind]}
        if spec.kind == "datetime" and spec.datetime_format:
            columns[name]["datetime_format"] = spec.datetime_format
    return {"METADATA_SPEC_VERSION": "V1", "tables": {TABLE: {"columns": columns}}}


# ------------------------------------------------------------------------------------------ one dataset
def bench_dataset(name: str, args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory(prefix=f"bench_evaluate_{name}_") as tmp:
        tmp = Path(tmp)
        if name == MIXED:
            data = tmp / "mixed.csv"
            make_mixed(seed=args.seed).to_csv(data, index=False)
        else:
            data = args.datasets / DATASETS[name]
        real = load_table(data)
        meta = twinforge.Metadata.detect(real)
        excluded = [c for c in meta.columns if c not in meta.learned_columns]
        progress(f"  fitting copula and sampling {len(real):,} rows ...")
        tables = {
            "copula": twinforge.create("copula", seed=args.seed).fit(real, meta).sample(len(real), seed=args.seed),
            "shuffle": shuffle(real, args.seed),
        }
        ours = {}
        for label, synthetic in tables.items():
            synthetic.to_parquet(tmp / f"{label}.parquet", index=False)
            # read back as SDMetrics will, so both sides score the very same values
            synthetic = pd.read_parquet(tmp / f"{label}.parquet")
            shapes = fidelity.column_shapes(real, synthetic, meta)
            pairs = fidelity.column_pair_trends(real, synthetic, meta)
            ours[label] = {
                "column_shapes": shapes["score"],
                "column_pair_trends": pairs["score"],
                "pair_trends_all_pairs": pairs["score_all_pairs"],
                "pairs_counted": pairs["pairs_counted"],
                "pairs_total": pairs["pairs_total"],
                "column_shape_details": {c: d["score"] for c, d in shapes["columns"].items()},
                "counted_pairs": {
                    f"{p['columns'][0]}~{p['columns'][1]}": p["score"] for p in pairs["pairs"] if p["counted"]
                },
            }
        (tmp / "metadata.json").write_text(json.dumps({"metadata": sdmetrics_metadata(meta)}))
        run_step(
            [
                str(args.anchor_python),
                str(BENCH_DIR / "_sdv_anchor.py"),
                "quality",
                "--real",
                str(data),
                "--metadata-from",
                str(tmp / "metadata.json"),
                *[f"--synthetic={label}={tmp / f'{label}.parquet'}" for label in tables],
                "--exclude",
                ",".join(excluded),
                "--result-out",
                str(tmp / "quality.json"),
            ],
            "SDMetrics QualityReport (anchor venv)",
        )
        quality = json.loads((tmp / "quality.json").read_text())

    result = {
        "file": "generated" if name == MIXED else DATASETS[name],
        "rows": len(real),
        "columns": int(real.shape[1]),
        "excluded": excluded,
        "sdmetrics_version": quality["sdmetrics"],
        "kinds": {n: s.kind for n, s in meta.columns.items()},
        "synthetic": {},
    }
    for label in tables:
        theirs = quality["reports"][label]
        mine = ours[label]
        shape_diffs = {
            c: mine["column_shape_details"][c] - d["score"] for c, d in theirs["column_shape_details"].items()
        }
        their_pairs = {f"{p['columns'][0]}~{p['columns'][1]}": p["score"] for p in theirs["counted_pair_details"]}
        result["synthetic"][label] = {
            "twinforge": mine,
            "sdmetrics": {k: theirs[k] for k in (*KEYS, "pairs_counted", "pairs_total", "errors")},
            "difference": {k: _diff(mine[k], theirs[k]) for k in KEYS},
            "max_column_shape_difference": max((abs(v) for v in shape_diffs.values()), default=0.0),
            "counted_pairs_match": sorted(their_pairs) == sorted(mine["counted_pairs"]),
            "max_counted_pair_difference": max(
                (abs(mine["counted_pairs"][k] - v) for k, v in their_pairs.items() if k in mine["counted_pairs"]),
                default=0.0,
            ),
        }
    return result


def _diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def passed(r: dict, tolerance: float) -> bool:
    for s in r["synthetic"].values():
        for key in KEYS:
            mine, theirs = s["twinforge"][key], s["sdmetrics"][key]
            if (mine is None) != (theirs is None):
                return False
            if mine is not None and abs(mine - theirs) >= tolerance:
                return False
        if not s["counted_pairs_match"]:
            return False
    return True


# ------------------------------------------------------------------------------------------ report
def _fmt(v: float | None, sign: bool = False) -> str:
    if v is None:
        return "n/a"
    return f"{v:+.5f}" if sign else f"{v:.5f}"


def format_dataset(name: str, r: dict, tolerance: float) -> str:
    lines = [f"== {name}: {r['file']} ({r['rows']:,} rows x {r['columns']} columns) =="]
    if r["excluded"]:
        lines.append(f"left out on both sides (id/PII/text): {', '.join(r['excluded'])}")
    header = f"{'synthetic':<9} {'score':<24} {'twinforge':>10} {'SDMetrics':>10} {'difference':>11}"
    lines.append(header)
    for label, s in r["synthetic"].items():
        for key in KEYS:
            extra = ""
            if key == "column_pair_trends":
                extra = f"  ({s['twinforge']['pairs_counted']} of {s['twinforge']['pairs_total']} pairs counted)"
            lines.append(
                f"{label:<9} {key:<24} {_fmt(s['twinforge'][key]):>10} {_fmt(s['sdmetrics'][key]):>10} "
                f"{_fmt(s['difference'][key], sign=True):>11}{extra}"
            )
        lines.append(
            f"{label:<9} largest per-column shape difference {s['max_column_shape_difference']:.2e}; "
            f"largest counted-pair difference {s['max_counted_pair_difference']:.2e}; "
            f"same counted pairs: {'yes' if s['counted_pairs_match'] else 'NO'}"
        )
        if s["sdmetrics"]["errors"]:
            lines.append(
                f"{label:<9} SDMetrics errors (pairs it leaves out): {'; '.join(s['sdmetrics']['errors'][:3])}"
            )
    lines.append(f"within {tolerance}: {'yes' if passed(r, tolerance) else 'NO'}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    check_inputs(args)
    started = datetime.now(UTC)
    results: dict[str, dict] = {}
    for name in args.names:
        progress(f"[{name}] {DATASETS.get(name, 'generated mixed table')}")
        try:
            results[name] = bench_dataset(name, args)
        except StepFailed as exc:
            progress(str(exc))
            results[name] = {"error": str(exc)}
            continue
        print(format_dataset(name, results[name], args.tolerance), end="\n\n", flush=True)

    ok = {n: "error" not in r and passed(r, args.tolerance) for n, r in results.items()}
    worst = max(
        (
            abs(d)
            for r in results.values()
            if "error" not in r
            for s in r["synthetic"].values()
            for d in s["difference"].values()
            if d is not None
        ),
        default=None,
    )
    print(f"== summary: largest |twinforge - SDMetrics| = {_fmt(worst)}; tolerance {args.tolerance} ==")
    print("within tolerance: " + ", ".join(f"{n} {'yes' if v else 'NO'}" for n, v in ok.items()))
    document = {
        "benchmark": "evaluate: twinforge column shapes / pair trends vs SDMetrics QualityReport",
        "date": started.isoformat(timespec="seconds"),
        "versions": {"twinforge": twinforge.__version__, "python": platform.python_version()},
        "settings": {
            "seed": args.seed,
            "tolerance": args.tolerance,
            "datasets_dir": str(args.datasets.resolve()),
            "anchor_python": str(args.anchor_python),
        },
        "datasets": results,
        "summary": {"largest_difference": worst, "within_tolerance": ok},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=2) + "\n")
    progress(f"results written to {args.out}")
    return 0 if all(ok.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
