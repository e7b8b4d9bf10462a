"""Probabilistic forecasts of per-entity time series, scored against what happened; the digital-twin benchmark.

A *forecast table* is the long table a twin's ``forecast(horizon, paths)`` returns: the entity key, a ``path``
column (0..P-1), the time index and the channels; P sample paths per entity, each ``horizon`` steps long. The
*actual* table is the long table of what the entities really did after the history the forecast started from.

Scores (lower is better), per channel, over every (entity, step) cell whose actual value is known:

- **CRPS** (numeric channels): the continuous ranked probability score of the paths' empirical distribution,
  ``CRPS = E|X - y| - E|X - X'| / 2`` (Gneiting & Raftery, JASA 2007, eq. 21), computed exactly from the sorted
  samples in O(P log P). It rewards a forecast that is both sharp and calibrated, in the channel's unit; it
  reduces to the absolute error for a single path.
- **MAE of the median path** (numeric channels): the absolute error of the per-step median over paths.
- **Brier score** and **mode error** (discrete channels): ``sum_l (share of paths at level l - [y = l])^2``, and
  the share of cells where the most frequent level over paths is not the actual one.

``crps_scaled`` and ``mae_scaled`` divide each channel's error by its scale (by default the standard deviation
of the actual values; the benchmark passes the training fleet's) and average over numeric channels, so channels
in different units count alike. Forecast and actual are aligned per entity by step (the h-th forecast step of
every path against the h-th actual row after the history, ``align="step"``, which suits irregular spacing), or
on equal time values (``align="time"``).

:func:`twin_benchmark` runs the protocol of the twin benchmark: for each held-out entity and each k, the methods
see the entity's first k rows and forecast the rest; their scores are compared side by side, with the ratio of
each method's error to a reference method's (the population model's). Methods are plain callables
``(history, horizon, paths, seed) -> forecast table``; :func:`population_forecaster`, :func:`twin_forecaster`
and :func:`scratch_forecaster` wrap the sequence model, and :func:`ar1_forecaster` is a per-entity baseline
(an AR(1) per channel fitted on the history alone) that needs no model.

Examples
--------
>>> import numpy as np
>>> crps(np.array([[0.0], [1.0]]), np.array([0.0]))  # E|X - 0| = 0.5, E|X - X'| = 0.5
array([0.25])
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import pandas as pd

from twinforge.errors import DataError, ParameterError

__all__ = [
    "Forecaster",
    "ar1_forecaster",
    "crps",
    "forecast_scores",
    "population_forecaster",
    "scratch_forecaster",
    "split_history",
    "twin_benchmark",
    "twin_forecaster",
]

PATH = "path"
Forecaster = Callable[[pd.DataFrame, int, int, int], pd.DataFrame]


# ------------------------------------------------------------------------------------------ single cells
def crps(samples: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """CRPS of the empirical distribution of ``samples`` (P x N, NaN ignored) at each ``observed`` value (N).

    NaN where the observation is missing or a cell has no finite sample.
    """
    x = np.asarray(samples, dtype="float64")
    y = np.asarray(observed, dtype="float64")
    if x.ndim == 1:
        x = x[:, None]
    if x.shape[1:] != y.shape:
        raise ParameterError(f"samples have shape {x.shape}, observed {y.shape}: samples must be (paths, cells)")
    x = np.sort(x, axis=0)  # NaN last
    finite = ~np.isnan(x)
    m = finite.sum(axis=0)
    i = np.arange(1, x.shape[0] + 1)[:, None]
    xs = np.where(finite, x, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        abs_err = np.where(finite, np.abs(xs - y), 0.0).sum(axis=0) / m
        # E|X - X'| over the empirical distribution = 2 / m^2 * sum_i (2i - m - 1) x_(i)
        spread = 2.0 * (np.where(finite, (2 * i - m - 1) * xs, 0.0)).sum(axis=0) / (m.astype("float64") ** 2)
        out = abs_err - 0.5 * spread
    return np.where((m > 0) & ~np.isnan(y), out, np.nan)


def _median(samples: np.ndarray) -> np.ndarray:
    finite = ~np.isnan(samples)
    out = np.full(samples.shape[1:], np.nan)
    ok = finite.any(axis=0)
    if ok.any():
        out[ok] = np.nanmedian(samples[:, ok], axis=0)
    return out


# ------------------------------------------------------------------------------------------ tables
def _check_columns(df: pd.DataFrame, name: str, needed: list[str]) -> None:
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise DataError(f"{name} has no column {', '.join(map(repr, missing))}; its columns are {list(df.columns)}")


def _is_numeric(s: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)


def _time_order(s: pd.Series) -> np.ndarray:
    if pd.api.types.is_datetime64_any_dtype(s):
        return s.astype("int64").to_numpy(dtype="float64")
    values = pd.to_numeric(s, errors="coerce")
    if values.notna().sum() == s.notna().sum():
        return values.to_numpy(dtype="float64")
    return pd.to_datetime(s, format="mixed").astype("int64").to_numpy(dtype="float64")


def _aligned(
    fc: pd.DataFrame, act: pd.DataFrame, entity: Any, time_key: str, align: str
) -> tuple[np.ndarray, np.ndarray, int]:
    """Row indices (paths x steps) of ``fc`` and (steps) of ``act`` for one entity, and the number of paths."""
    paths = np.sort(fc[PATH].unique())
    counts = fc.groupby(PATH).size()
    if counts.nunique() != 1:
        raise DataError(
            f"forecast: entity {entity!r} has paths of different lengths ({counts.min()} to {counts.max()} steps); "
            "every path must cover the same steps"
        )
    steps = int(counts.iloc[0])
    order = np.lexsort((_time_order(fc[time_key]), fc[PATH].to_numpy()))
    grid = order.reshape(len(paths), steps)
    act_order = np.argsort(_time_order(act[time_key]), kind="stable")
    if align == "step":
        h = min(steps, len(act_order))
        return grid[:, :h], act_order[:h], len(paths)
    f_times = _time_order(fc[time_key].iloc[grid[0]])
    a_times = _time_order(act[time_key].iloc[act_order])
    _, fi, ai = np.intersect1d(f_times, a_times, return_indices=True)
    return grid[:, fi], act_order[ai], len(paths)


def forecast_scores(
    forecast: pd.DataFrame,
    actual: pd.DataFrame,
    *,
    entity_key: str,
    time_key: str,
    channels: Iterable[str] | None = None,
    scale: dict[str, float] | None = None,
    align: str = "step",
) -> dict[str, Any]:
    """Score a probabilistic forecast table against the actual continuation (see the module docstring).

    Parameters
    ----------
    forecast : DataFrame
        Long table: ``entity_key``, ``path``, ``time_key`` and the channels (e.g. ``twin.forecast(...)``).
    actual : DataFrame
        What happened: ``entity_key``, ``time_key`` and the channels. Entities absent from the forecast are an
        error; steps beyond the forecast's horizon are ignored.
    entity_key, time_key : str
        The entity and time columns.
    channels : iterable of str, optional
        Channels to score; by default every column the two tables share except the keys and ``path``.
    scale : dict, optional
        Channel -> the unit of its scaled errors; by default the standard deviation of ``actual``'s values.
    align : {"step", "time"}, default "step"
        Match the h-th forecast step with the h-th actual row, or match equal time values.

    Returns
    -------
    dict
        ``crps_scaled``, ``mae_scaled`` (means over numeric channels of the scaled errors), ``brier`` and
        ``mode_error`` (means over discrete channels), ``cells``, ``entities``, ``paths``, ``channels`` (per
        channel: ``crps``, ``mae``, ``crps_scaled``, ``mae_scaled`` or ``brier``, ``mode_error``; ``cells``) and
        ``per_entity`` (entity -> its ``crps_scaled`` and ``mae_scaled``).

    Examples
    --------
    >>> import pandas as pd
    >>> fc = pd.DataFrame({"id": 1, "path": [0, 0, 1, 1], "t": [5, 6, 5, 6], "x": [1.0, 2.0, 3.0, 4.0]})
    >>> act = pd.DataFrame({"id": 1, "t": [5, 6], "x": [2.0, 3.0]})
    >>> forecast_scores(fc, act, entity_key="id", time_key="t", scale={"x": 1.0})["mae_scaled"]
    0.0
    """
    if align not in ("step", "time"):
        raise ParameterError(f"align must be 'step' or 'time', got {align!r}")
    for df, name in ((forecast, "forecast"), (actual, "actual")):
        if not isinstance(df, pd.DataFrame):
            raise ParameterError(f"{name} must be a DataFrame (a long table), got {type(df).__name__}")
    _check_columns(forecast, "forecast", [entity_key, PATH, time_key])
    _check_columns(actual, "actual", [entity_key, time_key])
    keys = {entity_key, time_key, PATH}
    if channels is None:
        channels = [c for c in actual.columns if c not in keys and c in forecast.columns]
    channels = list(channels)
    if not channels:
        raise DataError("forecast and actual share no channel to score (besides the entity, time and path columns)")
    _check_columns(forecast, "forecast", channels)
    _check_columns(actual, "actual", channels)
    numeric = [c for c in channels if _is_numeric(actual[c]) and _is_numeric(forecast[c])]
    discrete = [c for c in channels if c not in numeric]
    scales = {}
    for c in numeric:
        s = (scale or {}).get(c)
        if s is None:
            s = float(np.nanstd(actual[c].to_numpy(dtype="float64"))) if actual[c].notna().any() else 1.0
        scales[c] = float(s) if np.isfinite(s) and s > 0 else 1.0

    fc_groups = forecast.groupby(entity_key, sort=False).indices
    act_groups = actual.groupby(entity_key, sort=False).indices
    absent = [e for e in act_groups if e not in fc_groups]
    if absent:
        raise DataError(
            f"actual has {len(absent)} entities the forecast does not cover, e.g. {absent[0]!r}: forecast every "
            "entity you score, or drop it from actual"
        )
    sums: dict[str, dict[str, float]] = {c: {"a": 0.0, "b": 0.0, "n": 0} for c in channels}
    per_entity: dict[Any, dict[str, float | None]] = {}
    n_paths: set[int] = set()
    for entity, a_idx in act_groups.items():
        fc = forecast.iloc[fc_groups[entity]]
        act = actual.iloc[a_idx]
        grid, rows, p = _aligned(fc, act, entity, time_key, align)
        n_paths.add(p)
        ent_c, ent_m = [], []
        for c in numeric:
            x = fc[c].to_numpy(dtype="float64")[grid]
            y = act[c].to_numpy(dtype="float64")[rows]
            cr = crps(x, y)
            ae = np.abs(_median(x) - y)
            ok = ~np.isnan(cr) & ~np.isnan(ae)
            sums[c]["a"] += float(cr[ok].sum())
            sums[c]["b"] += float(ae[ok].sum())
            sums[c]["n"] += int(ok.sum())
            if ok.any():
                ent_c.append(float(cr[ok].mean()) / scales[c])
                ent_m.append(float(ae[ok].mean()) / scales[c])
        for c in discrete:
            x = fc[c].to_numpy(dtype=object)[grid]
            y = act[c].to_numpy(dtype=object)[rows]
            brier, wrong, ok = _discrete_scores(x, y)
            sums[c]["a"] += float(brier[ok].sum())
            sums[c]["b"] += float(wrong[ok].sum())
            sums[c]["n"] += int(ok.sum())
        per_entity[_plain(entity)] = {
            "crps_scaled": float(np.mean(ent_c)) if ent_c else None,
            "mae_scaled": float(np.mean(ent_m)) if ent_m else None,
        }
    details: dict[str, Any] = {}
    for c in channels:
        n = sums[c]["n"]
        a, b = (sums[c]["a"] / n, sums[c]["b"] / n) if n else (None, None)
        if c in numeric:
            details[c] = {
                "kind": "numeric",
                "crps": a,
                "mae": b,
                "crps_scaled": None if a is None else a / scales[c],
                "mae_scaled": None if b is None else b / scales[c],
                "scale": scales[c],
                "cells": n,
            }
        else:
            details[c] = {"kind": "discrete", "brier": a, "mode_error": b, "cells": n}

    def mean(key: str, names: list[str]) -> float | None:
        values = [details[c][key] for c in names if details[c][key] is not None]
        return float(np.mean(values)) if values else None

    return {
        "crps_scaled": mean("crps_scaled", numeric),
        "mae_scaled": mean("mae_scaled", numeric),
        "brier": mean("brier", discrete),
        "mode_error": mean("mode_error", discrete),
        "cells": int(sum(sums[c]["n"] for c in channels)),
        "entities": len(act_groups),
        "paths": sorted(n_paths)[0] if len(n_paths) == 1 else sorted(n_paths),
        "align": align,
        "channels": details,
        "per_entity": per_entity,
    }


def _discrete_scores(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Brier score and mode error per cell of a discrete channel (paths x cells of levels), and known cells."""
    known_y = ~pd.isna(y)
    brier = np.full(len(y), np.nan)
    wrong = np.full(len(y), np.nan)
    for j in range(len(y)):
        col = x[:, j]
        col = col[~pd.isna(col)]
        if not known_y[j] or len(col) == 0:
            continue
        levels, counts = np.unique(col.astype(str), return_counts=True)
        share = counts / counts.sum()
        hit = levels == str(y[j])
        brier[j] = float(((share - hit) ** 2).sum() + (0.0 if hit.any() else 1.0))
        wrong[j] = float(levels[np.argmax(counts)] != str(y[j]))
    ok = ~np.isnan(brier)
    return brier, wrong, ok


