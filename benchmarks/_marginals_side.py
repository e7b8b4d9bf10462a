"""The floor of bench_auto.py: every column drawn independently from its own empirical distribution.

Run with the project's Python. It keeps each column's values (missing ones included) and resamples them per
column, which reproduces every marginal and destroys every relation between columns.
"""

from __future__ import annotations

import numpy as np
from _measure import Side, run_side


def fit(df, metadata, seed):
    return df.reset_index(drop=True)


def sample(df, n, seed):
    rng = np.random.default_rng(seed)
    return df.apply(lambda s: s.iloc[rng.integers(0, len(s), n)].reset_index(drop=True))


SIDE = Side(
    name="marginals",
    versions={"numpy": np.__version__},
    detect=lambda df: None,
    fit=fit,
    sample=sample,
    metadata_dict=lambda metadata: {},
    not_learned=lambda metadata: {},
)

if __name__ == "__main__":
    run_side(SIDE)
