"""Temporal evaluation of per-entity time series: metrics that reward the right thing, errors, report, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import twinforge
import twinforge.simulate as sim
from twinforge.errors import DataError, MetadataError, ParameterError
from twinforge.evaluate import temporal

SENSORS = ["wind_speed", "ambient_temp", "power_kw", "gearbox_temp", "vibration"]


@pytest.fixture(scope="module")
def fleet() -> pd.DataFrame:
    f = sim.turbines(n_units=60, n_steps=80, seed=0)
    return f.events.merge(f.static, on="unit_id")


@pytest.fixture(scope="module")
def fresh() -> pd.DataFrame:
    """Another fleet from the same simulator: what a perfect generator would produce."""
    f = sim.turbines(n_units=60, n_steps=80, seed=1)
    return f.events.merge(f.static, on="unit_id")


def shuffled_in_time(df: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """Each entity's rows in a random order: the same values, no dynamics."""
    rng = np.random.default_rng(seed)
    out = df.copy()
    channels = [*SENSORS, "status", "maintenance", "failure"]
    for _, idx in df.groupby("unit_id").indices.items():
        out.loc[out.index[idx], channels] = df.iloc[rng.permutation(idx)][channels].to_numpy()
    return out


def noise_like(df: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    out = df.copy()
    for c in SENSORS:
        out[c] = rng.normal(df[c].mean(), df[c].std(), len(df))
    return out


def scores(real, synthetic, **kwargs) -> dict:
    return temporal.temporal_fidelity(real, synthetic, "unit_id", "t", **kwargs)


def test_identical_data_scores_perfect(fleet):
    r = scores(fleet, fleet.sample(frac=1.0, random_state=3))  # row order must not matter
    assert r["autocorrelation_error"] == pytest.approx(0.0, abs=1e-12)
    assert r["cross_correlation_error"] == pytest.approx(0.0, abs=1e-12)
    assert r["discriminative_auc"] == pytest.approx(0.5)
    assert r["sequence_length"] == 1.0
    assert r["static_column_shapes"] == 1.0 and r["static_column_pair_trends"] == 1.0
    assert r["predictive_ratio"] > 0.9
    assert r["static_columns"] == ["model", "site", "rated_power_kw", "hub_height_m", "install_year"]
    assert "wind_speed" in r["numeric_channels"] and r["discrete_channels"] == ["status"]


def test_shuffled_in_time_scores_clearly_worse_on_autocorrelation(fleet, fresh):
    good = scores(fleet, fresh)
    bad = scores(fleet, shuffled_in_time(fresh))
    assert good["autocorrelation_error"] < 0.05
    assert bad["autocorrelation_error"] > 0.15
    assert bad["autocorrelation_error"] > 5 * good["autocorrelation_error"]
    assert bad["cross_correlation_error"] > good["cross_correlation_error"]
    wind = bad["autocorrelation"]["channels"]["wind_speed"]
    assert wind["real"][0] > 0.6 and abs(wind["synthetic"][0]) < 0.2
    # marginals and lengths are untouched by the shuffle
    assert bad["sequence_length"] == 1.0


def test_real_vs_noise_is_discriminated(fleet, fresh):
    assert scores(fleet, fresh)["discriminative_auc"] < 0.75
    r = scores(fleet, noise_like(fleet))
    assert r["discriminative_auc"] > 0.95
    # what gives the noise away: features of the dynamics (steps, autocorrelation), one of them alone nearly perfect
    telling = r["discriminative"]["telling_features"]
    assert len(telling) == 5 and abs(telling[0]["auc"] - 0.5) > 0.45
    assert any(t["feature"].endswith(("mean |step|", "lag-1 acf", "lag-2 acf")) for t in telling)
    assert r["predictive_ratio"] < 0.8  # next-step models trained on noise predict the real fleet badly


def test_sequence_lengths_and_static_fidelity_respond(fleet):
    short = fleet[fleet["t"] < 40 + fleet["unit_id"].str[-1].astype(int)]  # synthetic sequences 40..49 long
    r = temporal.sequence_lengths(fleet, short, "unit_id", "t")
    assert r["score"] == 0.0 and r["synthetic"]["max"] == 49 and r["real"]["mean"] == 80
    flipped = fleet.copy()
    flipped["site"] = "plains"
    out = scores(fleet, flipped)
    assert out["static_column_shapes"] < 0.9
    assert out["static"]["shapes"]["site"]["score"] < 0.7


def test_separate_static_tables_and_datetime_time_index(tmp_path):
    a = sim.turbines(n_units=20, n_steps=40, seed=0, start="2024-03-01")
    b = sim.turbines(n_units=20, n_steps=40, seed=1, start="2024-03-01")
    a.save(tmp_path / "a.csv")
    b.save(tmp_path / "b.csv")
    report = twinforge.evaluate(
        tmp_path / "a.csv",
        tmp_path / "b.csv",
        entity_key="unit_id",
        time_key="t",
        real_static=tmp_path / "a.static.csv",
        synthetic_static=tmp_path / "b.static.csv",
        parts=["temporal"],
        progress=False,
    )
    t = report.temporal
    assert t["static_columns"] == ["model", "site", "rated_power_kw", "hub_height_m", "install_year"]
    assert t["autocorrelation_error"] < 0.1 and t["sequence_length"] == 1.0
    assert report.to_dict()["settings"]["time_key"] == "t"


def test_one_static_table_beside_a_long_table_with_static_columns(tmp_path):
    """`twinforge sample` writes static attributes as columns; the real ones are often a separate table."""
    a = sim.turbines(n_units=20, n_steps=40, seed=0)
    b = sim.turbines(n_units=20, n_steps=40, seed=1)
    held = a.events[a.events.unit_id.isin(a.static.unit_id[15:])]
    train = a.events[~a.events.unit_id.isin(held.unit_id)]
    kwargs = {"entity_key": "unit_id", "time_key": "t", "parts": ["temporal"], "progress": False}
    merged = b.events.merge(b.static, on="unit_id")
    one = twinforge.evaluate(train, merged, held, real_static=a.static, **kwargs)
    columns = twinforge.evaluate(train.merge(a.static, on="unit_id"), merged, held.merge(a.static, on="unit_id"),
                                 **kwargs)  # fmt: skip
    assert {"model", "site", "rated_power_kw", "hub_height_m", "install_year"} <= set(one.temporal["static_columns"])
    for key in ("static_columns", "autocorrelation_error", "cross_correlation_error", "predictive_ratio",
                "static_column_shapes", "static_column_pair_trends"):  # fmt: skip
        assert one.temporal[key] == columns.temporal[key], key
    with pytest.raises(DataError, match=r"5 entities of holdout have no row in real_static \(e.g. 'WT00015'\)"):
        twinforge.evaluate(train, merged, held, real_static=a.static.iloc[:15], **kwargs)
    with pytest.raises(ParameterError, match="already has the columns"):
        twinforge.evaluate(train, merged, held, synthetic_static=b.static, **kwargs)


def test_patients_discrete_channels_use_agreement():
    a = sim.patients(n_patients=40, n_steps=30, seed=0)
    b = sim.patients(n_patients=40, n_steps=30, seed=1)
    r = temporal.autocorrelation(a.events, b.events, "patient_id", "day", lags=5)
    infection = r["channels"]["infection"]
    assert infection["statistic"] == "agreement" and len(infection["real"]) == 5
    assert infection["real"][0] > 0.8  # the infection state persists from day to day
    assert r["channels"]["heart_rate"]["statistic"] == "autocorrelation"


def test_evaluate_report_has_a_temporal_section(fleet, fresh, tmp_path):
    report = twinforge.evaluate(fleet, fresh, entity_key="unit_id", time_key="t", progress=False, lags=5)
    rows = {r["metric"]: r for r in report.summary if r["section"] == "temporal"}
    assert set(rows) == {
        "autocorrelation_error", "cross_correlation_error", "discriminative_auc", "predictive_ratio",
        "sequence_length", "static_column_shapes", "static_column_pair_trends",
    }  # fmt: skip
    assert rows["discriminative_auc"]["ideal"] == 0.5 and rows["autocorrelation_error"]["ideal"] == 0.0
    assert len(report.temporal["autocorrelation"]["channels"]["wind_speed"]["real"]) == 5
    assert "unit_id (id)" in report.notes[0]  # the entity key is not scored as a column
    doc = json.loads(report.to_json())
    assert doc["temporal"]["entity_key"] == "unit_id"
    html = report.to_html(tmp_path / "r.html").read_text()
    assert "Time series" in html and 'id="acf-0"' in html and 'id="xcorr-real"' in html


def test_metadata_keys_switch_temporal_on_and_plain_tables_stay_unchanged(fleet, fresh):
    meta = twinforge.Metadata.detect(fleet, entity_key="unit_id", time_index="t")
    report = twinforge.evaluate(fleet, fresh, metadata=meta, parts=["fidelity", "temporal"], progress=False)
    assert report.temporal["autocorrelation_error"] is not None
    assert meta.columns["unit_id"].kind == twinforge.Metadata.detect(fleet).columns["unit_id"].kind  # not mutated
    plain = twinforge.evaluate(fleet[SENSORS], fresh[SENSORS], parts=["fidelity"], progress=False)
    assert plain.temporal == {} and not any("temporal" in n for n in plain.notes)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"parts": ["temporal"]}, ParameterError, "needs entity_key and time_key"),
        ({"entity_key": "unit_id", "time_key": "when"}, ParameterError, "time_key 'when' is not a column"),
        ({"entity_key": "t", "time_key": "t"}, ParameterError, "two different columns"),
        ({"entity_key": "unit_id", "time_key": "t", "lags": 0}, ParameterError, "lags must be"),
        (
            {"entity_key": "unit_id", "time_key": "t", "real_static": pd.DataFrame({"id": [1]})},
            ParameterError,
            "real_static has no entity key column 'unit_id'",
        ),
        (
            {"entity_key": "unit_id", "time_key": "t", "synthetic_static": pd.DataFrame({"unit_id": ["x"]})},
            DataError,
            "entities of synthetic have no row in synthetic_static",
        ),
    ],
)
def test_bad_arguments(fleet, kwargs, error, message):
    with pytest.raises(error, match=message):
        twinforge.evaluate(fleet, fleet, progress=False, **kwargs)


