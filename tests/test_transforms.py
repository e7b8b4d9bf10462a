import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from twinforge import DataError, Metadata
from twinforge.metadata import ColumnSpec
from twinforge.transforms import (
    BooleanTransform,
    CategoricalTransform,
    DatetimeTransform,
    NumericTransform,
    TableTransformer,
    transform_for,
)

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def round_trip(transform, s: pd.Series) -> pd.Series:
    transform.fit(s)
    encoded = transform.transform(s)
    assert encoded.shape == (len(s),)
    return transform.inverse_transform(encoded)


def assert_same(back: pd.Series, s: pd.Series) -> None:
    pd.testing.assert_series_equal(back, s.rename(s.name), check_exact=True, check_names=False)


def with_some_missing(values, draw_missing):
    return [None if m else v for v, m in zip(values, draw_missing, strict=False)]


floats = st.floats(allow_nan=False, allow_infinity=False, width=64, min_value=-1e12, max_value=1e12)


@SETTINGS
@given(
    st.lists(
        st.tuples(st.one_of(floats, st.decimals(places=2, min_value=-1e6, max_value=1e6).map(float)), st.booleans()),
        min_size=1,
        max_size=50,
    )
)
def test_continuous_round_trip_is_exact(rows):
    values = [v if not m else np.nan for v, m in rows]
    if all(np.isnan(values)):
        values[0] = 1.5
    s = pd.Series(values, dtype="float64", name="x")
    assert_same(round_trip(NumericTransform(), s), s)


@SETTINGS
@given(st.lists(st.integers(-(2**40), 2**40), min_size=1, max_size=50), st.sampled_from(["int64", "int32", "Int64"]))
def test_integer_round_trip_keeps_dtype(values, dtype):
    if dtype == "int32":
        values = [int(np.clip(v, -(2**31), 2**31 - 1)) for v in values]
    s = pd.Series(values, name="n").astype(dtype)
    if dtype == "Int64" and len(s) > 1:
        s.iloc[0] = pd.NA
    back = round_trip(NumericTransform(integer=True), s)
    assert_same(back, s)


@SETTINGS
@given(
    st.lists(st.one_of(st.none(), st.text(min_size=0, max_size=8)), min_size=1, max_size=40),
    st.sampled_from(["object", "category", "string"]),
)
def test_categorical_round_trip(values, dtype):
    if all(v is None for v in values):
        values[0] = "a"
    s = pd.Series(values, name="c", dtype=dtype)
    if dtype == "object":
        s = s.where(s.notna(), np.nan)
    back = round_trip(CategoricalTransform(), s)
    assert_same(back, s)


@SETTINGS
@given(st.lists(st.one_of(st.none(), st.booleans()), min_size=1, max_size=40), st.sampled_from(["bool", "boolean"]))
def test_boolean_round_trip(values, dtype):
    if dtype == "bool":
        values = [bool(v) for v in values]
    s = pd.Series(values, name="b", dtype=dtype)
    assert_same(round_trip(BooleanTransform(), s), s)


# DatetimeTransform is exact while (max - min) / resolution < 2**53: 285 years at microsecond resolution
timestamps = st.datetimes(
    min_value=pd.Timestamp("1900-01-01").to_pydatetime(), max_value=pd.Timestamp("2180-01-01").to_pydatetime()
)


@SETTINGS
@given(
    st.lists(st.tuples(timestamps, st.booleans()), min_size=1, max_size=40),
    st.sampled_from([None, "UTC", "Europe/Oslo", "America/New_York"]),
    st.sampled_from(["s", "ms", "us", "ns", "D", "h"]),
)
def test_datetime_round_trip_keeps_resolution_and_timezone(rows, tz, resolution):
    values = pd.Series([pd.NaT if m else pd.Timestamp(v).floor(resolution) for v, m in rows], dtype="datetime64[ns]")
    if values.isna().all():
        values.iloc[0] = pd.Timestamp("2000-01-01")
    s = values.dt.tz_localize(tz) if tz else values
    s = s.rename("when")
    t = DatetimeTransform()
    back = round_trip(t, s)
    assert_same(back, s)
    if len(s.dropna().unique()) > 1 and resolution in ("D", "h", "s"):
        step_ns = pd.Timedelta(1, unit=resolution).value
        assert t.step_ % step_ns == 0 or tz  # whole days are whole days in UTC only


