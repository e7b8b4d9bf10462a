"""twinforge's side of a benchmark (bench_copula, bench_neural, bench_auto): fit and sample one model.

Run by the benchmarks with the project's Python; see ``_measure.py`` for what is measured and written. The model
is ``TWINFORGE_BENCH_MODEL`` (default ``copula``) with parameters ``TWINFORGE_BENCH_PARAMS`` (JSON), or, on the
command line before the measurement's own options, ``--model NAME`` and ``--max-minutes M`` (a neural model's
training budget). Models with a progress bar train without it here.
"""

from __future__ import annotations

import json
import os
import sys

from _measure import Side, run_side

import twinforge

MODEL = os.environ.get("TWINFORGE_BENCH_MODEL", "copula")
PARAMS: dict = json.loads(os.environ.get("TWINFORGE_BENCH_PARAMS", "{}"))


def pop_options(argv: list[str]) -> list[str]:
    """Read ``--model`` and ``--max-minutes`` into MODEL and PARAMS; return the measurement's arguments."""
    global MODEL
    rest = list(argv)
    if "--model" in rest:
        i = rest.index("--model")
        MODEL = rest[i + 1]
        del rest[i : i + 2]
    if "progress" in twinforge.models.get_class(MODEL)._param_names():
        PARAMS["progress"] = False
    if "--max-minutes" in rest:
        i = rest.index("--max-minutes")
        PARAMS["max_minutes"] = float(rest[i + 1])
        del rest[i : i + 2]
    return rest


def fit(df, metadata, seed):
    return twinforge.create(MODEL, seed=seed, **PARAMS).fit(df, metadata)


def sample(model, n, seed):
    return model.sample(n, seed=seed)


def not_learned(metadata):
    """Columns twinforge generates without learning them: ids, free text and PII."""
    return {
        name: spec.kind + (f" ({spec.pii_type})" if spec.pii_type else "")
        for name, spec in metadata.columns.items()
        if name not in metadata.learned_columns
    }


SIDE = Side(
    name="twinforge",
    versions={"twinforge": twinforge.__version__, "model": MODEL},
    detect=twinforge.Metadata.detect,
    fit=fit,
    sample=sample,
    metadata_dict=lambda metadata: metadata.to_dict(),
    not_learned=not_learned,
)

if __name__ == "__main__":
    args = pop_options(sys.argv[1:])
    SIDE.versions["model"] = MODEL
    # Import the model's module (scipy, torch and all) now, so that it counts as an import, not as fitting.
    twinforge.create(MODEL, seed=0, **PARAMS)
    run_side(SIDE, args)
