"""The command line for time series: fit --entity-key/--time-key, sample --entities, personalize, forecast."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

import twinforge
from twinforge.cli import app

from ._sequence_data import make_fleet
from .test_cli import assert_user_error


def run(*args: str):
    return CliRunner().invoke(app, list(args))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A fitted fleet model (module scope: one fit for the whole file), its data and one unit's history."""
    folder = tmp_path_factory.mktemp("cli_sequence")
    fleet = make_fleet(24)
    events = folder / "events.csv"
    fleet.drop(columns="site").to_csv(events, index=False)
    fleet.groupby("unit", as_index=False)["site"].first().to_csv(folder / "units.csv", index=False)
    fleet[fleet.unit == 3].to_csv(folder / "unit3.csv", index=False)
    import twinforge

    model = twinforge.create("sequence", seed=0, epochs=4, hidden=16, static_epochs=2, progress=False)
    # the CLI's fit is tested below on a tiny budget; the shared model is fitted through the API for speed
    model.fit(fleet.drop(columns="site"), entity_key="unit", time_key="t", static=folder / "units.csv")
    model.save(folder / "fleet")
    return folder


def test_fit_with_keys_fits_the_sequence_model(workdir, monkeypatch):
    monkeypatch.chdir(workdir)
    # few epochs through the public parameters: --max-minutes keeps the command short
    result = run(
        "fit", "events.csv", "--entity-key", "unit", "--time-key", "t", "--static", "units.csv",
        "--out", "fitted", "--seed", "0", "--max-minutes", "0.05",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "fitted sequence" in result.stdout
    info = run("info", "fitted")
    assert info.exit_code == 0 and "sequence" in info.stdout


def test_metadata_that_declares_both_keys_fits_the_sequence_model(workdir, monkeypatch):
    monkeypatch.chdir(workdir)
    meta = twinforge.Metadata.detect(pd.read_csv("events.csv"))
    meta.entity_key, meta.time_index = "unit", "t"
    meta.to_json("keys.json")
    common = ["--metadata", "keys.json", "--max-minutes", "0.02", "--overwrite"]
    result = run("fit", "events.csv", "--out", "by_meta", *common)
    assert result.exit_code == 0, result.output
    assert twinforge.load(workdir / "by_meta").kind == "sequence"
    rows = run("fit", "events.csv", "--out", "rows", "--model", "auto", *common)  # asked for: a row model
    assert rows.exit_code == 0, rows.output
    assert twinforge.load(workdir / "rows").name == "auto"


def test_sample_entities_with_a_static_condition(workdir, monkeypatch):
    monkeypatch.chdir(workdir)
    result = run("sample", "fleet", "--entities", "5", "--out", "s.csv", "--seed", "1", "--where", "site=north")
    assert result.exit_code == 0, result.output
    out = pd.read_csv("s.csv")
    assert list(out.columns) == ["unit", "t", "site", "temp", "load", "status"]
    assert out["unit"].nunique() == 5 and set(out["site"]) == {"north"}
    again = run("sample", "fleet", "--entities", "5", "--out", "s2.csv", "--seed", "1", "--where", "site=north")
    assert again.exit_code == 0 and (workdir / "s.csv").read_bytes() == (workdir / "s2.csv").read_bytes()


def test_personalize_then_forecast_with_an_event(workdir, monkeypatch):
    monkeypatch.chdir(workdir)
    result = run("personalize", "fleet", "--history", "unit3.csv", "--out", "twin3", "--epochs", "5", "--seed", "0")
    assert result.exit_code == 0, result.output
    exact = run("personalize", "fleet", "--history", "unit3.csv", "--out", "twin3x", "--epochs", "4", "--exact-epochs")
    assert exact.exit_code == 0, exact.output
    assert twinforge.load(workdir / "twin3x").info_["epochs"] == 4
    bayes = run("personalize", "fleet", "--history", "unit3.csv", "--out", "twin3p", "--epochs", "0", "--posterior")
    assert bayes.exit_code == 0, bayes.output
    assert twinforge.load(workdir / "twin3p").z_draws_ is not None
    result = run(
        "forecast", "twin3", "--horizon", "6", "--paths", "7", "--out", "f.csv", "--seed", "0",
        "--event", "status=fault", "--within", "3",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    out = pd.read_csv("f.csv")
    assert list(out.columns) == ["unit", "path", "t", "temp", "load", "status"]
    assert sorted(out["path"].unique()) == list(range(7)) and (out["unit"] == 3).all()
    assert out["t"].min() == pd.read_csv("unit3.csv")["t"].max() + 1
    first3 = out[out.groupby("path").cumcount() < 3]
    assert first3.groupby("path")["status"].apply(lambda s: (s == "fault").any()).all()
    numeric = run("forecast", "twin3", "--horizon", "3", "--paths", "4", "--out", "g.csv", "--event", "temp=6..")
    assert numeric.exit_code == 0, numeric.output
    assert (pd.read_csv("g.csv").groupby("path")["temp"].max() >= 6).all()


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["fit", "events.csv", "--entity-key", "nope", "--time-key", "t", "--out", "m1"], ["'nope'", "not a column"]),
        (["fit", "events.csv", "--entity-key", "unit", "--model", "copula", "--out", "m2"], ["--model sequence"]),
        (["fit", "dup.csv", "--entity-key", "unit", "--time-key", "t", "--out", "m3"], ["share an"]),
        (["sample", "fleet", "--rows", "5", "--out", "x.csv"], ["--entities"]),
        (["sample", "fleet", "--out", "x.csv"], ["--entities is required"]),
        (["sample", "fleet", "--entities", "0", "--out", "x.csv"], ["positive"]),
        (["sample", "fleet", "--entities", "2", "--out", "x.csv", "--where", "temp=1"], ["'temp'", "--event temp="]),
        (["sample", "fleet", "--entities", "2", "--out", "x.csv", "--where", "__length__=5"], ["static attributes"]),
        (["personalize", "fleet", "--history", "bare3.csv", "--out", "t2"], ["'site'", "--static"]),
        (["tune-twins", "fleet", "--events", "events.csv", "--out", "t3"], ["'site'", "--static"]),
        (["tune-twins", "fleet", "--events", "events.csv", "--out", "t3", "--ks", ","], ["--ks is empty"]),
        (["personalize", "fleet", "--history", "bare3.csv", "--static", "events.csv", "--out", "t2"], ["rows"]),
        (["personalize", "fleet", "--history", "events.csv", "--out", "t1"], ["one entity"]),
        (["forecast", "fleet", "--horizon", "3", "--out", "x.csv"], ["not a twin"]),
        (["demo", "--model", "sequence"], ["demo --twins"]),
        (["sample", "twin3", "--rows", "3", "--out", "x.csv"], ["--entities N"]),
        (["sample", "twin3", "--out", "x.csv"], ["--entities must be a positive integer"]),
        (["impute", "twin3", "--data", "unit3.csv", "--out", "x.csv"], ["digital twin", "forecast"]),
        (["forecast", "twin3", "--horizon", "0", "--out", "x.csv"], ["--horizon must be"]),
        (["forecast", "twin3", "--horizon", "2", "--paths", "0", "--out", "x.csv"], ["--paths must be"]),
        (
            ["forecast", "twin3", "--horizon", "2", "--event", "status=fault", "--within", "0", "--out", "x.csv"],
            ["--within must be"],
        ),
        (
            ["forecast", "twin3", "--horizon", "2", "--event", "status=fault", "--within", "5", "--out", "x.csv"],
            ["--within must be at most the horizon (2 steps), got 5"],
        ),
        (
            ["sample", "twin3", "--entities", "2", "--event", "status=fault", "--within", "500", "--out", "x.csv"],
            ["--within must be at most the length", "got 500"],
        ),
        (["personalize", "fleet", "--history", "unit3.csv", "--out", "t4", "--level", "5"], ["--level must be"]),
        (["forecast", "twin3", "--horizon", "3", "--out", "x.csv", "--event", "status=melted"], ["not a level"]),
        (["forecast", "twin3", "--horizon", "3", "--out", "x.csv", "--event", "site=north"], ["not a channel"]),
    ],
)
def test_bad_input_exits_2_with_one_message(workdir, monkeypatch, args, needles):
    monkeypatch.chdir(workdir)
    if not (workdir / "twin3").exists():
        assert run("personalize", "fleet", "--history", "unit3.csv", "--out", "twin3", "--epochs", "0").exit_code == 0
    pd.DataFrame({"unit": [1, 1], "t": [0, 0], "v": [1.0, 2.0]}).to_csv("dup.csv", index=False)
    pd.read_csv("unit3.csv").drop(columns="site").to_csv("bare3.csv", index=False)
    message = assert_user_error(run(*args), *needles)
    assert "__start__" not in message and "np.int64" not in message


