"""Small synthetic fleets for the sequence-model tests (no torch here)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def make_fleet(n_entities: int = 40, seed: int = 0, level_scale: float = 2.0) -> pd.DataFrame:
    """A long table: per-entity level by ``site``, an AR(1) channel ``temp`` (phi 0.9), a channel ``load`` that
    follows ``temp`` (correlation ~0.95), a rare categorical ``status`` and lengths 20..34."""
    rng = np.random.default_rng(seed)
    rows = []
    for e in range(n_entities):
        site = "north" if e % 2 else "south"
        level = (4.0 if site == "north" else -4.0) + rng.normal(scale=level_scale * 0.25)
        x = rng.normal()
        for t in range(int(rng.integers(20, 35))):
            x = 0.9 * x + rng.normal(scale=0.5)
            rows.append(
                {
                    "unit": e,
                    "t": t,
                    "site": site,
                    "temp": level + x,
                    "load": 2.0 * (level + x) + rng.normal(scale=0.3),
                    "status": "fault" if rng.random() < 0.03 else "ok",
                }
            )
    return pd.DataFrame(rows)


def lag1(df: pd.DataFrame, col: str, key: str = "unit") -> float:
    """Lag-1 autocorrelation of ``col`` pooled over entities, after removing each entity's mean."""
    x = df[col] - df.groupby(key)[col].transform("mean")
    prev = x.groupby(df[key]).shift()
    ok = prev.notna()
    return float(np.corrcoef(x[ok], prev[ok])[0, 1])
