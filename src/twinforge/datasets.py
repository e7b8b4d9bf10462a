"""Data shipped inside the package, so the demo and the docs run on a fresh machine."""

from __future__ import annotations

from importlib import resources

import pandas as pd

__all__ = ["load_demo"]


def load_demo() -> pd.DataFrame:
    """The telco churn table (7,043 x 20, MIT licence; see ``twinforge/data/README.md``).

    Examples
    --------
    >>> import twinforge
    >>> twinforge.load_demo().shape
    (7043, 20)
    """
    with resources.as_file(resources.files("twinforge") / "data" / "churn.csv.gz") as path:
        return pd.read_csv(path)
