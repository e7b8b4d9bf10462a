"""Column domains and one-column histograms under differential privacy, and the public table built from them.

A DP fit may look at the data only through a mechanism the ledger accounts for. Everything a model would
otherwise read off the data before training (a numeric column's range and quantiles, the mixture modes of CTGAN,
the set of categories and their frequencies) is read instead off a *public table*: rows drawn column by
column from noisy one-column histograms, which is post-processing of those histograms and costs nothing more.
The real rows are then mapped into that domain (values clipped to the bounds, levels that were not released
merged into an ``"(other)"`` level) and only DP-SGD sees them.

Per learned column (``L2`` sensitivity 1 per count vector, since a row adds 1 to one count of each vector;
the vectors get Gaussian noise of one standard deviation ``sigma``, the log grids ``sigma / w``, ``1 <= w <= 2``):

- numeric and datetime columns: bounds from the metadata (``low``/``high``), else from a noisy histogram over a
  fixed logarithmic grid (a decade per bin, from 1e-4 to 1e16 in magnitude, both signs), noised at up to half
  the standard deviation of the other count vectors (it decides the range: see the allocation below). The range is
  the run of bins around the largest, which must clear a threshold that an empty bin of any grid of the table
  passes with probability 1% in all, joined by other bins that stand out of the noise where they lie within
  two decades of that run (zeros, the other sign) or stand out beyond doubt (``_FAR_Z`` noise stds): one
  noise bin at 1e13 can no longer stretch a range of hundreds to 1e13 (``_grid_range``). When the largest bin does not
  clear the threshold, blocks of 2 and 4 adjacent bins are tried (their noise is larger by the square root of
  their size), and only then the largest noisy bin of magnitude at most 1e6 (datetimes: 1973 to 2286;
  ``bounds_from: "dp-largest-bin"``, with a warning: declare the bounds). Then a noisy histogram of 64 equal
  bins between the bounds, plus "missing" (declared bounds are much tighter than a decade: declare them where
  they are public). A range from the grid is then cut to the bins that histogram shows occupied
  (post-processing; see ``_occupied_bins``): a balance in [0, 2500] gets about [0, 2500], not the decade
  [0, 10000) whose empty bins' noise would put a sixth of the generated values above anything real
  (``bounds_from_grid`` in the details keeps the decade);
- categorical columns: the levels from the metadata (``categories``), else the stability-based histogram
  (Korolova et al. 2009; Bun, Nissim and Stemmer 2016): a noisy count per level present in the data, kept when
  above ``1 + sigma * Phi^-1(1 - delta_s / k)``, so that a level held by one row is released with probability at
  most ``delta_s / k`` (``k`` such columns; ``delta_s`` is a tenth of ``delta``). Levels below the threshold are
  never emitted: they become ``"(other)"`` (text columns) or are redrawn from the public levels (other dtypes).
  ``"(other)"`` exists only where the rows left over (n minus the noisy counts) stand out of their own noise;
- boolean columns: noisy counts of False, True and missing.

All vectors get Gaussian noise of standard deviation ``sigma``, the log grids ``sigma / w``: that is one
Gaussian mechanism of L2 sensitivity ``sqrt(others + w^2 grids)`` at noise ``sigma`` (the ledger's entry).

Allocation (``_allocate``). A log grid's noise should be at most ``n / 16`` rows, so that a column whose values
lie in one decade stands 16 noise stds above the empty bins. Where the model's share of epsilon (``share``)
already gives that with ``w = 1``, nothing changes; else ``w`` rises up to 2, then (with ``max_share``, the
DP-SGD models) the share up to ``max_share``. Wide tables at small budgets need this: ames (74 columns, 2,400
rows) at epsilon 0.5 with a tenth of it and ``w = 1`` had noise of 680 rows per count, and a tenth of its ranges
came from pure-noise bins ([1e13, 1e14] for a count of bathrooms). The allocation depends only on epsilon, delta,
n and the schema, all public.

The number of rows is treated as public (as in DP-SGD's sampling rate), and so are the column kinds
(the schema): pass metadata to keep detection from reading the data.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from twinforge.errors import ParameterError
from twinforge.metadata import Metadata
from twinforge.privacy._accountant import epsilon_from_rdp, gaussian_rdp, sampled_gaussian_rdp
from twinforge.privacy._ledger import PrivacyLedger

__all__ = ["OTHER", "private_domain", "required_epsilon"]

OTHER = "(other)"
_VALUE_BINS = 64
_PUBLIC_ROWS = 5_000
_TAIL_Z, _TRIM_MASS = 2.5, 0.02  # growth of a numeric range past its core: see _occupied_bins
_GRID_STEPS = 1  # log-grid bins per decade: coarse, so that a few thousand rows clear the noise of small budgets
_GRID_DECADES = (-4, 16)
_FALSE_BINS = 0.01  # chance that an empty bin passes a threshold (all the log grids of a table together)
_GRID_WEIGHT = 2.0  # the log grids' noise std is at most this much below sigma: they decide the range
_GRID_SNR = 16.0  # the grids' weight, then the share, rise until a grid's noise std is at most n / _GRID_SNR
_NEAR_DECADES = 2  # bins above the threshold within this many decades of the range's core join it
_NEAR_Z = 3.5  # ... when their noisy count clears this many noise stds
_FAR_Z = 6.0  # ... and farther ones only above this many noise stds (an empty bin: about 1e-9)
# when no bin stands out: where the largest noisy bin is looked for (numbers: |x| <= 1e6; datetimes: 1973-2286)
_FALLBACK = {False: (-1e6, 1e6), True: (1e8, 1e10)}
_DATETIME_KIND = "datetime"
_MIN_SECONDS, _MAX_SECONDS = pd.Timestamp.min.value / 1e9 + 86_400, pd.Timestamp.max.value / 1e9 - 86_400


def _log_grid() -> np.ndarray:
    pos = 10.0 ** (np.arange(_GRID_DECADES[0] * _GRID_STEPS, _GRID_DECADES[1] * _GRID_STEPS + 1) / _GRID_STEPS)
    return np.concatenate([-pos[::-1], pos])


def _gaussian_sigma(epsilon: float, delta: float, sensitivity: float) -> float:
    """Noise std of one Gaussian mechanism that alone is ``(epsilon, delta)``-DP under the RDP conversion.

    ``inf`` when no noise is enough (epsilon below what the conversion can certify at this delta).
    """
    lo, hi = 1e-6, 1.0
    while epsilon_from_rdp(gaussian_rdp(hi, sensitivity), delta)[0] > epsilon:
        lo, hi = hi, hi * 2
        if hi > 1e12:
            return math.inf
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if epsilon_from_rdp(gaussian_rdp(mid, sensitivity), delta)[0] > epsilon:
            lo = mid
        else:
            hi = mid
    return hi


def required_epsilon(
    delta: float, share: float, sensitivity: float, q: float = 1.0, steps: int = 1, sigma: float = 50.0
) -> float:
    """The smallest epsilon (to 3 digits) whose fit can release the domains and take ``steps`` DP-SGD steps.

    The domains take ``share`` of epsilon (count vectors of L2 ``sensitivity``); the steps run at noise
    multiplier ``sigma`` and sampling rate ``q`` (``q = 1``, the default, bounds any rate).
    """

    def enough(eps: float) -> bool:
        noise = _gaussian_sigma(share * eps, delta, sensitivity) if sensitivity > 0 else math.inf
        rdp = gaussian_rdp(noise, sensitivity) if math.isfinite(noise) else None
        if rdp is None and sensitivity > 0:
            return False
        total = (0 if rdp is None else rdp) + sampled_gaussian_rdp(q, sigma, steps)
        return epsilon_from_rdp(total, delta)[0] <= eps

    lo, hi = 1e-4, 1e-2
    while not enough(hi):
        lo, hi = hi, hi * 2
    while hi - lo > 1e-3 * hi:
        mid = 0.5 * (lo + hi)
        lo, hi = (lo, mid) if enough(mid) else (mid, hi)
    return float(f"{hi * 1.001:.3g}") if enough(float(f"{hi * 1.001:.3g}")) else float(f"{hi * 1.01:.3g}")


# ------------------------------------------------------------------------------------------ column values
def _is_text(s: pd.Series) -> bool:
    if isinstance(s.dtype, pd.CategoricalDtype):
        return pd.api.types.is_object_dtype(s.dtype.categories.dtype) or pd.api.types.is_string_dtype(
            s.dtype.categories.dtype
        )
    return pd.api.types.is_object_dtype(s.dtype) or pd.api.types.is_string_dtype(s.dtype)


def _seconds(s: pd.Series, fmt: str | None) -> tuple[np.ndarray, Any]:
    """Datetimes as float seconds since 1970 (NaN missing), and their timezone."""
    parsed = s if pd.api.types.is_datetime64_any_dtype(s.dtype) else pd.to_datetime(s, format=fmt)
    tz = getattr(parsed.dt, "tz", None)
    if tz is not None:
        parsed = parsed.dt.tz_convert(None)
    ns = parsed.astype("datetime64[ns]").to_numpy()
    out = ns.view("int64").astype("float64") / 1e9
    out[np.isnat(ns)] = np.nan
    return out, tz


def _from_seconds(x: np.ndarray, like: pd.Series, fmt: str | None, tz: Any) -> pd.Series:
    day = fmt is not None and not any(code in fmt for code in ("%H", "%I", "%M", "%S", "%f", "%X", "%T"))
    step = 86_400.0 if day else 1.0
    values = np.where(np.isnan(x), np.nan, np.round(x / step) * step)
    ns = np.where(np.isnan(values), np.iinfo("int64").min, values * 1e9).astype("int64")
    out = pd.Series(ns.view("datetime64[ns]"), name=like.name)
    if pd.api.types.is_datetime64_any_dtype(like.dtype):
        if tz is not None:
            out = out.dt.tz_localize("UTC").dt.tz_convert(tz)
        unit = np.datetime_data(like.dt.tz_convert(None).dtype if tz is not None else like.dtype)[0]
        return out.astype(f"datetime64[{unit}, {tz}]" if tz is not None else f"datetime64[{unit}]")
    if tz is not None:  # text with an offset (%z): write the instants in the column's zone, not as naive times
        out = out.dt.tz_localize("UTC").dt.tz_convert(tz)
    text = out.dt.strftime(fmt).to_numpy(dtype=object)
    if fmt is not None and fmt.endswith("%z") and _zulu(like):  # the column's style: "Z" for UTC, not "+0000"
        text = np.asarray([t[:-5] + "Z" if isinstance(t, str) and t.endswith("+0000") else t for t in text], object)
    text[np.isnan(values)] = np.nan
    return pd.Series(text, name=like.name).astype(like.dtype)


def _zulu(s: pd.Series) -> bool:
    """Text timestamps written with "Z" for UTC (the column's format, like its dtype: schema, not data)."""
    text = s.dropna().astype(str)
    return bool(len(text)) and bool(text.str.endswith("Z").all())


def _numbers(s: pd.Series, spec: Any) -> tuple[np.ndarray, Any]:
    if spec.kind == _DATETIME_KIND:
        return _seconds(s, spec.datetime_format)
    return s.to_numpy(dtype="float64", na_value=np.nan), None


def _declared_bounds(name: str, spec: Any) -> tuple[float, float] | None:
    if spec.low is None or spec.high is None:
        return None
    if spec.kind == _DATETIME_KIND:
        low, high = (pd.Timestamp(v) for v in (spec.low, spec.high))
        low, high = (t.tz_convert(None) if t.tzinfo is not None else t for t in (low, high))
        return low.value / 1e9, high.value / 1e9
    return float(spec.low), float(spec.high)


# ------------------------------------------------------------------------------------------ the mechanism
def private_domain(
    df: pd.DataFrame,
    meta: Metadata,
    ledger: PrivacyLedger,
    share: float,
    rng: np.random.Generator,
    max_share: float | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """``(public table, real rows mapped into its domain, details)``, spending ``share`` of the ledger's epsilon.

    Where the log grids' noise would be above ``n / 16`` rows, they get less noise than the other vectors and,
    with ``max_share`` above ``share``, the share rises up to ``max_share`` (``_allocate``). The public table has
    every column of ``df`` (generated columns copied: they are never learned) and ``_PUBLIC_ROWS`` rows; the
    mapped table has ``df``'s rows.
    """
    learned = meta.learned_columns
    n = len(df)
    n_public = _PUBLIC_ROWS
    queries, grids, selected = 0, 0, 0
    for name in learned:
        spec = meta.columns[name]
        if spec.kind in ("continuous", "integer", _DATETIME_KIND):
            queries += 1
            grids += _declared_bounds(name, spec) is None
        elif spec.kind == "categorical":
            queries += 1
            selected += spec.categories is None
        else:
            queries += 1
    details: dict[str, Any] = {"columns": {}}
    if queries == 0:
        return df.copy(), df.copy(), details
    if selected:
        ledger.delta_selection = 0.1 * ledger.delta
    # one Gaussian mechanism over all count vectors, the grids at noise sigma / weight (module docstring)
    share, weight = _allocate(ledger, n, queries, grids, share, max_share)
    sensitivity = math.sqrt(queries + weight**2 * grids)
    ledger.domain_share, ledger.domain_sensitivity = share, sensitivity
    sigma = _gaussian_sigma(share * ledger.epsilon, ledger.delta_rdp, sensitivity)
    if not math.isfinite(sigma):
        top_share = max(share, max_share or share)  # at the epsilon advised, the share may rise to this
        need = required_epsilon(ledger.delta_rdp, top_share, sensitivity)
        raise ParameterError(
            f"epsilon={ledger.epsilon:g} (delta={ledger.delta:.3g}) is too small: its share for the column domains "
            f"({'up to ' if top_share > share else ''}{top_share:g} x epsilon, {queries + grids} noisy count "
            f"vectors) is below what any noise can certify at this delta. Use epsilon >= {need:g}, declare bounds "
            "and categories in the metadata, or raise delta"
        )
    ledger.add(
        gaussian_rdp(sigma, sensitivity),
        "column domains and one-column histograms (Gaussian counts)",
        count_vectors=queries + grids,
        noise_std=round(sigma, 4),
        grid_noise_std=round(sigma / weight, 4),
        grid_weight=weight,
        share=share,
    )
    tau_level = 1 + sigma * stats.norm.isf(ledger.delta_selection / max(selected, 1)) if selected else math.inf
    grid_sigma = sigma / weight
    # an empty bin of any of the table's grids passes with probability _FALSE_BINS in all
    grid_tau = grid_sigma * stats.norm.isf(_FALSE_BINS / (max(grids, 1) * (len(_log_grid()) + 1)))
    public: dict[str, pd.Series] = {}
    mapped: dict[str, pd.Series] = {}
    weak: list[str] = []
    for name in df.columns:
        s = df[name]
        spec = meta.columns[str(name)]
        if str(name) not in learned:
            public[name] = s.sample(n_public, replace=True, random_state=0).reset_index(drop=True) if n else s
            mapped[name] = s
            continue
        if spec.kind in ("continuous", "integer", _DATETIME_KIND):
            pub, real, info = _numeric(str(name), s, spec, sigma, grid_sigma, grid_tau, n_public, rng)
            if info["bounds_from"] == "dp-largest-bin":
                weak.append(str(name))
        else:
            pub, real, info = _discrete(str(name), s, spec, sigma, tau_level, n_public, rng)
        public[name], mapped[name] = pub, real
        details["columns"][str(name)] = info
    if weak:
        warnings.warn(
            f"epsilon={ledger.epsilon:g}: the value ranges of {', '.join(map(repr, weak))} are too noisy to estimate "
            "privately and were taken from the largest noisy bin of a decade grid (they may be far off); declare "
            "low/high for them in the metadata, or raise epsilon",
            UserWarning,
            stacklevel=3,
        )
    details["noise_std"] = sigma
    details["share"], details["grid_weight"] = share, weight
    pub_df = pd.DataFrame({k: v.reset_index(drop=True) for k, v in public.items()}, columns=df.columns)
    real_df = pd.DataFrame({k: v.reset_index(drop=True) for k, v in mapped.items()}, columns=df.columns)
    real_df.index = df.index
    return pub_df, real_df, details


def _allocate(
    ledger: PrivacyLedger, n: int, queries: int, grids: int, share: float, max_share: float | None
) -> tuple[float, float]:
    """``(share, weight)``: the share of epsilon for the domains, and how much less noise the log grids get.

    A grid's noise std should be at most ``n / _GRID_SNR`` rows. Where ``share`` with equal noise already gives
    that, nothing changes (weight 1). Else the grids' weight rises, up to ``_GRID_WEIGHT`` (the other count
    vectors get more noise: the ranges matter most), and then the share, up to ``max_share``. Each is the
    smallest that reaches the goal. A function of epsilon, delta, n and the schema only (public).
    """

    def grid_sigma(s: float, w: float) -> float:
        return _gaussian_sigma(s * ledger.epsilon, ledger.delta_rdp, math.sqrt(queries + w**2 * grids)) / w

    def smallest(low: float, high: float, ok: Any) -> float:  # the smallest x in [low, high] with ok(x)
        top = high
        for _ in range(30):
            mid = 0.5 * (low + high)
            low, high = (low, mid) if ok(mid) else (mid, high)
        rounded = float(f"{high * 1.0005:.4g}")  # 4 digits, rounded up (still within the range's top)
        return rounded if ok(rounded) and rounded <= top else high

    goal = n / _GRID_SNR
    if not grids or grid_sigma(share, 1.0) <= goal:
        return share, 1.0
    if grid_sigma(share, _GRID_WEIGHT) <= goal:
        return share, smallest(1.0, _GRID_WEIGHT, lambda w: grid_sigma(share, w) <= goal)
    if max_share is None or max_share <= share or not math.isfinite(grid_sigma(max_share, _GRID_WEIGHT)):
        return share, _GRID_WEIGHT
    if grid_sigma(max_share, _GRID_WEIGHT) > goal:
        return max_share, _GRID_WEIGHT
    return smallest(share, max_share, lambda s: grid_sigma(s, _GRID_WEIGHT) <= goal), _GRID_WEIGHT


def _numeric(
    name: str,
    s: pd.Series,
    spec: Any,
    sigma: float,
    grid_sigma: float,
    grid_tau: float,
    n_public: int,
    rng: np.random.Generator,
) -> tuple[pd.Series, pd.Series, dict[str, Any]]:
    x, tz = _numbers(s, spec)
    missing = np.isnan(x)
    bounds = _declared_bounds(name, spec)
    source = "metadata"
    if bounds is None:
        grid = _log_grid()
        counts = np.bincount(np.searchsorted(grid, x[~missing], side="right"), minlength=len(grid) + 1)
        noisy = counts + rng.normal(0, grid_sigma, len(counts))
        first, last, source = _grid_range(noisy, grid_sigma, grid_tau, spec.kind == _DATETIME_KIND)
        edges = np.concatenate([[grid[0]], grid, [grid[-1]]])  # the two outer bins are cut at the grid's ends
        low, high = float(edges[first]), float(edges[last + 1])
        if spec.kind == _DATETIME_KIND:  # within what datetime64[ns] can hold
            low, high = (float(np.clip(v, _MIN_SECONDS, _MAX_SECONDS)) for v in (low, high))
        if spec.kind == "integer":
            low, high = math.ceil(low), math.floor(high)
            if high < low:
                low = high = round(0.5 * (low + high))
        bounds = (low, high)
    low, high = bounds
    if not high >= low:
        raise ParameterError(f"column {name!r}: metadata bounds low={spec.low!r} > high={spec.high!r}")
    edges = np.linspace(low, high, _VALUE_BINS + 1)
    bins = np.where(
        missing,
        _VALUE_BINS,
        np.clip(np.searchsorted(edges, np.clip(x, low, high), side="right") - 1, 0, _VALUE_BINS - 1),
    )
    noisy = np.bincount(bins, minlength=_VALUE_BINS + 1) + rng.normal(0, sigma, _VALUE_BINS + 1)
    info: dict[str, Any] = {}
    if source != "metadata":
        # a decade-wide range is mostly empty; keep the bins the noisy histogram shows occupied (post-processing)
        first, last = _occupied_bins(noisy[:-1], sigma, len(x) - noisy[-1])
        if (first, last) != (0, _VALUE_BINS - 1):
            info["bounds_from_grid"] = [low, high]
            edges = edges[first : last + 2]
            noisy = np.r_[noisy[first : last + 1], noisy[-1]]
            low, high = float(edges[0]), float(edges[-1])
            if spec.kind == "integer":
                low, high = math.floor(low), math.ceil(high)
    n_bins = len(edges) - 1
    clipped = np.clip(x, low, high)
    p = np.clip(noisy, 0, None)
    tau = sigma * stats.norm.isf(_FALSE_BINS)
    # a dtype that cannot hold a missing value (numpy int) says, as schema, that there is none
    can_miss = not (pd.api.types.is_integer_dtype(s.dtype) and not pd.api.types.is_extension_array_dtype(s.dtype))
    with_missing = can_miss and noisy[-1] > tau and p[-1] / max(p.sum(), 1e-12) * n_public >= 1
    if not with_missing:
        p[-1] = 0.0
    if p.sum() <= 0:
        p[:-1] = 1.0
    draw = rng.choice(n_bins + 1, n_public, p=p / p.sum())
    width = (edges[-1] - edges[0]) / n_bins
    values = edges[np.minimum(draw, n_bins - 1)] + rng.random(n_public) * width
    values = np.clip(np.where(draw == n_bins, np.nan, values), low, high)
    if spec.kind == "integer":
        values = np.clip(np.round(values), low, high)
    values[:2] = [low, high] if n_public >= 2 else values[:2]  # the range itself is released: show it whole
    # real rows into the domain: clipped; a missing value where the domain has none drawn from the public values
    real = clipped.copy()
    if missing.any() and not with_missing:
        pool = values[~np.isnan(values)]
        real[missing] = pool[rng.integers(0, len(pool), int(missing.sum()))]
    if spec.kind == "integer":
        real = np.round(real)
    info = {"bounds": [low, high], "bounds_from": source, "missing": bool(with_missing), **info}
    if spec.kind == _DATETIME_KIND:
        return (
            _from_seconds(values, s, spec.datetime_format, tz),
            _from_seconds(real, s, spec.datetime_format, tz),
            info,
        )
    return _as_dtype(values, s), _as_dtype(real, s), info


def _grid_range(noisy: np.ndarray, sigma: float, tau: float, datetime: bool) -> tuple[int, int, str]:
    """First and last bin of a numeric range on the log grid, and where it came from (post-processing).

    The core is the largest bin, which must clear ``tau`` (an empty bin of any of the table's grids passes with
    probability 1%), and the run of bins around it above ``_NEAR_Z`` noise stds; other bins join it when they
    clear ``_NEAR_Z`` stds and lie within ``_NEAR_DECADES`` decades of the core (or of 1: values near zero are
    never far), or clear ``_FAR_Z`` stds anywhere. A noise bin that joins by mistake widens the range by at most
    two decades, which the 64-bin histogram then cuts back; a real bin left out would clip its rows (delays:
    half of them in [-10, -1), a quarter in [10, 100), below ``tau``). Without a bin above ``tau``: the same
    over blocks of 2, then 4 adjacent bins (each block's threshold ``tau sqrt(size)``), then the largest noisy
    bin within ``_FALLBACK`` (``"dp-largest-bin"``).
    """
    grid = _log_grid()
    edges = np.concatenate([[grid[0]], grid, [grid[-1]]])
    magnitude = np.maximum(np.abs(edges[:-1]), np.abs(edges[1:]))  # each bin's largest |value|
    for size in (1, 2, 4):
        sums = np.convolve(noisy, np.ones(size), mode="valid")  # sums[i]: bins i .. i + size - 1
        above = sums > tau * math.sqrt(size)
        if not above.any():
            continue
        near = sums > _NEAR_Z * sigma * math.sqrt(size)
        top = int(np.argmax(np.where(above, sums, -np.inf)))
        first, last = top, top
        while first > 0 and near[first - 1]:
            first -= 1
        while last < len(sums) - 1 and near[last + 1]:
            last += 1
        last += size - 1
        scale = max(float(magnitude[first : last + 1].max()), 1.0) * 10.0**_NEAR_DECADES
        far = sums > _FAR_Z * sigma * math.sqrt(size)
        for i in np.flatnonzero(near):
            if magnitude[i : i + size].max() <= scale or far[i]:
                first, last = min(first, int(i)), max(last, int(i) + size - 1)
        return first, last, "dp"
    # too weak to tell: the largest noisy bin among those a column most plausibly holds (a public prior: see
    # _FALLBACK), so that a guess is at least of an ordinary size, never 1e13
    low, high = _FALLBACK[datetime]
    plausible = (edges[:-1] >= low) & (edges[1:] <= high)
    top = int(np.argmax(np.where(plausible, noisy, -np.inf)))
    return top, top, "dp-largest-bin"


def _occupied_bins(noisy: np.ndarray, sigma: float, present: float) -> tuple[int, int]:
    """First and last bin of the occupied run of a noisy histogram (post-processing of the noisy counts).

    The core is the run of bins around the largest above the threshold that an empty bin passes with
    probability ``_FALSE_BINS`` (over all bins); a lone noise bin at the edge no longer keeps the whole decade.
    It grows outward one bin at a time while the next 1, 2, 4, 8 or 16 bins together hold more than
    ``2.5 sigma sqrt(bins)``. A side is then cut only where what it cuts is, within one noise standard
    deviation, at most ``_TRIM_MASS`` of the rows, and what it keeps can hold, within two, all but twice that of
    the ``present`` rows (n minus the noisy count of missing values; n is public): under heavy noise a long
    thin tail cannot be told from empty bins, nor one noise bin from the column (flights' ``arr_time``, 0 to
    2,359, once got [7468, 7610]), and keeping the whole range costs less than clipping it.
    """
    above = noisy > sigma * stats.norm.isf(_FALSE_BINS / len(noisy))
    if not above.any():
        return 0, len(noisy) - 1
    first = last = int(np.argmax(noisy))
    while first > 0 and above[first - 1]:
        first -= 1
    while last < len(noisy) - 1 and above[last + 1]:
        last += 1
    windows = np.asarray([1, 2, 4, 8, 16])

    def grows(window: np.ndarray) -> bool:
        sums = np.cumsum(window[: windows[-1]])
        k = windows[windows <= len(sums)]
        return bool((sums[k - 1] > _TAIL_Z * sigma * np.sqrt(k)).any())

    while first > 0 and grows(noisy[first - 1 :: -1]):
        first -= 1
    while last < len(noisy) - 1 and grows(noisy[last + 1 :]):
        last += 1
    total = max(float(noisy.sum()), 1.0)

    def small(cut: np.ndarray) -> bool:
        return float(cut.sum()) <= _TRIM_MASS * total + sigma * math.sqrt(len(cut))

    first = first if first == 0 or small(noisy[:first]) else 0
    last = last if last == len(noisy) - 1 or small(noisy[last + 1 :]) else len(noisy) - 1
    kept = noisy[first : last + 1]
    if float(kept.sum()) + 2 * sigma * math.sqrt(len(kept)) < (1 - 2 * _TRIM_MASS) * present:
        return 0, len(noisy) - 1
    return first, last


def _as_dtype(values: np.ndarray, like: pd.Series) -> pd.Series:
    dtype = like.dtype
    if pd.api.types.is_integer_dtype(dtype) and not pd.api.types.is_extension_array_dtype(dtype):
        if np.isnan(values).any():
            return pd.Series(values, name=like.name).astype(str(dtype).capitalize())
        return pd.Series(values.astype(dtype), name=like.name)
    return pd.Series(values, name=like.name).astype(dtype)


def _discrete(
    name: str, s: pd.Series, spec: Any, sigma: float, tau: float, n_public: int, rng: np.random.Generator
) -> tuple[pd.Series, pd.Series, dict[str, Any]]:
    obj = s.to_numpy(dtype=object)
    missing = pd.isna(obj)
    present = obj[~missing]
    if spec.kind == "boolean":
        levels: list[Any] = [False, True]
        source = "fixed"
        codes = np.asarray([bool(v) for v in present], dtype="int64")
        counts = np.bincount(codes, minlength=2).astype("float64")
        noisy = counts + rng.normal(0, sigma, 2)
        kept = np.ones(2, dtype=bool)
    else:
        text = _is_text(s)
        if spec.categories is not None:
            levels, source = list(spec.categories), "metadata"
            index = pd.Index(levels, dtype=object)
            codes = index.get_indexer(pd.Index(present, dtype=object))
            counts = np.bincount(codes[codes >= 0], minlength=len(levels)).astype("float64")
            noisy = counts + rng.normal(0, sigma, len(levels))
            kept = np.ones(len(levels), dtype=bool)
        else:
            uniq, counts_i = np.unique(pd.Series(present, dtype=object).astype(str), return_counts=True)
            first = (
                pd.Series(present, dtype=object).groupby(pd.Series(present, dtype=object).astype(str).values).first()
            )
            levels, source = [first[u] for u in uniq], "dp"
            noisy = counts_i + rng.normal(0, sigma, len(uniq))
            kept = noisy >= tau
            if not kept.any() and not text:
                raise ParameterError(
                    f"column {name!r}: at this epsilon no level of the column is frequent enough to be released "
                    "privately; declare its levels in the metadata (categories) or raise epsilon"
                )
        levels = [v for v, k in zip(levels, kept, strict=True) if k]
        noisy = noisy[kept]
    n_missing = float(missing.sum() + rng.normal(0, sigma))
    n_total = float(len(obj))
    shares = np.clip(noisy, 0, None)
    miss_share = max(n_missing, 0.0)
    other = max(n_total - shares.sum() - miss_share, 0.0) if spec.kind == "categorical" and _is_text(s) else 0.0
    other_level = None
    # the rows left over are n minus the noisy counts: noise of sigma * sqrt(levels + 1) on its own, so a
    # column whose every level was released (a yes/no column) gets no spurious "(other)" from that noise
    tau_other = sigma * math.sqrt(len(levels) + 1) * stats.norm.isf(_FALSE_BINS)
    if (other > tau_other and other / n_total * n_public >= 1) or not levels:
        other_level = OTHER
        while other_level in levels:
            other_level = "(" + other_level + ")"
    tau_missing = sigma * stats.norm.isf(_FALSE_BINS)
    with_missing = n_missing > tau_missing and miss_share / n_total * n_public >= 1
    domain = [*levels, *([other_level] if other_level is not None else [])]
    p = np.concatenate([shares, [other] if other_level is not None else [], [miss_share if with_missing else 0.0]])
    if p[: len(domain)].sum() <= 0:
        p[: len(domain)] = 1.0
    draw = rng.choice(len(p), n_public, p=p / p.sum())
    draw[: len(domain)] = np.arange(len(domain))  # every level of the domain appears in the public table
    pub_values = np.empty(n_public, dtype=object)
    domain_arr = np.empty(len(domain) + 1, dtype=object)
    domain_arr[: len(domain)] = domain
    domain_arr[-1] = None
    pub_values[:] = domain_arr[np.minimum(draw, len(domain))]
    # real rows: a level outside the domain becomes (other), or a public level; missing likewise if not in domain
    index = pd.Index(domain, dtype=object)
    real = obj.copy()
    codes = np.full(len(obj), -1, dtype="int64")
    if len(present):
        lookup = pd.Index([str(v) for v in domain], dtype=object) if spec.kind != "boolean" else index
        keys = pd.Index(present, dtype=object).astype(str) if spec.kind != "boolean" else pd.Index(present)
        codes[~missing] = lookup.get_indexer(keys)
    outside = (~missing) & (codes < 0)
    pool = pub_values[pd.notna(pub_values)]
    if outside.any():
        real[outside] = other_level if other_level is not None else pool[rng.integers(0, len(pool), outside.sum())]
    inside = (~missing) & (codes >= 0)
    real[inside] = np.asarray(domain, dtype=object)[codes[inside]]
    if missing.any() and not with_missing:
        real[missing] = pool[rng.integers(0, len(pool), int(missing.sum()))]
    info = {
        "levels_from": source,
        "levels": len(levels),
        "other": other_level is not None,
        "missing": bool(with_missing),
    }
    return _discrete_dtype(pub_values, s, domain), _discrete_dtype(real, s, domain), info


def _discrete_dtype(values: np.ndarray, like: pd.Series, domain: list[Any]) -> pd.Series:
    dtype = like.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        cats = pd.Index(domain, dtype=object) if _is_text(like) else pd.Index(domain)
        return pd.Series(pd.Categorical(values, categories=cats, ordered=dtype.ordered), name=like.name)
    if pd.api.types.is_bool_dtype(dtype) and not pd.isna(values).any():
        return pd.Series(values.astype(bool), name=like.name)
    if pd.api.types.is_object_dtype(dtype):
        return pd.Series(values, name=like.name, dtype=object)
    if pd.api.types.is_bool_dtype(dtype):
        return pd.Series(pd.array(values, dtype="boolean"), name=like.name)
    if pd.api.types.is_numeric_dtype(dtype):
        return _as_dtype(pd.to_numeric(pd.Series(values, dtype=object)).to_numpy(dtype="float64"), like)
    return pd.Series(values, name=like.name).astype(dtype)