def test_sample_a_twin_gives_sequences_like_its_entity(workdir, monkeypatch):
    monkeypatch.chdir(workdir)
    if not (workdir / "twin3").exists():
        assert run("personalize", "fleet", "--history", "unit3.csv", "--out", "twin3", "--epochs", "0").exit_code == 0
    result = run("sample", "twin3", "--entities", "3", "--out", "like3.csv", "--seed", "0")
    assert result.exit_code == 0, result.output
    out = pd.read_csv("like3.csv")
    assert sorted(out["sequence"].unique()) == [0, 1, 2] and (out["unit"] == 3).all()
    expected = twinforge.load(workdir / "twin3").sample(3, seed=0)
    pd.testing.assert_frame_equal(out, expected, check_dtype=False)
    shown = " ".join(run("info", "twin3").stdout.replace("│", " ").split())
    assert "digital twin of entity 3, personalised on" in shown


def test_personalize_reads_static_attributes_from_the_static_table(workdir, monkeypatch):
    """The README's flow: events and static attributes in two tables, one entity's events as its history."""
    monkeypatch.chdir(workdir)
    pd.read_csv("unit3.csv").drop(columns="site").to_csv("bare3.csv", index=False)
    common = ["--epochs", "0", "--seed", "0", "--overwrite"]
    assert run("personalize", "fleet", "--history", "unit3.csv", "--out", "tw_cols", *common).exit_code == 0
    result = run("personalize", "fleet", "--history", "bare3.csv", "--static", "units.csv", "--out", "tw_st", *common)
    assert result.exit_code == 0, result.output
    site = pd.read_csv("unit3.csv")["site"].iloc[0]
    pd.DataFrame({"site": [site]}).to_csv("one.csv", index=False)  # one row, no key column
    result = run("personalize", "fleet", "--history", "bare3.csv", "--static", "one.csv", "--out", "tw_one", *common)
    assert result.exit_code == 0, result.output
    forecasts = [twinforge.load(workdir / d).forecast(4, paths=3, seed=0) for d in ("tw_cols", "tw_st", "tw_one")]
    pd.testing.assert_frame_equal(forecasts[0], forecasts[1])
    pd.testing.assert_frame_equal(forecasts[0], forecasts[2])


