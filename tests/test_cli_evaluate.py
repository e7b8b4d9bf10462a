"""``twinforge evaluate`` on the command line: writes both files, never overwrites by surprise, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ._evaluate_data import make_people
from .test_cli import assert_user_error, run

ROWS = 300


@pytest.fixture(autouse=True)
def tables(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    make_people(ROWS, seed=0).to_csv("train.csv", index=False)
    make_people(ROWS, seed=1).to_csv("holdout.csv", index=False)
    make_people(ROWS, seed=2).to_parquet("synthetic.parquet", index=False)
    return tmp_path


BASE = ("evaluate", "--real", "train.csv", "--synthetic", "synthetic.parquet")


def test_writes_json_and_html_and_prints_the_summary():
    result = run(
        *BASE,
        "--holdout",
        "holdout.csv",
        "--target",
        "bought",
        "--sensitive",
        "region",
        "--sensitive",
        "spend",
        "--json",
        "scores.json",
        "--report",
        "report.html",
        "--seed",
        "3",
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(Path("scores.json").read_text())
    assert doc["settings"]["seed"] == 3
    assert doc["utility"]["target"] == "bought" and doc["utility"]["tstr"] is not None
    assert [a["column"] for a in doc["privacy"]["attribute_inference"]] == ["region", "spend"]
    assert "Plotly.newPlot" in Path("report.html").read_text()
    for needle in ("column_shapes", "dcr_share", "mia_auc", "tstr", "wrote scores.json and report.html"):
        assert needle in result.stdout
    assert "customer_id (id)" in result.stdout  # the excluded columns are reported


def test_refuses_to_overwrite_without_the_flag():
    args = (*BASE, "--json", "scores.json", "--report", "report.html")
    assert run(*args).exit_code == 0
    before = Path("scores.json").read_bytes()
    assert_user_error(run(*args), "'scores.json' already exists", "--overwrite")
    assert Path("scores.json").read_bytes() == before
    result = run(*args, "--overwrite", "--seed", "1")
    assert result.exit_code == 0, result.output
    assert json.loads(Path("scores.json").read_text())["settings"]["seed"] == 1


def test_an_existing_report_is_checked_before_any_work():
    Path("report.html").write_text("keep me")
    assert_user_error(run(*BASE, "--json", "scores.json", "--report", "report.html"), "'report.html' already exists")
    assert not Path("scores.json").exists()
    assert Path("report.html").read_text() == "keep me"


def test_never_overwrites_an_input():
    assert_user_error(run(*BASE, "--json", "train.csv", "--overwrite"), "is also an input")
    assert_user_error(
        run(*BASE, "--json", "x.json", "--report", "x.json", "--overwrite"), "--json and --report name the same file"
    )


def test_bad_input_exits_2_with_one_clear_message():
    import pandas as pd

    pd.read_parquet("synthetic.parquet").drop(columns=["age"]).to_csv("broken.csv", index=False)
    result = run("evaluate", "--real", "train.csv", "--synthetic", "broken.csv", "--json", "s.json")
    assert_user_error(result, "synthetic lacks column(s) ['age']")
    result = run(*BASE, "--holdout", "holdout.csv", "--target", "nope", "--json", "s.json")
    assert_user_error(result, "target 'nope' is not a column of real")
    result = run("evaluate", "--real", "missing.csv", "--synthetic", "synthetic.parquet", "--json", "s.json")
    assert_user_error(result, "real: file not found")
    Path("empty.csv").write_text("")
    result = run("evaluate", "--real", "train.csv", "--synthetic", "empty.csv", "--json", "s.json")
    assert_user_error(result, "synthetic:", "is empty")
    assert not Path("s.json").exists()


def test_without_holdout_utility_is_skipped_with_a_note():
    result = run(*BASE, "--target", "bought", "--json", "s.json")
    assert result.exit_code == 0, result.output
    assert "utility skipped: it needs a holdout" in result.stdout.replace("\n", " ")
    assert json.loads(Path("s.json").read_text())["utility"]["tstr"] is None
