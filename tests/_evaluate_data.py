"""Small tables for the evaluation tests: one generating process, so fresh draws are "perfect" synthetic data."""

from __future__ import annotations

import numpy as np
import pandas as pd


def make_people(n: int = 600, seed: int = 0) -> pd.DataFrame:
    """Every learned kind plus an id and an email, missing values, strong relations and two targets.

    ``age``~``income`` correlate (r ~ 0.9); ``bought`` (yes/no) depends on age, membership and region;
    ``spend`` (a number) on income and membership.
    """
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 80, n)
    income = np.round(800 + 45 * age + rng.normal(0, 250, n), 2)
    region = rng.choice(["north", "south", "east", "west"], n, p=[0.4, 0.3, 0.2, 0.1]).astype(object)
    member = rng.random(n) < np.where(region == "north", 0.7, 0.3)
    logit = -5 + 0.09 * age + 1.5 * member + 0.8 * (region == "south")
    bought = np.where(rng.random(n) < 1 / (1 + np.exp(-logit)), "yes", "no")
    spend = np.round(20 + 0.02 * income + 15 * member + rng.normal(0, 5, n), 2)
    income[rng.random(n) < 0.08] = np.nan
    region[rng.random(n) < 0.04] = None
    return pd.DataFrame(
        {
            "customer_id": np.arange(10_000, 10_000 + n) + seed * n,
            "age": age,
            "income": income,
            "region": region,
            "member": member,
            "signup": pd.Timestamp("2019-01-01") + pd.to_timedelta(rng.integers(0, 1500, n), unit="D"),
            "bought": bought,
            "spend": spend,
            "email": [f"person{i}@example.org" for i in rng.permutation(n) + seed * n],
        }
    )


def shuffle_columns(df: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """Each column permuted on its own: exact marginals, no relation between columns."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame({c: df[c].to_numpy()[rng.permutation(len(df))] for c in df.columns})
