"""What a conditional ``sample`` call asks for, checked and translated into the models' array space.

A user writes conditions in data space::

    model.sample(1000, conditions={"city": "Oslo", "tier": ["gold", "silver"], "age": (30, 40), "income": None})
    model.sample(1000, rebalance={"churn": {"Yes": 0.5, "No": 0.5}})
    model.sample(seed_data=partial_rows)       # fill the other columns of these rows
    model.impute(rows_with_holes)              # fill the missing cells only

:func:`build_request` checks all of it against the fitted transforms (naming the column and the problem) and
returns a :class:`SampleRequest` in the space of ``TableTransformer.transform`` (float64 with NaN for numeric
and datetime columns, int64 codes with -1 for missing discrete values):

- ``known[col]`` / ``known_mask[col]``: per row, a value the model must keep as it is and condition on
  (equalities, seed data, the exact category mix of a rebalance); seed data may lie beyond the fitted range;
- ``allowed[col]``: for a discrete column, the codes the model may draw from (a set condition);
- ``ranges[col]``: for a numeric or datetime column, ``(low, high)`` the drawn values must lie in, already
  shrunk to values the column can hold after rounding (so that rounding never leaves the range).

A model that supports conditions reads the request in ``_sample(n, rng, request)``; the base class slices it
per chunk and checks the output against it, so a condition is honoured exactly or an error is raised.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from twinforge.errors import ParameterError
from twinforge.privacy._domain import OTHER
from twinforge.transforms import TableTransformer
from twinforge.transforms._columns import ColumnTransform, DatetimeTransform
from twinforge.transforms._generated import GeneratedColumn

__all__ = ["SampleRequest", "build_request", "largest_remainder"]


@dataclass
class SampleRequest:
    """Conditions of one ``sample`` call, in transformed space (see the module docstring)."""

    n: int
    known: dict[str, np.ndarray] = field(default_factory=dict)
    known_mask: dict[str, np.ndarray] = field(default_factory=dict)
    allowed: dict[str, np.ndarray] = field(default_factory=dict)
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)
    temperature: float = 1.0
    # seed data as the user gave it: its non-missing cells are copied into the output unchanged, so they
    # survive exactly even where the model's space cannot hold them (values beyond the fitted range)
    given: pd.DataFrame | None = None

    @property
    def empty(self) -> bool:
        return not (self.known or self.allowed or self.ranges) and self.temperature == 1.0

    def chunk(self, start: int, stop: int) -> SampleRequest:
        """The part of the request for rows ``start:stop``."""
        return SampleRequest(
            n=stop - start,
            known={k: v[start:stop] for k, v in self.known.items()},
            known_mask={k: v[start:stop] for k, v in self.known_mask.items()},
            allowed=self.allowed,
            ranges=self.ranges,
            temperature=self.temperature,
            given=None if self.given is None else self.given.iloc[start:stop].reset_index(drop=True),
        )

    def check(self, arrays: dict[str, np.ndarray]) -> None:
        """Raise RuntimeError if a model's output breaks the request (a bug in the model, not the user's)."""
        for col, mask in self.known_mask.items():
            got, want = arrays[col][mask], self.known[col][mask]
            if not np.array_equal(got, want, equal_nan=got.dtype.kind == "f"):
                raise RuntimeError(f"the model changed given values of column {col!r}")
        for col, codes in self.allowed.items():
            free = ~self.known_mask.get(col, np.zeros(len(arrays[col]), bool))
            if not np.isin(arrays[col][free], codes).all():
                raise RuntimeError(f"the model drew values of column {col!r} outside its condition")
        for col, (low, high) in self.ranges.items():
            a = arrays[col][~self.known_mask.get(col, np.zeros(len(arrays[col]), bool))]
            if np.isnan(a).any() or (a < low).any() or (a > high).any():
                raise RuntimeError(f"the model drew values of column {col!r} outside its range condition")


def build_request(
    transformer: TableTransformer,
    n: int | None,
    *,
    conditions: dict[str, Any] | None = None,
    rebalance: dict[str, dict[Any, float]] | None = None,
    seed_data: pd.DataFrame | None = None,
    temperature: float = 1.0,
    rng: np.random.Generator | None = None,
    fill_missing: bool = False,
) -> SampleRequest:
    """Check a ``sample`` call's conditions and translate them (see the module docstring).

    ``fill_missing`` (for ``impute``): the cells of ``seed_data`` that are missing must be drawn non-missing.
    """
    n = _check_n(n, seed_data)
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not temperature > 0:
        raise ParameterError(f"temperature must be a positive number (1 = as learned), got {temperature!r}")
    if not math.isfinite(temperature):
        raise ParameterError(f"temperature must be finite, got {temperature!r}")
    req = SampleRequest(n=n, temperature=float(temperature))
    transforms = transformer.transforms_
    named: set[str] = set()

    if seed_data is not None:
        repeated = sorted({str(c) for c in seed_data.columns[seed_data.columns.duplicated()]})
        if repeated:
            raise ParameterError(f"seed_data has the columns {repeated} more than once: keep one of each")
        unknown = [str(c) for c in seed_data.columns if str(c) not in transforms]
        if unknown:
            raise ParameterError(f"seed_data has columns the model was not fitted on: {unknown}")
        for col in seed_data.columns:
            t = transforms[str(col)]
            if isinstance(t, GeneratedColumn):
                continue
            s = seed_data[col].reset_index(drop=True).rename(str(col))
            mask = s.notna().to_numpy()
            try:
                values = t.transform(s)
            except (ValueError, TypeError) as exc:
                raise ParameterError(f"{'impute data' if fill_missing else 'seed_data'} {str(col)!r}: {exc}") from None
            req.known[str(col)] = values
            req.known_mask[str(col)] = mask
            named.add(str(col))
            if fill_missing and not mask.all():
                if t.discrete:
                    req.allowed[str(col)] = np.arange(t.n_levels, dtype="int64")
                else:
                    req.ranges[str(col)] = _bounds(t)
        req.given = seed_data.reset_index(drop=True)

    for col, cond in (conditions or {}).items():
        col = _learned_column(transforms, col, "conditions", named)
        named.add(col)
        _add_condition(req, transforms[col], col, cond)

    for col, mix in (rebalance or {}).items():
        col = _learned_column(transforms, col, "rebalance", named)
        named.add(col)
        t = transforms[col]
        if not t.discrete:
            raise ParameterError(f"rebalance {col!r}: only categorical and boolean columns can be rebalanced")
        if not isinstance(mix, dict) or not mix:
            raise ParameterError(f"rebalance {col!r}: give a mapping of category -> share, e.g. {{'a': 0.5, 'b': 0.5}}")
        shares = np.asarray(list(mix.values()), dtype="float64")
        if (shares < 0).any() or not np.isclose(shares.sum(), 1.0, atol=1e-6):
            raise ParameterError(f"rebalance {col!r}: shares must be >= 0 and add up to 1, got {shares.sum():g}")
        codes = _codes(t, col, list(mix), "rebalance")
        counts = largest_remainder(shares, n)
        values = np.repeat(codes, counts)
        rng = rng if rng is not None else np.random.default_rng(0)
        req.known[col] = rng.permutation(values)
        req.known_mask[col] = np.ones(n, dtype=bool)
    return req


def largest_remainder(shares: np.ndarray, n: int) -> np.ndarray:
    """Integer counts adding up to ``n`` whose proportions are as close to ``shares`` as counts can be."""
    raw = np.asarray(shares, dtype="float64") * n
    counts = np.floor(raw).astype("int64")
    short = n - int(counts.sum())
    counts[np.argsort(-(raw - counts), kind="stable")[:short]] += 1
    return counts


# ------------------------------------------------------------------------------------------ helpers
def _check_n(n: Any, seed_data: pd.DataFrame | None) -> int:
    if seed_data is not None:
        if not isinstance(seed_data, pd.DataFrame):
            raise ParameterError(f"seed_data must be a DataFrame, got {type(seed_data).__name__}")
        if len(seed_data) == 0:
            raise ParameterError("seed_data has no rows: give at least one partial row")
        if n is None:
            return len(seed_data)
        if n != len(seed_data):
            raise ParameterError(f"n={n!r} but seed_data has {len(seed_data)} rows: omit n or make them agree")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n <= 0:
        raise ParameterError(f"the number of rows must be a positive integer, got {n!r}")
    return int(n)


def _learned_column(transforms: dict[str, ColumnTransform], col: Any, arg: str, named: set[str]) -> str:
    col = str(col)
    if col not in transforms:
        raise ParameterError(f"{arg}: no column named {col!r}; columns are {list(transforms)}")
    if isinstance(transforms[col], GeneratedColumn):
        raise ParameterError(
            f"{arg}: column {col!r} is {transforms[col].kind}, which is generated, not learned; "
            "it cannot be conditioned on (pass it in seed_data to keep given values)"
        )
    if col in named:
        raise ParameterError(f"{arg}: column {col!r} is already fixed by another argument; name it once")
    return col


def _to_array(t: ColumnTransform, s: pd.Series, col: str, arg: str) -> np.ndarray:
    """Transform user values, refusing values the column cannot hold (unseen levels, out of range, too precise)."""
    try:
        a = t.transform(s.rename(col))
    except (ValueError, TypeError) as exc:
        raise ParameterError(f"{arg} {col!r}: {exc}") from None
    if not t.discrete:
        a = np.asarray(a, dtype="float64")
        obs = a[~np.isnan(a)]
        lo, hi = _bounds(t)
        if obs.size and ((obs < lo).any() or (obs > hi).any()):
            bad = s[~np.isnan(a)][(obs < lo) | (obs > hi)].iloc[0]
            raise ParameterError(f"{arg} {col!r}: {_plain(bad)!r} lies outside the fitted values {_describe_bounds(t)}")
        back = t.inverse_transform(a)
        same = back.isna().to_numpy() | (t.transform(back) == a)
        if not same.all():
            bad = s[~same].iloc[0]
            raise ParameterError(
                f"{arg} {col!r}: {_plain(bad)!r} is more precise than the values the column holds (e.g. "
                f"{_plain(back[~same].iloc[0])!r}): give one of those, or a range"
            )
    return a


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value it holds, so messages show 2, not np.int64(2)."""
    return value.item() if isinstance(value, np.generic) else value


