"""The ``twinforge`` command line, driven in-process with Typer's CliRunner.

Every test runs in its own ``tmp_path`` (as the working directory), so paths in messages stay short.
Click 8.2+ keeps stdout and stderr apart: ``result.stdout`` is the normal output, ``result.stderr`` the
error messages, and ``result.output`` both interleaved.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import twinforge
from twinforge.cli import app

ROWS = 300
KINDS = {
    "customer_id": "id",
    "income": "continuous",
    "age": "integer",
    "plan": "categorical",
    "signup": "datetime",
}


def make_customers(n: int = ROWS, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 90, n)
    income = np.round(1000 + 40 * age + rng.normal(0, 150, n), 2)
    income[rng.random(n) < 0.1] = np.nan
    plan = rng.choice(["basic", "plus", "pro"], n).astype(object)
    plan[rng.random(n) < 0.1] = None
    return pd.DataFrame(
        {
            "customer_id": rng.permutation(np.arange(10_000, 10_000 + n)),
            "income": income,
            "age": age,
            "plan": plan,
            "signup": pd.Timestamp("2021-01-01") + pd.to_timedelta(rng.integers(0, 900, n), unit="D"),
        }
    )


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def data_csv(in_tmp) -> str:
    make_customers().to_csv("customers.csv", index=False)
    return "customers.csv"


@pytest.fixture
def model_dir(data_csv) -> str:
    # the quick baseline: these tests are about the command line, not about a model
    result = run("fit", data_csv, "--out", "model", "--seed", "0", "--model", "copula")
    assert result.exit_code == 0, result.output
    return "model"


def run(*args: str):
    return CliRunner().invoke(app, list(args))


def assert_user_error(result, *needles: str, max_lines: int = 3) -> str:
    """Exit code 2, a short message on stderr that contains every needle, and no traceback."""
    assert result.exit_code == 2, f"exit {result.exit_code}: {result.output!r} {result.exception!r}"
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    message = result.stderr.strip()
    assert message.startswith("error:"), message
    assert 1 <= len(message.splitlines()) <= max_lines, message
    for needle in needles:
        assert needle in message, f"{needle!r} not in {message!r}"
    return message


def shows_kind(output: str, column: str, kind: str) -> bool:
    """True if a Rich table row in ``output`` pairs ``column`` with ``kind``."""
    return re.search(rf"\b{re.escape(column)}\b[\s│|]+{re.escape(kind)}\b", output) is not None


def snapshot(folder: str | Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(Path(folder).iterdir())}


# ------------------------------------------------------------------------------------------- end to end
def test_fit_writes_a_model_dir(data_csv):
    result = run("fit", data_csv, "--out", "model", "--seed", "0")
    assert result.exit_code == 0, result.output
    assert "fitted auto on 300 rows" in result.stdout  # the default model
    assert sorted(p.name for p in Path("model").iterdir()) == ["model.json", "weights.npz"]


@pytest.mark.parametrize("name", ["synthetic.csv", "synthetic.csv.gz", "synthetic.parquet"])
def test_sample_writes_the_requested_rows_and_columns(model_dir, name):
    result = run("sample", model_dir, "--rows", "123", "--out", name, "--seed", "1")
    assert result.exit_code == 0, result.output
    assert "wrote 123 rows" in result.stdout
    fake = pd.read_parquet(name) if name.endswith(".parquet") else pd.read_csv(name)
    assert len(fake) == 123
    assert list(fake.columns) == list(KINDS)
    assert fake["customer_id"].is_unique
    assert set(fake["plan"].dropna()) <= {"basic", "plus", "pro"}
    assert fake["age"].between(18, 89).all()


@pytest.mark.parametrize("name", ["a.csv", "a.parquet"])
def test_sample_with_seed_is_byte_identical(model_dir, name):
    second = name.replace("a.", "b.")
    other = name.replace("a.", "c.")
    assert run("sample", model_dir, "-n", "200", "-o", name, "--seed", "7").exit_code == 0
    assert run("sample", model_dir, "-n", "200", "-o", second, "--seed", "7").exit_code == 0
    assert run("sample", model_dir, "-n", "200", "-o", other, "--seed", "8").exit_code == 0
    assert Path(name).read_bytes() == Path(second).read_bytes()
    assert Path(name).read_bytes() != Path(other).read_bytes()


def test_info_shows_model_rows_and_column_kinds(model_dir):
    result = run("info", model_dir)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert re.search(r"model\W+copula", out)
    assert "300 rows x 5 columns" in out
    assert "seed=0" in out
    wrong = {c: k for c, k in KINDS.items() if not shows_kind(out, c, k)}
    assert not wrong, f"info does not show these kinds {wrong}:\n{out}"
    assert "primary_key=customer_id" in out


def test_info_lists_the_default_models_derived_columns():
    rng = np.random.default_rng(0)
    a, b = np.round(rng.normal(50, 10, 400), 1), np.round(rng.normal(20, 5, 400), 1)
    pd.DataFrame({"a": a, "b": b, "total": np.round(a + b, 1)}).to_csv("sums.csv", index=False)
    assert run("fit", "sums.csv", "--out", "m", "--seed", "0", "--param", "epochs=1").exit_code == 0
    result = run("info", "m")
    assert result.exit_code == 0, result.output
    assert re.search(r"derived \(computed from other columns when sampling\): total <- [ab], [ab]", result.stdout)
    # the network the capacity rule chose (64: under 1,000 rows) and its trunk passes per sampled row
    assert re.search(r"network\W+width 64, depth 2, [1-3] passes per row", result.stdout)
    assert run("fit", "sums.csv", "--out", "m2", "--model", "copula").exit_code == 0
    other = run("info", "m2").stdout
    assert "derived" not in other and "network" not in other  # a model without them says nothing of them


# ------------------------------------------------------------------------------------------- metadata
def test_metadata_prints_json_with_the_detected_kinds(data_csv):
    result = run("metadata", data_csv)
    assert result.exit_code == 0, result.output
    meta = json.loads(result.stdout)
    assert list(meta["columns"]) == list(KINDS)
    assert {c: spec["kind"] for c, spec in meta["columns"].items()} == KINDS
    assert meta["primary_key"] == "customer_id"


def test_metadata_out_writes_the_same_json(data_csv):
    printed = json.loads(run("metadata", data_csv).stdout)
    result = run("metadata", data_csv, "--out", "meta.json")
    assert result.exit_code == 0, result.output
    assert "saved to meta.json" in result.stdout
    assert json.loads(Path("meta.json").read_text()) == printed


def test_fit_uses_edited_metadata(data_csv):
    assert run("metadata", data_csv, "--out", "meta.json").exit_code == 0
    meta = json.loads(Path("meta.json").read_text())
    meta["columns"]["age"] = {"kind": "categorical"}
    Path("meta.json").write_text(json.dumps(meta))

    result = run("fit", data_csv, "--metadata", "meta.json", "--out", "model", "--seed", "0")
    assert result.exit_code == 0, result.output
    info = run("info", "model").stdout
    assert shows_kind(info, "age", "categorical"), info
    assert not shows_kind(info, "age", "integer")

    # a categorical column never invents a level: every sampled age is one seen in the data
    assert run("sample", "model", "-n", "500", "-o", "s.csv", "--seed", "0").exit_code == 0
    real_ages = set(pd.read_csv(data_csv)["age"])
    assert set(pd.read_csv("s.csv")["age"]) <= real_ages


@pytest.mark.parametrize(
    ("edit", "column"),
    [
        pytest.param(lambda m: m["columns"].pop("plan"), "plan", id="column-missing-from-metadata"),
        pytest.param(lambda m: m["columns"].update(ghost={"kind": "integer"}), "ghost", id="column-missing-from-data"),
    ],
)
def test_fit_with_metadata_not_matching_the_data(data_csv, edit, column):
    assert run("metadata", data_csv, "--out", "meta.json").exit_code == 0
    meta = json.loads(Path("meta.json").read_text())
    edit(meta)
    Path("meta.json").write_text(json.dumps(meta))
    result = run("fit", data_csv, "--metadata", "meta.json", "--out", "model")
    assert_user_error(result, repr(column), max_lines=4)
    assert not Path("model").exists()


# ------------------------------------------------------------------------------------------- models, demo, help
def test_models_lists_copula():
    result = run("models")
    assert result.exit_code == 0, result.output
    assert "copula" in result.stdout


def test_demo_prints_the_comparison():
    start = time.perf_counter()
    result = run("demo", "--max-minutes", "0.05")  # the default model, stopped by its budget after ~3 s
    assert result.exit_code == 0, result.output
    assert "with auto" in result.stdout and time.perf_counter() - start < 60
    for needle in ("numeric columns", "categorical columns", "tenure", "real", "synthetic"):
        assert needle in result.stdout


def test_demo_rows_and_out():
    result = run("demo", "--rows", "50", "--out", "demo.csv", "--model", "copula")
    assert result.exit_code == 0, result.output
    fake = pd.read_csv("demo.csv")
    assert len(fake) == 50
    assert "tenure" in fake.columns


@pytest.mark.parametrize(
    ("command", "options"),
    [
        ("fit", ["--out", "--model", "--seed", "--metadata", "--max-minutes", "--table", "--query", "--overwrite"]),
        ("sample", ["--rows", "--out", "--where", "--rebalance", "--temperature", "--seed", "--overwrite"]),
        ("impute", ["--data", "--out", "--seed", "--overwrite"]),
        ("metadata", ["--out", "--table", "--query", "--overwrite"]),
        ("info", ["MODEL_DIR"]),
        ("models", ["List the available models"]),
        ("demo", ["--model", "--rows", "--seed", "--out", "--overwrite"]),
    ],
)
def test_help_for_every_command(command, options):
    result = run(command, "--help")
    assert result.exit_code == 0, result.output
    assert f"twinforge {command}" in result.stdout
    for option in options:
        assert option in result.stdout, f"{option} missing from `{command} --help`"


def test_top_level_help_lists_every_command():
    result = run("--help")
    assert result.exit_code == 0, result.output
    for command in ("fit", "sample", "impute", "metadata", "info", "models", "demo"):
        assert command in result.stdout


# ------------------------------------------------------------------------------------------- bad input
def _write(name: str, text: str) -> str:
    Path(name).write_text(text)
    return name


@pytest.mark.parametrize(
    ("make", "needles"),
    [
        pytest.param(lambda: "nope.csv", ["nope.csv", "not found"], id="missing-file"),
        pytest.param(lambda: _write("data.xlsx", "x"), ["data.xlsx", ".xlsx"], id="unknown-format"),
        pytest.param(lambda: _write("empty.csv", ""), ["empty.csv", "empty"], id="empty-file"),
        pytest.param(lambda: _write("header.csv", "a,b\n"), ["header.csv", "no rows"], id="no-rows"),
        pytest.param(lambda: _write("nulls.csv", "a,b\n1,\n2,\n3,\n"), ["'b'", "entirely null"], id="null-column"),
    ],
)
@pytest.mark.parametrize("command", ["fit", "metadata"])
def test_bad_data_is_a_user_error(make, needles, command):
    data = make()
    args = ["fit", data, "--out", "model"] if command == "fit" else ["metadata", data]
    assert_user_error(run(*args), *needles)
    assert not Path("model").exists()


@pytest.mark.parametrize("rows", ["0", "-5"])
def test_sample_rows_must_be_positive(model_dir, rows):
    assert_user_error(run("sample", model_dir, "--rows", rows, "--out", "s.csv"), "--rows", rows)
    assert not Path("s.csv").exists()


def test_demo_rows_must_be_positive():
    assert_user_error(run("demo", "--rows", "0"), "--rows")


def test_rows_not_a_number_is_a_usage_error(model_dir):
    result = run("sample", model_dir, "--rows", "abc", "--out", "s.csv")
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert "'abc' is not a valid integer" in result.stderr
    assert not Path("s.csv").exists()


def test_sample_unknown_output_format(model_dir):
    assert_user_error(run("sample", model_dir, "-n", "5", "-o", "s.xlsx"), ".xlsx")
    assert not Path("s.xlsx").exists()


@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]], ids=["plain", "overwrite"])
def test_fit_refuses_to_write_over_its_data(data_csv, overwrite):
    before = Path(data_csv).read_bytes()
    assert_user_error(run("fit", data_csv, "--out", data_csv, *overwrite), "input")
    assert_user_error(run("fit", data_csv, "--out", "./sub/../customers.csv", *overwrite), "input")
    assert Path(data_csv).read_bytes() == before


def test_fit_refuses_to_write_over_its_metadata(data_csv):
    assert run("metadata", data_csv, "--out", "meta.json").exit_code == 0
    before = Path("meta.json").read_bytes()
    assert_user_error(run("fit", data_csv, "--metadata", "meta.json", "--out", "meta.json", "--overwrite"), "input")
    assert Path("meta.json").read_bytes() == before


def test_fit_overwrite_never_deletes_an_input_kept_inside_the_old_model_dir(model_dir, data_csv):
    # `twinforge metadata data.csv --out model/meta.json` then refitting into model/ is a natural workflow
    assert run("metadata", data_csv, "--out", f"{model_dir}/meta.json").exit_code == 0
    before = Path(model_dir, "meta.json").read_bytes()
    result = run("fit", data_csv, "--metadata", f"{model_dir}/meta.json", "--out", model_dir, "--overwrite")
    assert Path(model_dir, "meta.json").is_file(), "fit --overwrite deleted its own --metadata input"
    assert Path(model_dir, "meta.json").read_bytes() == before
    assert_user_error(result, "input")


@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]], ids=["plain", "overwrite"])
def test_sample_refuses_to_write_over_the_model(model_dir, overwrite):
    before = snapshot(model_dir)
    result = run("sample", model_dir, "-n", "5", "-o", f"{model_dir}/model.json", *overwrite)
    assert_user_error(result, "model.json")
    assert snapshot(model_dir) == before


def test_sample_refuses_the_model_dir_itself_as_output(data_csv):
    # a model directory whose name looks like a table file
    assert run("fit", data_csv, "--out", "model.parquet", "--seed", "0").exit_code == 0
    before = snapshot("model.parquet")
    result = run("sample", "model.parquet", "-n", "5", "-o", "model.parquet", "--overwrite")
    assert_user_error(result, "input")
    assert snapshot("model.parquet") == before


def test_sample_existing_output_needs_overwrite(model_dir):
    Path("s.csv").write_text("keep me\n")
    assert_user_error(run("sample", model_dir, "-n", "5", "-o", "s.csv"), "s.csv", "already exists", "--overwrite")
    assert Path("s.csv").read_text() == "keep me\n"

    result = run("sample", model_dir, "-n", "5", "-o", "s.csv", "--overwrite")
    assert result.exit_code == 0, result.output
    assert len(pd.read_csv("s.csv")) == 5


def test_fit_existing_model_dir_needs_overwrite(model_dir, data_csv):
    before = snapshot(model_dir)
    assert_user_error(run("fit", data_csv, "--out", model_dir, "--seed", "1"), "already exists", "--overwrite")
    assert snapshot(model_dir) == before

    result = run("fit", data_csv, "--out", model_dir, "--seed", "1", "--overwrite")
    assert result.exit_code == 0, result.output
    assert "seed=1" in run("info", model_dir).stdout


def test_metadata_and_demo_existing_output_need_overwrite(data_csv):
    Path("meta.json").write_text("{}")
    Path("demo.csv").write_text("x\n")
    assert_user_error(run("metadata", data_csv, "--out", "meta.json"), "already exists")
    assert_user_error(run("demo", "--rows", "5", "--out", "demo.csv"), "already exists")
    assert Path("meta.json").read_text() == "{}"
    assert Path("demo.csv").read_text() == "x\n"
    assert run("metadata", data_csv, "--out", "meta.json", "--overwrite").exit_code == 0
    assert json.loads(Path("meta.json").read_text())["columns"]


def test_sample_from_a_corrupted_model(model_dir):
    weights = Path(model_dir, "weights.npz")
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    assert_user_error(run("sample", model_dir, "-n", "5", "-o", "s.csv"), "weights.npz", "corrupted")
    assert not Path("s.csv").exists()


@pytest.mark.parametrize("command", ["sample", "info"])
def test_model_from_an_incompatible_version(model_dir, command):
    path = Path(model_dir, "model.json")
    doc = json.loads(path.read_text())
    doc["format_version"] = 999
    path.write_text(json.dumps(doc))
    args = ["sample", model_dir, "-n", "5", "-o", "s.csv"] if command == "sample" else ["info", model_dir]
    assert_user_error(run(*args), "999", "upgrade")
    assert not Path("s.csv").exists()


@pytest.mark.parametrize("command", ["sample", "info"])
def test_missing_model_dir(command):
    args = ["sample", "nowhere", "-n", "5", "-o", "s.csv"] if command == "sample" else ["info", "nowhere"]
    assert_user_error(run(*args), "nowhere", "not found")


@pytest.mark.parametrize("command", ["fit", "demo"])
def test_unknown_model_lists_the_available_ones(data_csv, command):
    args = ["fit", data_csv, "--out", "model", "--model", "nosuch"] if command == "fit" else ["demo", "-m", "nosuch"]
    assert_user_error(run(*args), "'nosuch'", "copula")
    assert not Path("model").exists()


# ------------------------------------------------------------------------------------------- streaming
def test_sample_many_rows_to_parquet_streams_chunks_and_keeps_ids_unique(model_dir):
    from twinforge.models import CHUNK_ROWS

    rows = 250_000
    assert rows > 2 * CHUNK_ROWS
    result = run("sample", model_dir, "--rows", str(rows), "--out", "big.parquet", "--seed", "3")
    assert result.exit_code == 0, result.output
    assert "wrote 250,000 rows" in result.stdout
    fake = pd.read_parquet("big.parquet")
    assert len(fake) == rows
    assert list(fake.columns) == list(KINDS)
    assert fake["customer_id"].is_unique
    assert fake["customer_id"].notna().all()
    assert [p.name for p in Path().iterdir() if p.name.endswith(".tmp")] == []


# ------------------------------------------------------------------------------------------- conditions, impute
@pytest.fixture(scope="module")
def auto_dir(tmp_path_factory) -> Path:
    """The default model, fitted once through the command line for the tests below."""
    folder = tmp_path_factory.mktemp("auto")
    make_customers(600).to_csv(folder / "customers.csv", index=False)
    result = run("fit", str(folder / "customers.csv"), "--out", str(folder / "model"), "--seed", "0")
    assert result.exit_code == 0, result.output
    return folder / "model"


def test_sample_where_equality_set_range_and_missing(auto_dir):
    args = ["sample", str(auto_dir), "-n", "200", "-o", "s.csv", "--seed", "0"]
    result = run(*args, "--where", "age=30..40", "--where", "plan=basic|pro", "--where", "income=..3000")
    assert result.exit_code == 0, result.output
    fake = pd.read_csv("s.csv")
    assert len(fake) == 200 and fake["age"].between(30, 40).all()
    assert set(fake["plan"]) == {"basic", "pro"}
    assert (fake["income"] <= 3000).all()

    assert run(*args, "--where", "age=35", "--where", "plan=", "--overwrite").exit_code == 0
    fake = pd.read_csv("s.csv")
    assert (fake["age"] == 35).all() and fake["plan"].isna().all()
    assert run(*args, "--where", "signup=2022-01-01..", "--where", "plan=null", "--overwrite").exit_code == 0
    fake = pd.read_csv("s.csv")
    assert (pd.to_datetime(fake["signup"]) >= "2022-01-01").all() and fake["plan"].isna().all()


def test_sample_rebalance_and_temperature(auto_dir):
    result = run(
        "sample", str(auto_dir), "-n", "300", "-o", "s.csv", "--rebalance", "plan=basic:0.5,pro:0.5", "--temperature",
        "0.8",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert pd.read_csv("s.csv")["plan"].value_counts().to_dict() == {"basic": 150, "pro": 150}


def test_sample_rebalance_with_the_missing_level(auto_dir):
    result = run("sample", str(auto_dir), "-n", "100", "-o", "s.csv", "--rebalance", "plan=null:0.3,pro:0.7")
    assert result.exit_code == 0, result.output
    plan = pd.read_csv("s.csv")["plan"]
    assert plan.isna().sum() == 30 and (plan == "pro").sum() == 70


def test_impute_fills_only_the_missing_cells(auto_dir):
    partial = make_customers(40, seed=3)
    partial.loc[::2, "age"] = np.nan
    partial.loc[1::4, "plan"] = None
    partial.to_csv("partial.csv", index=False)
    result = run("impute", str(auto_dir), "--data", "partial.csv", "--out", "filled.csv", "--seed", "0")
    assert result.exit_code == 0, result.output
    assert "filled" in result.stdout and "filled.csv" in result.stdout
    given, filled = pd.read_csv("partial.csv"), pd.read_csv("filled.csv")
    assert filled[["age", "plan"]].notna().all().all()
    kept = given.notna()
    pd.testing.assert_frame_equal(filled.where(kept), given.where(kept), check_dtype=False)


def test_workers_draw_the_same_rows_and_must_be_positive(auto_dir):
    """--workers changes the speed only: the same bytes from 1 and 2 threads (40,000 rows: three blocks)."""
    for workers in ("1", "2"):
        args = ["-n", "40000", "-o", f"s{workers}.csv", "--seed", "3", "--workers", workers, "--where", "age=20..60"]
        assert run("sample", str(auto_dir), *args).exit_code == 0
    assert Path("s1.csv").read_bytes() == Path("s2.csv").read_bytes()
    partial = make_customers(40, seed=3)
    partial.loc[::2, "age"] = np.nan
    partial.to_csv("partial.csv", index=False)
    for workers in ("1", "2"):
        args = ["--data", "partial.csv", "--out", f"f{workers}.csv", "--seed", "0", "--workers", workers]
        assert run("impute", str(auto_dir), *args).exit_code == 0
    assert Path("f1.csv").read_bytes() == Path("f2.csv").read_bytes()
    assert_user_error(run("sample", str(auto_dir), "-n", "5", "-o", "s.csv", "--workers", "0"), "--workers", "0")
    args = ["--data", "partial.csv", "--out", "f.csv", "--workers", "-1"]
    assert_user_error(run("impute", str(auto_dir), *args), "--workers", "-1")
    assert not Path("s.csv").exists() and not Path("f.csv").exists()


def test_fit_max_minutes(data_csv):
    result = run("fit", data_csv, "--out", "model", "--max-minutes", "0.001")
    assert result.exit_code == 0, result.output
    doc = json.loads(Path("model/model.json").read_text())
    assert doc["state"]["training"]["stopped"] == "time_budget"
    assert "stopped by the time budget (--max-minutes)" in " ".join(result.stdout.split())  # fit says so too
    shown = " ".join(run("info", "model").stdout.replace("│", " ").split())  # the table's cells, unwrapped
    assert "stopped by the time budget (--max-minutes)" in shown


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--where", "nosuch=1"], ["--where", "'nosuch'", "columns are"]),
        (["--where", "age"], ["--where", "col=value"]),
        (["--where", "age=abc"], ["'age'", "'abc' is not a number"]),
        (["--where", "plan=gold"], ["'plan'", "'gold' is not a level", "basic"]),
        (["--where", "age=1|2"], ["needs a categorical column"]),
        (["--where", "age=500..600"], ["--where 'age': no value the column can hold"]),  # was 'conditions'
        (["--where", "customer_id=10001"], ["--where: column 'customer_id' is id", "cannot be conditioned on"]),
        (["--rebalance", "plan=basic:0.5,pro"], ["--rebalance", "level:share"]),
        (["--rebalance", "plan=basic:0.5,gold:0.5"], ["'plan'", "'gold' is not a level", "basic"]),
        (["--where", "age=30", "--where", "age=40"], ["--where 'age' is given twice"]),
        (["--rebalance", "plan=basic:1", "--rebalance", "plan=pro:1"], ["--rebalance 'plan' is given twice"]),
        (["--where", "age=30.5"], ["'age'", "30.5 is more precise"]),
        (["--where", "age=-5"], ["'age'", "-5 lies outside"]),
        (["--rebalance", "plan=basic:0.7,pro:0.7"], ["add up to 1"]),
        (["--rebalance", "age=1:1"], ["only categorical"]),
        (["--temperature", "0"], ["--temperature must be a positive number"]),
        (["--seed", "-1"], ["--seed must be a non-negative integer"]),
    ],
)
def test_bad_conditions_are_user_errors(auto_dir, args, needles):
    message = assert_user_error(run("sample", str(auto_dir), "-n", "5", "-o", "s.csv", *args), *needles)
    assert "seed_data" not in message  # the command line has no seed_data
    assert not Path("s.csv").exists()


def test_impute_names_the_column_of_a_bad_cell(auto_dir):
    partial = make_customers(10, seed=3)
    partial["age"] = partial["age"].astype(object)
    partial.loc[2, "age"] = "old"
    partial.to_csv("bad.csv", index=False)
    message = assert_user_error(run("impute", str(auto_dir), "--data", "bad.csv", "--out", "f.csv"), "'age'", "old")
    assert "seed_data" not in message  # the user gave --data, not seed_data
    assert not Path("f.csv").exists()


def test_an_unwritable_output_is_a_user_error(auto_dir, monkeypatch):
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(twinforge.io.tempfile, "mkstemp", refuse)
    monkeypatch.setattr(twinforge.io.tempfile, "mkdtemp", refuse)
    assert_user_error(run("sample", str(auto_dir), "-n", "5", "-o", "s.csv"), "cannot write 's.csv'", "Permission")
    assert not Path("s.csv").exists()
    make_customers(50).to_csv("c.csv", index=False)
    assert_user_error(run("fit", "c.csv", "--out", "m", "--model", "copula"), "cannot write 'm'", "Permission")


def test_error_messages_keep_square_brackets(monkeypatch):
    """Rich markup must not eat "[sim]" from 'pip install "twinforge[sim]"', or "[dp]" from a column name."""
    import twinforge.simulate as sim

    def no_mesa(*args, **kwargs):
        raise twinforge.errors.ParameterError('the patient simulator needs Mesa: pip install "twinforge[sim]"')

    monkeypatch.setattr(sim, "patients", no_mesa)
    assert_user_error(run("simulate", "patients", "--out", "p.csv"), 'pip install "twinforge[sim]"')
    pd.DataFrame({"size[dp]": [1.0, 2.0, 3.0] * 20}).to_csv("b.csv", index=False)
    assert run("fit", "b.csv", "--out", "m", "--model", "copula").exit_code == 0
    assert_user_error(run("sample", "m", "-n", "5", "-o", "s.csv", "--where", "nosuch=1"), "size[dp]")
    assert "size[dp]" in run("info", "m").stdout
    result = run("sample", "m", "-n", "5", "-o", "s[dp].csv")
    assert result.exit_code == 0 and "s[dp].csv" in result.stdout and Path("s[dp].csv").exists()


def test_fit_refuses_a_folder_that_is_not_a_model_before_fitting(data_csv, monkeypatch):
    Path("photos").mkdir()
    (Path("photos") / "cat.jpg").write_bytes(b"meow")

    def no_fit(*args, **kwargs):
        raise AssertionError("fitted before checking --out")

    monkeypatch.setattr(twinforge.models.get_class("copula"), "fit", no_fit)
    result = run("fit", data_csv, "--out", "photos", "--model", "copula", "--overwrite")
    assert_user_error(result, "'photos' exists and is not a twinforge model")
    assert (Path("photos") / "cat.jpg").read_bytes() == b"meow"


@pytest.mark.parametrize(
    ("args", "needle"), [(["--max-minutes", "0"], "--max-minutes must be"), (["--seed", "-3"], "--seed must be")]
)
def test_fit_range_errors_name_the_option(data_csv, args, needle):
    assert_user_error(run("fit", data_csv, "--out", "m", *args), needle)


def test_a_table_file_given_as_the_model_dir(auto_dir, data_csv):
    for command in (["sample", data_csv, "-n", "5", "-o", "s.csv"], ["info", data_csv]):
        assert_user_error(run(*command), data_csv, "is a file, not a twinforge model directory")
    assert_user_error(run("info", str(auto_dir / "model.json")), "not a twinforge model directory")


def test_conditions_and_budget_on_a_model_without_them(model_dir, data_csv):
    result = run("sample", model_dir, "-n", "5", "-o", "s.csv", "--where", "age=30")
    assert_user_error(result, "does not support conditions", "auto")
    assert_user_error(run("fit", data_csv, "--out", "m2", "--model", "copula", "--max-minutes", "1"), "--max-minutes")
