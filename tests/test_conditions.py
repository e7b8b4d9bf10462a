"""The conditional-sampling plumbing every conditional model shares: parsing, translation, chunking, checks.

A tiny model that honours requests by drawing each column independently stands in for a real one, so these
tests pin the base class and ``_request.py`` down whatever the models do.
"""

import numpy as np
import pandas as pd
import pytest

import twinforge
from twinforge import ParameterError
from twinforge.models import CHUNK_ROWS, Synthesizer
from twinforge.models._request import largest_remainder

from .conftest import make_mixed


class Marginals(Synthesizer):
    """Independent empirical marginals that honour a SampleRequest (test double, not registered)."""

    name = "marginals-test"
    supports_conditions = True

    def _fit(self, arrays, rng):
        self.values_ = arrays

    def _sample(self, n, rng, request=None):
        out = {}
        for col, values in self.values_.items():
            t = self.transformer_.transforms_[col]
            pool = values
            if request is not None and col in request.allowed:
                pool = request.allowed[col]
            draw = rng.choice(pool, n)
            if request is not None and col in request.ranges:
                lo, hi = request.ranges[col]  # already within the fitted bounds
                draw = rng.uniform(lo, hi, n)
                if t.kind == "datetime":
                    draw = np.clip(np.rint(draw), lo, hi)
            if request is not None and col in request.known:
                mask = request.known_mask[col]
                draw = np.where(mask, request.known[col], draw).astype(values.dtype)
            out[col] = draw
        return out


@pytest.fixture(scope="module")
def model():
    return Marginals(seed=0).fit(make_mixed(600))


def test_equality_set_range_and_missing_conditions_are_honoured(model):
    out = model.sample(
        500,
        seed=1,
        conditions={
            "city": "Oslo",
            "tier": ["gold", "silver"],
            "age": (30.5, 40.2),
            "income": None,
            "joined": ("2020-06-01", "2021-01-31"),
        },
    )
    assert (out["city"] == "Oslo").all()
    assert set(out["tier"]) == {"gold", "silver"}
    assert out["age"].between(31, 40).all() and out["age"].dtype == "int64"
    assert out["income"].isna().all()
    assert out["joined"].between(pd.Timestamp("2020-06-01"), pd.Timestamp("2021-01-31")).all()


def test_numeric_equality_and_open_ranges(model):
    out = model.sample(
        300,
        seed=2,
        conditions={"age": 44, "income": (None, 2500.0), "visits": (4, None), "joined": (None, "2021-01-01")},
    )
    assert (out["joined"] <= pd.Timestamp("2021-01-01")).all()
    assert (out["age"] == 44).all()
    assert (out["income"] <= 2500).all() and (out["income"].round(2) == out["income"]).all()
    assert (out["visits"] >= 4).all()


def test_rebalance_gives_the_exact_mix_across_chunks(model):
    n = CHUNK_ROWS + 1001
    out = model.sample(n, seed=3, rebalance={"tier": {"gold": 0.5, "silver": 0.3, "bronze": 0.2}})
    counts = out["tier"].value_counts()
    assert counts.sum() == n
    assert counts.to_dict() == dict(
        zip(["gold", "silver", "bronze"], largest_remainder(np.array([0.5, 0.3, 0.2]), n), strict=True)
    )
    again = model.sample(n, seed=3, rebalance={"tier": {"gold": 0.5, "silver": 0.3, "bronze": 0.2}})
    pd.testing.assert_frame_equal(out, again)


def test_seed_data_keeps_given_cells_and_fills_the_rest(model):
    seed = pd.DataFrame({"city": ["Rome", None, "Lima"], "age": [20, 55, None], "email": ["a@b.org", None, None]})
    out = model.sample(seed_data=seed, seed=4)
    assert len(out) == 3 and list(out.columns) == list(make_mixed(5).columns)
    assert out.loc[[0, 2], "city"].tolist() == ["Rome", "Lima"]
    assert out.loc[[0, 1], "age"].tolist() == [20, 55]
    assert out.loc[0, "email"] == "a@b.org" and isinstance(out.loc[1, "email"], str)


def test_seed_data_of_generated_columns_alone_is_kept(model):
    """Seed data that gives only ids or PII (no learned column) keeps them too."""
    out = model.sample(seed_data=pd.DataFrame({"customer_id": [1007, 1003, 1100]}), seed=1)
    assert out["customer_id"].tolist() == [1007, 1003, 1100]
    out = model.sample(seed_data=pd.DataFrame({"email": ["a@b.org", None]}), seed=1)
    assert out.loc[0, "email"] == "a@b.org" and isinstance(out.loc[1, "email"], str)


