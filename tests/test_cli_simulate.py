"""``twinforge simulate``: tables written atomically, exit code 2 on bad input."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from twinforge.cli import app

runner = CliRunner()


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_simulate_turbines_to_a_folder():
    result = runner.invoke(app, ["simulate", "turbines", "--units", "6", "--steps", "30", "--seed", "1", "--out", "f"])
    assert result.exit_code == 0, result.output
    events = pd.read_csv("f/events.csv")
    static = pd.read_csv("f/static.csv")
    assert events["unit_id"].nunique() == 6 and len(events) == 180
    assert len(static) == 6 and len(pd.read_csv("f/hidden.csv")) == 6
    n = int(events["failure"].sum())
    assert f"{n:,} failure{'' if n == 1 else 's'} (the failure channel)" in result.output
    again = runner.invoke(app, ["simulate", "turbines", "--units", "6", "--steps", "30", "--seed", "1", "--out", "g"])
    assert again.exit_code == 0
    pd.testing.assert_frame_equal(events, pd.read_csv("g/events.csv"))


def test_simulate_patients_to_a_parquet_file():
    result = runner.invoke(app, ["simulate", "patients", "--units", "8", "--steps", "12", "--out", "ward.parquet"])
    assert result.exit_code == 0, result.output
    assert pd.read_parquet("ward.parquet")["patient_id"].nunique() == 8
    assert len(pd.read_parquet("ward.static.parquet")) == 8
    n = int(pd.read_parquet("ward.parquet")["failure"].sum())
    assert f"{n:,} adverse event" in result.output and "failure events" not in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["simulate", "turbines", "--units", "0", "--out", "x"], "--units must be an integer >= 1"),
        (["simulate", "patients", "--steps", "0", "--out", "x"], "--steps must be an integer >= 1"),
        (["simulate", "cars", "--out", "x"], "unknown simulation 'cars'"),
        (["simulate", "turbines", "--missing-rate", "2", "--out", "x"], "--missing-rate must be a number"),
        (["simulate", "turbines", "--out", "x.json"], "give a folder"),
        (["simulate", "patients", "--start", "soon", "--out", "x"], "must be a date such as '2024-01-01', got 'soon'"),
        (["simulate", "turbines", "--out", "missing/x.csv"], "does not exist"),
    ],
)
def test_simulate_bad_input_exits_2(args, message):
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_simulate_refuses_to_overwrite(in_tmp):
    args = ["simulate", "turbines", "--units", "2", "--steps", "5", "--out", "f.csv"]
    assert runner.invoke(app, args).exit_code == 0
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and "already exists" in result.stderr
    assert runner.invoke(app, [*args, "--overwrite"]).exit_code == 0
    assert sorted(p.name for p in in_tmp.iterdir()) == ["f.csv", "f.hidden.csv", "f.static.csv"]
