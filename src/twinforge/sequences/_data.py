"""The data shape of per-entity time series, checked and split into its parts (no torch here).

A *long table* holds one row per measurement: an entity key, a time index (datetimes, or numbers such as an
integer step; spacing may be irregular and every entity may have its own length), and channels (numeric,
categorical or boolean, missing values allowed). Static attributes of each entity come either from a second table
with one row per entity (keyed by the entity key) or from columns of the long table that are constant within
every entity (detected, or named with ``static=[...]``).

:func:`split_events` checks all of this and raises one clear error for: a key or time column that is missing or
has missing values, time values of mixed types, duplicate (entity, time) pairs, rows not in time order within an
entity, a static table whose keys do not match the entities of the long table (including entities with no rows),
declared static columns that vary within an entity.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from twinforge.errors import DataError, ParameterError
from twinforge.io import read_table
from twinforge.metadata import Metadata

__all__ = ["SequenceData", "detect_keys", "split_events", "time_problems"]

_TIME_NAMES = re.compile(r"^(t|time|timestamp|ts|date|datetime|step|time_?idx|time_?index|cycle|period)$", re.I)
_ENTITY_NAMES = re.compile(r"(^|_)(id|key|unit|entity|instance|series|patient|device|machine)($|_id$|_)", re.I)


@dataclass
class SequenceData:
    """A long table split into its parts (see :func:`split_events`)."""

    events: pd.DataFrame  # entity key, time, channels; rows grouped by entity in time order
    static: pd.DataFrame  # entity key + static columns, one row per entity, in order of first appearance
    entity_key: str
    time_key: str
    time_kind: str  # "datetime" | "number"
    channels: list[str]
    static_columns: list[str]
    static_in_events: bool  # static columns came from the long table (kept in its column order on output)
    column_order: list[str]  # the long table's columns as given (events then static table)
    metadata: Metadata = field(repr=False, default=None)  # type: ignore[assignment]
    # kinds of the static columns, read on one row per entity; a kind the user declared wins (a PII column
    # declared as such stays PII even where detection would make it a category)
    static_metadata: Metadata = field(repr=False, default=None)  # type: ignore[assignment]

    @property
    def entities(self) -> np.ndarray:
        return self.static[self.entity_key].to_numpy()

    def lengths(self) -> np.ndarray:
        return self.events.groupby(self.entity_key, sort=False, observed=True).size().to_numpy()


def detect_keys(df: pd.DataFrame) -> tuple[str | None, str | None]:
    """Guess (entity key, time index) of a long table from column names and dtypes; None where unsure."""
    cols = [str(c) for c in df.columns]
    time = next((c for c in cols if pd.api.types.is_datetime64_any_dtype(df[c])), None)
    if time is None:
        time = next((c for c in cols if _TIME_NAMES.match(c)), None)
    entity = None
    for c in cols:
        if c == time or not _ENTITY_NAMES.search(c):
            continue
        n = df[c].nunique()
        if 1 <= n < len(df):
            entity = c
            break
    return entity, time


def time_problems(df: pd.DataFrame, entity_key: str, time_key: str) -> list[str]:
    """Problems of the (entity, time) structure of a long table: missing or mixed-type time, duplicate pairs,
    rows out of time order within an entity. Used by :meth:`Metadata.validate` and :func:`split_events`."""
    out: list[str] = []
    if entity_key not in df.columns or time_key not in df.columns:
        return out
    if df[entity_key].isna().any():
        out.append(
            f"entity_key {entity_key!r} has {int(df[entity_key].isna().sum())} missing values: fill or drop them"
        )
    try:
        values, _ = parse_time(df[time_key], time_key)
    except DataError as exc:
        out.append(str(exc))
        return out
    keys = df[entity_key]
    frame = pd.DataFrame({"e": keys.to_numpy(), "t": values})
    dup = frame.duplicated(["e", "t"], keep=False)
    if dup.any():
        first = frame[dup].iloc[0]
        out.append(
            f"{int(dup.sum())} rows share an ({entity_key}, {time_key}) pair with another row, e.g. entity "
            f"{_show_time(first['e'])} at {time_key}={_show_time(df[time_key][dup].iloc[0])}: "
            "keep one row per entity and time"
        )
    prev = frame.groupby("e", sort=False, observed=True)["t"].shift()
    back = (frame["t"] < prev).to_numpy()
    if back.any():
        i = int(np.flatnonzero(back)[0])
        out.append(
            f"rows of entity {_show_time(frame['e'].iloc[i])} are not in time order "
            f"({time_key}={_show_time(df[time_key].iloc[i])} comes after a later time): "
            f"sort the table first, e.g. df.sort_values([{entity_key!r}, {time_key!r}])"
        )
    return out


def _show_time(v: Any) -> str:
    if isinstance(v, (pd.Timestamp, np.datetime64)):
        return str(v)
    return repr(v.item() if isinstance(v, np.generic) else v)  # 3, not np.int64(3)


def parse_time(s: pd.Series, name: str, datetime_format: str | None = None) -> tuple[np.ndarray, str]:
    """Time values as float64 (seconds since the epoch for datetimes) and their kind, 'datetime' or 'number'."""
    if s.isna().any():
        raise DataError(f"time column {name!r} has {int(s.isna().sum())} missing values: every row needs a time")
    if pd.api.types.is_bool_dtype(s.dtype):
        raise DataError(f"time column {name!r} is boolean: give datetimes or numbers (an integer step)")
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        ns = s.dt.tz_convert("UTC").dt.tz_localize(None) if getattr(s.dt, "tz", None) is not None else s
        return ns.astype("datetime64[ns]").astype("int64").to_numpy() / 1e9, "datetime"
    if pd.api.types.is_numeric_dtype(s.dtype):
        values = s.to_numpy(dtype="float64")
        if not np.isfinite(values).all():
            raise DataError(f"time column {name!r} holds infinite values")
        return values, "number"
    types = {type(v) for v in s.iloc[:1000]} | {type(v) for v in s.iloc[-1000:]}
    numbers = {int, float, np.integer, np.floating}
    if any(issubclass(t, tuple(numbers)) for t in types) and any(issubclass(t, str) for t in types):
        num = s[s.map(lambda v: not isinstance(v, str))].iloc[0]
        text = s[s.map(lambda v: isinstance(v, str))].iloc[0]
        raise DataError(
            f"time column {name!r} mixes types (e.g. {num!r} and {text!r}): use one type, datetimes or numbers"
        )
    if all(issubclass(t, (pd.Timestamp, np.datetime64)) for t in types):
        return parse_time(pd.to_datetime(s), name)
    strings = s.astype(str)
    numeric = pd.to_numeric(strings, errors="coerce")
    if numeric.notna().all():
        return parse_time(numeric, name)
    if numeric.notna().any():
        num, text = strings[numeric.notna()].iloc[0], strings[numeric.isna()].iloc[0]
        raise DataError(
            f"time column {name!r} mixes numbers and text (e.g. {num!r} and {text!r}): use one type, datetimes or "
            "numbers"
        )
    if datetime_format is None:
        from pandas.tseries.api import guess_datetime_format

        datetime_format = guess_datetime_format(strings.iloc[0])
    parsed = pd.to_datetime(strings, format=datetime_format, errors="coerce") if datetime_format else None
    if parsed is None or parsed.isna().all():
        raise DataError(
            f"time column {name!r} holds text that is neither numbers nor dates (e.g. {strings.iloc[0]!r}): "
            "give datetimes or numbers"
        )
    if parsed.isna().any():
        bad = strings[parsed.isna()].iloc[0]
        kind = "a number" if numeric[parsed.isna()].notna().any() else "not a date like the others"
        raise DataError(f"time column {name!r} mixes types: {bad!r} is {kind}; use one type, datetimes or numbers")
    return parse_time(parsed, name)


def split_events(
    events: pd.DataFrame | str | os.PathLike,
    entity_key: str | None = None,
    time_key: str | None = None,
    static: pd.DataFrame | str | os.PathLike | list[str] | None = None,
    metadata: Metadata | None = None,
) -> SequenceData:
    """Check a long table (and its static table) and split it into entities, time, static columns and channels.

    Parameters
    ----------
    events : DataFrame or path
        One row per (entity, time) measurement.
    entity_key, time_key : str, optional
        The entity and time columns; taken from ``metadata`` or detected (by name and dtype) when omitted.
    static : DataFrame, path or list of str, optional
        A table with one row per entity (keyed by ``entity_key``), or the names of columns of ``events`` that
        are constant within every entity. Omitted: such columns are detected.
    metadata : Metadata, optional
        Column kinds and keys of the long table (static columns included when they are in it).
    """
    df = read_table(events)
    if df.columns.duplicated().any():
        raise DataError(f"duplicate column names {df.columns[df.columns.duplicated()].tolist()}: rename them")
    df = df.rename(columns=str)
    if metadata is not None:
        entity_key = entity_key or metadata.entity_key
        time_key = time_key or metadata.time_index
    if entity_key is None or time_key is None:
        guess_e, guess_t = detect_keys(df)
        entity_key, time_key = entity_key or guess_e, time_key or guess_t
        if entity_key is None or time_key is None:
            missing = " and ".join(n for n, v in (("entity_key", entity_key), ("time_key", time_key)) if v is None)
            raise ParameterError(
                f"cannot tell the {missing} of the long table (columns: {list(df.columns)}): name them, "
                "e.g. fit(events, entity_key='unit', time_key='t') or --entity-key/--time-key"
            )
    for role, col in (("entity_key", entity_key), ("time_key", time_key)):
        if col not in df.columns:
            raise ParameterError(f"{role} {col!r} is not a column of the long table; columns are {list(df.columns)}")
    if entity_key == time_key:
        raise ParameterError(f"entity_key and time_key are both {entity_key!r}: they must be two different columns")
    problems = time_problems(df, entity_key, time_key)
    if problems:
        raise DataError("the long table cannot be used as time series:\n" + "\n".join(f"  - {p}" for p in problems))
    fmt = metadata.columns[time_key].datetime_format if metadata and time_key in metadata.columns else None
    _, time_kind = parse_time(df[time_key], time_key, fmt)
    column_order = list(df.columns)
    groups = df.groupby(entity_key, sort=False, observed=True)
    first_rows = groups.head(1)
    static_in_events = True
    if isinstance(static, (list, tuple)):
        static_columns = [str(c) for c in static]
        unknown = [c for c in static_columns if c not in df.columns]
        if unknown:
            raise ParameterError(f"static columns {unknown} are not columns of the long table")
        bad = [c for c in static_columns if c in (entity_key, time_key)]
        if bad:
            raise ParameterError(f"static columns cannot include the entity key or time: {bad}")
        varying = [c for c in static_columns if (groups[c].nunique(dropna=False) > 1).any()]
        if varying:
            raise DataError(
                f"static columns {varying} vary within an entity: a static attribute has one value per entity; "
                "leave them out of static= to model them as channels"
            )
        static_frame = first_rows[[entity_key, *static_columns]].reset_index(drop=True)
    elif static is None:
        candidates = [c for c in df.columns if c not in (entity_key, time_key)]
        lengths = groups.size()
        static_columns = []
        if (lengths >= 2).mean() >= 0.5 and len(lengths) >= 2:
            nunique = groups[candidates].nunique(dropna=False)
            static_columns = [c for c in candidates if (nunique[c] <= 1).all() and df[c].nunique(dropna=False) > 1]
        static_frame = first_rows[[entity_key, *static_columns]].reset_index(drop=True)
    else:
        static_in_events = False
        table = read_table(static).rename(columns=str)
        if entity_key not in table.columns:
            raise DataError(
                f"the static table has no entity key column {entity_key!r}; its columns are {list(table.columns)}"
            )
        overlap = [c for c in table.columns if c != entity_key and c in df.columns]
        if overlap:
            raise DataError(f"columns {overlap} are in both the long table and the static table: keep them in one")
        if table[entity_key].isna().any() or table[entity_key].duplicated().any():
            dup = table[entity_key][table[entity_key].duplicated()]
            example = dup.iloc[0] if len(dup) else None
            raise DataError(
                f"the static table's {entity_key!r} must be unique and complete (found a repeat or a missing key, "
                f"e.g. {example!r}): one row per entity"
            )
        event_keys = pd.Index(first_rows[entity_key])
        static_keys = pd.Index(table[entity_key])
        no_rows = static_keys.difference(event_keys)
        no_static = event_keys.difference(static_keys)
        if len(no_rows) or len(no_static):
            parts = []
            if len(no_rows):
                parts.append(
                    f"{len(no_rows)} entities of the static table have no rows in the long table (e.g. {no_rows[0]!r})"
                )
            if len(no_static):
                parts.append(f"{len(no_static)} entities of the long table have no static row (e.g. {no_static[0]!r})")
            raise DataError(
                "the static table's keys do not match the long table's entities: "
                + "; ".join(parts)
                + ": give one static row per entity, and drop entities without measurements"
            )
        static_columns = [c for c in table.columns if c != entity_key]
        order = pd.Series(np.arange(len(event_keys)), index=event_keys)
        static_frame = table.iloc[np.argsort(order.loc[table[entity_key]].to_numpy())].reset_index(drop=True)
        static_frame = static_frame[[entity_key, *static_columns]]
        column_order = column_order + static_columns
    channels = [c for c in df.columns if c not in (entity_key, time_key) and c not in static_columns]
    if not channels:
        raise DataError(
            "the long table has no channels (columns that vary over time besides the entity key and time): "
            f"columns are {list(df.columns)}"
        )
    meta = _channel_metadata(df, entity_key, time_key, channels, metadata)
    # rows grouped by entity (in order of first appearance), each in time order (already checked)
    position = pd.Series(np.arange(len(first_rows)), index=pd.Index(first_rows[entity_key]))
    order = np.argsort(position.loc[df[entity_key]].to_numpy(), kind="stable")
    ordered = df.iloc[order][[entity_key, time_key, *channels]].reset_index(drop=True)
    return SequenceData(
        events=ordered,
        static=static_frame,
        entity_key=entity_key,
        time_key=time_key,
        time_kind=time_kind,
        channels=channels,
        static_columns=static_columns,
        static_in_events=static_in_events,
        column_order=column_order,
        metadata=meta,
        static_metadata=_static_metadata(static_frame[static_columns], metadata),
    )


def _static_metadata(frame: pd.DataFrame, declared: Metadata | None) -> Metadata:
    """Kinds of the static columns: detected on one row per entity, overridden by the user's declarations."""
    meta = Metadata.detect(frame) if len(frame.columns) else Metadata({})
    meta.primary_key = None
    for name in frame.columns:
        if declared is not None and name in declared.columns:
            meta.columns[name] = declared.columns[name]
    return meta


def _channel_metadata(
    df: pd.DataFrame, entity_key: str, time_key: str, channels: list[str], metadata: Metadata | None
) -> Metadata:
    """Metadata of the long table, with a clear error for a channel that cannot be modelled over time."""
    detected = Metadata.detect(df, entity_key=entity_key, time_index=time_key)
    detected.primary_key = None
    if metadata is not None:
        for name, spec in metadata.columns.items():
            if name in detected.columns:
                detected.columns[name] = spec
    detected.entity_key, detected.time_index = entity_key, time_key
    bad = {c: detected.columns[c].kind for c in channels if detected.columns[c].kind not in CHANNEL_KINDS}
    if bad:
        shown = ", ".join(f"{c!r} ({k})" for c, k in bad.items())
        raise DataError(
            f"channels {shown} cannot be modelled over time: channels must be numeric, categorical or boolean; "
            "drop them, convert them, or declare them static if they are constant within an entity"
        )
    return detected


CHANNEL_KINDS = ("continuous", "integer", "categorical", "boolean")
