from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

# The tests' networks are tiny and the machine is shared: one torch thread is faster than two fighting for cores.
# Set before torch is imported (it reads the variable once); a user's own setting wins.
os.environ.setdefault("OMP_NUM_THREADS", "1")

DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"


@pytest.fixture
def datasets_dir() -> Path:
    """../shared/datasets, or a clean skip where it is absent (a user's machine)."""
    if not DATASETS.is_dir():
        pytest.skip("../shared/datasets is not present on this machine")
    return DATASETS


TIERS = ["bronze", "silver", "gold"]


def make_mixed(n: int = 400, seed: int = 0) -> pd.DataFrame:
    """A small table with every column kind, missing values and a strong correlation."""
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 90, n)
    income = np.round(1000 + 40 * age + rng.normal(0, 150, n), 2)
    income[rng.random(n) < 0.1] = np.nan
    city = rng.choice(["Oslo", "Rome", "Lima", "Pune"], n, p=[0.5, 0.3, 0.15, 0.05]).astype(object)
    city[rng.random(n) < 0.05] = np.nan
    return pd.DataFrame(
        {
            "customer_id": np.arange(1000, 1000 + n),
            "age": age,
            "income": income,
            "visits": pd.array(np.where(rng.random(n) < 0.1, None, rng.poisson(3, n)), dtype="Int64"),
            "city": city,
            "tier": pd.Categorical(
                rng.choice(["gold", "silver", "bronze"], n), categories=["bronze", "silver", "gold"]
            ),
            "active": rng.random(n) < 0.7,
            "joined": pd.to_datetime("2020-01-01") + pd.to_timedelta(rng.integers(0, 1000, n), unit="D"),
            "email": [f"user{i}@example.org" for i in rng.permutation(n)],
        }
    )


@pytest.fixture
def mixed() -> pd.DataFrame:
    return make_mixed()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under pytest-xdist (``-n auto --dist loadgroup``) the Flower deployments run one after another on one
    worker: each starts a SuperLink and SuperNodes, and two at once would only fight for the cores."""
    for item in items:
        if item.get_closest_marker("deploy") is not None:
            item.add_marker(pytest.mark.xdist_group("flower-deploy"))
