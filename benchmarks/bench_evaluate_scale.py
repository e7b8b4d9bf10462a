"""How long ``twinforge.evaluate`` takes, and how much memory it needs, on a large table.

Usage, from the repository root::

    .venv/bin/python benchmarks/bench_evaluate_scale.py [--rows 1000000] [--columns 50] [--holdout-rows 250000]

Generates a real table, a holdout and a synthetic table (a second draw of the same process, so every metric
has something to measure) with ``--columns`` columns of every learned kind: correlated numbers with missing
values, categories from 2 to 1,000 levels, booleans and datetimes, plus a binary target. Then runs the full
evaluation (fidelity, utility for the target, privacy with one sensitive column) and the HTML report, and prints
the time of each phase and the peak resident memory above the memory the tables themselves take
(``ru_maxrss``; Linux). Writes ``benchmarks/results/evaluate_scale.json``.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from _measure import current_rss_mb, peak_rss_mb, reset_peak_rss

import twinforge

BENCH_DIR = Path(__file__).resolve().parent


def make_table(n: int, columns: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(n, 4)).astype("float32")
    out: dict[str, np.ndarray] = {}
    kinds = ["num", "num", "num", "cat", "num", "cat", "bool", "num", "cat", "date"]
    for j in range(columns - 1):
        kind = kinds[j % len(kinds)]
        z = latent[:, j % 4] * 0.8 + rng.normal(0, 0.6, n).astype("float32")
        if kind == "num":
            x = np.round(np.exp(z) * 100 if j % 3 == 0 else z * 10 + 50, 2)
            if j % 4 == 1:
                x[rng.random(n) < 0.1] = np.nan
            out[f"n{j}"] = x
        elif kind == "cat":
            k = (2, 5, 20, 1000)[j % 4]
            levels = np.array([f"L{i}" for i in range(k)], dtype=object)
            codes = np.clip(((z + 3) / 6 * k).astype(int), 0, k - 1)
            out[f"c{j}"] = levels[codes]
        elif kind == "bool":
            out[f"b{j}"] = z > 0
        else:
            out[f"d{j}"] = pd.Timestamp("2015-01-01") + pd.to_timedelta(
                np.clip((z + 4) * 300, 0, 3000).astype(int), "D"
            )
    p = 1 / (1 + np.exp(-(latent[:, 0] + latent[:, 1])))
    out["target"] = np.where(rng.random(n) < p, "yes", "no").astype(object)
    return pd.DataFrame(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--columns", type=int, default=50)
    parser.add_argument("--holdout-rows", type=int, default=250_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "results" / "evaluate_scale.json")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    real = make_table(args.rows, args.columns, args.seed)
    synthetic = make_table(args.rows, args.columns, args.seed + 1)
    holdout = make_table(args.holdout_rows, args.columns, args.seed + 2)
    generate_seconds = time.perf_counter() - start
    import sklearn  # noqa: F401  (imports count as baseline, not as evaluation)

    gc.collect()
    baseline = current_rss_mb()
    peak_reset = reset_peak_rss()
    print(f"tables: real {real.shape}, synthetic {synthetic.shape}, holdout {holdout.shape}; RSS {baseline:,.0f} MB")

    start = time.perf_counter()
    report = twinforge.evaluate(
        real, synthetic, holdout, target="target", sensitive=["c3"], seed=args.seed, progress=True
    )
    evaluate_seconds = time.perf_counter() - start
    evaluate_peak = peak_rss_mb() - baseline
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        report.to_html(Path(tmp) / "report.html")
        report.to_json(Path(tmp) / "report.json")
        html_seconds = time.perf_counter() - start
        html_mb = (Path(tmp) / "report.html").stat().st_size / 1e6
    peak = peak_rss_mb() - baseline

    result = {
        "rows": args.rows,
        "columns": args.columns,
        "holdout_rows": args.holdout_rows,
        "generate_seconds": generate_seconds,
        "baseline_rss_mb": baseline,
        "peak_reset": peak_reset,
        "evaluate_seconds": evaluate_seconds,
        "evaluate_peak_above_baseline_mb": evaluate_peak,
        "report_seconds": html_seconds,
        "report_html_mb": html_mb,
        "peak_above_baseline_mb": peak,
        "subsampled": report.to_dict()["subsampled"],
        "timings": report.timings,
        "summary": {f"{r['section']}.{r['metric']}": r["value"] for r in report.summary},
        "versions": {"twinforge": twinforge.__version__, "python": platform.python_version()},
    }
    for key in ("evaluate_seconds", "evaluate_peak_above_baseline_mb", "report_seconds", "report_html_mb"):
        print(f"{key}: {result[key]:,.1f}")
    print("seconds per step: " + json.dumps(report.timings))
    print(f"peak memory above the tables' {baseline:,.0f} MB: {peak:,.0f} MB")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
