"""twinforge's side of a benchmark: fit and sample one model (``copula`` unless told) in a fresh process.

Run by bench_copula.py / bench_auto.py with the project's Python; see ``_measure.py`` for what is measured and
written. ``TWINFORGE_BENCH_MODEL`` names the model and ``TWINFORGE_BENCH_PARAMS`` (JSON) its parameters.
"""

from __future__ import annotations

import json
import os

from _measure import Side, run_side

import twinforge

MODEL = os.environ.get("TWINFORGE_BENCH_MODEL", "copula")
PARAMS = json.loads(os.environ.get("TWINFORGE_BENCH_PARAMS", "{}"))

# Import the model's module (scipy and all) now, so that it counts as an import, not as fitting.
twinforge.create(MODEL, seed=0)


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
    run_side(SIDE)
