"""One side of bench_twins.py: fit a sequential generator on a long table, sample new entities, time it.

Each side runs in its own fresh process, the anchors with their own venv's Python (SDV and MOSTLY AI are never
installed beside twinforge):

    .venv/bin/python benchmarks/_sequence_sides.py twinforge ARGS      # twinforge.create("sequence")
    ~/.cache/anchors/sdv/bin/python benchmarks/_sequence_sides.py par ARGS       # SDV PARSynthesizer
    ~/.cache/anchors/mostlyai/bin/python benchmarks/_sequence_sides.py mostlyai ARGS  # TabularARGN, sequential

ARGS: ``--data CSV --entity-key K --time-key T [--static a,b] --entities N --seed S --synthetic-out PARQUET
--result-out JSON [--epochs E] [--max-minutes M] [--model-out DIR] [--warm]``.

The long CSV has one row per entity and time step; ``--static`` names the columns constant within an entity.
Protocol (as ``_measure.py``): after the data is loaded, the resident memory is the baseline and the peak-RSS
counter is reset; ``fit`` is timed (with ``--warm``, after one untimed fit of the same data and seed, so that
first-call imports and warm-up are left out; the first fit's CPU seconds are kept beside), then sampling
``--entities`` new entities (static rows and whole sequences).
The sample is written as one long table with the real table's columns.

- ``par``: SDV's detected metadata with the entity key as ``sequence_key`` (an id) and the time as
  ``sequence_index``; the static columns are PAR's ``context_columns``; ``epochs`` (default SDV's 128); CPU.
- ``mostlyai``: MOSTLY AI's two-model setup for sequences: a flat TabularARGN learns the static table (one row
  per entity) and a sequential TabularARGN (``tgt_context_key``) learns the sequences given it; sampling draws
  static rows, then sequences for them. The time column is not learned: ARGN generates a sequence in order, so a
  sampled row's time is the real start time plus its position times the real median step (exact for the regular
  grids benchmarked here). ``--max-minutes`` is split evenly between the two models (default: the engine's).
- ``twinforge``: ``twinforge.create("sequence", seed=S[, epochs=E][, max_minutes=M]).fit(...)``, ``sample(entities=N)``;
  ``--model-out`` saves the model for the twin benchmark.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import platform
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _measure import current_rss_mb, peak_rss_mb, reset_peak_rss

warnings.simplefilter("ignore")
logging.disable(logging.WARNING)
TABLE = "t"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="_sequence_sides.py", description=__doc__.splitlines()[0])
    parser.add_argument("side", choices=["twinforge", "par", "mostlyai"])
    parser.add_argument("--data", required=True)
    parser.add_argument("--entity-key", required=True)
    parser.add_argument("--time-key", required=True)
    parser.add_argument("--static", default="", help="comma-separated static columns")
    parser.add_argument("--entities", type=int, required=True, help="entities to sample")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--max-minutes", type=float, default=None)
    parser.add_argument("--params", default="{}", help="JSON parameters for twinforge's sequence model")
    parser.add_argument("--model-out", default=None, help="twinforge: save the fitted model here")
    parser.add_argument(
        "--warm",
        action="store_true",
        help="fit once untimed first, so that the timed fit excludes first-call imports and warm-up",
    )
    parser.add_argument("--synthetic-out", required=True)
    parser.add_argument("--result-out", required=True)
    args = parser.parse_args(argv)
    args.static_columns = [c for c in args.static.split(",") if c]
    return args


# ------------------------------------------------------------------------------------------ the sides
def side_twinforge(args, df):
    import torch

    import twinforge

    params = json.loads(args.params)
    if args.epochs is not None:
        params["epochs"] = args.epochs
    if args.max_minutes is not None:
        params["max_minutes"] = args.max_minutes

    def fit():
        model = twinforge.create("sequence", seed=args.seed, progress=False, **params)
        return model.fit(df, entity_key=args.entity_key, time_key=args.time_key, static=args.static_columns or None)

    def sample(model, n):
        return model.sample(entities=n, seed=args.seed)

    def after(model):
        if args.model_out:
            model.save(args.model_out, overwrite=True)

    return fit, sample, after, {"twinforge": twinforge.__version__, "torch": torch.__version__, "params": params}


def side_par(args, df):
    import numpy as np
    import sdv
    import torch
    from sdv.metadata import Metadata
    from sdv.sequential import PARSynthesizer

    metadata = Metadata.detect_from_dataframes({TABLE: df})
    metadata.update_column(args.entity_key, table_name=TABLE, sdtype="id")
    metadata.set_sequence_key(args.entity_key, table_name=TABLE)
    metadata.update_column(args.time_key, table_name=TABLE, sdtype="numerical")
    metadata.set_sequence_index(args.time_key, table_name=TABLE)
    extra = {"epochs": args.epochs} if args.epochs else {}

    def fit():
        np.random.seed(args.seed)  # PAR draws from numpy's and torch's global generators
        torch.manual_seed(args.seed)
        synth = PARSynthesizer(metadata, context_columns=args.static_columns, cuda=False, **extra)
        synth.fit({TABLE: df})  # SDV 2 takes a dict of tables
        return synth

    def sample(synth, n):
        np.random.seed(args.seed)
        torch.manual_seed(args.seed)
        out = synth.sample_sequences(num_sequences=n)
        return out[TABLE] if isinstance(out, dict) else out

    versions = {"sdv": sdv.__version__, "torch": torch.__version__, "epochs": args.epochs or 128}
    return fit, sample, None, versions


def side_mostlyai(args, df):
    import mostlyai.engine
    import numpy as np
    import pandas as pd
    import torch
    from mostlyai.engine import TabularARGN

    ek, tk, static = args.entity_key, args.time_key, args.static_columns
    channels = [c for c in df.columns if c not in (ek, tk, *static)]
    ordered = df.sort_values([ek, tk], kind="stable")
    ctx = ordered.groupby(ek, sort=False).first().reset_index()[[ek, *static]]
    tgt = ordered[[ek, *channels]].reset_index(drop=True)
    times = pd.to_numeric(ordered[tk])
    t0 = float(times.groupby(ordered[ek]).min().median())
    step = float(times.groupby(ordered[ek]).diff().median())
    budget = {"max_training_time": args.max_minutes / 2} if args.max_minutes else {}
    if args.epochs:
        budget["max_epochs"] = args.epochs
    work = tempfile.TemporaryDirectory(prefix="mostlyai_seq_")

    def fit():
        common = {"random_state": args.seed, "device": "cpu", **budget}
        flat = None
        if static:
            flat = TabularARGN(workspace_dir=f"{work.name}/ctx", tgt_primary_key=ek, **common)
            flat.fit(ctx)
        seq = TabularARGN(workspace_dir=f"{work.name}/tgt", tgt_context_key=ek, ctx_primary_key=ek, ctx_data=ctx,
                          **common)  # fmt: skip
        seq.fit(tgt)
        return flat, seq

    def sample(models, n):
        flat, seq = models
        new_ctx = pd.DataFrame(index=range(n)) if flat is None else flat.sample(n_samples=n).reset_index(drop=True)
        new_ctx[ek] = np.arange(n) if pd.api.types.is_integer_dtype(df[ek]) else [f"synthetic-{i}" for i in range(n)]
        rows = seq.sample(ctx_data=new_ctx[[ek, *static]])
        rows = rows.reset_index(drop=True)
        position = rows.groupby(ek, sort=False).cumcount().to_numpy()
        value = t0 + step * position
        rows[tk] = value.astype(df[tk].dtype) if pd.api.types.is_integer_dtype(df[tk]) else value
        out = rows.merge(new_ctx[[ek, *static]], on=ek, how="left")
        return out[list(df.columns)]

    def after(_):
        work.cleanup()

    versions = {"mostlyai-engine": getattr(mostlyai.engine, "__version__", "?"), "torch": torch.__version__}
    return fit, sample, after, versions


SIDES = {"twinforge": side_twinforge, "par": side_par, "mostlyai": side_mostlyai}


# ------------------------------------------------------------------------------------------ protocol
def main(argv: list[str]) -> None:
    import pandas as pd

    args = parse_args(argv)
    df = pd.read_csv(args.data)
    fit, sample, after, versions = SIDES[args.side](args, df)
    if args.warm:  # the same fit once, untimed: what a second fit in the same process costs (tested: twinforge, par)
        warm_cpu = time.process_time()
        fit()
        warm_cpu = time.process_time() - warm_cpu
    gc.collect()
    baseline = current_rss_mb()
    peak_reset = reset_peak_rss()
    start, cpu = time.perf_counter(), time.process_time()
    model = fit()
    fit_seconds = time.perf_counter() - start
    fit_cpu_seconds = time.process_time() - cpu  # robust to other jobs on the machine, unlike the wall clock
    fit_peak = peak_rss_mb()
    gc.collect()
    if peak_reset:
        reset_peak_rss()
    start = time.perf_counter()
    synthetic = sample(model, args.entities)
    sample_seconds = time.perf_counter() - start
    sample_peak = peak_rss_mb()
    if after is not None:
        after(model)
    missing = [c for c in df.columns if c not in synthetic.columns]
    if missing:
        raise RuntimeError(f"{args.side} sample lacks the columns {missing}")
    synthetic = as_real_dtypes(synthetic[list(df.columns)], df)
    synthetic.to_parquet(args.synthetic_out, index=False)
    result = {
        "side": args.side,
        "versions": {**versions, "python": platform.python_version()},
        "rows": len(df),
        "entities": int(df[args.entity_key].nunique()),
        "fit_seconds": fit_seconds,
        "fit_cpu_seconds": fit_cpu_seconds,
        "warm": args.warm,
        "first_fit_cpu_seconds": warm_cpu if args.warm else fit_cpu_seconds,
        "sample_entities": args.entities,
        "sample_rows": len(synthetic),
        "sampled_entities": int(synthetic[args.entity_key].nunique()),
        "sample_seconds": sample_seconds,
        "baseline_rss_mb": baseline,
        "peak_reset": peak_reset,
        "fit_peak_delta_mb": fit_peak - baseline,
        "sample_peak_delta_mb": sample_peak - baseline,
    }
    Path(args.result_out).write_text(json.dumps(result, indent=2))


def as_real_dtypes(synthetic, real):
    """The sample with the real table's numpy dtypes (MOSTLY AI returns pandas' nullable Float64 and string)."""
    import numpy as np
    import pandas as pd

    out = synthetic.copy()
    for c in real.columns:
        if out[c].dtype == real[c].dtype:
            continue
        if pd.api.types.is_numeric_dtype(real[c]):
            values = pd.to_numeric(out[c], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
            integral = real[c].dtype.kind in "iu" and not np.isnan(values).any()
            out[c] = values.astype(real[c].dtype) if integral else values
        else:
            out[c] = out[c].astype(object).where(out[c].notna(), None)
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