def test_datetime_units_other_than_ns_and_string_formats():
    s = pd.Series(pd.to_datetime(["2021-03-04 10:00:00", None, "1850-01-01 00:00:01"]).astype("datetime64[s]"))
    assert_same(round_trip(DatetimeTransform(), s), s)
    text = pd.Series(["04/03/2021 10:00", np.nan, "31/12/1999 23:59"], dtype=object)
    back = round_trip(DatetimeTransform(datetime_format="%d/%m/%Y %H:%M"), text)
    assert_same(back, text)
    iso = pd.Series(["2013-01-01T10:00:00Z", "2013-01-02T11:00:00Z"])
    assert_same(round_trip(DatetimeTransform(datetime_format="%Y-%m-%dT%H:%M:%S%z"), iso), iso)


def test_inverse_respects_bounds_integers_and_resolution():
    s = pd.Series([3, 7, 10], dtype="int64")
    t = NumericTransform(integer=True).fit(s)
    out = t.inverse_transform(np.array([-100.0, 4.4, 4.6, 1e9]))
    assert out.dtype == "int64"
    assert out.tolist() == [3, 4, 5, 10]
    t = NumericTransform().fit(pd.Series([1.25, 2.5]))
    assert t.inverse_transform(np.array([1.2345678])).tolist() == [1.25]  # clipped, then 2 decimals
    d = DatetimeTransform().fit(pd.Series(pd.to_datetime(["2020-01-01", "2020-01-03"])))
    back = d.inverse_transform(np.array([0.4, 1.6, 99.0]))
    assert back.tolist() == [pd.Timestamp("2020-01-01"), pd.Timestamp("2020-01-03"), pd.Timestamp("2020-01-03")]


def test_integer_with_missing_values_becomes_nullable_only_when_needed():
    t = NumericTransform(integer=True).fit(pd.Series([1, 2, 3]))
    assert t.inverse_transform(np.array([1.0, 2.0])).dtype == "int64"
    assert t.inverse_transform(np.array([1.0, np.nan])).dtype == "Int64"


def test_categorical_levels_are_never_invented():
    s = pd.Series(["a", "b", "b", None])
    t = CategoricalTransform().fit(s)
    codes = np.random.default_rng(0).integers(-1, t.n_levels, 1000)
    assert set(t.inverse_transform(codes).dropna()) <= {"a", "b"}
    with pytest.raises(DataError, match="codes must lie in"):
        t.inverse_transform(np.array([5]))
    with pytest.raises(DataError, match="not seen in fit: \\['z'\\]"):
        t.transform(pd.Series(["a", "z"]))


def test_high_cardinality_categorical_uses_one_integer_per_value():
    n = 200_000
    s = pd.Series([f"level-{i}" for i in np.random.default_rng(0).integers(0, 100_000, n)])
    t = CategoricalTransform().fit(s)
    codes = t.transform(s)
    assert t.n_levels > 80_000
    assert codes.shape == (n,) and codes.dtype == np.int64  # no dense one-hot
    assert t.inverse_transform(codes).equals(s)


def test_missing_rate_is_recorded_per_column(mixed):
    tt = TableTransformer().fit(mixed, Metadata.detect(mixed))
    for name in ("income", "visits", "city"):
        assert tt.transforms_[name].missing_rate_ == pytest.approx(mixed[name].isna().mean())


def test_table_transformer_round_trip_and_state(mixed):
    meta = Metadata.detect(mixed)
    tt = TableTransformer().fit(mixed, meta)
    arrays = tt.transform(mixed)
    assert set(arrays) == set(meta.learned_columns)
    state = json.loads(json.dumps(tt.get_state()))  # state must be plain JSON
    again = TableTransformer.from_state(state)
    back = again.inverse_transform(again.transform(mixed), rng=np.random.default_rng(0))
    pd.testing.assert_frame_equal(back[meta.learned_columns], mixed[meta.learned_columns], check_exact=True)
    assert list(back.columns) == list(mixed.columns)


def test_generated_columns_keep_format_but_never_real_values(mixed):
    meta = Metadata.detect(mixed)
    tt = TableTransformer().fit(mixed, meta)
    out = tt.inverse_transform(tt.transform(mixed), rng=np.random.default_rng(1))
    assert out["customer_id"].is_unique and out["customer_id"].dtype == mixed["customer_id"].dtype
    assert out["email"].str.contains("@").all()
    assert not set(out["email"]) & set(mixed["email"])


def test_string_ids_follow_the_template_and_stay_unique_across_chunks():
    s = pd.Series([f"{i:04d}-ABCDE" for i in range(50)], name="account")
    t = transform_for(ColumnSpec("id")).fit(s)
    rng = np.random.default_rng(0)
    a = t.generate(1000, rng, offset=0)
    b = t.generate(1000, rng, offset=1000)
    both = pd.concat([a, b])
    assert both.is_unique
    assert both.str.fullmatch(r"\d{4}-[A-Z]{5}").all()
