"""Forecast scores (CRPS over sample paths, MAE of the median path, Brier) and the twin benchmark harness."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from twinforge.errors import DataError, ParameterError
from twinforge.evaluate import forecast as F


def gaussian_crps(mu: float, sd: float, y: np.ndarray) -> np.ndarray:
    """Closed form (Gneiting & Raftery 2007)."""
    z = (y - mu) / sd
    cdf = 0.5 * (1 + np.array([math.erf(v / math.sqrt(2)) for v in z]))
    pdf = np.exp(-0.5 * z**2) / math.sqrt(2 * math.pi)
    return sd * (z * (2 * cdf - 1) + 2 * pdf - 1 / math.sqrt(math.pi))


def test_crps_exact_cases():
    # one path: the absolute error
    np.testing.assert_allclose(F.crps(np.array([[2.0, -1.0]]), np.array([0.5, 1.0])), [1.5, 2.0])
    # two samples 0 and 1 at y = 0: E|X - y| = 0.5, E|X - X'| = 0.5 -> 0.25; brute force for a random case
    assert F.crps(np.array([[0.0], [1.0]]), np.array([0.0]))[0] == pytest.approx(0.25)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(7, 4)), rng.normal(size=4)
    brute = np.abs(x - y).mean(0) - 0.5 * np.abs(x[:, None, :] - x[None, :, :]).mean((0, 1))
    np.testing.assert_allclose(F.crps(x, y), brute)


def test_crps_matches_the_gaussian_closed_form():
    rng = np.random.default_rng(1)
    y = np.array([-2.0, 0.0, 1.0, 5.0])
    got = F.crps(rng.normal(1.0, 2.0, size=(20_000, 4)), y)
    np.testing.assert_allclose(got, gaussian_crps(1.0, 2.0, y), rtol=0.02)


def test_crps_ignores_missing_samples_and_skips_missing_observations():
    x = np.array([[0.0, 1.0], [np.nan, 3.0], [1.0, np.nan]])
    got = F.crps(x, np.array([0.0, np.nan]))
    assert got[0] == pytest.approx(F.crps(np.array([[0.0], [1.0]]), np.array([0.0]))[0])
    assert np.isnan(got[1])
    assert np.isnan(F.crps(np.full((3, 1), np.nan), np.array([1.0]))[0])
    with pytest.raises(ParameterError, match="paths, cells"):
        F.crps(np.zeros((3, 2)), np.zeros(3))


def make_forecast(actual: pd.DataFrame, paths: int, noise: float, bias: float = 0.0, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    parts = []
    for p in range(paths):
        part = actual.copy()
        part.insert(1, "path", p)
        part["x"] = part["x"] + bias + rng.normal(0, noise, len(part)) if noise else part["x"] + bias
        parts.append(part)
    return pd.concat(parts, ignore_index=True).sample(frac=1.0, random_state=0)  # row order must not matter


@pytest.fixture
def actual() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "id": np.repeat(["a", "b", "c"], 6),
            "t": np.tile(np.arange(10, 16), 3),
            "x": rng.normal(size=18).cumsum(),
            "state": np.tile(["on", "on", "off", "on", "off", "off"], 3),
        }
    )


def test_forecast_scores_perfect_sharp_and_wide(actual):
    perfect = F.forecast_scores(make_forecast(actual, 5, 0.0), actual, entity_key="id", time_key="t")
    assert perfect["crps_scaled"] == pytest.approx(0.0, abs=1e-12) and perfect["mae_scaled"] == 0.0
    assert perfect["brier"] == 0.0 and perfect["mode_error"] == 0.0
    assert perfect["entities"] == 3 and perfect["paths"] == 5 and perfect["cells"] == 36
    assert set(perfect["per_entity"]) == {"a", "b", "c"}
    scale = {"x": 1.0}
    sharp = F.forecast_scores(make_forecast(actual, 200, 0.2), actual, entity_key="id", time_key="t", scale=scale)
    wide = F.forecast_scores(make_forecast(actual, 200, 2.0), actual, entity_key="id", time_key="t", scale=scale)
    biased = F.forecast_scores(make_forecast(actual, 200, 0.2, bias=1.0), actual, entity_key="id", time_key="t",
                               scale=scale)  # fmt: skip
    assert sharp["crps_scaled"] < wide["crps_scaled"] < 1.0
    assert sharp["crps_scaled"] < biased["crps_scaled"]
    assert biased["mae_scaled"] == pytest.approx(1.0, abs=0.05)  # the median path is off by the bias
    assert biased["channels"]["x"]["crps"] == pytest.approx(biased["crps_scaled"])  # scale 1


def test_discrete_channels_get_brier_and_mode_error(actual):
    fc = make_forecast(actual, 4, 0.0)
    flipped = fc.copy()
    flipped["state"] = flipped["state"].map({"on": "off", "off": "on"})
    bad = F.forecast_scores(flipped, actual, entity_key="id", time_key="t", channels=["state"])
    assert bad["mode_error"] == 1.0 and bad["brier"] == pytest.approx(2.0)
    assert bad["crps_scaled"] is None and bad["channels"]["state"]["kind"] == "discrete"


def test_step_and_time_alignment_on_irregular_times(actual):
    fc = make_forecast(actual, 3, 0.0)
    shifted = fc.assign(t=fc["t"] + 100)  # a forecast on its own clock: steps still line up
    by_step = F.forecast_scores(shifted, actual, entity_key="id", time_key="t")
    assert by_step["crps_scaled"] == pytest.approx(0.0, abs=1e-12) and by_step["cells"] == 36
    by_time = F.forecast_scores(fc, actual.iloc[::2], entity_key="id", time_key="t", align="time")
    assert by_time["crps_scaled"] == pytest.approx(0.0, abs=1e-12) and by_time["cells"] == 18
    # a longer forecast is cut to what happened; a shorter one scores only its steps
    short = F.forecast_scores(fc[fc["t"] < 13], actual, entity_key="id", time_key="t")
    assert short["cells"] == 3 * 3 * 2


def test_forecast_scores_bad_input(actual):
    fc = make_forecast(actual, 2, 0.0)
    with pytest.raises(DataError, match="'path'"):
        F.forecast_scores(fc.drop(columns="path"), actual, entity_key="id", time_key="t")
    with pytest.raises(DataError, match=r"does not cover.*'c'"):
        F.forecast_scores(fc[fc["id"] != "c"], actual, entity_key="id", time_key="t")
    with pytest.raises(DataError, match="paths of different lengths"):
        F.forecast_scores(fc.drop(fc.index[0]), actual, entity_key="id", time_key="t")
    with pytest.raises(ParameterError, match="align"):
        F.forecast_scores(fc, actual, entity_key="id", time_key="t", align="nearest")
    with pytest.raises(DataError, match="'y'"):
        F.forecast_scores(fc, actual, entity_key="id", time_key="t", channels=["y"])


def test_split_history():
    events = pd.DataFrame({"id": [1] * 5 + [2] * 2, "t": [4, 3, 2, 1, 0, 0, 1], "x": range(7)})
    hist, act, short = F.split_history(events, entity_key="id", time_key="t", k=2, horizon=2)
    assert hist["t"].tolist() == [0, 1] and hist["id"].tolist() == [1, 1]
    assert act["t"].tolist() == [2, 3]
    assert short == [2]
    with pytest.raises(ParameterError, match="k must be"):
        F.split_history(events, entity_key="id", time_key="t", k=0)


def fleet(n: int = 30, steps: int = 60, seed: int = 0) -> pd.DataFrame:
    """Each entity hovers around its own hidden level: an AR(1) around mu_e, mu_e spread over entities."""
    rng = np.random.default_rng(seed)
    mu = rng.normal(0, 3, n)
    x = np.empty((n, steps))
    cur = rng.normal(0, 1, n)
    for j in range(steps):
        cur = 0.7 * cur + rng.normal(0, 0.5, n)
        x[:, j] = mu + cur
    return pd.DataFrame({"unit": np.repeat(np.arange(n), steps), "t": np.tile(np.arange(steps), n), "x": x.ravel()})


def pooled(events: pd.DataFrame):
    """A 'population' forecaster that knows nothing of the entity: draws from the pooled values."""
    values = events["x"].to_numpy()

    def run(history, horizon, paths, seed):
        rng = np.random.default_rng(seed)
        t0 = history["t"].iloc[-1] + 1
        return pd.DataFrame({"unit": history["unit"].iloc[0], "path": np.repeat(np.arange(paths), horizon),
                             "t": np.tile(t0 + np.arange(horizon), paths),
                             "x": rng.choice(values, paths * horizon)})  # fmt: skip

    return run


def test_twin_benchmark_ranks_a_per_entity_model_above_the_pooled_one():
    events = fleet()
    events = pd.concat([events, pd.DataFrame({"unit": [99] * 5, "t": range(5), "x": 0.0})], ignore_index=True)
    seen = []
    methods = {"population": pooled(events), "ar1": F.ar1_forecaster(entity_key="unit", time_key="t")}
    res = F.twin_benchmark(events, methods, entity_key="unit", time_key="t", ks=(10, 25), horizon=15, paths=50,
                           progress=False, on_result=lambda r: seen.append(len(r["results"])))  # fmt: skip
    assert seen and seen[-1] == 2
    assert res["skipped"] == {"10": [99], "25": [99]}  # too short for either k: listed, not silently dropped
    for k in ("10", "25"):
        pop, ar1 = res["results"][k]["population"], res["results"][k]["ar1"]
        assert ar1["ratio_crps"] < 0.6 and ar1["ratio_mae"] < 0.8 and ar1["wins"] > 0.8
        assert ar1["scores"]["entities"] == 30 and ar1["scores"]["paths"] == 50
        assert ar1["scores"]["cells"] == 30 * 15
        assert "ratio_crps" not in pop
    again = F.twin_benchmark(events, methods, entity_key="unit", time_key="t", ks=(10,), horizon=15, paths=50,
                             progress=False)  # fmt: skip
    assert again["results"]["10"]["ar1"]["crps_scaled"] == res["results"]["10"]["ar1"]["crps_scaled"]


def test_ar1_forecaster_shapes_times_and_levels():
    h = pd.DataFrame({"unit": "u", "t": pd.date_range("2024-01-01", periods=8, freq="6h"),
                      "x": np.arange(8.0), "s": list("aabbabab"), "gap": np.nan})  # fmt: skip
    fc = F.ar1_forecaster(entity_key="unit", time_key="t")(h, 4, 3, 0)
    assert list(fc.columns) == ["unit", "path", "t", "x", "s", "gap"]
    assert len(fc) == 12 and fc["path"].tolist() == [0] * 4 + [1] * 4 + [2] * 4
    assert fc["t"].iloc[0] == pd.Timestamp("2024-01-03") and fc["t"].iloc[3] == pd.Timestamp("2024-01-03 18:00")
    assert set(fc["s"]) <= {"a", "b"} and fc["gap"].isna().all()


def test_twin_benchmark_bad_arguments():
    events = fleet(5, 20)
    with pytest.raises(ParameterError, match="methods is empty"):
        F.twin_benchmark(events, {}, entity_key="unit", time_key="t")
    with pytest.raises(DataError, match="k=30"):
        F.twin_benchmark(events, {"p": pooled(events)}, entity_key="unit", time_key="t", ks=(30,), progress=False)
    with pytest.raises(ParameterError, match="not a forecast table"):
        F.twin_benchmark(events, {"p": lambda *a: None}, entity_key="unit", time_key="t", ks=(5,), progress=False)