def _plain(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


# ------------------------------------------------------------------------------------------ forecasters
def population_forecaster(model: Any) -> Forecaster:
    """The population model's forecast from a history, without personalisation (``model.forecast``)."""

    def run(history: pd.DataFrame, horizon: int, paths: int, seed: int) -> pd.DataFrame:
        return model.forecast(history, horizon, paths, seed=seed)

    return run


def twin_forecaster(model: Any, **personalize: Any) -> Forecaster:
    """``model.personalize(history, **personalize)`` (a twin), then its forecast."""

    def run(history: pd.DataFrame, horizon: int, paths: int, seed: int) -> pd.DataFrame:
        twin = model.personalize(history, seed=seed, **personalize)
        return twin.forecast(horizon, paths, seed=seed)

    return run


def scratch_forecaster(make_model: Callable[[], Any], *, entity_key: str, time_key: str) -> Forecaster:
    """A new model from ``make_model()``, fitted on the entity's history alone, then its forecast."""

    def run(history: pd.DataFrame, horizon: int, paths: int, seed: int) -> pd.DataFrame:
        model = make_model().fit(history, entity_key=entity_key, time_key=time_key)
        return model.forecast(history, horizon, paths, seed=seed)

    return run


def ar1_forecaster(*, entity_key: str, time_key: str, channels: Iterable[str] | None = None) -> Forecaster:
    """A per-entity baseline trained on the history alone: an AR(1) with Gaussian noise for each numeric channel.

    ``x_{t+1} = mean + phi (x_t - mean) + e``, ``phi`` in [-0.99, 0.99] from the lag-1 autocorrelation of the
    history (0 with fewer than 3 known values), ``e`` normal with the residual standard deviation. Discrete
    channels draw each step from the history's level shares. Times continue the history's median spacing.
    """
    wanted = None if channels is None else list(channels)

    def run(history: pd.DataFrame, horizon: int, paths: int, seed: int) -> pd.DataFrame:
        rng = np.random.default_rng(seed)
        h = history.sort_values(time_key, kind="stable")
        names = wanted if wanted is not None else [c for c in h.columns if c not in (entity_key, time_key)]
        out: dict[str, Any] = {
            entity_key: np.repeat(h[entity_key].iloc[0], paths * horizon),
            PATH: np.repeat(np.arange(paths), horizon),
            time_key: np.tile(_next_times(h[time_key], horizon), paths),
        }
        for c in names:
            s = h[c]
            if _is_numeric(s):
                out[c] = _ar1_paths(s.to_numpy(dtype="float64"), horizon, paths, rng).ravel()
            else:
                known = s.dropna()
                if known.empty:
                    out[c] = np.full(paths * horizon, None, dtype=object)
                    continue
                levels, counts = np.unique(known.astype(str), return_counts=True)
                back = {str(v): v for v in known}
                draw = rng.choice(len(levels), paths * horizon, p=counts / counts.sum())
                out[c] = np.array([back[levels[i]] for i in draw], dtype=object)
        return pd.DataFrame(out)

    return run


def _ar1_paths(x: np.ndarray, horizon: int, paths: int, rng: np.random.Generator) -> np.ndarray:
    known = x[~np.isnan(x)]
    if known.size == 0:
        return np.full((paths, horizon), np.nan)
    mu = float(known.mean())
    d = x - mu
    pairs = ~np.isnan(d[1:]) & ~np.isnan(d[:-1])
    phi = 0.0
    if pairs.sum() >= 2 and np.sum(d[:-1][pairs] ** 2) > 0:
        phi = float(np.clip(np.sum(d[1:][pairs] * d[:-1][pairs]) / np.sum(d[:-1][pairs] ** 2), -0.99, 0.99))
    resid = d[1:][pairs] - phi * d[:-1][pairs] if pairs.any() else known - mu
    sd = float(np.std(resid)) if resid.size > 1 else float(np.std(known))
    last = d[~np.isnan(d)][-1]
    out = np.empty((paths, horizon))
    cur = np.full(paths, last)
    for j in range(horizon):
        cur = phi * cur + rng.normal(0.0, sd, paths)
        out[:, j] = mu + cur
    return out


def _next_times(t: pd.Series, horizon: int) -> Any:
    """``horizon`` times after the last of ``t``, at its median spacing (1 with a single row)."""
    steps = np.arange(1, horizon + 1)
    if pd.api.types.is_datetime64_any_dtype(t):
        gap = t.diff().median() if len(t) > 1 else pd.NaT
        if pd.isna(gap) or gap <= pd.Timedelta(0):
            gap = pd.Timedelta(1, "D")
        return (t.iloc[-1] + pd.to_timedelta(steps * gap.value, unit="ns")).to_numpy()
    values = pd.to_numeric(t).to_numpy(dtype="float64")
    gap = float(np.median(np.diff(values))) if len(values) > 1 else 1.0
    nxt = values[-1] + gap * steps
    if pd.api.types.is_integer_dtype(t) and float(gap).is_integer():
        return nxt.astype(t.dtype)
    return nxt


# ------------------------------------------------------------------------------------------ the benchmark
def split_history(
    events: pd.DataFrame, *, entity_key: str, time_key: str, k: int, horizon: int | None = None
) -> tuple[pd.DataFrame, pd.DataFrame, list[Any]]:
    """Each entity's first ``k`` rows (the history) and the next ``horizon`` rows (all the rest by default).

    Returns the histories, the actual continuations, and the entities too short to have both (fewer than
    ``k + 1`` rows), which are left out of both tables.
    """
    _check_columns(events, "events", [entity_key, time_key])
    k = _int_at_least("k", k, 1)
    if horizon is not None:
        horizon = _int_at_least("horizon", horizon, 1)
    order = np.lexsort((_time_order(events[time_key]), pd.factorize(events[entity_key], sort=True)[0]))
    ordered = events.iloc[order]
    step = ordered.groupby(entity_key, sort=False).cumcount().to_numpy()
    size = ordered.groupby(entity_key, sort=False)[time_key].transform("size").to_numpy()
    short = ordered.loc[size <= k, entity_key].unique().tolist()
    keep = size > k
    end = k + horizon if horizon is not None else np.inf
    history = ordered[keep & (step < k)].reset_index(drop=True)
    actual = ordered[keep & (step >= k) & (step < end)].reset_index(drop=True)
    return history, actual, [_plain(e) for e in short]


def _int_at_least(name: str, v: Any, low: int) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < low:
        raise ParameterError(f"{name} must be an integer >= {low}, got {v!r}")
    return int(v)


def twin_benchmark(
    events: pd.DataFrame,
    methods: dict[str, Forecaster],
    *,
    entity_key: str,
    time_key: str,
    ks: Iterable[int] = (10, 25),
    horizon: int | None = None,
    paths: int = 100,
    seed: int = 0,
    channels: Iterable[str] | None = None,
    scale: dict[str, float] | None = None,
    reference: str | None = "population",
    progress: bool = True,
    on_result: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Forecast held-out entities from their first k steps with each method and score the rest, side by side.

    Parameters
    ----------
    events : DataFrame
        Long table of the held-out entities (never seen by the models being compared): entity key, time,
        channels (and static columns, passed on in the histories).
    methods : dict
        Name -> ``forecaster(history, horizon, paths, seed)`` returning a forecast table, e.g.
        ``{"population": population_forecaster(model), "twin": twin_forecaster(model),
        "scratch": ar1_forecaster(entity_key=..., time_key=...)}``.
    entity_key, time_key : str
        The entity and time columns.
    ks : iterable of int, default (10, 25)
        History lengths (rows) the methods see.
    horizon : int, optional
        Steps forecast after the history (default: every remaining row of each entity).
    paths : int, default 100
        Sample paths per forecast.
    seed : int, default 0
        Passed to every forecaster (the same for every entity and method).
    channels : iterable of str, optional
        Channels scored (default: every column but the keys that the forecasts hold).
    scale : dict, optional
        Channel -> unit of the scaled errors; pass the training fleet's standard deviations so that every k and
        method is measured in the same units (default: the standard deviation over all rows of ``events``).
    reference : str, optional
        The method the others are compared with (``ratio_crps``, ``ratio_mae``, ``wins``); default
        "population", ignored when absent.
    progress : bool, default True
        A progress bar on stderr.
    on_result : callable, optional
        Called with the result so far after every (k, method), e.g. to write JSON incrementally.

    Returns
    -------
    dict
        ``results[str(k)][method]`` with ``crps_scaled``, ``mae_scaled``, ``seconds``, ``per_entity`` and the full
        ``scores``; for methods other than the reference, ``ratio_crps`` / ``ratio_mae`` (their error over the
        reference's) and ``wins`` (share of entities where their CRPS is lower); ``skipped[str(k)]`` lists the
        entities too short for that k.
    """
    if not methods:
        raise ParameterError("methods is empty: give at least one forecaster, e.g. {'scratch': ar1_forecaster(...)}")
    ks = [_int_at_least("k", k, 1) for k in ks]
    paths = _int_at_least("paths", paths, 1)
    _check_columns(events, "events", [entity_key, time_key])
    names = list(channels) if channels is not None else None
    if scale is None:
        cols = names or [c for c in events.columns if c not in (entity_key, time_key)]
        scale = {c: float(np.nanstd(events[c].to_numpy(dtype="float64"))) for c in cols if _is_numeric(events[c])}
    result: dict[str, Any] = {"ks": ks, "paths": paths, "horizon": horizon, "seed": seed, "reference": reference}
    result.update(results={}, skipped={})
    total = len(ks) * len(methods)
    with _progress(progress, total) as bar:
        for k in ks:
            history, actual, short = split_history(events, entity_key=entity_key, time_key=time_key, k=k,
                                                   horizon=horizon)  # fmt: skip
            result["skipped"][str(k)] = short
            if history.empty:
                raise DataError(f"no entity has more than k={k} rows: use a smaller k")
            table: dict[str, Any] = {}
            result["results"][str(k)] = table
            for name, method in methods.items():
                start = time.perf_counter()
                frames = []
                for entity, rows in history.groupby(entity_key, sort=False).indices.items():
                    h = history.iloc[rows].reset_index(drop=True)
                    steps = int((actual[entity_key] == entity).sum())
                    fc = method(h, steps, paths, seed)
                    if not isinstance(fc, pd.DataFrame):
                        raise ParameterError(f"method {name!r} returned {type(fc).__name__}, not a forecast table")
                    frames.append(fc)
                seconds = time.perf_counter() - start
                scores = forecast_scores(pd.concat(frames, ignore_index=True), actual, entity_key=entity_key,
                                         time_key=time_key, channels=names, scale=scale)  # fmt: skip
                table[name] = {
                    "crps_scaled": scores["crps_scaled"],
                    "mae_scaled": scores["mae_scaled"],
                    "brier": scores["brier"],
                    "seconds": round(seconds, 3),
                    "per_entity": scores["per_entity"],
                    "scores": {k2: v for k2, v in scores.items() if k2 != "per_entity"},
                }
                bar(f"k={k} {name}")
                if on_result is not None:
                    on_result(result)
            if reference in table:
                _compare(table, reference)
                if on_result is not None:
                    on_result(result)
    return result


def _compare(table: dict[str, Any], reference: str) -> None:
    ref = table[reference]
    for name, row in table.items():
        if name == reference:
            continue
        for key in ("crps", "mae"):
            mine, theirs = row[f"{key}_scaled"], ref[f"{key}_scaled"]
            row[f"ratio_{key}"] = mine / theirs if mine is not None and theirs else None
        pairs = [
            (v["crps_scaled"], ref["per_entity"][e]["crps_scaled"])
            for e, v in row["per_entity"].items()
            if e in ref["per_entity"] and v["crps_scaled"] is not None
        ]
        row["wins"] = float(np.mean([a < b for a, b in pairs])) if pairs else None


class _progress:
    """A rich progress bar on stderr, or nothing; ``bar(description)`` advances it by one."""

    def __init__(self, show: bool, total: int):
        self.show, self.total = show, total

    def __enter__(self) -> Callable[[str], None]:
        if not self.show:
            return lambda _: None
        from rich.console import Console
        from rich.progress import Progress

        self.bar = Progress(console=Console(stderr=True), transient=True)
        self.bar.start()
        task = self.bar.add_task("twin benchmark", total=self.total)
        return lambda text: self.bar.update(task, advance=1, description=f"twin benchmark: {text}")

    def __exit__(self, *exc: Any) -> None:
        if self.show:
            self.bar.stop()