def test_seed_data_ids_made_up_for_missing_cells_repeat_no_given_id(model):
    out = model.sample(seed_data=pd.DataFrame({"customer_id": [1000, None, 1001, None], "age": [30, 40, 50, 60]}))
    assert out["customer_id"].is_unique and out["customer_id"].notna().all()
    assert out.loc[[0, 2], "customer_id"].tolist() == [1000, 1001]


def test_impute_fills_only_missing_cells(model):
    real = make_mixed(200, seed=9)
    real.index = pd.RangeIndex(1000, 1200)
    filled = model.impute(real, seed=5)
    assert filled.index.equals(real.index) and list(filled.columns) == list(real.columns)
    for col in ("income", "visits", "city"):
        assert real[col].isna().any()
        assert filled[col].notna().all(), col
        kept = real[col].notna()
        pd.testing.assert_series_equal(filled.loc[kept, col], real.loc[kept, col], check_dtype=False)
    pd.testing.assert_series_equal(filled["email"], real["email"])


def test_impute_keeps_missing_cells_of_generated_columns(model):
    """Ids, free text and PII are not learned: a missing id is not made up (it could repeat a given one)."""
    real = make_mixed(6, seed=9)
    real["customer_id"] = [1000.0, np.nan, 1001.0, 1002.0, np.nan, 1003.0]
    real.loc[[0, 3], "email"] = None
    real.loc[2, "age"] = None
    filled = model.impute(real, seed=5)
    pd.testing.assert_series_equal(filled["customer_id"], real["customer_id"])
    pd.testing.assert_series_equal(filled["email"], real["email"])
    assert filled["age"].notna().all()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"conditions": {"nosuch": 1}}, "no column named 'nosuch'"),
        ({"conditions": {"city": "Paris"}}, "'Paris' is not a level"),
        ({"conditions": {"age": (200, 300)}}, "no value the column can hold"),
        ({"conditions": {"age": (40, 30)}}, r"the range \(40, 30\) has its low end above its high end"),
        ({"conditions": {"joined": ("2021-06-01", "2021-01-01")}}, "low end above its high end"),
        ({"conditions": {"age": 200}}, "outside the fitted values"),
        ({"conditions": {"age": np.int64(200)}}, r"200 lies outside"),
        ({"conditions": {"income": 2000.123}}, "more precise"),
        ({"conditions": {"age": None}}, "no missing values in training"),
        ({"conditions": {"email": "x@y.z"}}, "generated, not learned"),
        ({"conditions": {"city": []}}, "empty set"),
        ({"conditions": {"city": (1, 2)}}, "range"),
        ({"conditions": {"joined": "someday"}}, "cannot read 'someday' as a timestamp"),
        ({"rebalance": {"age": {1: 1.0}}}, "only categorical and boolean"),
        ({"rebalance": {"tier": {"gold": 0.7, "silver": 0.7}}}, "add up to 1"),
        ({"conditions": {"city": "Oslo"}, "rebalance": {"city": {"Oslo": 1.0}}}, "already fixed"),
        ({"seed_data": pd.DataFrame({"zzz": [1]})}, "not fitted on"),
        ({"seed_data": pd.DataFrame([[30, 31]], columns=["age", "age"])}, r"\['age'\] more than once"),
        ({"seed_data": pd.DataFrame({"age": [1, 2]}), "n": 5}, "omit n or make them agree"),
        ({"temperature": 0}, "temperature must be a positive number"),
    ],
)
def test_bad_conditions_name_the_problem(model, kwargs, match):
    n = kwargs.pop("n", 10 if "seed_data" not in kwargs else None)
    with pytest.raises(ParameterError, match=match):
        model.sample(n, **kwargs)


def test_models_without_condition_support_say_which_do():
    copula = twinforge.create("copula", seed=0).fit(make_mixed(100))
    with pytest.raises(ParameterError, match="does not support conditions"):
        copula.sample(10, conditions={"city": "Oslo"})
    with pytest.raises(ParameterError, match="does not support"):
        copula.impute(make_mixed(10))
    assert len(copula.sample(10, temperature=1.0)) == 10


def test_a_model_that_breaks_a_condition_is_caught():
    class Liar(Marginals):
        def _sample(self, n, rng, request=None):
            out = super()._sample(n, rng, None)
            return out

    liar = Liar(seed=0).fit(make_mixed(100))
    with pytest.raises(RuntimeError, match="column 'city'"):
        liar.sample(50, conditions={"city": "Lima"})


def test_largest_remainder_adds_up():
    for n in (1, 7, 100, 12345):
        counts = largest_remainder(np.array([0.5, 0.25, 0.25]), n)
        assert counts.sum() == n and np.all(np.abs(counts - np.array([0.5, 0.25, 0.25]) * n) < 1)
