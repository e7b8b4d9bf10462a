"""Reversible encoders for the column kinds a model learns.

Each maps a column to one array and back, exactly (``inverse_transform(transform(s))`` equals ``s``, with
its dtype, categories, timezone and precision):

- numeric (continuous, integer) and datetime columns -> ``float64`` with ``NaN`` for missing values;
- categorical and boolean columns -> ``int64`` codes ``0..K-1`` with ``-1`` for missing values.

The inverse also repairs what a model may produce: values are clipped to the fitted ``[min, max]``,
integers and datetimes rounded to their resolution, codes outside ``0..K-1`` refused. Models build their own
representation (quantiles, one-hot, bins) on these arrays.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd

from twinforge.errors import DataError

_INT_DTYPES = {"int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"}
_DAY_NS = 86_400 * 10**9
# Candidate resolutions, coarsest first, in nanoseconds.
_STEPS_NS = (_DAY_NS, 3_600 * 10**9, 60 * 10**9, 10**9, 10**6, 10**3, 1)
_UNIT_NS = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}


class ColumnTransform:
    """Base class: ``fit(series)``, ``transform(series)``, ``inverse_transform(array)``, state round trip."""

    kind: ClassVar[str]
    discrete: ClassVar[bool] = False

    def __init__(self, **options: Any):
        self.options = options

    def fit(self, s: pd.Series) -> ColumnTransform:
        self.name_ = str(s.name)
        self.dtype_ = str(s.dtype)
        self.missing_rate_ = float(s.isna().mean())
        self._fit(s)
        return self

    def _fit(self, s: pd.Series) -> None:
        raise NotImplementedError  # pragma: no cover - abstract

    def get_state(self) -> dict[str, Any]:
        state = {k: v for k, v in vars(self).items() if k.endswith("_")}
        return {"class": type(self).__name__, "options": self.options, "fitted": state}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> ColumnTransform:
        obj = cls(**state["options"])
        for key, value in state["fitted"].items():
            setattr(obj, key, value)
        return obj

    def _restore_dtype(self, values: np.ndarray, missing: np.ndarray) -> pd.Series:
        """Cast float values (NaN = missing) back to the fitted dtype, nullable if it must hold missing."""
        dtype = self.dtype_
        if dtype in _INT_DTYPES:
            if missing.any():
                return pd.Series(values, name=self.name_).astype(nullable_int(dtype))
            return pd.Series(values.astype(dtype), name=self.name_)
        return pd.Series(values, name=self.name_).astype(dtype)


class NumericTransform(ColumnTransform):
    """Continuous or integer numbers: clipped to the fitted range and rounded to the data's precision."""

    kind = "continuous"

    def _fit(self, s: pd.Series) -> None:
        x = _as_float(s)
        obs = x[~np.isnan(x)]
        self.min_ = float(obs.min())
        self.max_ = float(obs.max())
        self.integer_ = bool(self.options.get("integer", False))
        self.decimals_ = 0 if self.integer_ else _decimals(obs)

    def transform(self, s: pd.Series) -> np.ndarray:
        return _as_float(s)

    def inverse_transform(self, a: np.ndarray) -> pd.Series:
        x = np.clip(np.asarray(a, dtype="float64"), self.min_, self.max_)
        if self.decimals_ is not None:
            x = np.round(x, self.decimals_)
        return self._restore_dtype(x, np.isnan(x))


