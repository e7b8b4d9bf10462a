"""Temporal fidelity of per-entity time series (long tables: one row per entity and time step).

Each table is sorted by entity and time; *channels* are the learned columns other than the time index that vary
within at least one real entity; the others are *static* attributes (one value per entity), unless the static
attributes come as separate tables. Numeric channels are continuous, integer or datetime columns; discrete
channels are categorical or boolean ones.

Metrics (ideal values in brackets):

- **autocorrelation error** [0]: for each numeric channel, the autocorrelation at lags 1..L of every entity's
  series (deviations from the entity's own mean, missing values at that mean), averaged over entities; the error is
  the mean absolute difference between real and synthetic over lags, then over channels. Discrete channels use the
  *agreement* at lag k instead, the share of steps whose level equals the level k steps earlier.
- **cross-correlation error** [0]: for each pair of numeric channels, the correlation within entities (both
  standardised by the entity's mean and standard deviation) at lag 0 and lag 1 (channel a now with channel b one
  step later, both directions), averaged over entities; the error is the mean absolute real-synthetic difference.
- **discriminative AUC** [0.5]: every entity becomes one row of features (per numeric channel: mean, standard
  deviation, quantiles, first and last value, trend, lag-1 and lag-2 autocorrelation, mean absolute step,
  missing share; per discrete channel: level shares and lag-1 agreement; the sequence length; the static
  attributes), and gradient boosting separates real from synthetic entities (equal numbers, 5-fold out-of-fold
  ROC-AUC). The post-hoc discriminator of TimeGAN (Yoon et al., NeurIPS 2019), with features in place of an RNN.
- **predictive score** [ratio 1]: next-step prediction of every numeric channel from the previous two steps of all
  channels, by gradient boosting trained on synthetic entities and tested on real ones it never saw (TSTR), and
  trained on as many real entities (TRTR); the error is the mean absolute error in units of the channel's real standard
  deviation, and ``predictive_ratio = trtr_error / tstr_error`` (TimeGAN's predictive score, as a ratio).
  The test entities are the holdout when there is one, otherwise half of the real entities (the other half train
  TRTR).
- **sequence length** [1]: ``1 - KS`` between the real and synthetic sequence lengths.
- **static attributes** [1]: the column shapes and column pair trends of :mod:`~twinforge.evaluate.fidelity` on the
  one-row-per-entity static tables.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from twinforge.errors import DataError, ParameterError
from twinforge.evaluate._data import Prepared, random_state, read_input, threads, trainable

__all__ = [
    "autocorrelation",
    "cross_correlation",
    "discriminative_auc",
    "predictive_score",
    "sequence_lengths",
    "temporal_fidelity",
]

LAGS = 10
MIN_ENTITIES = 10  # per side, for the discriminative and predictive scores
HISTORY = 2  # steps of history the next-step models see


@dataclass
class Sequences:
    """One table as sorted per-entity sequences."""

    entity: np.ndarray  # entity code of every row (0..n-1), rows sorted by entity then time
    n: int  # number of entities
    lengths: np.ndarray  # rows per entity
    numeric: dict[str, np.ndarray] = field(default_factory=dict)  # sorted float arrays, NaN missing
    discrete: dict[str, np.ndarray] = field(default_factory=dict)  # sorted int codes, -1 missing
    static: pd.DataFrame | None = None  # one row per entity (in entity code order), without the key


@dataclass
class TemporalData:
    """Everything the temporal metrics read."""

    tables: dict[str, Sequences]
    entity_key: str
    time_key: str
    numeric: list[str]
    discrete: list[str]
    static_columns: list[str]
    static_prep: Any = None  # a Prepared over the static tables, or None


# ------------------------------------------------------------------------------------------ preparation
def resolve_keys(metadata_keys: tuple[str | None, str | None], entity_key: Any, time_key: Any) -> tuple[str, str]:
    """The entity and time columns: the arguments, else the metadata's ``entity_key`` / ``time_index``."""
    entity = entity_key if entity_key is not None else metadata_keys[0]
    time = time_key if time_key is not None else metadata_keys[1]
    if entity is None or time is None:
        missing = [n for n, v in (("entity_key", entity), ("time_key", time)) if v is None]
        raise ParameterError(
            f"temporal evaluation needs {' and '.join(missing)}: pass entity_key=COLUMN and time_key=COLUMN "
            "(--entity-key, --time-key), or set entity_key and time_index in the metadata"
        )
    if entity == time:
        raise ParameterError(f"entity_key and time_key are both {entity!r}: they must be two different columns")
    return str(entity), str(time)