def _add_condition(req: SampleRequest, t: ColumnTransform, col: str, cond: Any) -> None:
    n = req.n
    if isinstance(cond, tuple):
        if t.discrete:
            raise ParameterError(f"conditions {col!r}: a (low, high) range needs a numeric or datetime column")
        if len(cond) != 2:
            raise ParameterError(f"conditions {col!r}: a range is a tuple (low, high), got {cond!r}")
        low = _scalar_to_float(t, col, cond[0], -math.inf)
        high = _scalar_to_float(t, col, cond[1], math.inf)
        if low > high:
            raise ParameterError(
                f"conditions {col!r}: the range {cond!r} has its low end above its high end: write (low, high)"
            )
        low, high = _representable(t, low, high)
        blo, bhi = _bounds(t)
        low, high = max(low, blo), min(high, bhi)
        if not low <= high:
            raise ParameterError(
                f"conditions {col!r}: no value the column can hold lies in {cond!r} "
                f"(fitted values {_describe_bounds(t)})"
            )
        req.ranges[col] = (low, high)
        return
    if isinstance(cond, (list, set, frozenset, np.ndarray, pd.Index, pd.Series)):
        values = list(cond)
        if not values:
            raise ParameterError(f"conditions {col!r}: an empty set of values allows no row")
        if t.discrete:
            req.allowed[col] = np.unique(_codes(t, col, values, "conditions"))
            return
        if len(values) > 1:
            # a set of numbers: draw each row's value from the set in proportion to nothing but the set
            raise ParameterError(
                f"conditions {col!r}: a set of values needs a categorical column; for numbers use one value "
                "or a (low, high) range"
            )
        cond = values[0]
    # one value (None = missing)
    if (cond is None or _isnan(cond)) and t.missing_rate_ == 0:
        raise ParameterError(f"conditions {col!r}: the column had no missing values in training, so None cannot occur")
    if t.discrete:
        value = _codes(t, col, [cond], "conditions")[0]
        req.known[col] = np.full(n, value, dtype="int64")
    elif cond is None or _isnan(cond):
        req.known[col] = np.full(n, np.nan)
    elif isinstance(t, DatetimeTransform):
        value = _scalar_to_float(t, col, cond, math.nan)
        if value != round(value) or not 0 <= value <= t.span_:
            raise ParameterError(
                f"conditions {col!r}: {cond!r} is not a timestamp the column holds (fitted {_describe_bounds(t)})"
            )
        req.known[col] = np.full(n, float(value))
    else:
        value = _to_array(t, pd.Series([cond]), col, "conditions")[0]
        req.known[col] = np.full(n, value, dtype="float64")
    req.known_mask[col] = np.ones(n, dtype=bool)


