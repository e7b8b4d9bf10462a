"""Utility: TSTR close to TRTR for data from the same process, far below it for noise."""

from __future__ import annotations

import numpy as np
import pytest

from twinforge.errors import DataError, ParameterError
from twinforge.evaluate import utility

from ._evaluate_data import make_people, shuffle_columns


@pytest.fixture(scope="module")
def tables():
    return make_people(700, seed=0), make_people(700, seed=1), make_people(700, seed=2)


def test_tstr_matches_trtr_for_the_same_distribution_and_drops_for_noise(tables):
    real, holdout, fresh = tables
    good = utility.utility(real, fresh, holdout, target="bought")
    assert good["task"] == "classification" and good["metric"] == "roc_auc"
    assert good["positive_class"] == "yes" if (real["bought"] == "yes").mean() < 0.5 else "no"
    assert good["trtr"] > 0.75
    assert good["ratio"] > 0.93
    for model in ("gradient_boosting", "linear"):
        assert set(good["models"][model]) >= {"trtr", "tstr", "augmented", "ratio", "augmentation"}
        assert set(good["models"][model]["tstr"]) == {"roc_auc", "f1"}
    noise = utility.utility(real, shuffle_columns(fresh), holdout, target="bought")
    assert noise["tstr"] < 0.62 < good["tstr"]
    assert noise["trtr"] == pytest.approx(good["trtr"])  # the reference does not depend on synthetic


def test_regression_target(tables):
    real, holdout, fresh = tables
    good = utility.utility(real, fresh, holdout, target="spend")
    assert good["task"] == "regression" and good["metric"] == "r2"
    assert good["trtr"] > 0.6 and good["ratio"] > 0.9
    assert set(good["models"]["linear"]["tstr"]) == {"r2"}
    noise = utility.utility(real, shuffle_columns(fresh), holdout, target="spend")
    assert noise["tstr"] < 0.1


def test_multiclass_target_uses_macro_one_vs_rest_auc(tables):
    real, holdout, fresh = tables
    result = utility.utility(real, fresh, holdout, target="region")
    assert result["task"] == "classification" and "positive_class" not in result
    assert 0.5 < result["trtr"] <= 1.0  # region is related to membership only


def test_missing_target_rows_are_left_out_and_reported(tables):
    real, holdout, fresh = tables
    result = utility.utility(real, fresh, holdout, target="income")
    missing = int(real["income"].isna().sum())
    assert result["rows"]["real"] == len(real) - missing
    assert any(f"{missing:,} real row(s) with a missing target 'income'" in n for n in result["notes"])


def test_constant_synthetic_target_does_not_crash(tables):
    real, holdout, fresh = tables
    fresh = fresh.copy()
    fresh["bought"] = "no"
    result = utility.utility(real, fresh, holdout, target="bought")
    assert result["tstr"] == 0.5
    assert any("one class" in n for n in result["notes"])


def test_augmentation_adds_synthetic_rows(tables):
    real, holdout, fresh = tables
    result = utility.utility(real, fresh, holdout, target="bought")
    assert result["augmented_synthetic_rows"] == len(real)
    assert result["augmentation"] == pytest.approx(
        result["models"]["gradient_boosting"]["augmented"]["roc_auc"] - result["trtr"]
    )


@pytest.mark.parametrize(
    ("target", "error", "needle"),
    [
        ("nope", ParameterError, "target 'nope' is not a column of real"),
        ("customer_id", ParameterError, "generated id column"),
        ("signup", ParameterError, "datetime"),
        ("flat", DataError, "target 'flat' is constant in real"),
    ],
)
def test_bad_targets_raise_one_clear_error(tables, target, error, needle):
    real, holdout, fresh = (t.assign(flat=1) for t in tables)
    with pytest.raises(error, match=needle):
        utility.utility(real, fresh, holdout, target=target)


def test_seeded_and_deterministic(tables):
    real, holdout, fresh = tables
    a = utility.utility(real, fresh, holdout, target="bought", seed=3, train_cap=300)
    b = utility.utility(real, fresh, holdout, target="bought", seed=3, train_cap=300)
    assert a == b
    assert np.isfinite(a["tstr"])