class DatetimeTransform(ColumnTransform):
    """Timestamps as steps of their resolution (day, hour, ..., ns) from the earliest one.

    Keeps the timezone, the storage unit and, for string columns, the ``datetime_format``.
    Exact while ``(max - min) / resolution < 2**53`` (centuries at microsecond resolution).
    """

    kind = "datetime"

    def _parse(self, s: pd.Series) -> pd.Series:
        fmt = self.options.get("datetime_format")
        if fmt is not None and not pd.api.types.is_datetime64_any_dtype(s.dtype):
            return pd.to_datetime(s, format=fmt, errors="raise")
        return s

    def _ints(self, s: pd.Series) -> tuple[np.ndarray, np.ndarray]:
        """Integer counts of the storage unit since the epoch (UTC), and the missing mask."""
        parsed = self._parse(s)
        if getattr(parsed.dt, "tz", None) is not None:
            parsed = parsed.dt.tz_convert(None)
        arr = parsed.to_numpy()
        if arr.dtype.kind != "M":
            raise DataError(f"column {s.name!r}: cannot read {s.dtype} values as datetimes")
        missing = np.isnat(arr)
        return arr.view("int64"), missing

    def _fit(self, s: pd.Series) -> None:
        parsed = self._parse(s)
        tz = getattr(parsed.dt, "tz", None)
        self.tz_ = None if tz is None else str(tz)
        self.unit_ = np.datetime_data(parsed.dt.tz_convert(None).dtype if tz is not None else parsed.dtype)[0]
        ints, missing = self._ints(s)
        obs = ints[~missing]
        unit_ns = _UNIT_NS[self.unit_]
        step = 1
        for candidate in _STEPS_NS:
            if candidate >= unit_ns and candidate % unit_ns == 0:
                c = candidate // unit_ns
                if np.all(obs % c == obs[0] % c):  # no subtraction: spans of centuries overflow int64 ns
                    step = c
                    break
        self.step_ = int(step)
        self.origin_ = int(obs.min())
        self.span_ = (int(obs.max()) - self.origin_) // step
        # ISO strings written with 'Z' come back from strftime('%z') as '+0000': remember to write 'Z'
        fmt = self.options.get("datetime_format")
        text = s.dropna().astype(str)
        self.zulu_ = bool(fmt is not None and fmt.endswith("%z") and len(text) and text.str.endswith("Z").all())

    def transform(self, s: pd.Series) -> np.ndarray:
        ints, missing = self._ints(s)
        out = (ints // self.step_ - self.origin_ // self.step_).astype("float64")
        out[missing] = np.nan
        return out

    def inverse_transform(self, a: np.ndarray) -> pd.Series:
        a = np.asarray(a, dtype="float64")
        missing = np.isnan(a)
        k = np.clip(np.rint(np.where(missing, 0, a)), 0, self.span_).astype("int64")
        ints = (self.origin_ // self.step_ + k) * self.step_ + self.origin_ % self.step_
        fmt = self.options.get("datetime_format")
        if fmt is not None and not self.dtype_.startswith("datetime64"):
            # strftime is slow (about 10 us a value): format each distinct instant once (a timestamp column
            # on a grid repeats its values: weather's hourly one has 744 in a month)
            distinct, inverse = np.unique(ints, return_inverse=True)
            text = self._datetimes(distinct, np.zeros(len(distinct), dtype=bool)).dt.strftime(fmt)
            if self.zulu_:
                text = text.str.replace(r"\+0000$", "Z", regex=True)
            text = text.to_numpy(dtype=object)[inverse]
            text[missing] = np.nan if self.dtype_ == "object" else pd.NA
            return pd.Series(text, name=self.name_).astype(self.dtype_)
        out = self._datetimes(ints, missing)
        return out.astype(self.dtype_) if out.dtype != self.dtype_ else out

    def _datetimes(self, ints: np.ndarray, missing: np.ndarray) -> pd.Series:
        """Integer instants (in ``unit_``) as a datetime Series in the fitted time zone (NaT where ``missing``)."""
        values = ints.view(f"datetime64[{self.unit_}]").copy()
        values[missing] = np.datetime64("NaT")
        out = pd.Series(values, name=self.name_)
        if self.tz_ is not None:
            out = out.dt.tz_localize("UTC").dt.tz_convert(self.tz_)
        return out


class CategoricalTransform(ColumnTransform):
    """Levels as integer codes, most frequent first (all declared categories for a category dtype).

    Memory is one integer per value, whatever the number of levels. Unseen levels are refused.
    """

    kind = "categorical"
    discrete = True

    def _fit(self, s: pd.Series) -> None:
        if isinstance(s.dtype, pd.CategoricalDtype):
            levels = list(s.dtype.categories)
            self.ordered_ = bool(s.dtype.ordered)
        else:
            levels = list(s.value_counts(dropna=True, sort=True).index)
            self.ordered_ = False
        bad = [v for v in levels if not isinstance(v, (str, int, float, bool, np.generic))]
        if bad:
            raise DataError(
                f"column {self.name_!r}: categorical levels of type {type(bad[0]).__name__} are not supported; "
                "declare the column with another kind or convert it to strings"
            )
        self.levels_ = [v.item() if isinstance(v, np.generic) else v for v in levels]
        self.missing_value_ = None if any(v is None for v in s.to_numpy(dtype=object)) else "nan"

    @property
    def n_levels(self) -> int:
        return len(self.levels_)

    def transform(self, s: pd.Series) -> np.ndarray:
        codes = pd.Categorical(s, categories=self._index()).codes.astype("int64")
        unseen = (codes == -1) & s.notna().to_numpy()
        if unseen.any():
            examples = pd.unique(s[unseen])[:5].tolist()
            raise DataError(f"column {self.name_!r} holds levels not seen in fit: {examples}")
        return codes

    def _index(self) -> pd.Index:
        if not hasattr(self, "_index_cache"):
            self._index_cache = pd.Index(self.levels_, dtype=object if self.dtype_ == "object" else None)
        return self._index_cache

    def inverse_transform(self, a: np.ndarray) -> pd.Series:
        codes = _check_codes(a, self.n_levels, self.name_)
        missing = codes < 0
        if self.dtype_ == "category":
            dtype = pd.CategoricalDtype(self._index(), ordered=self.ordered_)
            return pd.Series(pd.Categorical.from_codes(codes, dtype=dtype), name=self.name_)
        levels = np.empty(self.n_levels + 1, dtype=object)
        levels[: self.n_levels] = self.levels_
        levels[-1] = None if self.missing_value_ is None else np.nan
        values = levels[codes]  # code -1 picks the missing sentinel
        if self.dtype_ == "object":
            return pd.Series(values, name=self.name_, dtype=object)
        if pd.api.types.is_numeric_dtype(pd.api.types.pandas_dtype(self.dtype_)):
            return self._restore_dtype(np.where(missing, np.nan, values).astype("float64"), missing)
        return pd.Series(values, name=self.name_).astype(self.dtype_)


class BooleanTransform(ColumnTransform):
    """True/False as codes 1/0 (-1 missing), back to bool, nullable boolean or object."""

    kind = "boolean"
    discrete = True
    n_levels = 2

    def _fit(self, s: pd.Series) -> None:
        self.missing_value_ = None if any(v is None for v in s.to_numpy(dtype=object)) else "nan"

    def transform(self, s: pd.Series) -> np.ndarray:
        obj = s.to_numpy(dtype=object)
        missing = pd.isna(obj)
        codes = np.full(len(s), -1, dtype="int64")
        codes[~missing] = np.asarray([bool(v) for v in obj[~missing]], dtype="int64")
        return codes

    def inverse_transform(self, a: np.ndarray) -> pd.Series:
        codes = _check_codes(a, 2, self.name_)
        missing = codes < 0
        if self.dtype_ == "bool" and not missing.any():
            return pd.Series(codes == 1, name=self.name_)
        if self.dtype_ in ("bool", "boolean"):
            return pd.Series(pd.array(np.where(missing, None, codes == 1), dtype="boolean"), name=self.name_)
        values = np.where(missing, None if self.missing_value_ is None else np.nan, codes == 1).astype(object)
        values[~missing] = [bool(v) for v in values[~missing]]
        return pd.Series(values, name=self.name_, dtype=self.dtype_)


def nullable_int(dtype: str) -> str:
    """The pandas nullable twin of a numpy integer dtype: 'int32' -> 'Int32', 'uint8' -> 'UInt8'."""
    return "U" + dtype[1:].capitalize() if dtype.startswith("u") else dtype.capitalize()


def _as_float(s: pd.Series) -> np.ndarray:
    return s.to_numpy(dtype="float64", na_value=np.nan)


def _decimals(obs: np.ndarray, max_decimals: int = 10) -> int | None:
    """Fewest decimals that represent every value exactly, or None (keep full precision)."""
    head = obs[:1000]
    for k in range(max_decimals + 1):
        if np.array_equal(np.round(head, k), head) and np.array_equal(np.round(obs, k), obs):
            return k
    return None


def _check_codes(a: np.ndarray, n_levels: int, name: str) -> np.ndarray:
    codes = np.asarray(a)
    if codes.dtype.kind == "f":
        codes = np.where(np.isnan(codes), -1, codes)
    codes = codes.astype("int64")
    if codes.size and (codes.min() < -1 or codes.max() >= n_levels):
        raise DataError(f"column {name!r}: codes must lie in -1..{n_levels - 1}")
    return codes