def build(
    frames: dict[str, pd.DataFrame],
    prep: Prepared,
    entity_key: str,
    time_key: str,
    statics: dict[str, pd.DataFrame] | None = None,
) -> TemporalData:
    """Sort every table by entity and time and split its learned columns into channels and static attributes.

    ``frames`` are the long tables ``prep`` was built from (same row order); ``statics`` optional separate static
    tables (one row per entity) for ``real`` and ``synthetic``.
    """
    for t, df in frames.items():
        missing = [k for k in (entity_key, time_key) if k not in df.columns]
        if missing:
            raise DataError(f"{t} has no column {', '.join(map(repr, missing))}; columns are {list(df.columns)}")
    learned = [n for n in prep.names if n not in (entity_key, time_key)]
    orders = {t: _order(df, prep, t, entity_key, time_key) for t, df in frames.items()}
    codes = {t: o[1] for t, o in orders.items()}
    real_codes, real_order = codes["real"], orders["real"][0]
    if statics:
        static_cols: list[str] = []
    else:
        static_cols = [n for n in learned if _constant_within(prep.values["real"][n][real_order], real_codes)]
    channels = [n for n in learned if n not in static_cols]
    if not channels:
        raise DataError(
            f"no channel varies over time within an entity of real (grouped by {entity_key!r}): every learned "
            "column is constant per entity, so there are no time series to evaluate; check entity_key and time_key"
        )
    numeric = [n for n in channels if not prep.columns[n].discrete]
    discrete = [n for n in channels if prep.columns[n].discrete]
    tables = {}
    for t, df in frames.items():
        order, ent = orders[t]
        n = int(ent.max()) + 1 if len(ent) else 0
        seq = Sequences(ent, n, np.bincount(ent, minlength=n))
        seq.numeric = {c: prep.values[t][c][order] for c in numeric}
        seq.discrete = {c: prep.values[t][c][order] for c in discrete}
        if static_cols:
            first = np.r_[0, np.flatnonzero(np.diff(ent)) + 1]
            seq.static = df[static_cols].iloc[order[first]].reset_index(drop=True)
        tables[t] = seq
    data = TemporalData(tables, entity_key, time_key, numeric, discrete, static_cols)
    if statics:
        data.static_columns = [c for c in statics["real"].columns if c != entity_key]
        for t in ("real", "synthetic"):
            tables[t].static = _aligned_static(statics[t], frames[t], orders[t], entity_key, t)
    if data.static_columns:
        from twinforge.evaluate._data import prepare

        real_static, synth_static = tables["real"].static, tables["synthetic"].static
        try:
            data.static_prep = prepare(real_static, synth_static)
        except DataError as exc:
            raise DataError(f"static attributes: {exc}") from None
    return data


def _order(df: pd.DataFrame, prep: Prepared, table: str, entity_key: str, time_key: str) -> tuple:
    """Row order sorting ``df`` by entity then time, and the entity code of every sorted row."""
    ent = df[entity_key]
    if ent.isna().any():
        raise DataError(
            f"{table}: entity key {entity_key!r} is missing in {int(ent.isna().sum())} rows; every row needs an entity"
        )
    times = _time_values(df, prep, table, time_key)
    codes, _ = pd.factorize(ent, sort=True)
    order = np.lexsort((times, codes))
    sorted_codes, sorted_times = codes[order], times[order]
    dup = (np.diff(sorted_codes) == 0) & (np.diff(sorted_times) == 0)
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        example = ent.iloc[order[i]]
        raise DataError(
            f"{table}: {int(dup.sum())} duplicate ({entity_key}, {time_key}) pairs, e.g. entity {example!r} has two "
            f"rows at the same time; keep one row per entity and time"
        )
    return order, sorted_codes.astype("int64")


def _time_values(df: pd.DataFrame, prep: Prepared, table: str, time_key: str) -> np.ndarray:
    if time_key in prep.values[table] and not prep.columns[time_key].discrete:
        values = prep.values[table][time_key]
    else:
        s = df[time_key]
        numeric = pd.to_numeric(s, errors="coerce")
        if numeric.notna().sum() == s.notna().sum():
            values = numeric.to_numpy(dtype="float64")
        else:
            try:
                values = pd.to_datetime(s, utc=True, format="mixed").astype("int64").to_numpy(dtype="float64")
            except (ValueError, TypeError):
                raise DataError(
                    f"{table}: time column {time_key!r} holds values that are neither numbers nor dates "
                    f"(e.g. {s.dropna().iloc[0]!r}); use a step number or a timestamp"
                ) from None
    if np.isnan(values).any():
        raise DataError(f"{table}: time column {time_key!r} is missing in {int(np.isnan(values).sum())} rows")
    return values


def _constant_within(values: np.ndarray, codes: np.ndarray) -> bool:
    """True when ``values`` (sorted by entity) never change within an entity (missing equals missing)."""
    if len(values) < 2:
        return True
    same_entity = codes[1:] == codes[:-1]
    a, b = values[1:], values[:-1]
    equal = (a == b) | (np.isnan(a) & np.isnan(b)) if values.dtype.kind == "f" else a == b
    return bool(np.all(equal | ~same_entity)) and bool(same_entity.any())