def _codes(t: ColumnTransform, col: str, values: list[Any], arg: str) -> np.ndarray:
    s = pd.Series(values, dtype=object)
    if t.kind == "boolean":
        bad = [v for v in values if not (v is None or _isnan(v) or isinstance(v, (bool, np.bool_)))]
        if bad:
            raise ParameterError(f"{arg} {col!r}: boolean column, got {bad[0]!r}; use True, False or None")
    else:
        levels = set(t.levels_)
        bad = [v for v in values if not (v is None or _isnan(v)) and v not in levels]
        if bad:
            raise ParameterError(f"{arg} {col!r}: {bad[0]!r} is not a level of the column; {levels_text(t.levels_)}")
        if t.dtype_ == "category":
            s = s.astype(pd.CategoricalDtype(t._index(), ordered=t.ordered_))
    return np.asarray(t.transform(s.rename(col)), dtype="int64")


def _isnan(v: Any) -> bool:
    return isinstance(v, float) and math.isnan(v)


def _scalar_to_float(t: ColumnTransform, col: str, v: Any, open_end: float) -> float:
    """A range bound in transformed space; None leaves that end open."""
    if v is None:
        return open_end
    if isinstance(t, DatetimeTransform):
        try:
            ts = pd.Timestamp(v)
        except (ValueError, TypeError):
            raise ParameterError(f"conditions {col!r}: cannot read {v!r} as a timestamp") from None
        if t.tz_ is not None:
            ts = ts.tz_localize(t.tz_) if ts.tzinfo is None else ts.tz_convert(t.tz_)
        elif ts.tzinfo is not None:
            raise ParameterError(f"conditions {col!r}: the column has no timezone, {v!r} has one")
        ns = ts.value  # nanoseconds since the epoch, UTC
        unit_ns = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}[t.unit_]
        ticks = ns / unit_ns
        return (ticks - t.origin_) / t.step_
    try:
        return float(v)
    except (ValueError, TypeError):
        raise ParameterError(f"conditions {col!r}: range bounds must be numbers, got {v!r}") from None