def test_tune_twins_then_personalize_with_the_tuned_policy(workdir, monkeypatch):
    monkeypatch.chdir(workdir)
    result = run(
        "tune-twins", "fleet", "--events", "events.csv", "--static", "units.csv", "--out", "tuned",
        "--ks", "6", "--horizon", "4", "--seed", "0",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "history of 6 steps:" in result.stdout
    import twinforge

    policy = twinforge.load(workdir / "tuned").twin_policy_
    assert policy["ks"] == [6] and policy["choices"][0]["name"] in policy["scores"]["6"]
    pd.read_csv("unit3.csv").iloc[:6].to_csv("unit3_short.csv", index=False)
    result = run("personalize", "tuned", "--history", "unit3_short.csv", "--out", "twin_tuned", "--seed", "0")
    assert result.exit_code == 0, result.output
    assert twinforge.load(workdir / "twin_tuned").info_["level"] == policy["choices"][0]["level"]
    bad = run("tune-twins", "fleet", "--events", "events.csv", "--out", "tuned2", "--ks", "six")
    assert_user_error(bad, "--ks")
    bad = run("tune-twins", "fleet", "--events", "events.csv", "--out", "tuned3")
    assert_user_error(bad, "lacks the static attributes", "site", "--static")


@pytest.mark.parametrize(
    ("command", "options"),
    [
        ("fit", ["--entity-key", "--time-key", "--static"]),
        ("sample", ["--entities", "--event", "--within"]),
        ("personalize", ["--history", "--out", "--epochs", "--level", "--exact-epochs", "--posterior", "--seed"]),
        ("tune-twins", ["--events", "--static", "--ks", "--horizon", "--out", "--seed"]),
        ("forecast", ["--horizon", "--paths", "--out", "--event", "--within", "--seed"]),
    ],
)
def test_help_names_the_time_series_options(command, options):
    result = run(command, "--help")
    assert result.exit_code == 0, result.output
    for option in options:
        assert option in result.stdout
