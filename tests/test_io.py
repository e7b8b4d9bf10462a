"""Reading and writing tables (twinforge.io) and the on-disk model format, through the public API."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import twinforge
from twinforge.errors import DataError, ModelFileError, OutputError, ParameterError
from twinforge.io import read_table, write_chunks, write_table


def small_table(n: int = 6) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": np.arange(1, n + 1, dtype="int64"),
            "price": np.linspace(0.5, 9.5, n),
            "city": (["Oslo", "Rome", "Lima"] * n)[:n],
            "active": [i % 2 == 0 for i in range(n)],
        }
    )


def fit_table(n: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 90, n)
    income = np.round(1000 + 40 * age + rng.normal(0, 150, n), 2)
    income[rng.random(n) < 0.1] = np.nan
    city = rng.choice(["Oslo", "Rome", "Lima"], n).astype(object)
    city[rng.random(n) < 0.05] = None
    return pd.DataFrame({"age": age, "income": income, "city": city})


def leftovers(folder: Path, keep: set[str]) -> list[str]:
    """Files in ``folder`` other than ``keep`` (temporary files of a failed atomic write)."""
    return sorted(p.name for p in folder.iterdir() if p.name not in keep)


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# ------------------------------------------------------------------------------------------- read_table
@pytest.mark.parametrize("name", ["t.csv", "t.csv.gz", "t.tsv", "t.parquet"])
def test_read_table_file_formats(tmp_path, name):
    df = small_table()
    path = tmp_path / name
    if name.endswith(".parquet"):
        df.to_parquet(path, index=False)
    else:
        df.to_csv(path, sep="\t" if name.endswith(".tsv") else ",", index=False)
    got = read_table(path)
    pd.testing.assert_frame_equal(got, df)
    pd.testing.assert_frame_equal(read_table(str(path)), df)


def test_read_table_tsv_is_split_on_tabs(tmp_path):
    path = tmp_path / "t.tsv"
    path.write_text("a\tb,c\n1\tx,y\n")
    got = read_table(path)
    assert list(got.columns) == ["a", "b,c"]
    assert got.loc[0, "b,c"] == "x,y"


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    path = tmp_path / "shop.db"
    with sqlite3.connect(path) as con:
        small_table().to_sql("customers", con, index=False)
    return f"sqlite:///{path}"


def test_read_table_sql_table(sqlite_url):
    got = read_table(sqlite_url, table="customers")
    expected = small_table()
    assert list(got.columns) == list(expected.columns)
    assert got["id"].tolist() == expected["id"].tolist()
    assert got["city"].tolist() == expected["city"].tolist()
    np.testing.assert_allclose(got["price"], expected["price"])


def test_read_table_sql_query(sqlite_url):
    got = read_table(sqlite_url, query="SELECT id, city FROM customers WHERE id > 4 ORDER BY id")
    assert list(got.columns) == ["id", "city"]
    assert got["id"].tolist() == [5, 6]


def test_read_table_passes_a_dataframe_through():
    df = small_table()
    pd.testing.assert_frame_equal(read_table(df), df)


@pytest.mark.parametrize("data", [[1, 2, 3], {"a": [1, 2]}, np.zeros((3, 2)), None])
def test_fit_on_data_that_is_not_a_table_names_what_to_give(data):
    with pytest.raises(ParameterError, match=r"expected a DataFrame, a file path or a SQL URL, got \w+"):
        twinforge.create("copula").fit(data)


def test_read_table_refuses_an_empty_dataframe():
    with pytest.raises(DataError, match="no rows"):
        read_table(small_table().iloc[:0])


def _mkdir(path: Path) -> Path:
    path.mkdir()
    return path


def _write_bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("make", "needle"),
    [
        pytest.param(lambda d: d / "nope.csv", "not found", id="missing-file"),
        pytest.param(lambda d: _mkdir(d / "folder.csv"), "directory", id="directory"),
        pytest.param(lambda d: _write_bytes(d / "t.xlsx", b"PK\x03\x04"), ".xlsx", id="unknown-extension"),
        pytest.param(lambda d: _write_bytes(d / "empty.csv", b""), "empty", id="empty-file"),
        pytest.param(lambda d: _write_bytes(d / "header.csv", b"a,b,c\n"), "no rows", id="header-only"),
        # pandas would silently rename the second 'a' to 'a.1'
        pytest.param(
            lambda d: _write_bytes(d / "twice.csv", b"a,b,a\n1,2,3\n"),
            "more than one column named 'a'",
            id="repeated-header",
        ),
        pytest.param(lambda d: _write_bytes(d / "bad.parquet", b"PAR1 not parquet PAR1"), "parquet", id="corrupt"),
    ],
)
def test_read_table_bad_files_raise_data_error_naming_the_file(tmp_path, make, needle):
    path = make(tmp_path)
    with pytest.raises(DataError) as info:
        read_table(path)
    message = str(info.value)
    assert path.name in message
    assert needle in message


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"table": "customers", "query": "SELECT * FROM customers"}],
    ids=["neither", "both"],
)
def test_read_table_sql_needs_exactly_one_of_table_and_query(sqlite_url, kwargs):
    with pytest.raises(ParameterError) as info:
        read_table(sqlite_url, **kwargs)
    assert "table" in str(info.value)
    assert "query" in str(info.value)


def test_read_table_sql_missing_table(sqlite_url):
    with pytest.raises(DataError, match="no_such_table"):
        read_table(sqlite_url, table="no_such_table")


def test_read_table_table_argument_on_a_file_is_refused(tmp_path):
    path = tmp_path / "t.csv"
    small_table().to_csv(path, index=False)
    with pytest.raises(ParameterError, match="table"):
        read_table(path, table="customers")


# ------------------------------------------------------------------------------------------- writing
def test_write_table_csv_round_trip(tmp_path):
    df = small_table()
    out = write_table(df, tmp_path / "out.csv")
    assert out == tmp_path / "out.csv"
    back = pd.read_csv(out)
    pd.testing.assert_frame_equal(back, df)
    assert back.dtypes.to_dict() == {
        "id": np.dtype("int64"),
        "price": np.dtype("float64"),
        "city": np.dtype("object"),
        "active": np.dtype("bool"),
    }


def test_write_table_csv_gz_and_tsv_round_trip(tmp_path):
    df = small_table()
    pd.testing.assert_frame_equal(read_table(write_table(df, tmp_path / "out.csv.gz")), df)
    tsv = write_table(df, tmp_path / "out.tsv")
    assert "\t" in tsv.read_text().splitlines()[0]
    pd.testing.assert_frame_equal(read_table(tsv), df)


def test_write_table_parquet_round_trip_keeps_dtypes(tmp_path):
    df = pd.DataFrame(
        {
            "i": np.array([1, 2, 3], dtype="int64"),
            "nullable": pd.array([1, None, 3], dtype="Int64"),
            "f": [0.5, np.nan, 2.25],
            "s": ["a", None, "c"],
            "b": [True, False, True],
            "when": pd.to_datetime(["2020-01-01 00:00", "2021-06-30 12:00", None]),
            "cat": pd.Categorical(["x", "y", "x"], categories=["y", "x", "z"]),
        }
    )
    back = pd.read_parquet(write_table(df, tmp_path / "out.parquet"))
    pd.testing.assert_frame_equal(back, df)
    assert list(back["cat"].cat.categories) == ["y", "x", "z"]


@pytest.mark.parametrize("name", ["out.csv", "out.parquet"])
def test_write_table_refuses_existing_output_and_keeps_it(tmp_path, name):
    target = tmp_path / name
    target.write_bytes(b"precious")
    with pytest.raises(OutputError, match="already exists"):
        write_table(small_table(), target)
    assert target.read_bytes() == b"precious"
    assert leftovers(tmp_path, {name}) == []


@pytest.mark.parametrize("name", ["out.csv", "out.parquet"])
def test_write_table_overwrite_replaces(tmp_path, name):
    target = tmp_path / name
    target.write_bytes(b"old")
    write_table(small_table(), target, overwrite=True)
    pd.testing.assert_frame_equal(read_table(target), small_table())


@pytest.mark.parametrize("overwrite", [False, True])
def test_write_table_refuses_an_input_as_output(tmp_path, overwrite):
    (tmp_path / "dir").mkdir()
    source = tmp_path / "dir" / "file.csv"
    small_table(3).to_csv(source, index=False)
    before = source.read_bytes()
    for spelling in (source, tmp_path / "dir" / ".." / "dir" / "file.csv"):
        with pytest.raises(OutputError, match="input"):
            write_table(small_table(), spelling, overwrite=overwrite, inputs=[source])
    assert source.read_bytes() == before


def test_write_table_refuses_an_input_spelled_with_a_different_relative_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "dir").mkdir()
    small_table(3).to_csv("dir/file.csv", index=False)
    before = Path("dir/file.csv").read_bytes()
    with pytest.raises(OutputError, match="input"):
        write_table(small_table(), "dir/../dir/file.csv", overwrite=True, inputs=["dir/file.csv"])
    with pytest.raises(OutputError, match="input"):
        write_table(small_table(), tmp_path / "dir" / "file.csv", overwrite=True, inputs=["./dir/file.csv"])
    assert Path("dir/file.csv").read_bytes() == before


def test_write_table_refuses_a_missing_folder(tmp_path):
    target = tmp_path / "no" / "such" / "out.csv"
    with pytest.raises(OutputError) as info:
        write_table(small_table(), target)
    assert "does not exist" in str(info.value)
    assert str(target.parent) in str(info.value)
    assert not (tmp_path / "no").exists()


def test_write_table_unknown_format_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match=r"\.xlsx"):
        write_table(small_table(), tmp_path / "out.xlsx")
    assert leftovers(tmp_path, set()) == []


def _failing_chunks(df: pd.DataFrame):
    yield df
    raise RuntimeError("generator broke mid-way")


@pytest.mark.parametrize("name", ["out.csv", "out.csv.gz", "out.parquet"])
def test_write_chunks_is_atomic_when_the_chunks_fail(tmp_path, name):
    target = tmp_path / name
    with pytest.raises(RuntimeError, match="mid-way"):
        write_chunks(_failing_chunks(small_table()), target)
    assert not target.exists()
    assert leftovers(tmp_path, set()) == []


@pytest.mark.parametrize("name", ["out.csv", "out.parquet"])
def test_write_chunks_failure_keeps_the_old_output_when_overwriting(tmp_path, name):
    target = tmp_path / name
    target.write_bytes(b"old content")
    with pytest.raises(RuntimeError, match="mid-way"):
        write_chunks(_failing_chunks(small_table()), target, overwrite=True)
    assert target.read_bytes() == b"old content"
    assert leftovers(tmp_path, {name}) == []


@pytest.mark.parametrize("missing", [None, np.nan], ids=["None", "NaN"])
def test_write_chunks_parquet_text_column_missing_in_first_chunk(tmp_path, missing):
    first = pd.DataFrame({"x": [1, 2], "note": pd.Series([missing, missing], dtype=object)})
    second = pd.DataFrame({"x": [3, 4, 5], "note": pd.Series(["a", None, "c"], dtype=object)})
    target = write_chunks([first, second], tmp_path / "out.parquet")
    back = pd.read_parquet(target)
    assert back["x"].tolist() == [1, 2, 3, 4, 5]
    assert back["x"].dtype == np.dtype("int64")
    assert back["note"].dtype == np.dtype("object")
    assert back["note"].isna().tolist() == [True, True, False, True, False]
    assert back["note"].dropna().tolist() == ["a", "c"]


@pytest.mark.parametrize("name", ["out.csv", "out.parquet"])
def test_write_chunks_streams_all_chunks_and_reports_rows(tmp_path, name):
    full = small_table(10)
    chunks = [full.iloc[:3], full.iloc[3:8], full.iloc[8:]]
    seen: list[int] = []
    target = write_chunks(iter(chunks), tmp_path / name, on_chunk=seen.append)
    assert seen == [3, 5, 2]
    assert sum(seen) == len(full)
    back = read_table(target)
    pd.testing.assert_frame_equal(back, full.reset_index(drop=True))


@pytest.mark.skipif(os.name == "nt", reason="POSIX permissions")
def test_written_table_has_the_usual_file_permissions(tmp_path):
    # a plain open() honours the umask (0o644 for umask 022); the atomic writer must not narrow it to 0o600
    target = write_table(small_table(), tmp_path / "out.csv")
    assert oct(target.stat().st_mode & 0o777) == oct(0o666 & ~current_umask())


# ------------------------------------------------------------------------------------------- model files
@pytest.fixture
def fitted():
    return twinforge.create("copula", seed=0).fit(fit_table())


@pytest.fixture
def saved(tmp_path, fitted) -> Path:
    path = tmp_path / "model"
    fitted.save(path)
    return path


def test_save_writes_json_and_weights_and_load_round_trips(saved, fitted):
    assert sorted(p.name for p in saved.iterdir()) == ["model.json", "weights.npz"]
    doc = json.loads((saved / "model.json").read_text())
    assert doc["format"] == "twinforge-model"
    assert doc["model"] == "copula"
    loaded = twinforge.load(saved)
    pd.testing.assert_frame_equal(loaded.sample(100, seed=1), fitted.sample(100, seed=1))


def _edit_json(path: Path, **changes) -> None:
    doc = json.loads((path / "model.json").read_text())
    doc.update(changes)
    (path / "model.json").write_text(json.dumps(doc))


def _flip_bytes(path: Path) -> None:
    blob = bytearray((path / "weights.npz").read_bytes())
    middle = len(blob) // 2
    for i in range(middle, middle + 8):
        blob[i] ^= 0xFF
    (path / "weights.npz").write_bytes(bytes(blob))


@pytest.mark.parametrize(
    ("damage", "needle"),
    [
        pytest.param(lambda p: (p / "model.json").unlink(), "no model.json", id="no-model-json"),
        pytest.param(lambda p: (p / "model.json").write_text("{not json"), "not valid JSON", id="invalid-json"),
        pytest.param(lambda p: (p / "model.json").write_text('{"name": "x"}'), "format tag", id="foreign-json"),
        pytest.param(lambda p: _edit_json(p, format="sdv-model"), "format tag", id="foreign-tag"),
        pytest.param(lambda p: _edit_json(p, format_version=999), "upgrade", id="too-new"),
        pytest.param(_flip_bytes, "checksum", id="weights-corrupted"),
        pytest.param(lambda p: (p / "weights.npz").unlink(), "weights.npz is missing", id="weights-deleted"),
    ],
)
def test_load_bad_model_dir_raises_model_file_error(saved, damage, needle):
    damage(saved)
    with pytest.raises(ModelFileError) as info:
        twinforge.load(saved)
    assert needle in str(info.value)
    assert "model" in str(info.value)


def test_load_missing_dir(tmp_path):
    with pytest.raises(ModelFileError, match="not found"):
        twinforge.load(tmp_path / "nowhere")


def test_load_dir_of_something_else(tmp_path):
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "data.csv").write_text("a\n1\n")
    with pytest.raises(ModelFileError, match=r"model\.json"):
        twinforge.load(tmp_path / "other")


def test_save_refuses_an_existing_dir_and_leaves_it(saved, fitted):
    before = {p.name: p.read_bytes() for p in saved.iterdir()}
    with pytest.raises(OutputError, match="already exists"):
        fitted.save(saved)
    assert {p.name: p.read_bytes() for p in saved.iterdir()} == before


def test_save_refuses_to_replace_a_folder_that_is_not_a_model(tmp_path, fitted):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "cat.jpg").write_bytes(b"meow")
    with pytest.raises(OutputError, match="not a twinforge model"):
        fitted.save(folder, overwrite=True)
    assert (folder / "cat.jpg").read_bytes() == b"meow"


def test_save_overwrite_replaces_and_loads_identically(saved):
    other = twinforge.create("copula", seed=5).fit(fit_table(seed=3))
    other.save(saved, overwrite=True)
    loaded = twinforge.load(saved)
    pd.testing.assert_frame_equal(loaded.sample(200, seed=4), other.sample(200, seed=4))
    assert loaded.get_params()["seed"] == 5
    assert leftovers(saved.parent, {"model"}) == []
    assert sorted(p.name for p in saved.iterdir()) == ["model.json", "weights.npz"]


def test_save_refuses_a_missing_parent(tmp_path, fitted):
    with pytest.raises(OutputError, match="does not exist"):
        fitted.save(tmp_path / "no" / "model")


@pytest.mark.skipif(os.name == "nt", reason="POSIX permissions")
def test_saved_model_dir_has_the_usual_permissions(saved):
    # mkdtemp() creates 0o700; a saved model should be as readable as any directory the user creates
    assert oct(saved.stat().st_mode & 0o777) == oct(0o777 & ~current_umask())
    assert oct((saved / "model.json").stat().st_mode & 0o777) == oct(0o666 & ~current_umask())


def test_read_table_refuses_a_dataframe_with_a_repeated_column_name():
    df = pd.DataFrame([[1, 2, 3]], columns=["a", "b", "a"])
    with pytest.raises(DataError, match="more than one column named 'a'"):
        read_table(df)
