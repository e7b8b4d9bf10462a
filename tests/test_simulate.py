"""The simulators: shapes, determinism, physics that the hidden parameters drive, validation, saving."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

import twinforge.simulate as sim
from twinforge.errors import OutputError, ParameterError


@pytest.fixture(scope="module")
def fleet() -> sim.Simulation:
    return sim.turbines(n_units=300, n_steps=400, seed=0)


@pytest.fixture(scope="module")
def ward() -> sim.Simulation:
    return sim.patients(n_patients=150, n_steps=80, seed=0)


def test_turbines_shapes_and_keys(fleet):
    e = fleet.events
    assert list(e.columns[:2]) == ["unit_id", "t"]
    assert len(e) == 300 * 400 and e["unit_id"].nunique() == 300
    assert not e.duplicated(["unit_id", "t"]).any()
    assert (e.groupby("unit_id")["t"].diff().dropna() == 1).all()
    assert set(e["failure"].unique()) <= {0, 1} and e["failure"].sum() > 0
    assert set(e["status"]) == {"running", "idle", "repair", "maintenance"}
    assert len(fleet.static) == len(fleet.hidden) == 300
    assert fleet.static["unit_id"].is_unique and set(fleet.static["unit_id"]) == set(e["unit_id"])
    assert fleet.channels == [c for c in e.columns if c not in ("unit_id", "t")]
    assert len(fleet.states) == len(e)


def test_turbines_are_deterministic_per_seed():
    a = sim.turbines(n_units=20, n_steps=60, seed=3)
    b = sim.turbines(n_units=20, n_steps=60, seed=3)
    c = sim.turbines(n_units=20, n_steps=60, seed=4)
    pd.testing.assert_frame_equal(a.events, b.events)
    pd.testing.assert_frame_equal(a.hidden, b.hidden)
    assert not a.events.equals(c.events)


def test_turbine_physics_follow_hidden_parameters(fleet):
    e, hidden = fleet.events, fleet.hidden.set_index("unit_id")
    per = e.groupby("unit_id").agg(failures=("failure", "sum"), vibration=("vibration", "mean"))
    per = per.join(hidden)
    # units that wear faster fail more often
    assert per["failures"].corr(per["wear_rate"], method="spearman") > 0.5
    # vibration grows with wear: it is higher just before a failure than just after the repair
    wear = fleet.states["wear"].to_numpy()
    running = e["status"].to_numpy() == "running"
    high, low = running & (wear > 0.8), running & (wear < 0.2)
    assert e["vibration"][high].median() > 1.5 * e["vibration"][low].median()
    # the gearbox runs hotter under load
    assert e["gearbox_temp"].corr(e["power_kw"]) > 0.5
    # load and temperature are autocorrelated in time, not white noise
    lag = e.groupby("unit_id")["wind_speed"].shift(1)
    assert e["wind_speed"].corr(lag) > 0.6
    # a failed unit is down (no power) for the next steps, then wear restarts near 0
    after = e.groupby("unit_id")["status"].shift(-1)[e["failure"] == 1]
    assert (after.dropna() == "repair").mean() > 0.9


def test_turbines_are_fast():
    start = time.perf_counter()
    big = sim.turbines(n_units=1000, n_steps=500, seed=0)
    assert len(big.events) == 500_000
    assert time.perf_counter() - start < 10


def test_turbines_timestamps_missing_and_irregular():
    f = sim.turbines(n_units=10, n_steps=100, seed=0, start="2024-01-01", missing_rate=0.1, drop_rate=0.2)
    e = f.events
    assert pd.api.types.is_datetime64_any_dtype(e["t"])
    assert e["t"].min() == pd.Timestamp("2024-01-01")
    assert 0.05 < e["power_kw"].isna().mean() < 0.15
    assert e["status"].notna().all() and e["failure"].notna().all()
    assert len(e) < 1000 * 0.9
    lengths = e.groupby("unit_id").size()
    assert lengths.nunique() > 1  # variable lengths


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"n_units": 0}, "n_units"),
        ({"n_units": 2.5}, "n_units"),
        ({"n_steps": -1}, "n_steps"),
        ({"seed": -1}, "seed"),
        ({"seed": True}, "seed"),
        ({"missing_rate": 1.0}, "missing_rate"),
        ({"drop_rate": -0.1}, "drop_rate"),
        ({"wear_scale": 0}, "wear_scale"),
        ({"start": "not a date"}, "start"),
    ],
)
def test_turbines_reject_bad_arguments(kwargs, name):
    with pytest.raises(ParameterError, match=name):
        sim.turbines(**kwargs)


def test_patients_shapes_and_variable_lengths(ward):
    e = ward.events
    assert list(e.columns[:2]) == ["patient_id", "day"]
    assert not e.duplicated(["patient_id", "day"]).any()
    assert list(ward.static.columns) == ["patient_id", "age", "sex", "risk_group", "ward"]
    assert set(ward.static["risk_group"]) <= {"low", "medium", "high"}
    assert len(ward.hidden) == 150 and "progression_rate" in ward.hidden
    assert set(e["infection"]) <= {"susceptible", "infected", "recovered"}
    lengths = e.groupby("patient_id").size()
    assert lengths.max() == 80 and lengths.min() < 80  # fatal events end some sequences
    # CRP is a lab value: missing on most days of patients who are not infected
    assert e.loc[e["infection"] == "susceptible", "crp"].isna().mean() > 0.5
    assert e.loc[e["infection"] == "infected", "crp"].notna().all()


def test_patients_deterministic_and_driven_by_hidden_rates(ward):
    again = sim.patients(n_patients=150, n_steps=80, seed=0)
    pd.testing.assert_frame_equal(ward.events, again.events)
    other = sim.patients(n_patients=150, n_steps=80, seed=1)
    assert not other.events.equals(ward.events)
    e = ward.events.merge(ward.hidden, on="patient_id")
    per = e.groupby("patient_id").agg(hr=("heart_rate", "mean"), base=("baseline_hr", "first"))
    assert per["hr"].corr(per["base"]) > 0.7
    sev = ward.states.groupby("patient_id")["severity"].agg(lambda s: s.iloc[-1] - s.iloc[0])
    rate = ward.hidden.set_index("patient_id")["progression_rate"]
    treated = ward.events.groupby("patient_id")["treated"].max()
    untreated = treated.index[treated == 0]
    assert sev[untreated].corr(rate[untreated], method="spearman") > 0.3
    # infected patients run a fever
    temp = ward.events.groupby("infection")["temperature"].mean()
    assert temp["infected"] > temp["susceptible"] + 0.8


def test_patients_infection_spreads_within_wards():
    none = sim.patients(n_patients=120, n_steps=40, seed=2, contagion=0.0, import_rate=0.0)
    lots = sim.patients(n_patients=120, n_steps=40, seed=2, contagion=3.0, import_rate=0.0)
    share = {k: (s.events["infection"] != "susceptible").mean() for k, s in (("none", none), ("lots", lots))}
    assert share["lots"] > 2 * share["none"]


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [({"n_patients": 0}, "n_patients"), ({"lab_every": 0}, "lab_every"), ({"contagion": -1}, "contagion")],
)
def test_patients_reject_bad_arguments(kwargs, name):
    with pytest.raises(ParameterError, match=name):
        sim.patients(**kwargs)


def test_save_folder_and_file(tmp_path):
    f = sim.turbines(n_units=4, n_steps=10, seed=0)
    paths = f.save(tmp_path / "fleet")
    assert sorted(p.name for p in paths.values()) == ["events.csv", "hidden.csv", "static.csv"]
    back = pd.read_csv(paths["events"])
    assert back.shape == f.events.shape
    with pytest.raises(OutputError, match="already exists"):
        f.save(tmp_path / "fleet")
    f.save(tmp_path / "fleet", overwrite=True)
    paths = f.save(tmp_path / "fleet.parquet")
    assert paths["static"].name == "fleet.static.parquet"
    pd.testing.assert_frame_equal(pd.read_parquet(paths["static"]), f.static)
    (tmp_path / "fleet.parquet").unlink()
    with pytest.raises(OutputError, match=r"fleet\.static\.parquet"):  # a side table that exists blocks too
        f.save(tmp_path / "fleet.parquet")
    assert not (tmp_path / "fleet.parquet").exists()
    with pytest.raises(OutputError, match="give a folder"):
        f.save(tmp_path / "fleet.json")
    assert not any(p.name.endswith(".tmp") for p in tmp_path.iterdir())


def test_save_refuses_a_folder_with_other_files(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(OutputError, match="other files"):
        sim.turbines(n_units=2, n_steps=5).save(tmp_path / "mine", overwrite=True)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_simulate_exports():
    assert sorted(sim.__all__) == ["Simulation", "patients", "turbines"]
    assert np.all([hasattr(sim, n) for n in sim.__all__])
