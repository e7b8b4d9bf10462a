"""Privacy: a copy of the training rows is caught; fresh draws from the same process look safe."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import twinforge
from twinforge.evaluate import privacy
from twinforge.evaluate._data import MixedEncoder, prepare

from ._evaluate_data import make_people


@pytest.fixture(scope="module")
def tables():
    return make_people(600, seed=0), make_people(600, seed=1), make_people(600, seed=2)


def test_copy_of_training_rows_is_caught_by_dcr_exact_copies_and_mia(tables):
    train, holdout, _ = tables
    leak = train.sample(frac=1.0, random_state=0)
    d = privacy.dcr(train, leak, holdout)
    assert d["dcr_share"] == 1.0 and d["dcr_share_ideal"] == 0.5
    assert d["dcr"]["synthetic"]["p50"] == 0.0 < d["dcr"]["holdout"]["p5"]
    assert d["nndr"]["synthetic"]["p50"] == 0.0
    assert privacy.exact_copy_rate(train, leak, holdout)["synthetic"] == 1.0
    mia = privacy.membership_inference(train, leak, holdout)
    assert mia["attacks"]["distance"] > 0.95 and mia["auc"] == max(v for v in mia["attacks"].values() if v)


def test_fresh_draws_score_near_ideal(tables):
    train, holdout, fresh = tables
    d = privacy.dcr(train, fresh, holdout)
    assert abs(d["dcr_share"] - d["dcr_share_ideal"]) < 0.07
    copies = privacy.exact_copy_rate(train, fresh, holdout)
    assert copies["synthetic"] == 0.0 and copies["holdout"] == 0.0
    mia = privacy.membership_inference(train, fresh, holdout)
    assert mia["auc"] < 0.6
    assert mia["attacks"]["density"] is not None and 0.35 < mia["attacks"]["density"] < 0.65
    assert mia["members"] == mia["non_members"] == 600 and mia["reference_rows"] == 300
    assert len(mia["density_folds"]) == 2 and 0 < mia["auc_se"] < 0.03


def test_dcr_share_ideal_follows_the_sizes(tables):
    train, holdout, fresh = tables
    d = privacy.dcr(train, fresh, holdout.iloc[:200])
    assert d["dcr_share_ideal"] == pytest.approx(600 / 800)
    assert abs(d["dcr_share"] - 0.75) < 0.08


def test_partial_copies_are_counted_over_learned_columns(tables):
    train, holdout, fresh = tables
    half = pd.concat([train.iloc[:300], fresh.iloc[:300]], ignore_index=True)
    half["customer_id"] = np.arange(len(half))  # ids and emails are generated: they do not make a row new
    assert privacy.exact_copy_rate(train, half, holdout)["synthetic"] == 0.5
    d = privacy.dcr(train, half, holdout)
    assert 0.7 < d["dcr_share"] < 0.8


def test_distance_encoding_by_hand():
    real = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0, 4.0], "c": ["a", "b", "a", "b", "c"]})
    prep = prepare(real, real)
    enc = MixedEncoder(prep)
    x = enc.transform(prep.values["real"])
    iqr = 3.0 - 1.0
    # rows 0 and 1: |0 - 1| / IQR in x, and the levels differ (distance 1)
    assert np.linalg.norm(x[0] - x[1]) == pytest.approx(np.sqrt((1 / iqr) ** 2 + 1))
    # rows 0 and 2: same level
    assert np.linalg.norm(x[0] - x[2]) == pytest.approx(2 / iqr)


def test_missing_values_are_a_distance_of_their_own():
    real = pd.DataFrame({"x": [0.0, 1.0, 2.0, np.nan, 3.0, 4.0]})
    prep = prepare(real, real)
    x = MixedEncoder(prep).transform(prep.values["real"])
    # a missing value sits at the median (2.0) plus 1 for "missing"
    assert np.linalg.norm(x[3] - x[2]) == pytest.approx(1.0)


def test_attribute_inference_gap_is_larger_for_a_copy(tables):
    train, holdout, fresh = tables
    leak = privacy.attribute_inference(train, train.copy(), ["bought", "income"], holdout)
    safe = privacy.attribute_inference(train, fresh, ["bought", "income"], holdout)
    by = {a["column"]: a for a in leak}, {a["column"]: a for a in safe}
    assert by[0]["bought"]["metric"] == "accuracy" and by[0]["income"]["metric"] == "r2"
    assert by[0]["bought"]["gap"] > by[1]["bought"]["gap"] + 0.05
    assert abs(by[1]["bought"]["gap"]) < 0.1
    # rows whose sensitive value is missing cannot be scored: the count used says so
    assert by[1]["income"]["rows"]["train"] == train["income"].notna().sum()
    assert by[1]["bought"]["train_baseline"] == pytest.approx((train["bought"] == "no").mean(), abs=0.01) or by[1][
        "bought"
    ]["train_baseline"] == pytest.approx((train["bought"] == "yes").mean(), abs=0.01)


def test_without_holdout_only_the_holdout_free_metrics_are_computed(tables):
    train, _, fresh = tables
    d = privacy.dcr(train, fresh)
    assert "dcr_share" not in d and "holdout" not in d["dcr"]
    assert privacy.exact_copy_rate(train, fresh)["holdout"] is None
    with pytest.raises(twinforge.ParameterError, match="needs a holdout"):
        privacy.membership_inference(train, fresh, None)


def test_sensitive_column_must_be_learned(tables):
    train, holdout, fresh = tables
    with pytest.raises(twinforge.ParameterError, match="sensitive column 'email' is a generated pii"):
        privacy.attribute_inference(train, fresh, ["email"], holdout)


def test_subsampling_never_hides_exact_copies():
    train, holdout = make_people(3000, seed=0), make_people(3000, seed=1)
    leak = train.sample(frac=1.0, random_state=0)
    report = twinforge.evaluate(
        train, leak, holdout, parts=["privacy"], caps={"distance_rows": 300, "attack_rows": 300}, progress=False
    )
    p = report.privacy
    assert p["distance_rows"] == {"real": 300, "synthetic": 300, "holdout": 300}
    assert p["dcr_share"] == 1.0 and p["dcr"]["synthetic"]["p50"] == 0.0
    assert p["mia"]["attacks"]["distance"] > 0.95


def test_subsamples_keep_the_ratio_of_train_to_holdout():
    train, holdout = make_people(2000, seed=0), make_people(500, seed=1)
    d = privacy.dcr(train, make_people(2000, seed=2), holdout, cap=400)
    assert d["rows"] == {"real": 400, "synthetic": 400, "holdout": 100}
    assert d["dcr_share_ideal"] == pytest.approx(2000 / 2500)


def test_the_density_attack_survives_a_far_off_synthetic_table():
    """A DP model at a small budget can put a column at 1e9 where the real one is near 0: the mixture densities
    once failed there ("ill-defined empirical covariance") and took the whole evaluation down."""
    rng = np.random.default_rng(0)

    def table(n, scale=1.0):
        return pd.DataFrame({c: rng.normal(size=n) for c in "abcd"}).assign(a=lambda d: d["a"] * scale)

    result = privacy.membership_inference(table(300), table(600, scale=1e9), table(200))
    assert result["attacks"]["density"] is not None and 0.0 <= result["auc"] <= 1.0


def test_every_training_row_is_a_member_and_the_standard_error_falls():
    """An AUC does not depend on the share of members: all training rows are scored, which lowers its variance."""
    train, holdout, fresh = make_people(2000, seed=0), make_people(300, seed=1), make_people(2000, seed=2)
    prep = prepare(train, fresh, holdout)
    mia = privacy._membership(prep, np.random.default_rng(0), 5000)
    old = privacy._membership(prep, np.random.default_rng(0), 5000, balanced=True)
    assert (mia["members"], mia["non_members"]) == (2000, 300) and old["members"] == old["non_members"] == 300
    assert mia["auc_se"] < 0.85 * old["auc_se"] and mia["auc"] < 0.6
    assert mia["auc_se"] == pytest.approx(privacy._auc_se(mia["auc"], 2000, 300))
    assert len(mia["density_folds"]) == 2 and mia["attacks"]["density"] is not None
    capped = privacy._membership(prep, np.random.default_rng(0), 500)
    assert (capped["members"], capped["non_members"]) == (500, 300)
    leak = prepare(train, train.sample(frac=1.0, random_state=0), holdout)
    assert privacy._membership(leak, np.random.default_rng(0), 5000)["attacks"]["distance"] > 0.95
