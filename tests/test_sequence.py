"""The sequence model: data checks, population sampling, twins, scenarios, save/load."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest

import twinforge
from twinforge import DataError, NotFittedError, ParameterError
from twinforge.sequences import Twin, split_events

from ._sequence_data import lag1, make_fleet

FAST = {"epochs": 15, "hidden": 32, "static_epochs": 3, "progress": False}


@pytest.fixture(scope="module")
def fleet() -> pd.DataFrame:
    return make_fleet()


@pytest.fixture(scope="module")
def model(fleet):
    return twinforge.create("sequence", seed=0, **FAST).fit(fleet, entity_key="unit", time_key="t")


def _distinctive_entity(steps: int = 40, seed: int = 5) -> pd.DataFrame:
    """A north unit far above the fleet (level 8) and rising (slope 0.15 per step)."""
    rng = np.random.default_rng(seed)
    x, rows = 0.0, []
    for t in range(steps):
        x = 0.9 * x + rng.normal(scale=0.5)
        level = 8.0 + 0.15 * t + x
        rows.append({"unit": 999, "t": t, "site": "north", "temp": level, "load": 2 * level, "status": "ok"})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------ population
def test_sample_is_a_long_table_with_new_entities_in_time_order(model, fleet):
    out = model.sample(entities=12, seed=1)
    assert list(out.columns) == list(fleet.columns)
    assert out["unit"].nunique() == 12
    assert (out.groupby("unit")["t"].diff().dropna() > 0).all()
    assert (out.groupby("unit")["site"].nunique() == 1).all()
    assert out["t"].dtype == fleet["t"].dtype and out["temp"].dtype == "float64"
    assert set(out["status"]) <= {"ok", "fault"}
    lengths = out.groupby("unit").size()
    assert lengths.between(15, 40).all()  # lengths learned from 20..34
    assert model.layout_["static_columns"] == ["site"]


def test_sample_is_reproducible(model):
    pd.testing.assert_frame_equal(model.sample(entities=5, seed=3), model.sample(entities=5, seed=3))
    assert not model.sample(entities=5, seed=3).equals(model.sample(entities=5, seed=4))


def test_autocorrelation_survives(model, fleet):
    out = model.sample(entities=40, seed=2)
    real, synthetic = lag1(fleet, "temp"), lag1(out, "temp")
    assert real > 0.6
    assert synthetic > 0.5, synthetic
    shuffled = out.assign(temp=out.groupby("unit")["temp"].transform(lambda s: s.sample(frac=1, random_state=0).values))
    assert abs(lag1(shuffled, "temp")) < 0.25  # the check would catch a model that forgets time order


def test_cross_channel_correlation_survives(model):
    out = model.sample(entities=40, seed=2)
    centred = out[["temp", "load"]] - out.groupby("unit")[["temp", "load"]].transform("mean")
    assert centred.corr().iloc[0, 1] > 0.8


def test_static_condition_is_honoured_and_shapes_the_channels(model):
    north = model.sample(entities=10, seed=1, conditions={"site": "north"})
    south = model.sample(entities=10, seed=1, conditions={"site": "south"})
    assert set(north["site"]) == {"north"} and set(south["site"]) == {"south"}
    assert north["temp"].mean() > 1.5 and south["temp"].mean() < -1.5


def test_conditions_on_a_channel_are_refused(model):
    with pytest.raises(ParameterError, match="static attributes"):
        model.sample(entities=3, conditions={"temp": 1.0})


def test_static_table_datetimes_irregular_gaps_and_missing_values():
    rng = np.random.default_rng(1)
    rows, static = [], []
    for e in range(16):
        kind = "a" if e % 2 else "b"
        static.append({"id": f"u{e}", "kind": kind, "age": float(20 + e)})
        time = pd.Timestamp("2024-01-01") + pd.Timedelta(hours=int(rng.integers(0, 48)))
        for _ in range(int(rng.integers(6, 14))):
            time += pd.Timedelta(hours=int(rng.choice([1, 2, 6])))
            value = rng.normal(5 if kind == "a" else 0)
            rows.append({"id": f"u{e}", "when": time, "v": np.nan if rng.random() < 0.1 else value})
    events, static = pd.DataFrame(rows), pd.DataFrame(static)
    model = twinforge.create("sequence", seed=0, epochs=3, hidden=16, static_epochs=2, progress=False)
    model.fit(events, entity_key="id", time_key="when", static=static)
    out = model.sample(entities=6, seed=0)
    assert list(out.columns) == ["id", "when", "kind", "age", "v"]
    assert pd.api.types.is_datetime64_any_dtype(out["when"])
    assert (out.groupby("id")["when"].diff().dropna() > pd.Timedelta(0)).all()
    gaps = set(out.groupby("id")["when"].diff().dropna().dt.total_seconds() / 3600)
    assert gaps <= {1.0, 2.0, 6.0}  # few distinct gaps are learned as categories
    assert out["id"].str.startswith("synthetic-").all()
    history = events[events["id"] == "u3"].merge(static, on="id")
    forecast = model.personalize(history, epochs=3, seed=0, progress=False).forecast(4, paths=3, seed=0)
    assert list(forecast.columns) == ["id", "path", "when", "v"] and (forecast["id"] == "u3").all()
    assert (forecast["when"] > history["when"].max()).all()
    assert (forecast.groupby("path")["when"].diff().dropna() > pd.Timedelta(0)).all()


def test_timezone_aware_times_keep_their_zone_in_samples_and_forecasts(fleet):
    start = pd.Timestamp("2024-03-30 12:00", tz="Europe/Oslo")  # a daylight-saving change falls inside
    events = fleet.assign(t=start + pd.to_timedelta(fleet["t"] * 6, unit="h"))
    model = twinforge.create("sequence", seed=0, epochs=2, hidden=16, static_epochs=2, progress=False)
    model.fit(events, entity_key="unit", time_key="t")
    out = model.sample(entities=3, seed=0)  # was a TypeError (tz-aware to naive astype)
    assert str(out["t"].dt.tz) == "Europe/Oslo"
    assert (out.groupby("unit")["t"].diff().dropna() > pd.Timedelta(0)).all()
    history = events[events["unit"] == 3].head(8)
    forecast = model.personalize(history, seed=0).forecast(3, paths=2, seed=0)
    assert str(forecast["t"].dt.tz) == "Europe/Oslo" and (forecast["t"] > history["t"].max()).all()


def test_the_static_model_stops_at_its_first_epoch_without_a_better_validation_loss(model):
    # one row per entity is a small table: it is memorised after an epoch or two, and further epochs only ran for
    # early stopping to restore the best weights
    info = model.static_model_.train_info_
    losses = [h["validation"] for h in info["history"]]
    stop = next((i for i in range(1, len(losses)) if losses[i] >= min(losses[:i]) - 1e-6), len(losses) - 1)
    assert stop < 2, f"the test needs an epoch without improvement before the last: {losses}"
    assert info["epochs"] == stop + 1 and info["stopped"] == "early_stopping"


def test_static_columns_are_detected_or_declared(fleet):
    data = split_events(fleet, "unit", "t")
    assert data.static_columns == ["site"] and data.channels == ["temp", "load", "status"]
    declared = split_events(fleet, "unit", "t", static=["site"])
    assert declared.static_columns == ["site"]
    with pytest.raises(DataError, match="vary within an entity"):
        split_events(fleet, "unit", "t", static=["temp"])


# ------------------------------------------------------------------------------------------ errors
def _errors_fleet() -> pd.DataFrame:
    return pd.DataFrame({"unit": [1, 1, 1, 2, 2], "t": [0, 1, 2, 0, 1], "v": [1.0, 2, 3, 4, 5]})


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        (lambda d: d.assign(t=[0, 1, 1, 0, 1]), DataError, "share an"),
        (lambda d: d.assign(t=[0, 2, 1, 0, 1]), DataError, "not in time order"),
        (lambda d: d.assign(t=pd.Series([0, 1, "2024-01-01", 0, 1], dtype=object)), DataError, "mixes types"),
        (lambda d: d.assign(t=[0, 1, np.nan, 0, 1]), DataError, "missing values"),
    ],
    ids=["duplicate", "unsorted", "mixed-type", "missing-time"],
)
def test_bad_time_structure_is_one_clear_error(change, error, match):
    model = twinforge.create("sequence", seed=0, **FAST)
    with pytest.raises(error, match=match):
        model.fit(change(_errors_fleet()), entity_key="unit", time_key="t")


def test_time_errors_read_as_the_table_does(tmp_path):
    """As read from a CSV: plain numbers in the message (not np.int64(1)), and numbers mixed with dates named so."""
    model = twinforge.create("sequence", seed=0, **FAST)
    _errors_fleet().assign(t=[0, 1, 1, 0, 1]).to_csv(tmp_path / "dup.csv", index=False)
    with pytest.raises(DataError, match=r"at t=1: keep one row") as info:
        model.fit(tmp_path / "dup.csv", entity_key="unit", time_key="t")
    assert "np." not in str(info.value)
    _errors_fleet().assign(t=["0", "1", "2024-01-01", "0", "1"]).to_csv(tmp_path / "mixed.csv", index=False)
    with pytest.raises(DataError, match=r"mixes numbers and text \(e.g. '0' and '2024-01-01'\)"):
        model.fit(tmp_path / "mixed.csv", entity_key="unit", time_key="t")


def test_unknown_keys_and_unmatched_static_table():
    model = twinforge.create("sequence", seed=0, **FAST)
    with pytest.raises(ParameterError, match="'id' is not a column"):
        model.fit(_errors_fleet(), entity_key="id", time_key="t")
    with pytest.raises(ParameterError, match="'time' is not a column"):
        model.fit(_errors_fleet(), entity_key="unit", time_key="time")
    static = pd.DataFrame({"unit": [1, 2, 3], "kind": ["a", "b", "a"]})
    with pytest.raises(DataError, match="no rows in the long table"):
        model.fit(_errors_fleet(), entity_key="unit", time_key="t", static=static)


def test_not_fitted_and_bad_arguments(model):
    fresh = twinforge.create("sequence")
    with pytest.raises(NotFittedError, match="call fit first"):
        fresh.sample(entities=2)
    with pytest.raises(ParameterError, match="entities"):
        model.sample(entities=0)
    with pytest.raises(ParameterError, match="hidden"):
        twinforge.create("sequence", hidden=0).fit(_errors_fleet(), entity_key="unit", time_key="t")
    with pytest.raises(ParameterError, match="link must be"):
        twinforge.create("sequence", link="cubic").fit(_errors_fleet(), entity_key="unit", time_key="t")


# ------------------------------------------------------------------------------------------ twins
def test_twin_forecast_is_a_probabilistic_long_table(model, fleet):
    history = fleet[fleet.unit == 3]
    twin = model.personalize(history, epochs=10, seed=0, progress=False)
    out = twin.forecast(6, paths=8, seed=0)
    assert list(out.columns) == ["unit", "path", "t", "temp", "load", "status"]
    assert len(out) == 48 and sorted(out["path"].unique()) == list(range(8))
    assert (out["unit"] == 3).all()
    last = history["t"].max()
    assert (out.groupby("path")["t"].apply(list) == pd.Series([list(range(last + 1, last + 7))] * 8)).all()
    assert out.groupby("t")["temp"].std().min() > 0  # paths differ: not one line
    pd.testing.assert_frame_equal(out, twin.forecast(6, paths=8, seed=0))


def test_personalised_twin_beats_the_population_model(model):
    entity = _distinctive_entity()
    history, future = entity.iloc[:25], entity.iloc[25:]

    def error(twin) -> float:
        median = twin.forecast(15, paths=40, seed=0).groupby("t")["temp"].median().to_numpy()
        return float(np.abs(median - future["temp"].to_numpy()).mean())

    population = error(model.personalize(history, epochs=0))
    fitted = model.personalize(history, epochs=150, seed=0, progress=False)
    assert fitted.info_["validation_steps"] == 8 and 0 < fitted.info_["chosen_epochs"] <= 150
    assert fitted.info_["validation_crps"] < fitted.info_["population_validation_crps"]
    twin = error(fitted)
    assert twin < 0.6 * population, (twin, population)


def test_personalising_is_never_worse_than_the_population_on_the_held_back_steps(model, fleet):
    # a short, typical history: fine-tuning may not help, and then the twin keeps the population's view
    for unit in (1, 6):
        history = fleet[fleet.unit == unit].iloc[:10]
        info = model.personalize(history, epochs=60, seed=0, progress=False).info_
        assert info["validation_steps"] == 3
        assert info["validation_crps"] <= info["population_validation_crps"]
        if info["chosen_epochs"] == 0:
            assert info["validation_crps"] == info["population_validation_crps"]


def test_an_untuned_model_personalises_safely_to_the_populations_view(model, fleet):
    # without tune_personalization, a short history is not fine-tuned (unchecked, that forecasts worse)
    history = fleet[fleet.unit == 2].iloc[:10]
    twin = model.personalize(history, seed=0, progress=False)
    assert twin.info_["epochs"] == 0 and twin.info_["level"] == 0.0 and not twin.info_["encoded"]
    pd.testing.assert_frame_equal(twin.forecast(5, paths=6, seed=2), model.forecast(history, 5, 6, seed=2))


def test_select_false_trains_exactly_the_given_epochs(model, fleet):
    history = fleet[fleet.unit == 5].iloc[:20]
    info = model.personalize(history, epochs=7, select=False, seed=0, progress=False).info_
    assert info["epochs"] == 7 and info["validation_steps"] == 0
    with pytest.raises(ParameterError, match="select"):
        model.personalize(history, select="yes")


def test_an_entity_encoder_infers_a_twins_latent_from_its_history(fleet, tmp_path):
    with pytest.raises(ParameterError, match="context"):
        twinforge.create("sequence", context=-1).fit(fleet, entity_key="unit", time_key="t")
    model = twinforge.create("sequence", seed=0, context=12, **FAST).fit(fleet, entity_key="unit", time_key="t")
    assert model.net_.entity.num_embeddings == 1  # amortised: no per-entity lookup table to store
    history = fleet[fleet.unit == 3].iloc[:10]
    twin = model.personalize(history, seed=0, progress=False)  # the default with an encoder: its latent
    assert twin.info_["encoded"] and twin.info_["epochs"] == 0
    assert not np.allclose(twin.z_, model.z_mean_)
    other = model.personalize(fleet[fleet.unit == 8].iloc[:10], seed=0, progress=False)
    assert not np.allclose(twin.z_, other.z_)  # different histories, different latents
    population = model.personalize(history, encode=False, epochs=0)
    np.testing.assert_allclose(population.z_, model.z_mean_)
    model.save(tmp_path / "m")
    again = twinforge.load(tmp_path / "m")
    np.testing.assert_allclose(again.personalize(history, seed=0).z_, twin.z_, rtol=1e-5)
    plain = twinforge.create("sequence", seed=0, **FAST)
    with pytest.raises(ParameterError, match="encoder"):
        plain.fit(fleet, entity_key="unit", time_key="t").personalize(history, encode=True)


def test_event_conditioned_forecast_contains_the_event(model, fleet):
    twin = model.personalize(fleet[fleet.unit == 4], epochs=5, seed=0, progress=False)
    out = twin.forecast(8, paths=30, seed=1, event={"column": "status", "value": "fault", "within": 5})
    first5 = out[out.groupby("path").cumcount() < 5]
    assert first5.groupby("path")["status"].apply(lambda s: (s == "fault").any()).all()
    plain = twin.forecast(8, paths=30, seed=1)
    assert (plain["status"] == "fault").mean() < (out["status"] == "fault").mean()
    high = twin.forecast(4, paths=20, seed=1, event={"column": "temp", "value": (9.0, None)})
    assert (high.groupby("path")["temp"].max() >= 9.0).all()
    with pytest.raises(ParameterError, match="not a level"):
        twin.forecast(4, paths=2, event={"column": "status", "value": "melted"})
    with pytest.raises(ParameterError, match="not a channel"):
        twin.forecast(4, paths=2, event={"column": "site", "value": "north"})
    with pytest.raises(ParameterError, match=r"at most the horizon \(4 steps\), got 9"):  # was forced into 4
        twin.forecast(4, paths=2, event={"column": "status", "value": "fault", "within": 9})
    with pytest.raises(ParameterError, match=r"at most the length \(3 steps\), got 5"):
        twin.sample(2, length=3, event={"column": "status", "value": "fault", "within": 5})


def test_population_sample_with_an_event(model):
    out = model.sample(entities=10, seed=0, event={"column": "status", "value": "fault", "within": 10})
    head = out[out.groupby("unit").cumcount() < 10]
    assert head.groupby("unit")["status"].apply(lambda s: (s == "fault").any()).all()


def test_twin_sample_gives_sequences_like_the_entity(model, fleet):
    twin = model.personalize(fleet[fleet.unit == 1], epochs=5, seed=0, progress=False)
    out = twin.sample(3, length=10, seed=0)
    assert len(out) == 30 and (out["unit"] == 1).all() and set(out["site"]) == {"north"}
    assert sorted(out["sequence"].unique()) == [0, 1, 2]
    # the data's column order (channels as in the fit data), as the population's sample and forecast give it
    channels = [c for c in model.sample(entities=1, seed=0).columns if c in out.columns and c not in ("unit", "t")]
    assert list(out.columns) == ["unit", "sequence", "t", *channels]


def test_history_errors(model, fleet):
    with pytest.raises(DataError, match="one entity"):
        model.personalize(fleet[fleet.unit.isin([1, 2])], epochs=0)
    with pytest.raises(DataError, match="lacks the channels"):
        model.personalize(fleet[fleet.unit == 1].drop(columns="load"), epochs=0)
    with pytest.raises(DataError, match="not in time order"):
        model.personalize(fleet[fleet.unit == 1].iloc[::-1], epochs=0)
    # static= and the history's own static column must agree (unit 1 is in the north)
    with pytest.raises(DataError, match=r"'site' is 'south' in static=.*'north'.*give one value"):
        model.personalize(fleet[fleet.unit == 1], epochs=0, static={"site": "south"})
    twin = model.personalize(fleet[fleet.unit == 1], epochs=0, static={"site": "north"}, progress=False)
    assert twin.static["site"] == "north"


# ------------------------------------------------------------------------------------------ save/load
def test_model_and_twin_save_load_round_trip(model, fleet, tmp_path):
    model.save(tmp_path / "model")
    again = twinforge.load(tmp_path / "model")
    pd.testing.assert_frame_equal(again.sample(entities=5, seed=7), model.sample(entities=5, seed=7))
    twin = model.personalize(fleet[fleet.unit == 2], epochs=5, seed=0, progress=False)
    twin.save(tmp_path / "twin")
    back = twinforge.load(tmp_path / "twin")
    assert isinstance(back, Twin) and back.entity == 2
    pd.testing.assert_frame_equal(back.forecast(5, paths=4, seed=1), twin.forecast(5, paths=4, seed=1))
    pd.testing.assert_frame_equal(back.history, twin.history)


def test_metadata_with_keys_validates_the_time_structure():
    bad = _errors_fleet().assign(t=[0, 2, 1, 0, 0])
    meta = twinforge.Metadata.detect(bad, entity_key="unit", time_index="t")
    problems = meta.problems(bad)
    assert any("not in time order" in p for p in problems) and any("share an" in p for p in problems)
    with pytest.raises(twinforge.MetadataError):
        twinforge.create("sequence", seed=0, **FAST).fit(bad, meta)
    good = _errors_fleet()
    assert twinforge.Metadata.detect(good, entity_key="unit", time_index="t").problems(good) == []


def test_a_corrupted_sequence_model_is_a_model_file_error(model, tmp_path):
    import json

    model.save(tmp_path / "m")
    doc = json.loads((tmp_path / "m" / "model.json").read_text())
    del doc["state"]["layout"]
    (tmp_path / "m" / "model.json").write_text(json.dumps(doc))
    with pytest.raises(twinforge.ModelFileError):
        twinforge.load(tmp_path / "m")


# ------------------------------------------------------------------------------------------ twin policy
def test_a_level_offset_moves_the_twin_toward_an_entity_far_from_the_fleet(model):
    entity = _distinctive_entity()
    history, future = entity.iloc[:15], entity.iloc[15:25]

    def error(twin) -> float:
        median = twin.forecast(10, paths=40, seed=0).groupby("t")["temp"].median().to_numpy()
        return float(np.abs(median - future["temp"].to_numpy()).mean())

    plain = model.personalize(history, epochs=0, level=0.0)
    shifted = model.personalize(history, epochs=0, level=1.0)
    assert plain.info_["level_offset"] == {} and not plain.offset_.any()
    pd.testing.assert_frame_equal(plain.forecast(5, paths=4, seed=3), model.forecast(history, 5, 4, seed=3))
    assert shifted.info_["level_offset"]["temp"] > 0  # the entity sits above what the model expects
    assert error(shifted) < error(plain)
    # an event on the shifted channel keeps its exact range: the offset is not applied to it
    low = shifted.forecast(6, paths=10, seed=0, event={"column": "temp", "value": (None, 0.0), "within": 6})
    assert (low.groupby("path")["temp"].min() <= 0.0).all()
    with pytest.raises(ParameterError, match="level"):
        model.personalize(history, epochs=0, level=3.0)


def test_tune_personalization_chooses_on_inner_entities_and_falls_back_to_the_population(model, fleet, tmp_path):
    tuned = copy.deepcopy(model).tune_personalization(
        fleet, ks=(6, 12), horizon=5, paths=8, epochs=10, seed=0, progress=False
    )
    policy = tuned.twin_policy_
    assert policy["ks"] == [6, 12] and policy["inner_entities"] == 10
    for k, choice in zip(policy["ks"], policy["choices"], strict=True):
        scores = policy["scores"][str(k)]
        assert set(scores) == {
            "population", "level 0.5", "level 1", "posterior", "posterior, level 0.5", "posterior, tempered 0.1",
            "posterior, tempered 0.3", "fine-tune 10", "latent 10"
        }  # fmt: skip
        # a candidate is taken only if it beats the population's view by the margin on the inner entities
        assert choice["name"] == "population" or scores[choice["name"]] <= 0.98 * scores["population"]
    history = fleet[fleet.unit == 3].iloc[:6]
    twin = tuned.personalize(history, seed=0, progress=False)
    assert twin.info_["level"] == policy["choices"][0]["level"]
    assert twin.info_["epochs"] <= policy["choices"][0]["epochs"]
    assert tuned.personalize(history, epochs=0, level=0.0).info_["level"] == 0.0  # explicit values win
    long = _distinctive_entity(steps=40)  # longer than twice the longest tuned length: the safe defaults
    assert tuned._policy_for(len(long)) == {
        "epochs": 0, "level": 0.0, "encode": False, "select": True, "posterior": False, "temper": 1.0,
        "fine_tune_share": 0.6
    }  # fmt: skip
    tuned.save(tmp_path / "tuned")
    assert twinforge.load(tmp_path / "tuned").twin_policy_ == policy
    with pytest.raises(ParameterError, match="holdout_share"):
        tuned.tune_personalization(fleet, holdout_share=1.5)
    with pytest.raises(DataError, match="lacks the columns"):
        tuned.tune_personalization(fleet.drop(columns="site"))


def test_a_posterior_twin_draws_each_paths_latent_from_the_history_weighted_population(model, fleet, tmp_path):
    history = fleet[fleet.unit == 3].iloc[:10]
    twin = model.personalize(history, epochs=0, posterior=True, seed=0)
    draws, weights = twin.z_draws_, twin.z_weights_
    assert draws.shape == (2048, model.embedding_dim) and weights.shape == (2048,)
    assert np.isclose(weights.sum(), 1.0) and (weights >= 0).all()
    # the history is informative: the weights are far from uniform, and the point latent is their mean
    assert 1.0 <= twin.info_["posterior_ess"] < 0.5 * len(weights)
    np.testing.assert_allclose(twin.z_, weights @ draws)
    out = twin.forecast(6, paths=20, seed=1)
    assert out.shape == (120, 6) and sorted(out["path"].unique()) == list(range(20))
    pd.testing.assert_frame_equal(out, twin.forecast(6, paths=20, seed=1))
    population = model.personalize(history, epochs=0).forecast(6, paths=20, seed=1)
    assert not np.allclose(out["temp"], population["temp"])
    twin.save(tmp_path / "twin")
    back = twinforge.load(tmp_path / "twin")
    pd.testing.assert_frame_equal(back.forecast(6, paths=20, seed=1), out)
    assert model.personalize(history, epochs=0).z_draws_ is None  # not asked for: one latent
    with pytest.raises(ParameterError, match="posterior"):
        model.personalize(history, posterior="yes")
    # tempered: the same latents, flatter weights (the history's likelihood to a power below 1)
    tempered = model.personalize(history, epochs=0, posterior=True, temper=0.1, seed=0)
    np.testing.assert_array_equal(tempered.z_draws_, draws)
    assert tempered.info_["temper"] == 0.1 and twin.info_["temper"] == 1.0
    assert tempered.info_["posterior_ess"] > 2 * twin.info_["posterior_ess"]
    with pytest.raises(ParameterError, match="temper"):
        model.personalize(history, posterior=True, temper=0.0)
    with pytest.raises(ParameterError, match="fine_tune_share"):
        model.personalize(history, fine_tune_share=1.5)


def test_a_model_saved_before_the_encoder_existed_still_loads(model, fleet, tmp_path):
    import json

    model.save(tmp_path / "old")
    doc = json.loads((tmp_path / "old" / "model.json").read_text())
    del doc["params"]["context"]
    (tmp_path / "old" / "model.json").write_text(json.dumps(doc))
    history = fleet[fleet.unit == 1].iloc[:8]
    pd.testing.assert_frame_equal(
        twinforge.load(tmp_path / "old").forecast(history, 4, 5, seed=0), model.forecast(history, 4, 5, seed=0)
    )


# ------------------------------------------------------------------------------------------ within-step links
@pytest.mark.parametrize("link", ["linear", "bounded", "clipped"])
def test_sampling_draws_from_the_parameters_training_scores(fleet, link, monkeypatch):
    """Sampling builds each block's parameters step by step in numpy; they must equal the network's own
    (teacher-forced) parameters on the drawn sequence, for every within-step link."""
    import torch

    from twinforge.sequences import model as seqmod

    m = twinforge.create(
        "sequence", seed=0, epochs=2, hidden=16, static_epochs=1, progress=False, link=link, long_range=False
    )
    m.fit(fleet, entity_key="unit", time_key="t")
    net, enc = m.net_, m.encoding_
    if link != "linear":  # the saturating part is really used: move it off its neutral start
        with torch.no_grad():
            net.within.gate.weight.normal_(std=0.5, generator=torch.Generator().manual_seed(0))
    drawn = _record_draws(monkeypatch)
    n, steps = 4, 6
    rng = np.random.default_rng(0)
    cond = rng.normal(size=(n, m.static_encoding_.dim)).astype("float32")
    z = rng.normal(size=(n, m.embedding_dim)).astype("float32")
    y, t = seqmod._generate(m, net, cond, z, None, np.full(n, steps), np.zeros(n), rng, None)

    feats = enc.features(y)
    prev = np.zeros_like(feats)
    prev[:, 1:] = feats[:, :-1]
    extra = np.zeros((n, steps, 2), dtype="float32")
    extra[:, 1:, 0] = (t[:, :-1] - t[:, :1]) / m.layout_["time_scale"]
    extra[:, 0, 1] = 1.0
    with torch.no_grad():
        cz = torch.as_tensor(np.concatenate([cond, z], 1))
        out, _ = net.run(torch.as_tensor(prev), torch.as_tensor(extra), cz, net.initial(cz))
        par = net.params(out, cz, torch.as_tensor(feats)).numpy()
    assert len(drawn) == steps * len(enc.blocks)
    for j in range(steps):
        for i, b in enumerate(enc.blocks):
            expected = par[:, j, b["p0"] : b["p0"] + b["n_par"]]
            np.testing.assert_allclose(drawn[j * len(enc.blocks) + i], expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("link", ["bounded", "clipped"])
def test_a_saturating_link_fits_saves_and_forecasts(fleet, link, tmp_path):
    m = twinforge.create("sequence", seed=0, link=link, **FAST).fit(fleet, entity_key="unit", time_key="t")
    out = m.sample(entities=6, seed=1)
    assert out["unit"].nunique() == 6 and np.isfinite(out["temp"]).all()
    pd.testing.assert_frame_equal(out, m.sample(entities=6, seed=1))
    m.save(tmp_path / "m")
    again = twinforge.load(tmp_path / "m")
    assert again.link == link
    pd.testing.assert_frame_equal(again.sample(entities=6, seed=1), out)
    history = fleet[fleet.unit == 1].iloc[:8]
    pd.testing.assert_frame_equal(again.forecast(history, 4, 5, seed=0), m.forecast(history, 4, 5, seed=0))


def test_a_model_saved_before_the_link_option_loads_as_linear(fleet, tmp_path):
    import json

    model = twinforge.create("sequence", seed=0, link="linear", long_range=False, **FAST)
    model.fit(fleet, entity_key="unit", time_key="t").save(tmp_path / "old")
    doc = json.loads((tmp_path / "old" / "model.json").read_text())
    del doc["params"]["link"], doc["params"]["long_range"]
    (tmp_path / "old" / "model.json").write_text(json.dumps(doc))
    again = twinforge.load(tmp_path / "old")
    assert again.link == "linear" and again.long_range is False
    pd.testing.assert_frame_equal(again.sample(entities=3, seed=2), model.sample(entities=3, seed=2))


def test_a_bounded_model_saved_before_its_link_moved_into_within_still_loads(fleet):
    from twinforge.sequences import SequenceModel

    model = twinforge.create("sequence", seed=0, link="bounded", **FAST).fit(fleet, entity_key="unit", time_key="t")
    doc = model._document()
    net = doc["state"]["net"]
    assert {"within.sat.weight", "within.gate.weight", "within.gate.bias"} <= set(net)
    old_names = {"within.sat.weight": "sat.weight", "within.gate.weight": "sat_gate.weight"}
    old_names["within.gate.bias"] = "sat_gate.bias"
    doc["state"]["net"] = {old_names.get(k, k): v for k, v in net.items()}  # as session 17 saved them
    again = SequenceModel._from_document(doc)
    pd.testing.assert_frame_equal(again.sample(entities=3, seed=2), model.sample(entities=3, seed=2))


# ------------------------------------------------------------------------------------------ long-range inputs
def test_run_lengths_are_the_time_each_categorical_channel_has_held_its_value(fleet):
    m = twinforge.create("sequence", seed=0, epochs=1, hidden=8, static_epochs=1, progress=False, long_range=True)
    m.fit(fleet, entity_key="unit", time_key="t")
    (status,) = m._tracked_blocks()
    assert m.encoding_.blocks[status]["name"] == "status"
    y = np.zeros((6, len(m.encoding_.blocks)))
    y[:, status] = [0, 0, 1, 1, 1, 0]
    state = m._step_state(y, np.array([0.0, 1.0, 2.0, 3.0, 5.0, 6.0]))
    np.testing.assert_array_equal(state[:, 0], [0, 1, 2, 3, 5, 6])  # elapsed time
    # irregular gap: time, not steps; in units of the training run lengths' standard deviation
    assert m.layout_["run_scale"][0] > 0
    np.testing.assert_allclose(state[:, 1] * m.layout_["run_scale"][0], [0, 1, 0, 1, 3, 0])
    plain = twinforge.create("sequence", seed=0, epochs=1, hidden=8, static_epochs=1, progress=False, long_range=False)
    assert plain.fit(fleet, entity_key="unit", time_key="t")._tracked_blocks() == []
    assert m.net_.inp.in_features == plain.net_.inp.in_features + 1


@pytest.mark.parametrize("history", [False, True])
def test_long_range_inputs_in_sampling_equal_training(fleet, history, monkeypatch):
    """Sampling updates the run lengths step by step; the parameters it draws from must equal the network's
    teacher-forced ones on the drawn sequence with the inputs computed on the whole sequence (training's and
    personalisation's way), from a cold start and continuing a history."""
    import torch

    from twinforge.sequences import model as seqmod

    m = twinforge.create("sequence", seed=0, epochs=2, hidden=16, static_epochs=1, progress=False, long_range=True)
    m.fit(fleet, entity_key="unit", time_key="t")
    net, enc = m.net_, m.encoding_
    (status,) = m._tracked_blocks()
    with torch.no_grad():  # make the run length matter, and status change often
        net.inp.weight[:, enc.d_step + 2].normal_(std=2.0, generator=torch.Generator().manual_seed(0))
        net.head.net[-1].bias[enc.blocks[status]["p0"] : enc.blocks[status]["p0"] + 2] = 0.0
    drawn = _record_draws(monkeypatch)
    n, steps = 3, 12
    rng = np.random.default_rng(0)
    cond = rng.normal(size=(n, m.static_encoding_.dim)).astype("float32")
    z = rng.normal(size=(n, m.embedding_dim)).astype("float32")
    past = None
    if history:
        one = fleet[fleet.unit == 2]
        times = one["t"].to_numpy(dtype="float64")[:9]
        past = {"y": enc.encode(one.iloc[:9], times), "times": times}
        cond, z = np.repeat(cond[:1], n, 0), np.repeat(z[:1], n, 0)
    y, t = seqmod._generate(m, net, cond, z, past, np.full(n, steps), np.zeros(n), rng, None)
    assert len(np.unique(y[:, :, status])) == 2
    _assert_drawn_as_trained(m, net, drawn, cond, z, y, t, past, rtol=1e-4)


def test_long_range_inputs_learn_the_spacing_of_episodes_longer_than_a_window():
    """A visit every 12 steps, trained on windows of 6 steps: only the time since the last visit tells when the
    next one is due, so with the long-range inputs the sampled visits are 12 steps apart."""
    rng = np.random.default_rng(0)
    rows = []
    for e in range(30):
        phase = int(rng.integers(12))
        for t in range(48):
            rows.append({"unit": e, "t": t, "visit": int((t + phase) % 12 == 0), "x": rng.normal()})
    events = pd.DataFrame(rows)

    def spacing(long_range: bool) -> float:
        m = twinforge.create(
            "sequence",
            seed=0,
            epochs=40,
            hidden=16,
            window=6,
            static_epochs=1,
            progress=False,
            long_range=long_range,
            link="linear",  # the inputs' effect alone (written with the linear link: 0.79 and 0.08)
        ).fit(events, entity_key="unit", time_key="t")
        out = m.sample(entities=30, seed=1)
        gaps = out[out.visit == 1].groupby("unit")["t"].diff().dropna()
        return float((gaps == 12).mean())

    assert spacing(True) > 0.65  # 0.79 when written
    assert spacing(False) < 0.3  # 0.08


def test_long_range_model_saves_loads_and_forecasts(fleet, tmp_path):
    import json

    m = twinforge.create("sequence", seed=0, long_range=True, **FAST).fit(fleet, entity_key="unit", time_key="t")
    m.save(tmp_path / "m")
    again = twinforge.load(tmp_path / "m")
    assert again.long_range is True
    pd.testing.assert_frame_equal(again.sample(entities=4, seed=1), m.sample(entities=4, seed=1))
    history = fleet[fleet.unit == 1].iloc[:8]
    twin = m.personalize(history, epochs=3, seed=0)
    twin.save(tmp_path / "twin")
    pd.testing.assert_frame_equal(twinforge.load(tmp_path / "twin").forecast(4, 5, seed=0), twin.forecast(4, 5, seed=0))
    # a model saved before the option existed has no long-range inputs
    m0 = twinforge.create("sequence", seed=0, long_range=False, **FAST).fit(fleet, entity_key="unit", time_key="t")
    m0.save(tmp_path / "old")
    doc = json.loads((tmp_path / "old" / "model.json").read_text())
    del doc["params"]["long_range"]
    (tmp_path / "old" / "model.json").write_text(json.dumps(doc))
    assert twinforge.load(tmp_path / "old").long_range is False
    with pytest.raises(ParameterError, match="long_range"):
        twinforge.create("sequence", long_range="yes").fit(fleet, entity_key="unit", time_key="t")


def test_long_range_changes_nothing_without_categorical_channels(fleet):
    numeric = fleet.drop(columns="status")
    a, b = (
        twinforge.create("sequence", seed=0, epochs=3, hidden=8, static_epochs=1, progress=False, long_range=flag)
        .fit(numeric, entity_key="unit", time_key="t")
        .sample(entities=4, seed=1)
        for flag in (False, True)
    )
    pd.testing.assert_frame_equal(a, b)


def _cyclic_fleet(n: int = 30, period: int = 6, shared: bool = True, seed: int = 0) -> pd.DataFrame:
    """Units starting at different times; ``temp`` follows a cycle of ``period`` steps of absolute time (shared
    by the fleet, or with its own phase per unit) plus AR(1) noise; a categorical ``status``."""
    rng = np.random.default_rng(seed)
    rows = []
    for e in range(n):
        t0, phase = int(rng.integers(0, 20)), 0 if shared else int(rng.integers(period))
        x = 0.0
        for t in range(t0, t0 + int(rng.integers(24, 31))):
            x = 0.7 * x + rng.normal(scale=0.5)
            temp = 3.0 * np.sin(2 * np.pi * (t + phase) / period) + x
            rows.append({"unit": e, "t": t, "temp": temp, "status": "fault" if rng.random() < 0.1 else "ok"})
    return pd.DataFrame(rows)


def test_long_range_finds_a_cycle_the_fleet_shares():
    from twinforge.sequences.model import _CALENDAR

    def periods(events):
        m = twinforge.create("sequence", seed=0, epochs=1, hidden=8, static_epochs=1, progress=False, long_range=True)
        return m.fit(events, entity_key="unit", time_key="t").layout_["periods"]

    assert periods(_cyclic_fleet()) == [6.0]  # not 12 or 18, which fit as well
    assert periods(_cyclic_fleet(shared=False)) == []  # each unit's own phase: its values tell it
    hourly = _cyclic_fleet(period=24).assign(t=lambda d: pd.Timestamp("2024-03-01") + pd.to_timedelta(d.t, "h"))
    assert periods(hourly) == [p for _, p in _CALENDAR]  # datetimes: the calendar


def test_long_range_phase_inputs_in_sampling_equal_training(monkeypatch):
    """The phase of the absolute time is an input: from the start time at the first step, then each step's; the
    parameters sampling draws from equal the teacher-forced ones, cold and after a history."""

    from twinforge.sequences import model as seqmod

    events = _cyclic_fleet()
    m = twinforge.create("sequence", seed=0, epochs=2, hidden=16, static_epochs=1, progress=False, long_range=True)
    m.fit(events, entity_key="unit", time_key="t")
    net, enc = m.net_, m.encoding_
    assert m.net_.inp.in_features == enc.d_step + 2 + 1 + 2 + m.static_encoding_.dim + m.embedding_dim
    drawn = _record_draws(monkeypatch)
    rng = np.random.default_rng(0)
    n, steps = 3, 8
    z = rng.normal(size=(n, m.embedding_dim)).astype("float32")
    cond = np.zeros((n, m.static_encoding_.dim), dtype="float32")
    for past in (None, events[events.unit == 4]):
        drawn.clear()
        hist = None
        if past is not None:
            times = past["t"].to_numpy(dtype="float64")[:10]
            hist = {"y": enc.encode(past.iloc[:10], times), "times": times}
            z = np.repeat(z[:1], n, 0)
        t0 = np.array([0.0, 5.0, 13.0])
        y, t = seqmod._generate(m, net, cond, z, hist, np.full(n, steps), t0, rng, None)
        _assert_drawn_as_trained(m, net, drawn, cond, z, y, t, hist, rtol=1e-7)


def test_long_range_keeps_the_phase_of_a_shared_cycle():
    """Units start at different times of a 6-step cycle the fleet shares: with the phase as an input, sampled
    units follow the cycle in absolute time; without it they cannot know where in it they start."""
    events = _cyclic_fleet(n=40)
    real = events.groupby(events.t % 6)["temp"].mean()

    def profile(long_range: bool) -> tuple[float, float]:
        m = twinforge.create(
            "sequence", seed=0, epochs=30, hidden=16, static_epochs=2, progress=False, long_range=long_range
        ).fit(events, entity_key="unit", time_key="t")
        out = m.sample(entities=40, seed=1)
        synthetic = out.groupby(out.t % 6)["temp"].mean()
        return float(np.corrcoef(real, synthetic)[0, 1]), float(synthetic.std() / real.std())

    (fit_with, amplitude_with), (_, amplitude_without) = profile(True), profile(False)
    assert fit_with > 0.98 and 0.8 < amplitude_with < 1.2  # 1.00 and 0.97 when written
    assert amplitude_without < 0.6  # 0.34: each unit's cycle at a random phase averages out


def _assert_drawn_as_trained(m, net, drawn, cond, z, y, t, past, rtol):
    """The parameters each sampling step drew from (``drawn``, per step and block) equal the network's
    teacher-forced ones on the finished sequences (after ``past``, the history, if any)."""
    import torch

    enc, steps = m.encoding_, y.shape[1]
    skip = 0 if past is None else len(past["y"])
    for r in range(len(y)):
        yy, tt = (y[r], t[r]) if past is None else (np.r_[past["y"], y[r]], np.r_[past["times"], t[r]])
        prev, extra = m._history_inputs(yy, tt)
        with torch.no_grad():
            cz = torch.as_tensor(np.concatenate([cond[r : r + 1], z[r : r + 1]], 1))
            out, _ = net.run(torch.as_tensor(prev), torch.as_tensor(extra), cz, net.initial(cz))
            par = net.params(out, cz, torch.as_tensor(enc.features(yy)[None])).numpy()[0]
        for j in range(steps):
            for i, b in enumerate(enc.blocks):
                got = drawn[j * len(enc.blocks) + i][r]
                np.testing.assert_allclose(got, par[skip + j, b["p0"] : b["p0"] + b["n_par"]], rtol=rtol, atol=1e-4)


def _record_draws(monkeypatch) -> list[np.ndarray]:
    """From now on, every set of parameters sampling draws a block's value from (per step and block, in order)."""
    from twinforge.sequences import model as seqmod

    drawn: list[np.ndarray] = []
    real_draw = seqmod._draw
    monkeypatch.setattr(seqmod, "_draw", lambda b, par, *a: drawn.append(par.copy()) or real_draw(b, par, *a))
    return drawn


def test_weight_averaging_fits_a_better_next_step_model(fleet):
    """``average=0.9`` keeps an exponential moving average of the iterates: on the same iterates (the average
    does not change the training path), it scores a lower validation negative log-likelihood than the best raw
    iterate (``average=0``, the default)."""
    kw = {**FAST, "epochs": 20, "patience": 20, "validation_share": 0.2}

    def best_validation(average: float) -> float:
        m = twinforge.create("sequence", seed=0, average=average, **kw).fit(fleet, entity_key="unit", time_key="t")
        return m.train_info_["best_validation"]

    plain, averaged = best_validation(0.0), best_validation(0.9)
    assert averaged < plain - 0.05, (averaged, plain)
    with pytest.raises(ParameterError, match="average must be"):
        twinforge.create("sequence", average=1.0).fit(_errors_fleet(), entity_key="unit", time_key="t")
