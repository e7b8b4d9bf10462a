"""Metadata: the kind of every column and the table's keys.

A column's *kind* says how twinforge models it:

============  ==========================================================================
kind          meaning
============  ==========================================================================
continuous    real numbers
integer       whole numbers (stored as int, nullable Int, or float with integral values)
categorical   a finite set of levels; no level is ever invented
boolean       True / False
datetime      timestamps (datetime dtype, or strings in one ``datetime_format``)
id            identifiers and keys: never learned, regenerated in the same format
text          free text: never learned, replaced by placeholder text
pii           personal data (names, emails, phones, ...): never learned, replaced by fake values
============  ==========================================================================

Keys: ``primary_key`` (unique per row), and for per-entity time series ``entity_key`` and ``time_index``.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from twinforge.errors import DataError, MetadataError

__all__ = ["KINDS", "PII_TYPES", "SPEC_VERSION", "ColumnSpec", "Metadata"]

SPEC_VERSION = 1
KINDS = ("continuous", "integer", "categorical", "boolean", "datetime", "id", "text", "pii")
PII_TYPES = ("name", "first_name", "last_name", "email", "phone", "address", "national_id", "other")
NAME_PII_TYPES = ("name", "first_name", "last_name")  # the PII types whose fakes have a style (fake_style)
FAKE_STYLES = ("pseudonym", "realistic")
# Kinds whose values a model learns; the others are generated without looking at the real values.
LEARNED_KINDS = ("continuous", "integer", "categorical", "boolean", "datetime")

_ID_NAME = re.compile(r"(^|[_\s.-])(id|key|uuid|guid)$|^(id|uuid|guid)([_\s.-]|$)|[a-z](Id|ID)$", re.I)
_EMAIL = re.compile(r"^[\w.+-]+@[\w-]+(\.[\w-]+)+$")
_PHONE = re.compile(r"^\+?[\d\s().-]{7,20}$")
_SSN = re.compile(r"^\d{3}-\d{2}-\d{4}$")  # US social security numbers
_PII_NAMES = {
    "first_name": re.compile(r"(first|given|fore)[_\s]?name|^fname$", re.I),
    "last_name": re.compile(r"(last|sur|family)[_\s]?name|^lname$|^surname$", re.I),
    "name": re.compile(r"^(full_?)?name$|^(patient|customer|person|contact|client|user|owner)_?name$", re.I),
    "email": re.compile(r"e-?mail", re.I),
    "phone": re.compile(r"phone|mobile|(^|_)tel(ephone)?($|_)|(^|_)fax($|_)", re.I),
    "address": re.compile(r"address|street|(^|_)addr($|_)", re.I),
    "national_id": re.compile(r"ssn|social_security|national_?id|passport|(^|_)nhs($|_)|tax_?id", re.I),
}
_DETECT_SAMPLE = 1000


@dataclass
class ColumnSpec:
    """How one column is modelled.

    Parameters
    ----------
    kind : str
        One of :data:`KINDS`.
    pii_type : str, optional
        For ``kind="pii"``: one of :data:`PII_TYPES`; chooses the fake values generated.
    datetime_format : str, optional
        For ``kind="datetime"`` columns held as strings: the ``strftime`` format of the strings.
    low, high : number or str, optional
        Declared bounds of a continuous, integer or datetime column (ISO strings for datetimes). Differentially
        private fits use them instead of spending budget on estimating the range.
    categories : list, optional
        Declared levels of a categorical column; differentially private fits use them instead of releasing the
        frequent levels by noisy counts.
    locale : str, optional
        For ``kind="pii"`` and ``kind="text"``: the Faker locale of the generated values (default ``"en_US"``),
        e.g. ``"de_DE"`` for German names and phone numbers.
    fake_style : str, optional
        For PII names (``pii_type`` ``name``, ``first_name``, ``last_name``): ``"pseudonym"`` (a Faker name and a
        tag such as ``"Maria Lopez #4821"``, which no real name can equal) or ``"realistic"`` (a plain Faker
        name). Default: realistic, and pseudonym under differential privacy, where the real names are not kept
        to avoid them, so a plain fake could equal a common real name by coincidence.
    """

    kind: str
    pii_type: str | None = None
    datetime_format: str | None = None
    low: Any = None
    high: Any = None
    categories: list[Any] | None = None
    locale: str | None = None
    fake_style: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind}
        for key in ("pii_type", "datetime_format", "low", "high", "categories", "locale", "fake_style"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        return out


@dataclass
class Metadata:
    """Column kinds and keys of one table.

    Parameters
    ----------
    columns : dict
        Column name -> :class:`ColumnSpec` (or a dict such as ``{"kind": "integer"}``), in table order.
    primary_key, entity_key, time_index : str, optional
        Key columns. ``entity_key`` and ``time_index`` describe per-entity time series.

    Examples
    --------
    >>> import pandas as pd
    >>> from twinforge import Metadata
    >>> df = pd.DataFrame({"age": [31, 45, 27], "city": ["Oslo", "Rome", "Oslo"]})
    >>> meta = Metadata.detect(df)
    >>> meta.columns["age"].kind, meta.columns["city"].kind
    ('integer', 'categorical')
    >>> meta.update_column("age", kind="continuous").columns["age"].kind
    'continuous'
    """

    columns: dict[str, ColumnSpec] = field(default_factory=dict)
    primary_key: str | None = None
    entity_key: str | None = None
    time_index: str | None = None

    def __post_init__(self) -> None:
        self.columns = {
            str(name): spec if isinstance(spec, ColumnSpec) else ColumnSpec(**spec)
            for name, spec in self.columns.items()
        }

    # ----------------------------------------------------------------------------------- detection
    @classmethod
    def detect(
        cls,
        data: pd.DataFrame,
        *,
        primary_key: str | None = None,
        entity_key: str | None = None,
        time_index: str | None = None,
    ) -> Metadata:
        """Detect the kind of every column of ``data`` and its keys.

        Raises :class:`~twinforge.errors.DataError` for data that cannot be modelled at all
        (no rows, no columns, a column that is entirely null, an unsupported dtype), listing every
        such column at once.
        """
        if not isinstance(data, pd.DataFrame):
            raise DataError(f"expected a pandas DataFrame, got {type(data).__name__}")
        if data.shape[1] == 0:
            raise DataError("the table has no columns: give a table with at least one column")
        if len(data) == 0:
            raise DataError("the table has no rows: give a table with at least one row")
        dupes = data.columns[data.columns.duplicated()].tolist()
        if dupes:
            raise DataError(f"duplicate column names {dupes}: rename them so that every column is unique")
        problems: list[str] = []
        columns: dict[str, ColumnSpec] = {}
        for name in data.columns:
            try:
                columns[str(name)] = _detect_column(str(name), data[name])
            except DataError as exc:
                problems.append(str(exc))
        if problems:
            raise DataError("cannot model these columns:\n" + "\n".join(f"  - {p}" for p in problems))
        meta = cls(columns, primary_key=primary_key, entity_key=entity_key, time_index=time_index)
        if primary_key is None:
            for name, spec in columns.items():
                if spec.kind == "id" and data[name].notna().all() and data[name].is_unique:
                    meta.primary_key = name
                    break
        if entity_key is None and meta.time_index is not None:
            meta.entity_key = next((n for n, s in columns.items() if s.kind == "id" and not data[n].is_unique), None)
        return meta

    # ----------------------------------------------------------------------------------- overrides
    def update_column(self, name: str, **spec: Any) -> Metadata:
        """Override how column ``name`` is modelled, e.g. ``update_column("zip", kind="categorical")``."""
        if name not in self.columns:
            raise MetadataError(f"no column named {name!r}; columns are {list(self.columns)}")
        current = self.columns[name].to_dict()
        if "kind" in spec and spec["kind"] != current["kind"]:
            current = {}
        current.update(spec)
        self.columns[name] = ColumnSpec(**current)
        return self

    @property
    def learned_columns(self) -> list[str]:
        """Columns whose values a model learns (the others are generated)."""
        return [n for n, s in self.columns.items() if s.kind in LEARNED_KINDS]

    # ----------------------------------------------------------------------------------- validation
    def problems(self, data: pd.DataFrame | None = None) -> list[str]:
        """Every problem with this metadata, and with ``data`` against it if given."""
        out: list[str] = []
        for name, spec in self.columns.items():
            if spec.kind not in KINDS:
                out.append(f"column {name!r}: unknown kind {spec.kind!r}; use one of {', '.join(KINDS)}")
            if spec.pii_type is not None and spec.kind != "pii":
                out.append(f"column {name!r}: pii_type is only allowed with kind 'pii' (kind is {spec.kind!r})")
            if spec.kind == "pii" and spec.pii_type not in PII_TYPES:
                out.append(
                    f"column {name!r}: kind 'pii' needs pii_type, one of {', '.join(PII_TYPES)} (got {spec.pii_type!r})"
                )
            if spec.datetime_format is not None and spec.kind != "datetime":
                out.append(f"column {name!r}: datetime_format is only allowed with kind 'datetime'")
            if (spec.low is not None or spec.high is not None) and spec.kind not in (
                "continuous",
                "integer",
                "datetime",
            ):
                out.append(f"column {name!r}: low/high are only allowed with kinds continuous, integer, datetime")
            if (spec.low is None) != (spec.high is None):
                out.append(f"column {name!r}: declare both low and high, or neither")
            if spec.categories is not None and (spec.kind != "categorical" or not isinstance(spec.categories, list)):
                out.append(f"column {name!r}: categories must be a list, and only with kind 'categorical'")
            if spec.locale is not None:
                from faker.config import AVAILABLE_LOCALES

                if spec.kind not in ("pii", "text"):
                    out.append(f"column {name!r}: locale is only allowed with kinds pii and text")
                elif spec.locale not in AVAILABLE_LOCALES:
                    out.append(
                        f"column {name!r}: unknown locale {spec.locale!r}; use a Faker locale such as en_US, de_DE, "
                        "fr_FR, it_IT, es_ES, ja_JP"
                    )
            if spec.fake_style is not None:
                if spec.kind != "pii" or spec.pii_type not in NAME_PII_TYPES:
                    out.append(
                        f"column {name!r}: fake_style is only allowed with kind 'pii' and pii_type "
                        f"{', '.join(NAME_PII_TYPES)} (got kind {spec.kind!r}, pii_type {spec.pii_type!r})"
                    )
                elif spec.fake_style not in FAKE_STYLES:
                    out.append(
                        f"column {name!r}: unknown fake_style {spec.fake_style!r}; use one of {', '.join(FAKE_STYLES)}"
                    )
        for role in ("primary_key", "entity_key", "time_index"):
            col = getattr(self, role)
            if col is not None and col not in self.columns:
                out.append(f"{role} {col!r} is not a column; columns are {list(self.columns)}")
        if self.time_index is not None and self.entity_key is None:
            out.append("time_index is set but entity_key is not: set the column that identifies each entity")
        if self.primary_key is not None and self.primary_key == self.entity_key:
            out.append(f"{self.primary_key!r} cannot be both primary_key and entity_key")
        if data is not None:
            out.extend(self._data_problems(data))
        return out

    def validate(self, data: pd.DataFrame | None = None) -> Metadata:
        """Raise :class:`~twinforge.errors.MetadataError` listing every problem; return self if none."""
        problems = self.problems(data)
        if problems:
            raise MetadataError(problems)
        return self

    def _data_problems(self, data: pd.DataFrame) -> list[str]:
        out: list[str] = []
        missing = [c for c in self.columns if c not in data.columns]
        extra = [str(c) for c in data.columns if str(c) not in self.columns]
        if missing:
            out.append(f"columns in the metadata but not in the data: {missing}")
        if extra:
            out.append(f"columns in the data but not in the metadata: {extra} (add them or drop them)")
        for name, spec in self.columns.items():
            if name not in data.columns:
                continue
            s = data[name]
            nonnull = s.dropna()
            if len(nonnull) == 0 and spec.kind in LEARNED_KINDS:
                out.append(f"column {name!r} is entirely null: drop it or fill it")
                continue
            problem = _kind_mismatch(name, spec, s, nonnull)
            if problem:
                out.append(problem)
        for role in ("primary_key",):
            col = getattr(self, role)
            if col is not None and col in data.columns:
                s = data[col]
                if s.isna().any():
                    out.append(f"primary_key {col!r} has {int(s.isna().sum())} missing values")
                elif not s.is_unique:
                    dup = s[s.duplicated()].iloc[0]
                    out.append(f"primary_key {col!r} is not unique (e.g. {dup!r} repeats): unset it or fix the key")
        if self.entity_key in data.columns and self.time_index in data.columns:
            from twinforge.sequences._data import time_problems  # no torch: the checks of a long table

            out.extend(time_problems(data, self.entity_key, self.time_index))
        return out

    # ----------------------------------------------------------------------------------- JSON
    def to_dict(self) -> dict[str, Any]:
        return {
            "spec_version": SPEC_VERSION,
            "columns": {name: spec.to_dict() for name, spec in self.columns.items()},
            "primary_key": self.primary_key,
            "entity_key": self.entity_key,
            "time_index": self.time_index,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Metadata:
        if not isinstance(d, dict) or "columns" not in d:
            raise MetadataError("metadata must be a JSON object with a 'columns' entry")
        version = d.get("spec_version")
        if version != SPEC_VERSION:
            raise MetadataError(
                f"metadata spec_version {version!r} is not supported (this twinforge reads {SPEC_VERSION}); "
                "re-create it with `twinforge metadata DATA --out META.json`"
            )
        problems = []
        columns = {}
        for name, spec in d["columns"].items():
            if not isinstance(spec, dict) or "kind" not in spec:
                problems.append(f"column {name!r}: expected an object with a 'kind', got {spec!r}")
                continue
            fields = {"kind", "pii_type", "datetime_format", "low", "high", "categories", "locale", "fake_style"}
            unknown = set(spec) - fields
            if unknown:
                problems.append(f"column {name!r}: unknown fields {sorted(unknown)}")
                continue
            columns[name] = ColumnSpec(**spec)
        if problems:
            raise MetadataError(problems)
        meta = cls(
            columns,
            primary_key=d.get("primary_key"),
            entity_key=d.get("entity_key"),
            time_index=d.get("time_index"),
        )
        return meta.validate()

    def to_json(self, path: str | os.PathLike | None = None) -> str:
        """The metadata as JSON; also written (atomically) to ``path`` if given."""
        text = json.dumps(self.to_dict(), indent=2)
        if path is not None:
            from twinforge.io import atomic_write_text

            atomic_write_text(Path(path), text + "\n")
        return text

    @classmethod
    def from_json(cls, source: str | os.PathLike) -> Metadata:
        """Read metadata from a JSON file path, or from a JSON string."""
        text = str(source)
        if not text.lstrip().startswith("{"):
            path = Path(source)
            if not path.is_file():
                raise MetadataError(f"metadata file not found: {path}")
            text = path.read_text()
        try:
            d = json.loads(text)
        except json.JSONDecodeError as exc:
            raise MetadataError(f"metadata is not valid JSON: {exc}") from None
        return cls.from_dict(d)

    def __repr__(self) -> str:
        kinds = ", ".join(f"{n}: {s.kind}" for n, s in self.columns.items())
        return f"Metadata({kinds})"


# --------------------------------------------------------------------------------------- detection helpers
def _unsupported(name: str, s: pd.Series) -> DataError:
    return DataError(
        f"column {name!r} has unsupported dtype {s.dtype}: convert it to numbers, strings, booleans "
        "or datetimes, or drop it"
    )


def _detect_column(name: str, s: pd.Series) -> ColumnSpec:
    dtype = s.dtype
    if isinstance(dtype, (pd.SparseDtype, pd.PeriodDtype, pd.IntervalDtype)):
        raise _unsupported(name, s)
    if pd.api.types.is_complex_dtype(dtype) or pd.api.types.is_timedelta64_dtype(dtype):
        raise _unsupported(name, s)
    nonnull = s.dropna()
    if len(nonnull) == 0:
        raise DataError(f"column {name!r} is entirely null: drop it or fill it")
    if pd.api.types.is_bool_dtype(dtype):
        return ColumnSpec("boolean")
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return ColumnSpec("datetime")
    if isinstance(dtype, pd.CategoricalDtype):
        return ColumnSpec("categorical")
    if pd.api.types.is_numeric_dtype(dtype):
        values = nonnull.to_numpy(dtype="float64")
        if not np.isfinite(values).all():
            raise DataError(f"column {name!r} holds infinite values: replace them with numbers or missing values")
        integral = bool(np.all(values == np.round(values)))
        if integral and _ID_NAME.search(name) and nonnull.nunique() > max(20, 0.01 * len(nonnull)):
            return ColumnSpec("id")
        return ColumnSpec("integer" if integral else "continuous")
    if pd.api.types.is_object_dtype(dtype) or pd.api.types.is_string_dtype(dtype):
        return _detect_object(name, s, nonnull)
    raise _unsupported(name, s)


def _detect_object(name: str, s: pd.Series, nonnull: pd.Series) -> ColumnSpec:
    sample = nonnull.iloc[:_DETECT_SAMPLE]
    types = {type(v) for v in sample}
    if types <= {bool, np.bool_}:
        return ColumnSpec("boolean")
    if any(isinstance(v, (list, dict, set, tuple, bytes, complex)) for v in sample):
        raise _unsupported(name, s)
    if not types <= {str}:
        return ColumnSpec("categorical")  # mixed scalars: levels kept as they are
    strings = sample.astype(str)
    n_unique = nonnull.nunique()
    unique_ratio = n_unique / len(nonnull)
    fmt = _guess_datetime_format(strings)  # before phones: '2021-03-04' matches the phone pattern too
    if fmt is not None:
        return ColumnSpec("datetime", datetime_format=fmt)
    for pii_type, pattern in _PII_NAMES.items():
        # a name alone is not enough: 'Street' with levels Pave/Grvl is a category, not an address; but a person's
        # name on a small table (8 patients) is PII, not a category, once most values are distinct
        personal = pii_type in ("first_name", "last_name", "name", "email", "national_id") and unique_ratio > 0.5
        if pattern.search(name) and (n_unique > 10 or personal):
            return ColumnSpec("pii", pii_type=pii_type)
    if strings.str.match(_EMAIL).mean() >= 0.9:
        return ColumnSpec("pii", pii_type="email")
    if strings.str.match(_SSN).mean() >= 0.9:
        return ColumnSpec("pii", pii_type="national_id")
    digits = strings.str.count(r"\d")
    if strings.str.match(_PHONE).mean() >= 0.9 and digits.min() >= 7 and unique_ratio > 0.5:
        return ColumnSpec("pii", pii_type="phone")
    words = strings.str.split().str.len()
    if unique_ratio > 0.5 and (words.mean() >= 5 or strings.str.len().mean() >= 50):
        return ColumnSpec("text")
    if _ID_NAME.search(name) and n_unique > max(20, 0.01 * len(nonnull)):
        return ColumnSpec("id")
    if unique_ratio == 1.0 and len(nonnull) >= 20 and words.max() <= 1 and _looks_like_code(strings):
        return ColumnSpec("id")
    return ColumnSpec("categorical")


def _looks_like_code(strings: pd.Series) -> bool:
    """True for machine codes such as '7590-VHVEG' or 'A-10293': digits in most values, one length."""
    lengths = strings.str.len()
    return bool(strings.str.contains(r"\d").mean() >= 0.9 and lengths.nunique() <= 3)


def _guess_datetime_format(strings: pd.Series) -> str | None:
    from pandas.tseries.api import guess_datetime_format

    first = strings.iloc[0]
    if not re.search(r"\d", first) or not re.search(r"[-/:.T ]", first):
        return None
    for dayfirst in (False, True):  # '01/02/2021' is ambiguous: keep the reading that parses every value
        fmt = guess_datetime_format(first, dayfirst=dayfirst)
        if fmt is None or not ({"%Y", "%y"} & set(re.findall(r"%\w", fmt))):
            continue
        if pd.to_datetime(strings, format=fmt, errors="coerce").notna().all():
            return fmt
    return None


def _kind_mismatch(name: str, spec: ColumnSpec, s: pd.Series, nonnull: pd.Series) -> str | None:
    kind = spec.kind
    dtype = s.dtype
    sample = nonnull.iloc[:_DETECT_SAMPLE]
    if kind in ("continuous", "integer"):
        if pd.api.types.is_bool_dtype(dtype) or not pd.api.types.is_numeric_dtype(dtype):
            example = sample.iloc[0] if len(sample) else None
            return (
                f"column {name!r} is declared {kind} but has dtype {dtype} (e.g. {example!r}): "
                "declare it categorical, or convert it to numbers"
            )
        values = nonnull.to_numpy(dtype="float64")
        if not np.isfinite(values).all():
            return f"column {name!r} holds infinite values: replace them with numbers or missing values"
        if kind == "integer" and not np.all(values == np.round(values)):
            bad = values[values != np.round(values)][0]
            return f"column {name!r} is declared integer but holds {bad!r}: declare it continuous"
    elif kind == "boolean":
        if not pd.api.types.is_bool_dtype(dtype) and not {type(v) for v in sample} <= {bool, np.bool_}:
            levels = sorted(map(str, nonnull.unique()[:5]))
            return f"column {name!r} is declared boolean but holds {levels}: declare it categorical"
    elif kind == "datetime":
        if spec.datetime_format is not None:
            if pd.api.types.is_datetime64_any_dtype(dtype):
                return f"column {name!r} already has a datetime dtype: remove its datetime_format"
            parsed = pd.to_datetime(nonnull.astype(str), format=spec.datetime_format, errors="coerce")
            if parsed.isna().any():
                bad = nonnull[parsed.isna().to_numpy()].iloc[0]
                return f"column {name!r}: {bad!r} does not match datetime_format {spec.datetime_format!r}"
        elif not pd.api.types.is_datetime64_any_dtype(dtype):
            return (
                f"column {name!r} is declared datetime but has dtype {dtype}: convert it with "
                "pandas.to_datetime, or give its datetime_format"
            )
    elif kind == "categorical" and (
        pd.api.types.is_complex_dtype(dtype) or any(isinstance(v, (list, dict, set)) for v in sample)
    ):
        return f"column {name!r} holds values that cannot be categories (dtype {dtype})"
    return None