def _aligned_static(
    static: pd.DataFrame, frame: pd.DataFrame, order: tuple, entity_key: str, table: str
) -> pd.DataFrame:
    """The static table's rows in entity code order; every entity of the long table must have exactly one."""
    if entity_key not in static.columns:
        raise DataError(f"{table} static table has no column {entity_key!r} (the entity key)")
    if static[entity_key].duplicated().any():
        dup = static.loc[static[entity_key].duplicated(), entity_key].iloc[0]
        raise DataError(f"{table} static table has more than one row for entity {dup!r}: keep one row per entity")
    entities = pd.Index(frame[entity_key].iloc[order[0]].drop_duplicates())
    indexed = static.set_index(entity_key)
    absent = entities.difference(indexed.index)
    if len(absent):
        raise DataError(
            f"{table} static table has no row for {len(absent)} entities of the long table, e.g. {absent[0]!r}"
        )
    return indexed.loc[entities].reset_index(drop=True)


# ------------------------------------------------------------------------------------------ autocorrelation
def _demeaned(x: np.ndarray, ent: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Deviations from each entity's mean (0 where missing), the sum of squares and the count per entity."""
    ok = ~np.isnan(x)
    count = np.bincount(ent, weights=ok, minlength=n)
    total = np.bincount(ent, weights=np.where(ok, x, 0.0), minlength=n)
    mean = total / np.maximum(count, 1)
    d = np.where(ok, x - mean[ent], 0.0)
    return d, np.bincount(ent, weights=d * d, minlength=n), count


def entity_acf(x: np.ndarray, ent: np.ndarray, n: int, lags: int) -> np.ndarray:
    """Autocorrelation at lags 1..``lags`` of every entity's series (n x lags; NaN where undefined)."""
    d, ss, count = _demeaned(x, ent, n)
    scale = np.where(ss > 1e-12 * np.maximum(count, 1) * max(float(np.nanvar(x)) if len(x) else 0.0, 1e-300), ss, 0)
    out = np.full((n, lags), np.nan)
    lengths = np.bincount(ent, minlength=n)
    for k in range(1, lags + 1):
        if len(x) <= k:
            break
        same = ent[k:] == ent[:-k]
        num = np.bincount(ent[k:], weights=np.where(same, d[k:] * d[:-k], 0.0), minlength=n)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[:, k - 1] = np.where((scale > 0) & (lengths > k), num / scale, np.nan)
    return out


def entity_agreement(c: np.ndarray, ent: np.ndarray, n: int, lags: int) -> np.ndarray:
    """Share of steps whose level equals the level k steps earlier, per entity (n x lags; NaN where undefined)."""
    out = np.full((n, lags), np.nan)
    for k in range(1, lags + 1):
        if len(c) <= k:
            break
        valid = (ent[k:] == ent[:-k]) & (c[k:] >= 0) & (c[:-k] >= 0)
        pairs = np.bincount(ent[k:], weights=valid, minlength=n)
        agree = np.bincount(ent[k:], weights=valid & (c[k:] == c[:-k]), minlength=n)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[:, k - 1] = np.where(pairs > 0, agree / pairs, np.nan)
    return out


def _nanmean0(a: np.ndarray) -> np.ndarray:
    """Mean over entities (axis 0) ignoring NaN, NaN for an all-NaN column, without a warning."""
    ok = ~np.isnan(a)
    counts = ok.sum(axis=0)
    sums = np.where(ok, a, 0.0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def _autocorrelation(data: TemporalData, lags: int = LAGS) -> dict[str, Any]:
    channels: dict[str, Any] = {}
    for kind, names in (("autocorrelation", data.numeric), ("agreement", data.discrete)):
        for name in names:
            curves = {}
            for t in ("real", "synthetic"):
                s = data.tables[t]
                fn = entity_acf if kind == "autocorrelation" else entity_agreement
                values = s.numeric[name] if kind == "autocorrelation" else s.discrete[name]
                curves[t] = _nanmean0(fn(values, s.entity, s.n, lags))
            gap = np.abs(curves["real"] - curves["synthetic"])
            both = ~np.isnan(curves["real"])
            # a lag the real data has but synthetic lacks (sequences too short) counts as the worst error
            error = float(np.where(np.isnan(gap[both]), 1.0, gap[both]).mean()) if both.any() else None
            channels[name] = {
                "statistic": kind,
                "error": error,
                "real": curves["real"],
                "synthetic": curves["synthetic"],
            }
    errors = [c["error"] for c in channels.values() if c["error"] is not None]
    return {"score": float(np.mean(errors)) if errors else None, "lags": lags, "channels": channels}


def _cross_correlation(data: TemporalData) -> dict[str, Any]:
    names = data.numeric
    if len(names) < 2:
        return {"score": None, "note": "fewer than two numeric channels", "channels": names}
    mats = {}
    for t in ("real", "synthetic"):
        s = data.tables[t]
        z = {}
        for name in names:
            d, ss, count = _demeaned(s.numeric[name], s.entity, s.n)
            sd = np.sqrt(ss / np.maximum(count, 1))
            with np.errstate(invalid="ignore", divide="ignore"):
                z[name] = np.where(sd[s.entity] > 0, d / sd[s.entity], np.nan)
        lag0 = np.full((len(names), len(names)), np.nan)
        lag1 = np.full((len(names), len(names)), np.nan)
        for i, a in enumerate(names):
            for j, b in enumerate(names):
                if i < j:
                    lag0[i, j] = lag0[j, i] = _entity_mean_product(z[a], z[b], s.entity, s.n, 0)
                if i != j:
                    lag1[i, j] = _entity_mean_product(z[a], z[b], s.entity, s.n, 1)
            lag0[i, i] = 1.0
        mats[t] = {"lag0": lag0, "lag1": lag1}
    gaps = []
    for key in ("lag0", "lag1"):
        r, f = mats["real"][key], mats["synthetic"][key]
        off = ~np.eye(len(names), dtype=bool) & ~np.isnan(r)
        if key == "lag0":
            off &= np.triu(np.ones_like(off), 1).astype(bool)
        gaps.extend(np.where(np.isnan(f[off]), 1.0, np.abs(r[off] - f[off])).tolist())
    return {
        "score": float(np.mean(gaps)) if gaps else None,
        "channels": names,
        "real": mats["real"],
        "synthetic": mats["synthetic"],
    }


def _entity_mean_product(za: np.ndarray, zb: np.ndarray, ent: np.ndarray, n: int, lag: int) -> float:
    """Mean over entities of the mean product ``za[t] * zb[t + lag]`` within the entity."""
    a, b = (za, zb) if lag == 0 else (za[:-lag], zb[lag:])
    same = np.ones(len(a), dtype=bool) if lag == 0 else ent[lag:] == ent[:-lag]
    e = ent if lag == 0 else ent[lag:]
    ok = same & ~np.isnan(a) & ~np.isnan(b)
    count = np.bincount(e, weights=ok, minlength=n)
    total = np.bincount(e, weights=np.where(ok, a * b, 0.0), minlength=n)
    has = count > 0
    if not has.any():
        return float("nan")
    return float(np.mean(np.clip(total[has] / count[has], -1, 1)))


# ------------------------------------------------------------------------------------------ lengths
def _sequence_lengths(data: TemporalData) -> dict[str, Any]:
    from twinforge.evaluate.fidelity import ks_complement

    r = data.tables["real"].lengths.astype("float64")
    f = data.tables["synthetic"].lengths.astype("float64")
    summary = {
        t: {"entities": len(x), "mean": float(x.mean()), "min": int(x.min()), "max": int(x.max())}
        for t, x in (("real", r), ("synthetic", f))
    }
    return {"score": ks_complement(r, f), **summary}


# ------------------------------------------------------------------------------------------ discriminative
def entity_features(data: TemporalData, table: str) -> tuple[np.ndarray, list[str]]:
    """One row of summary features per entity (see the module docstring), NaN where undefined, and their names."""
    s = data.tables[table]
    cols: list[np.ndarray] = [s.lengths.astype("float64")]
    names = ["length"]
    for name in data.numeric:
        x = s.numeric[name]
        frame = pd.DataFrame({"e": s.entity, "x": x})
        g = frame.groupby("e")["x"]
        stats = g.agg(["mean", "std", "min", "max", "first", "last"]).reindex(range(s.n))
        q = g.quantile([0.1, 0.5, 0.9]).unstack().reindex(range(s.n))
        step = pd.Series(np.abs(np.diff(x, prepend=np.nan)) * np.r_[False, s.entity[1:] == s.entity[:-1]])
        step[np.r_[True, s.entity[1:] != s.entity[:-1]]] = np.nan
        mean_step = step.groupby(s.entity).mean().reindex(range(s.n))
        position = np.arange(len(x)) - np.r_[0, np.cumsum(s.lengths)[:-1]][s.entity]
        trend = _slope(position.astype("float64"), x, s.entity, s.n)
        acf = entity_acf(x, s.entity, s.n, 2)
        missing = np.bincount(s.entity, weights=np.isnan(x), minlength=s.n) / np.maximum(s.lengths, 1)
        cols.extend(stats.to_numpy().T)
        cols.extend(q.to_numpy().T)
        cols.extend([mean_step.to_numpy(), trend, acf[:, 0], acf[:, 1], missing])
        stat_names = ["mean", "std", "min", "max", "first", "last", "q10", "q50", "q90"]
        names += [f"{name}: {n}" for n in [*stat_names, "mean |step|", "trend", "lag-1 acf", "lag-2 acf", "missing"]]
    for name in data.discrete:
        c = s.discrete[name]
        # the same levels for both tables (codes are shared), so that their feature columns line up
        highest = max((int(t.discrete[name].max()) for t in data.tables.values() if len(t.discrete[name])), default=-1)
        for level in range(min(highest + 1, 10)):
            cols.append(np.bincount(s.entity, weights=c == level, minlength=s.n) / np.maximum(s.lengths, 1))
            names.append(f"{name}: share of level {level}")
        cols.append(entity_agreement(c, s.entity, s.n, 1)[:, 0])
        names.append(f"{name}: lag-1 agreement")
    if data.static_prep is not None:
        from twinforge.evaluate._data import tree_matrix

        prep = data.static_prep
        cols.extend(tree_matrix(prep, prep.values[table], prep.names).T)
        names += [f"static {n}" for n in prep.names]
    return np.column_stack(cols).astype("float64"), names


def _telling(x: np.ndarray, y: np.ndarray, names: list[str], top: int = 5) -> list[dict[str, Any]]:
    """The features that alone separate real from synthetic entities best (univariate ROC-AUC, ties at 0.5)."""
    from scipy.stats import rankdata

    pos, neg = y == 1, y == 0
    out = []
    for j, name in enumerate(names):
        v = np.where(np.isnan(x[:, j]), -np.inf, x[:, j])  # undefined (e.g. no variance) ranks lowest
        if np.all(v == v[0]):
            continue
        r = rankdata(v)
        auc = (r[pos].sum() - pos.sum() * (pos.sum() + 1) / 2) / (pos.sum() * neg.sum())
        out.append({"feature": name, "auc": float(auc)})
    out.sort(key=lambda d: -abs(d["auc"] - 0.5))
    return out[:top]


def _slope(t: np.ndarray, x: np.ndarray, ent: np.ndarray, n: int) -> np.ndarray:
    ok = ~np.isnan(x)
    w = ok.astype("float64")
    cnt = np.bincount(ent, weights=w, minlength=n)
    mt = np.bincount(ent, weights=t * w, minlength=n) / np.maximum(cnt, 1)
    mx = np.bincount(ent, weights=np.where(ok, x, 0.0), minlength=n) / np.maximum(cnt, 1)
    dt = (t - mt[ent]) * w
    cov = np.bincount(ent, weights=dt * np.where(ok, x - mx[ent], 0.0), minlength=n)
    var = np.bincount(ent, weights=dt * dt, minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(var > 0, cov / var, np.nan)


def _discriminative(data: TemporalData, rng: np.random.Generator, cap: int, folds: int = 5) -> dict[str, Any]:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score

    nr, ns = data.tables["real"].n, data.tables["synthetic"].n
    n = min(nr, ns, cap)
    if n < MIN_ENTITIES:
        return {"score": None, "entities_per_side": n, "note": f"fewer than {MIN_ENTITIES} entities on a side"}
    (fr, names), (fs, _) = entity_features(data, "real"), entity_features(data, "synthetic")
    take_r = np.sort(rng.choice(nr, n, replace=False))
    take_s = np.sort(rng.choice(ns, n, replace=False))
    x = trainable(np.vstack([fr[take_r], fs[take_s]]))
    y = np.r_[np.zeros(n), np.ones(n)]
    # identical entities stay in one fold, or a perfect copy would be scored by a model that saw it labelled real
    groups = np.unique(pd.util.hash_pandas_object(pd.DataFrame(x), index=False).to_numpy(), return_inverse=True)[1]
    fold = rng.permutation(groups.max() + 1)[groups] % folds
    if len(np.unique(fold)) < 2:
        return {"score": None, "entities_per_side": n, "note": "too few distinct entities to cross-validate"}
    scores = np.full(len(y), 0.5)
    with threads():
        for k in range(folds):
            test = fold == k
            if not test.any() or len(np.unique(y[~test])) < 2:
                continue
            model = HistGradientBoostingClassifier(max_iter=100, early_stopping=False, random_state=random_state(rng))
            model.fit(x[~test], y[~test])
            scores[test] = model.predict_proba(x[test])[:, 1]
    return {
        "score": float(roc_auc_score(y, scores)),
        "entities_per_side": n,
        "folds": folds,
        "features": x.shape[1],
        "telling_features": _telling(x, y, names),
    }


# ------------------------------------------------------------------------------------------ predictive
def _windows(data: TemporalData, table: str, entities: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Features (the previous ``HISTORY`` steps of every channel) and next-step targets (numeric channels)."""
    s = data.tables[table]
    keep = np.ones(len(s.entity), dtype=bool) if entities is None else np.isin(s.entity, entities)
    channels = [s.numeric[c] for c in data.numeric] + [
        np.where(s.discrete[c] < 0, np.nan, s.discrete[c]).astype("float64") for c in data.discrete
    ]
    base = np.column_stack(channels)
    rows = np.arange(HISTORY, len(s.entity))
    ok = keep[rows] & (s.entity[rows] == s.entity[rows - HISTORY])
    rows = rows[ok]
    x = np.column_stack([base[rows - lag] for lag in range(1, HISTORY + 1)])
    y = np.column_stack([s.numeric[c][rows] for c in data.numeric])
    return x, y


def _predictive(data: TemporalData, rng: np.random.Generator, cap: int, has_holdout: bool) -> dict[str, Any]:
    from sklearn.ensemble import HistGradientBoostingRegressor

    if not data.numeric:
        return {"score": None, "note": "no numeric channel to predict"}
    real = data.tables["real"]
    if has_holdout:
        train_real, test_table, test_entities = None, "holdout", None
    else:
        perm = rng.permutation(real.n)
        train_real, test_table, test_entities = perm[: real.n // 2], "real", perm[real.n // 2 :]
    n_test = data.tables[test_table].n if test_entities is None else len(test_entities)
    if min(real.n if has_holdout else len(train_real), n_test, data.tables["synthetic"].n) < MIN_ENTITIES // 2:
        return {"score": None, "note": "too few entities to train and test next-step models"}
    x_test, y_test = _windows(data, test_table, test_entities)
    # as many synthetic entities as real ones train each model, so neither side wins by having more data
    n_train = real.n if train_real is None else len(train_real)
    synth = data.tables["synthetic"].n
    train_synth = None if synth <= n_train else np.sort(rng.choice(synth, n_train, replace=False))
    sets = {"tstr": _windows(data, "synthetic", train_synth), "trtr": _windows(data, "real", train_real)}
    if len(x_test) == 0 or any(len(x) == 0 for x, _ in sets.values()):
        return {"score": None, "note": f"sequences shorter than {HISTORY + 1} steps: nothing to predict"}
    if len(x_test) > cap:
        pick = np.sort(rng.choice(len(x_test), cap, replace=False))
        x_test, y_test = x_test[pick], y_test[pick]
    x_test = trainable(x_test)
    errors: dict[str, dict[str, float | None]] = {"tstr": {}, "trtr": {}}
    with threads():
        for setting, (x, y) in sets.items():
            if len(x) > cap:
                pick = np.sort(rng.choice(len(x), cap, replace=False))
                x, y = x[pick], y[pick]
            x = trainable(x)
            for j, name in enumerate(data.numeric):
                has_y, has_test = ~np.isnan(y[:, j]), ~np.isnan(y_test[:, j])
                scale = float(np.nanstd(y_test[:, j]))
                if has_y.sum() < 10 or not has_test.any() or scale == 0:
                    errors[setting][name] = None
                    continue
                model = HistGradientBoostingRegressor(max_iter=40, early_stopping=False, random_state=random_state(rng))
                model.fit(x[has_y], y[has_y, j])
                pred = model.predict(x_test[has_test])
                errors[setting][name] = float(np.mean(np.abs(pred - y_test[has_test, j])) / scale)
    both = [c for c in data.numeric if errors["tstr"][c] is not None and errors["trtr"][c] is not None]
    if not both:
        return {"score": None, "note": "no channel could be predicted", "channels": errors}
    tstr = float(np.mean([errors["tstr"][c] for c in both]))
    trtr = float(np.mean([errors["trtr"][c] for c in both]))
    return {
        "score": trtr / tstr if tstr > 0 else 1.0,
        "tstr_error": tstr,
        "trtr_error": trtr,
        "tested_on": "holdout" if has_holdout else "half of the real entities",
        "channels": {c: {"tstr": errors["tstr"][c], "trtr": errors["trtr"][c]} for c in data.numeric},
    }


# ------------------------------------------------------------------------------------------ static
def _static(data: TemporalData) -> dict[str, Any]:
    from twinforge.evaluate.fidelity import _column_pair_trends, _column_shapes

    if data.static_prep is None:
        return {"column_shapes": None, "column_pair_trends": None, "columns": [], "note": "no static attribute"}
    shapes = _column_shapes(data.static_prep)
    pairs = _column_pair_trends(data.static_prep)
    return {
        "column_shapes": shapes["score"],
        "column_pair_trends": pairs["score_all_pairs"] if pairs["score"] is None else pairs["score"],
        "columns": data.static_prep.names,
        "shapes": shapes["columns"],
    }


# ------------------------------------------------------------------------------------------ all of them
def _temporal(
    data: TemporalData, rngs: dict[str, np.random.Generator], caps: dict[str, int], lags: int, has_holdout: bool
) -> dict[str, Any]:
    acf = _autocorrelation(data, lags)
    xcorr = _cross_correlation(data)
    disc = _discriminative(data, rngs["discriminative"], caps["entities"])
    pred = _predictive(data, rngs["predictive"], caps["next_step_rows"], has_holdout)
    lengths = _sequence_lengths(data)
    static = _static(data)
    return {
        "autocorrelation_error": acf["score"],
        "cross_correlation_error": xcorr["score"],
        "discriminative_auc": disc["score"],
        "predictive_ratio": pred["score"],
        "sequence_length": lengths["score"],
        "static_column_shapes": static["column_shapes"],
        "static_column_pair_trends": static["column_pair_trends"],
        "entity_key": data.entity_key,
        "time_key": data.time_key,
        "numeric_channels": data.numeric,
        "discrete_channels": data.discrete,
        "static_columns": data.static_columns,
        "autocorrelation": acf,
        "cross_correlation": xcorr,
        "discriminative": disc,
        "predictive": pred,
        "lengths": lengths,
        "static": static,
    }


def _prepare(real: Any, synthetic: Any, entity_key: Any, time_key: Any, metadata: Any = None, holdout: Any = None,
             real_static: Any = None, synthetic_static: Any = None) -> tuple[TemporalData, bool]:  # fmt: skip
    from twinforge.evaluate._data import prepare

    frames = {"real": read_input(real, "real"), "synthetic": read_input(synthetic, "synthetic")}
    if holdout is not None:
        frames["holdout"] = read_input(holdout, "holdout")
    frames, real_static, synthetic_static = join_static(
        frames, real_static, synthetic_static, entity_key_of(metadata, frames["real"], entity_key)
    )
    meta = sequence_metadata(metadata, frames["real"], entity_key, time_key)
    entity_key, time_key = meta.entity_key, meta.time_index
    prep = prepare(frames["real"], frames["synthetic"], frames.get("holdout"), meta)
    statics = static_tables(real_static, synthetic_static)
    return build(frames, prep, entity_key, time_key, statics), holdout is not None


def sequence_metadata(metadata: Any, real: pd.DataFrame, entity_key: Any, time_key: Any) -> Any:
    """The metadata of a long table, with its entity and time keys set and the entity key an id column."""
    from twinforge.evaluate._data import coerce_metadata
    from twinforge.metadata import Metadata

    if metadata is None:
        keys: tuple[str | None, str | None] = (None, None)
    else:
        given = coerce_metadata(metadata, real)
        keys = (given.entity_key, given.time_index)
    entity, time = resolve_keys(keys, entity_key, time_key)
    for name, role in ((entity, "entity_key"), (time, "time_key")):
        if name not in real.columns:
            raise ParameterError(f"{role} {name!r} is not a column of real; columns are {list(real.columns)}")
    if metadata is None:
        meta = Metadata.detect(real, entity_key=entity, time_index=time)
    else:
        meta = Metadata.from_dict(coerce_metadata(metadata, real).to_dict())
        meta.entity_key, meta.time_index = entity, time
    if meta.columns[entity].kind != "id":
        meta.update_column(entity, kind="id")
    if meta.primary_key in (entity, time):
        meta.primary_key = None
    return meta


def static_tables(real_static: Any, synthetic_static: Any) -> dict[str, pd.DataFrame] | None:
    """Both separate static tables read, or None; one without the other is an error."""
    if real_static is None and synthetic_static is None:
        return None
    if real_static is None or synthetic_static is None:
        raise ParameterError(
            "give both real_static and synthetic_static (--real-static, --synthetic-static), or neither "
            "(static attributes are then the columns constant within each entity)"
        )
    return {
        "real": read_input(real_static, "real_static"),
        "synthetic": read_input(synthetic_static, "synthetic_static"),
    }


def entity_key_of(metadata: Any, real: pd.DataFrame, entity_key: str | None) -> str | None:
    """``entity_key``, else the metadata's (None if neither names one)."""
    if entity_key is not None or metadata is None:
        return entity_key
    from twinforge.evaluate._data import coerce_metadata

    return coerce_metadata(metadata, real).entity_key


def join_static(
    frames: dict[str, pd.DataFrame], real_static: Any, synthetic_static: Any, entity_key: str | None
) -> tuple[dict[str, pd.DataFrame], Any, Any]:
    """One side's static attributes given as a table, the other's as columns (what ``sample`` writes): join the
    table into its long table(s) (real and holdout, or synthetic), so both sides hold them as columns."""
    if (real_static is None) == (synthetic_static is None):
        return frames, real_static, synthetic_static
    argument = "real_static" if real_static is not None else "synthetic_static"
    if entity_key is None:
        raise ParameterError(f"{argument} needs the entity key: pass entity_key (--entity-key)")
    table = read_input(real_static if real_static is not None else synthetic_static, argument)
    if entity_key not in table.columns:
        raise ParameterError(
            f"{argument} has no entity key column {entity_key!r}; its columns are {list(table.columns)}"
        )
    if table[entity_key].duplicated().any() or table[entity_key].isna().any():
        raise DataError(f"{argument}'s {entity_key!r} must be unique and complete: one row per entity")
    out = dict(frames)
    for side in ("real", "holdout") if real_static is not None else ("synthetic",):
        if side not in out:
            continue
        frame = out[side]
        if entity_key not in frame.columns:
            raise ParameterError(f"entity_key {entity_key!r} is not a column of {side}")
        overlap = [c for c in table.columns if c != entity_key and c in frame.columns]
        if overlap:
            raise ParameterError(
                f"{side} already has the columns {overlap} of {argument}: give the static attributes once"
            )
        lacking = pd.Index(frame[entity_key].unique()).difference(pd.Index(table[entity_key]))
        if len(lacking):
            raise DataError(
                f"{len(lacking)} entities of {side} have no row in {argument} (e.g. {lacking[0]!r}): give the static "
                "table of every entity (for a holdout too)"
            )
        out[side] = frame.merge(table, on=entity_key, how="left", sort=False, validate="many_to_one")
    return out, None, None


def _check_lags(lags: Any) -> int:
    if isinstance(lags, bool) or not isinstance(lags, (int, np.integer)) or not 1 <= lags <= 1000:
        raise ParameterError(f"lags must be an integer between 1 and 1000, got {lags!r}")
    return int(lags)


# ------------------------------------------------------------------------------------------ public functions
def autocorrelation(real: Any, synthetic: Any, entity_key: str | None = None, time_key: str | None = None, *,
                    metadata: Any = None, lags: int = LAGS) -> dict[str, Any]:  # fmt: skip
    """Autocorrelation error (ideal 0): per channel, the real and synthetic curves over lags 1..``lags``.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> walk = pd.DataFrame({"id": np.repeat(np.arange(20), 50), "t": np.tile(np.arange(50), 20),
    ...                      "x": rng.normal(size=1000).cumsum()})
    >>> autocorrelation(walk, walk, "id", "t")["score"]
    0.0
    """
    data, _ = _prepare(real, synthetic, entity_key, time_key, metadata)
    return _autocorrelation(data, _check_lags(lags))


def cross_correlation(real: Any, synthetic: Any, entity_key: str | None = None, time_key: str | None = None, *,
                      metadata: Any = None) -> dict[str, Any]:  # fmt: skip
    """Cross-correlation error between numeric channels at lags 0 and 1 (ideal 0), with both matrices."""
    data, _ = _prepare(real, synthetic, entity_key, time_key, metadata)
    return _cross_correlation(data)


def discriminative_auc(real: Any, synthetic: Any, entity_key: str | None = None, time_key: str | None = None, *,
                       metadata: Any = None, seed: int = 0, cap: int = 5_000) -> float | None:  # fmt: skip
    """Out-of-fold ROC-AUC of a classifier separating real from synthetic entities (ideal 0.5)."""
    data, _ = _prepare(real, synthetic, entity_key, time_key, metadata)
    return _discriminative(data, np.random.default_rng(seed), cap)["score"]


def predictive_score(real: Any, synthetic: Any, entity_key: str | None = None, time_key: str | None = None, *,
                     holdout: Any = None, metadata: Any = None, seed: int = 0,
                     cap: int = 20_000) -> dict[str, Any]:  # fmt: skip
    """Next-step prediction trained on synthetic vs on real, tested on real entities; ``score`` = TRTR / TSTR error."""
    data, has_holdout = _prepare(real, synthetic, entity_key, time_key, metadata, holdout)
    return _predictive(data, np.random.default_rng(seed), cap, has_holdout)


def sequence_lengths(real: Any, synthetic: Any, entity_key: str | None = None, time_key: str | None = None, *,
                     metadata: Any = None) -> dict[str, Any]:  # fmt: skip
    """KS complement of the sequence lengths (ideal 1), and each side's mean, min and max length."""
    data, _ = _prepare(real, synthetic, entity_key, time_key, metadata)
    return _sequence_lengths(data)


def temporal_fidelity(real: Any, synthetic: Any, entity_key: str | None = None, time_key: str | None = None, *,
                      holdout: Any = None, metadata: Any = None, real_static: Any = None,
                      synthetic_static: Any = None, seed: int = 0, lags: int = LAGS,
                      caps: dict[str, int] | None = None) -> dict[str, Any]:  # fmt: skip
    """Every temporal metric of this module; what :func:`twinforge.evaluate` reports as ``report.temporal``."""
    from twinforge.evaluate._data import seeds

    lags = _check_lags(lags)
    data, has_holdout = _prepare(real, synthetic, entity_key, time_key, metadata, holdout, real_static,
                                 synthetic_static)  # fmt: skip
    limits = {"entities": 5_000, "next_step_rows": 20_000, **(caps or {})}
    return _temporal(data, seeds(seed, ["discriminative", "predictive"]), limits, lags, has_holdout)
