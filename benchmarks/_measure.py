"""The measurement protocol both sides of a benchmark follow, so that their numbers are comparable.

Imported by a side's worker script, which runs in its own fresh process (twinforge in the project's venv, an
anchor such as SDV in the anchor's venv); standard library only, pandas is imported when the data is loaded.
A worker describes its library as a :class:`Side` and calls :func:`run_side`, which:

1. loads the CSV with ``pandas.read_csv`` (the same call on both sides) and detects the metadata;
2. takes the resident memory at that point (after imports, data load and metadata) as the baseline, and
   resets the kernel's peak-RSS counter to it (Linux ``/proc/self/clear_refs``) so an earlier transient
   peak (the CSV parser's) is not charged to the model;
3. times ``fit``, then, after a warm-up draw of 1,000 rows, times sampling ``--sample-rows`` rows (wall clock, and
   the process's CPU time: on a shared machine the wall clock includes waiting for a core); the peak memory is
   ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` minus the baseline, for each phase;
4. samples as many rows as the real table, with the same seed, and writes them to ``--synthetic-out`` (parquet)
   for the quality report, checking that the columns and dtypes match the real table's;
5. writes one JSON object to ``--result-out``.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_CLEAR_REFS = Path("/proc/self/clear_refs")
_STATUS = Path("/proc/self/status")


@dataclass
class Side:
    """One library under test. Its heavy imports must be done before :func:`run_side` is called.

    ``detect(df) -> metadata``; ``fit(df, metadata, seed) -> model``; ``sample(model, n, seed) -> DataFrame``;
    ``metadata_dict(metadata) -> dict`` (JSON-able); ``not_learned(metadata) -> {column: reason}`` lists the
    columns the library declares id, PII or text (generated, not learned).
    """

    name: str
    versions: dict[str, str]
    detect: Callable[[Any], Any]
    fit: Callable[[Any, Any, int], Any]
    sample: Callable[[Any, int, int], Any]
    metadata_dict: Callable[[Any], dict]
    not_learned: Callable[[Any], dict[str, str]]


def load_table(path: str | Path):
    """The real table, read the same way on every side."""
    import pandas as pd

    return pd.read_csv(path)


def current_rss_mb() -> float:
    """Resident memory of this process now, in MB."""
    for line in _STATUS.read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("VmRSS not found in /proc/self/status")  # pragma: no cover - Linux only


def peak_rss_mb() -> float:
    """Peak resident memory of this process (ru_maxrss, KB on Linux), in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak_rss() -> bool:
    """Reset the peak-RSS counter to the current RSS; False where the kernel does not allow it."""
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return peak_rss_mb() <= current_rss_mb() + 1.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Run one side of a benchmark (called by bench_*.py).")
    parser.add_argument("--data", required=True, help="the real table (CSV)")
    parser.add_argument("--sample-rows", type=int, required=True, help="rows sampled for the timed sample")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--synthetic-out", required=True, help="parquet path for the quality sample")
    parser.add_argument("--result-out", required=True, help="JSON path for the measurements")
    return parser.parse_args(argv)


def run_side(side: Side, argv: list[str] | None = None) -> None:
    """Measure ``side`` on one table (see the module docstring) and write its JSON result."""
    args = parse_args(argv)
    df = load_table(args.data)
    start = time.perf_counter()
    metadata = side.detect(df)
    detect_seconds = time.perf_counter() - start

    gc.collect()
    baseline = current_rss_mb()
    peak_reset = reset_peak_rss()

    start, cpu = time.perf_counter(), time.process_time()
    model = side.fit(df, metadata, args.seed)
    fit_seconds, fit_cpu = time.perf_counter() - start, time.process_time() - cpu
    fit_peak = peak_rss_mb()

    # warm-up: one small draw first, so the timed draw measures the steady rate, not one-off lazy imports
    # and caches (Faker's locale data, a first-call JIT) that every side pays once per process
    side.sample(model, min(1_000, args.sample_rows), args.seed)
    gc.collect()
    if peak_reset:
        reset_peak_rss()  # the sampling phase's own peak (the fitted model stays in memory)
    start, cpu = time.perf_counter(), time.process_time()
    synthetic = side.sample(model, args.sample_rows, args.seed)
    sample_seconds, sample_cpu = time.perf_counter() - start, time.process_time() - cpu
    sample_peak = peak_rss_mb()
    if len(synthetic) != args.sample_rows:
        raise RuntimeError(f"{side.name} returned {len(synthetic)} rows, asked for {args.sample_rows}")
    del synthetic
    gc.collect()

    quality_sample = side.sample(model, len(df), args.seed)
    quality_sample.to_parquet(args.synthetic_out, index=False)

    result = {
        "side": side.name,
        "versions": {**side.versions, "python": platform.python_version()},
        "rows": len(df),
        "columns": int(df.shape[1]),
        "detect_seconds": detect_seconds,
        "fit_seconds": fit_seconds,
        "sample_rows": args.sample_rows,
        "sample_seconds": sample_seconds,
        "sample_rows_per_second": args.sample_rows / sample_seconds,
        # CPU time of this process (all its threads): on a shared machine, what the work costs without the wait
        "fit_cpu_seconds": fit_cpu,
        "sample_cpu_seconds": sample_cpu,
        "sample_rows_per_cpu_second": args.sample_rows / max(sample_cpu, 1e-9),
        "baseline_rss_mb": baseline,
        "peak_reset": peak_reset,
        "fit_peak_delta_mb": fit_peak - baseline,
        "sample_peak_delta_mb": sample_peak - baseline,
        "peak_delta_mb": max(fit_peak, sample_peak) - baseline,
        "metadata": side.metadata_dict(metadata),
        "not_learned": side.not_learned(metadata),
        "schema_mismatches": schema_mismatches(df, quality_sample),
    }
    Path(args.result_out).write_text(json.dumps(result, indent=2))


def schema_mismatches(real, synthetic) -> list[str]:
    """How ``synthetic`` differs from ``real`` in its columns, their order and their dtypes."""
    if list(real.columns) != list(synthetic.columns):
        return [f"columns differ: real {list(real.columns)}, synthetic {list(synthetic.columns)}"]
    return [
        f"{name}: real {real[name].dtype}, synthetic {synthetic[name].dtype}"
        for name in real.columns
        if real[name].dtype != synthetic[name].dtype
    ]