def _representable(t: ColumnTransform, low: float, high: float) -> tuple[float, float]:
    """Shrink [low, high] to the grid of values the column holds after rounding."""
    if isinstance(t, DatetimeTransform):
        lo = math.ceil(low - 1e-9) if math.isfinite(low) else low
        hi = math.floor(high + 1e-9) if math.isfinite(high) else high
        return lo, hi
    decimals = getattr(t, "decimals_", None)
    if decimals is None:
        return low, high
    scale = 10.0**decimals
    lo = math.ceil(round(low * scale, 6)) / scale if math.isfinite(low) else low
    hi = math.floor(round(high * scale, 6)) / scale if math.isfinite(high) else high
    return lo, hi


def _bounds(t: ColumnTransform) -> tuple[float, float]:
    if isinstance(t, DatetimeTransform):
        return 0.0, float(t.span_)
    return float(t.min_), float(t.max_)


def _describe_bounds(t: ColumnTransform) -> str:
    if isinstance(t, DatetimeTransform):
        ends = t.inverse_transform(np.array([0.0, float(t.span_)]))
        return f"{ends.iloc[0]} .. {ends.iloc[1]}"
    return f"{t.min_:g} .. {t.max_:g}"


def levels_text(levels: Any, quote: bool = True) -> str:
    """'levels are a, b, ...' for an unknown-level error, saying so when differential privacy merged the rest."""
    levels = list(levels)
    shown = ", ".join(map(repr if quote else str, levels[:10])) + (", ..." if len(levels) > 10 else "")
    text = f"levels are {shown}"
    if OTHER in levels:
        text += (
            f" ({OTHER!r}: under differential privacy, levels too rare to release privately are merged into it; "
            "a larger epsilon or more rows releases more levels)"
        )
    return text
