"""The side-by-side comparison printed by ``twinforge demo``: a few marginals and one correlation."""

from __future__ import annotations

import numpy as np
import pandas as pd
from rich.table import Table

from twinforge.metadata import Metadata


def compare(real: pd.DataFrame, fake: pd.DataFrame, metadata: Metadata, top: int = 3) -> list[Table]:
    """Rich tables comparing ``real`` and ``fake``: numeric summaries, category shares, strongest correlation."""
    numeric = [n for n, s in metadata.columns.items() if s.kind in ("continuous", "integer") and real[n].nunique() > 2]
    categorical = [n for n, s in metadata.columns.items() if s.kind in ("categorical", "boolean")]
    tables = []

    nums = Table("column", "statistic", "real", "synthetic", title="numeric columns")
    for col in numeric[:top]:
        r, f = real[col].astype("float64"), fake[col].astype("float64")
        for stat, fn in (("mean", np.nanmean), ("std", np.nanstd), ("median", np.nanmedian)):
            nums.add_row(col, stat, f"{fn(r):,.2f}", f"{fn(f):,.2f}")
        nums.add_row(col, "missing", f"{r.isna().mean():.2%}", f"{f.isna().mean():.2%}", end_section=True)
    tables.append(nums)

    cats = Table("column", "level", "real share", "synthetic share", title="categorical columns")
    for col in categorical[:top]:
        r = real[col].value_counts(normalize=True, dropna=False)
        f = fake[col].value_counts(normalize=True, dropna=False)
        levels = list(r.index[:4])
        for i, level in enumerate(levels):
            cats.add_row(
                col, str(level), f"{r[level]:.1%}", f"{f.get(level, 0.0):.1%}", end_section=i == len(levels) - 1
            )
    tables.append(cats)

    if len(numeric) >= 2:
        corr = real[numeric].astype("float64").corr().abs().to_numpy()
        np.fill_diagonal(corr, 0)
        i, j = np.unravel_index(np.nanargmax(corr), corr.shape)
        a, b = numeric[i], numeric[j]
        pair = Table("pair", "real correlation", "synthetic correlation", title="strongest correlation")
        pair.add_row(
            f"{a} ~ {b}",
            f"{real[a].astype('float64').corr(real[b].astype('float64')):.3f}",
            f"{fake[a].astype('float64').corr(fake[b].astype('float64')):.3f}",
        )
        tables.append(pair)
    return tables