def test_bad_sequences(fleet):
    dup = pd.concat([fleet, fleet.iloc[:3]])
    with pytest.raises(DataError, match=r"3 duplicate \(unit_id, t\) pairs"):
        scores(fleet, dup)
    gap = fleet.copy()
    gap.loc[5, "t"] = np.nan
    # the metadata check (entity key and time index set) or the temporal section's own check names it
    with pytest.raises((DataError, MetadataError), match=r"time column 't' (is missing in 1 rows|has 1 missing)"):
        scores(gap, fleet)
    static = fleet.groupby("unit_id").first().reset_index()[["unit_id", "site"]]
    with pytest.raises(DataError, match="no row for 1 entities"):
        scores(fleet, fleet, real_static=static.iloc[1:], synthetic_static=static)
    flat = fleet[["unit_id", "t", "site"]]
    with pytest.raises(DataError, match="no channel varies over time"):
        scores(flat, flat)


def test_cli_evaluate_time_series(tmp_path, fleet, fresh, monkeypatch):
    from twinforge.cli import app

    monkeypatch.chdir(tmp_path)
    fleet.to_csv("real.csv", index=False)
    shuffled_in_time(fresh).to_csv("synth.csv", index=False)
    runner = CliRunner()
    args = ["evaluate", "--real", "real.csv", "--synthetic", "synth.csv", "--json", "s.json"]
    result = runner.invoke(app, [*args, "--entity-key", "unit_id", "--time-key", "t", "--report", "r.html"])
    assert result.exit_code == 0, result.output
    doc = json.loads(Path("s.json").read_text())
    assert doc["temporal"]["autocorrelation_error"] > 0.15
    assert "autocorrelation_error" in result.stdout
    bad = runner.invoke(app, [*args, "--overwrite", "--entity-key", "unit", "--time-key", "t"])
    assert bad.exit_code == 2 and "entity_key 'unit' is not a column" in bad.stderr
    assert "Traceback" not in bad.output


def test_a_level_missing_from_synthetic_keeps_the_entity_features_aligned(fleet, fresh):
    # synthetic never shows the last levels of status: the feature columns of both sides must still line up
    fewer = fresh.assign(status=fresh["status"].replace({"maintenance": "idle", "repair": "idle"}))
    r = temporal.discriminative_auc(fleet, fewer, "unit_id", "t")
    assert 0.0 <= r <= 1.0
