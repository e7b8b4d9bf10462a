"""Agreeing on one transform without sharing rows: per-site aggregates, their merge, and a proxy table.

Every site computes the same aggregates of its own rows for every column of the agreed metadata, on grids that
the server fixes (never on a site's own values), and sends only those:

- stage 1: the row count; per numeric column its missing count, a histogram on a fixed grid in ``asinh`` space
  (data independent, 0.01 wide: 1% relative resolution for large values), the decimals its values need, and its
  *candidate values* (every distinct value with its count when the column has at most ``_MAX_EXACT`` of them,
  else the values holding at least 1% of the rows: point masses such as a frequent 0); per discrete column its
  level counts (and missing count);
- stage 2: per numeric column a finer histogram on an adaptive grid the server derives from the merged stage-1
  histograms (64 merged quantiles, each interval split in 16), of the values that are not candidates, and the
  exact counts of every candidate any site proposed.

With differential privacy on, each site adds Gaussian noise to every count it sends and the server drops
levels and candidate values whose merged count stays below a threshold (a value held by one row is never
published). The merged statistics give each column's bounds, levels, missing rate and marginal distribution.
:func:`proxy_table` turns them into a *proxy*: a table with the merged marginals and independent columns, which
is all the transforms and the models' encodings look at (quantiles, mixture modes, level counts): fitting them
on the proxy gives the transform of the pooled data, up to the histograms' resolution.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import numpy as np
import pandas as pd

from twinforge.errors import DataError, MetadataError, ParameterError
from twinforge.metadata import Metadata
from twinforge.transforms import TableTransformer, transform_for
from twinforge.transforms._generated import IdColumn

__all__ = [
    "check_schema",
    "merge_stage1",
    "merge_stage2",
    "proxy_table",
    "site_stage1",
    "site_stage2",
    "stats_sensitivity",
]

_NUMERIC = ("continuous", "integer")
_DISCRETE = ("categorical", "boolean")
_GENERATED = ("id", "text", "pii")
_MAX_EXACT = 128  # at most this many distinct values: every value is a candidate (as in the default model)
_MASS_SHARE = 0.01  # a value held by this share of a site's rows is a candidate point mass
_MAX_MASSES = 32
_ASINH_EDGES = np.linspace(-32.0, 32.0, 6401)  # the fixed stage-1 grid, in asinh space
# with DP every bin carries noise and the count threshold must hold over all bins at once: a coarser grid
_ASINH_EDGES_DP = np.linspace(-32.0, 32.0, 257)
_MAX_DECIMALS = 10


def _grid(dp: bool) -> np.ndarray:
    return _ASINH_EDGES_DP if dp else _ASINH_EDGES


def _decimals_hist(obs: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """How many values (or how much of their weight) need exactly d decimals, d = 0..10, and (last bin) more."""
    need = np.full(len(obs), _MAX_DECIMALS + 1)
    left = np.ones(len(obs), dtype=bool)
    for k in range(_MAX_DECIMALS + 1):
        ok = left & (np.round(obs, k) == obs)
        need[ok] = k
        left &= ~ok
    return np.bincount(need, weights=weights, minlength=_MAX_DECIMALS + 2).astype("float64")


_COARSE_QUANTILES = 64
_SPLIT = 16
_PROXY_ROWS = 20_000


# ------------------------------------------------------------------------------------------ the schema
def schema_problems(df: pd.DataFrame, metadata: Metadata, site: str) -> list[str]:
    """Every way ``df``'s columns and their kinds differ from the agreed metadata (empty when they agree)."""
    problems: list[str] = []
    expected = list(metadata.columns)
    got = [str(c) for c in df.columns]
    missing = [c for c in expected if c not in got]
    extra = [c for c in got if c not in expected]
    if missing:
        problems.append(f"columns missing at {site}: {missing}")
    if extra:
        problems.append(f"columns at {site} that the agreed metadata does not have: {extra}")
    if not problems:
        try:
            metadata.validate(df)
        except MetadataError as exc:
            problems.extend(exc.problems)
    return problems


def check_schema(df: pd.DataFrame, metadata: Metadata, site: str = "this site") -> None:
    """MetadataError listing every way ``df`` differs from the agreed schema (columns and their kinds)."""
    problems = schema_problems(df, metadata, site)
    unsupported = [n for n, s in metadata.columns.items() if s.kind == "datetime"]
    if unsupported:
        problems.append(
            f"datetime columns {unsupported} are not supported by federated training yet: declare them with "
            "another kind in the metadata (e.g. integer days) or drop them"
        )
    if problems:
        raise MetadataError(problems, header=f"{site} does not match the agreed schema; fix the data or the metadata")


# ------------------------------------------------------------------------------------------ site side
def _noise(counts: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    counts = np.asarray(counts, dtype="float64")
    return counts + rng.normal(0.0, sigma, counts.shape) if sigma > 0 else counts


def _jsonable(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def _check_weights(df: pd.DataFrame, sigma: float, weights: np.ndarray | None) -> np.ndarray | None:
    if weights is None:
        return None
    if sigma <= 0:  # weights bound one unit's (one entity's) contribution: for DP releases only
        raise ParameterError("row weights are for DP statistics (sigma > 0) only")
    w = np.asarray(weights, dtype="float64")
    if w.shape != (len(df),):
        raise ParameterError(f"{len(w)} row weights for {len(df)} rows")
    return w


def site_stage1(
    df: pd.DataFrame,
    metadata: Metadata,
    sigma: float,
    seed: int | None,
    level_threshold: float = 0.0,
    weights: np.ndarray | None = None,
) -> dict[str, Any]:
    """Stage-1 aggregates of one site's rows (counts noised with std ``sigma``, 0: exact).

    ``level_threshold``: a category level is named only if its noisy count reaches it (local DP: naming a level
    one row holds is then unlikely, see ``_localdp.level_threshold``). ``weights`` (with DP only): each row counts
    this much instead of 1 (entity-level DP on a step table: ``1 / steps`` of its entity, so that one entity
    moves every count vector by at most 1 in L1, as one row does, and :func:`stats_sensitivity` still holds).
    """
    rng = np.random.default_rng(seed)
    w = _check_weights(df, sigma, weights)
    total = float(len(df)) if w is None else float(w.sum())
    out: dict[str, Any] = {"n": float(_noise(np.array([total]), sigma, rng)[0]), "columns": {}}
    pii = [name for name, spec in metadata.columns.items() if spec.kind == "pii"]
    for name, spec in metadata.columns.items():
        s = df[name]
        col: dict[str, Any] = {"kind": spec.kind, "dtype": str(s.dtype)}
        if spec.kind in _NUMERIC:
            x = s.to_numpy(dtype="float64", na_value=np.nan)
            seen = ~np.isnan(x)
            obs = x[seen]
            w_obs = None if w is None else w[seen]
            hist, _ = np.histogram(np.arcsinh(obs), _grid(sigma > 0), weights=w_obs)
            values, counts = np.unique(obs, return_counts=True)
            exact = len(values) <= _MAX_EXACT
            if sigma > 0:
                # with DP no value of a row leaves the site: integer candidates come from the agreed range
                values, counts, exact = values[:0], counts[:0], False
            elif not exact:
                heavy = np.flatnonzero(counts >= max(2, _MASS_SHARE * len(obs)))
                heavy = heavy[np.argsort(-counts[heavy], kind="stable")[:_MAX_MASSES]]
                values, counts = values[heavy], counts[heavy]
            noisy = _noise(counts, sigma, rng)
            missing = float(np.isnan(x).sum()) if w is None else float(w[~seen].sum())
            col |= {
                "missing": float(_noise(np.array([missing]), sigma, rng)[0]),
                "hist": _noise(hist, sigma, rng).tolist(),
                "decimals": _noise(_decimals_hist(obs, w_obs), sigma, rng).tolist(),
                "exact": bool(exact),
                "candidates": values.tolist(),
                "candidate_counts": noisy.tolist(),
            }
        elif spec.kind in _DISCRETE:
            declared = _declared_levels(spec)
            obj = s.to_numpy(dtype=object)
            present = ~pd.isna(obj)
            counts = s.value_counts(dropna=True)
            if spec.kind == "boolean":  # as the transform reads them
                counts = pd.Series([bool(v) for v in obj[present]], dtype=object).value_counts()
            if w is not None:  # the same levels, each counting its rows' weights
                values = pd.Series(obj[present], dtype=object)
                if spec.kind == "boolean":
                    values = values.map(bool)
                sums = pd.Series(w[present]).groupby(values.to_numpy(), sort=False).sum()
                counts = pd.Series(sums.reindex(counts.index, fill_value=0.0).to_numpy(), index=counts.index)
            if declared is not None:  # public levels: a count for each, whether this site holds it or not
                counts = counts.reindex(pd.Index(declared, dtype=object), fill_value=0)
            noisy = _noise(counts.to_numpy(dtype="float64"), sigma, rng)
            keep = noisy >= level_threshold if level_threshold > 0 and declared is None else np.ones(len(noisy), bool)
            missing = float((~present).sum()) if w is None else float(w[~present].sum())
            col |= {
                "missing": float(_noise(np.array([missing]), sigma, rng)[0]),
                "levels": [_jsonable(v) for v, k in zip(counts.index, keep, strict=True) if k],
                "counts": noisy[keep].tolist(),
                # whether missing values are None (not NaN): with local DP not sent (one row could decide it)
                "none_missing": level_threshold <= 0 and any(v is None for v in s.to_numpy(dtype=object)),
            }
        elif spec.kind in _GENERATED:
            # only the format: a site's generated-column transform without any value (see _generated.py)
            t = transform_for(spec).fit(s)
            key = metadata.entity_key
            if sigma > 0:  # with DP: the format only (no missing share, no hashes of real values)
                t.forget_values()
            elif spec.kind == "pii":
                if len(pii) > 1:  # as a central fit: a real first name must not come out as a fake last name
                    t.avoid(pd.concat([df[c] for c in pii], ignore_index=True))
                if key is not None and key != name and key in df.columns:
                    # the share of entities with one value (a central fit fakes per entity from 0.9 on)
                    pairs = df[[key, name]].dropna()
                    constant = pairs.groupby(key, sort=False)[name].nunique().le(1).mean() if len(pairs) else 1.0
                    col["entity_constant"] = float(constant)
            state = t.get_state()
            if isinstance(t, IdColumn) and t.numeric_:
                state["fitted"]["start_"] = 1  # the smallest identifier would be one row's value
            col["state"] = json.loads(json.dumps(state, default=_jsonable))
        out["columns"][name] = col
    return out


def _declared_levels(spec: Any) -> list[Any] | None:
    """Levels the schema itself makes public: a boolean's two, or a categorical column's declared ``categories``."""
    if spec.kind == "boolean":
        return [False, True]
    return None if spec.categories is None else list(spec.categories)


def site_stage2(
    df: pd.DataFrame, plan: dict[str, Any], sigma: float, seed: int | None, weights: np.ndarray | None = None
) -> dict[str, Any]:
    """Stage-2 aggregates: per numeric column of ``plan``, counts of the candidates and a histogram of the rest
    (``weights``: as for :func:`site_stage1`)."""
    rng = np.random.default_rng(None if seed is None else seed + 1)
    w = _check_weights(df, sigma, weights)
    out: dict[str, Any] = {}
    for name, p in plan.items():
        x = df[name].to_numpy(dtype="float64", na_value=np.nan)
        seen = ~np.isnan(x)
        obs = x[seen]
        w_obs = np.ones(len(obs)) if w is None else w[seen]
        cands = np.asarray(p["candidates"], dtype="float64")
        is_cand = np.isin(obs, cands)
        cand_counts = np.array([w_obs[obs == c].sum() for c in cands], dtype="float64")
        hist, _ = np.histogram(
            np.clip(obs[~is_cand], p["edges"][0], p["edges"][-1]), np.asarray(p["edges"]), weights=w_obs[~is_cand]
        )
        out[name] = {
            "candidate_counts": _noise(cand_counts, sigma, rng).tolist(),
            "hist": _noise(hist, sigma, rng).tolist(),
        }
    return out


def stats_sensitivity(metadata: Metadata) -> float:
    """L2 sensitivity of one stage's counts to adding or removing one row (each count it changes moves by 1)."""
    n_numeric = sum(s.kind in _NUMERIC for s in metadata.columns.values())
    n_discrete = sum(s.kind in _DISCRETE for s in metadata.columns.values())
    # stage 1: the row count, per numeric column a histogram or missing count and a candidate count, per discrete
    # column one count; stage 2 touches fewer
    return float(np.sqrt(1 + 2 * n_numeric + n_discrete))


# ------------------------------------------------------------------------------------------ server side
def merge_stage1(
    replies: list[dict[str, Any]], metadata: Metadata, threshold: float, dp: bool = False
) -> dict[str, Any]:
    """Merged stage-1 statistics and the stage-2 plan (grids and candidate values of the numeric columns).

    ``threshold``: merged counts below it are taken as zero (with DP, noise); ``dp``: the sites used the DP grid.
    """
    if not replies:
        raise DataError("no site sent statistics: nothing to train on")
    merged: dict[str, Any] = {"n": sum(r["n"] for r in replies), "columns": {}, "plan": {}}
    for name, spec in metadata.columns.items():
        cols = [r["columns"][name] for r in replies]
        m: dict[str, Any] = {"kind": spec.kind, "dtype": _common_dtype([c["dtype"] for c in cols])}
        if spec.kind in _NUMERIC:
            raw = np.sum([c["hist"] for c in cols], axis=0)
            hist = np.clip(raw, 0, None)
            hist[hist < threshold] = 0.0
            cands = sorted({float(v) for c in cols for v in c["candidates"]})
            edges_a = _grid(dp)
            declared = spec.low is not None and spec.high is not None
            if declared:  # public bounds: nothing to estimate
                lo, hi = float(spec.low), float(spec.high)
                m["bounds_from"] = "metadata"
            else:
                if not hist.any() and not cands:
                    if not dp:
                        raise DataError(
                            f"column {name!r}: no value range is held by enough rows across the sites to agree "
                            "its bounds"
                        )
                    first, last = _coarse_range(raw, threshold)
                    hist = np.zeros_like(hist)
                    hist[first : last + 1] = np.clip(raw[first : last + 1], 1e-9, None)
                    m["bounds_from"] = "dp-coarse"
                else:
                    m["bounds_from"] = "dp" if dp else "data"
                occupied = np.flatnonzero(hist > 0)
                lo_hi = []
                if len(occupied):
                    lo_hi = [float(np.sinh(edges_a[occupied[0]])), float(np.sinh(edges_a[occupied[-1] + 1]))]
                lo = min([*lo_hi[:1], *cands])
                hi = max([*lo_hi[1:], *cands])
            dec = np.sum([c["decimals"] for c in cols], axis=0)
            held = np.flatnonzero(dec >= max(threshold, 0.5))
            decimals = int(held[-1]) if len(held) else 0
            exact = all(c["exact"] for c in cols) and len(cands) <= _MAX_EXACT
            if dp and spec.kind == "integer" and np.ceil(hi) - np.floor(lo) < _MAX_EXACT:
                # every integer of the agreed (noisy) range is a candidate: data independent given the range
                cands = np.arange(np.floor(lo), np.ceil(hi) + 1).tolist()
                exact = True
            m |= {
                "missing": _missing(cols, threshold),
                "decimals": None if decimals > _MAX_DECIMALS else decimals,
                "exact": exact,
                "low": lo,
                "high": hi,
            }
            edges = _adaptive_edges(hist, lo, hi, edges_a, split=2 if dp else _SPLIT, dp=dp)
            merged["plan"][name] = {"candidates": cands, "edges": edges.tolist()}
        elif spec.kind in _DISCRETE:
            totals: dict[Any, float] = {}
            for c in cols:
                for level, count in zip(c["levels"], c["counts"], strict=True):
                    totals[level] = totals.get(level, 0.0) + float(count)
            if _declared_levels(spec) is not None:  # public levels: all kept, whatever their noisy count
                kept = {k: max(v, 0.0) for k, v in totals.items()}
            else:
                kept = {k: v for k, v in totals.items() if v >= max(threshold, 1e-9)}
            m |= {
                "missing": _missing(cols, threshold),
                "levels": sorted(kept, key=lambda k: -kept[k]),
                "counts": sorted(kept.values(), reverse=True),
                "none_missing": any(c["none_missing"] for c in cols),
            }
        elif spec.kind in _GENERATED:
            m["state"] = _merged_generated([c["state"] for c in cols])
            shares = [c["entity_constant"] for c in cols if "entity_constant" in c]
            if shares:  # without DP: every site's share; with DP none is sent and the declared key is enough
                m["entity_constant"] = min(shares)
        merged["columns"][name] = m
    return merged


def _merged_generated(states: list[dict[str, Any]]) -> dict[str, Any]:
    """The first site's format; for a PII column, the short hashes of every site's real values (so that no fake
    value equals any site's real one), cut to the fewest bits any site used (a hash's leading bits)."""
    state = json.loads(json.dumps(states[0]))
    fitted = [s.get("fitted", {}) for s in states]
    if all("seen_" in f and "hash_bits_" in f for f in fitted):
        bits = min(int(f["hash_bits_"]) for f in fitted)
        seen = {int(h) >> (int(f["hash_bits_"]) - bits) for f in fitted for h in f["seen_"]}
        state["fitted"]["hash_bits_"], state["fitted"]["seen_"] = bits, sorted(seen)
    return state


def _missing(cols: list[dict[str, Any]], threshold: float) -> float:
    """Merged missing count: the sites whose dtype can hold a missing value (not numpy bool or int: schema, not
    data) summed, and 0 when, with DP, the noisy sum stays under ``threshold``."""
    total = sum(c["missing"] for c in cols if not (c["dtype"] == "bool" or c["dtype"].startswith(("int", "uint"))))
    return float(total) if total >= max(threshold, 1e-9) else 0.0


def merge_stage2(
    merged: dict[str, Any], replies: list[dict[str, Any]], threshold: float, dp: bool = False
) -> dict[str, Any]:
    """Add the stage-2 sums (candidate counts, fine histograms) to ``merged`` (in place; returned).

    With DP the histogram keeps its noisy counts (clipped at 0: the threshold would erase the shape of a small
    table) and the bounds stay those of stage 1.
    """
    for name, p in merged["plan"].items():
        cand = np.clip(np.sum([r[name]["candidate_counts"] for r in replies], axis=0), 0, None)
        hist = np.clip(np.sum([r[name]["hist"] for r in replies], axis=0), 0, None)
        cand = np.asarray(cand, dtype="float64").reshape(len(p["candidates"]))
        keep = cand >= max(threshold, 1e-9)
        if dp and merged["columns"][name]["exact"] and not keep.any():
            # every candidate came from the agreed range (data independent): keep their noisy shape
            keep = cand > 0
        if not dp:
            hist[hist < threshold] = 0.0
        col = merged["columns"][name]
        col["values"] = np.asarray(p["candidates"], dtype="float64")[keep].tolist()
        # the finer grid narrows the bounds to its occupied bins and the kept values
        edges = np.asarray(p["edges"], dtype="float64")
        occupied = np.flatnonzero(hist > 0)
        ends = [*col["values"]]
        if len(occupied):
            ends += [float(edges[occupied[0]]), float(edges[occupied[-1] + 1])]
        if ends and not dp:
            col["low"], col["high"] = max(col["low"], min(ends)), min(col["high"], max(ends))
        col["value_counts"] = cand[keep].tolist()
        col["edges"] = p["edges"]
        col["hist"] = np.asarray(hist, dtype="float64").tolist()
        if col["exact"] and hist.sum() > 0.5 * max(cand.sum(), 1.0):
            col["exact"] = False  # values no site proposed as candidates: a continuous part remains
    return merged


def _coarse_range(raw: np.ndarray, threshold: float) -> tuple[int, int]:
    """With DP, when no bin of the merged stage-1 histogram clears ``threshold``: the bins of the coarsest
    blocks that do (blocks of 2, 4, ... bins, whose summed noise is sqrt(block) times larger), else the block
    of 16 bins (4 units of asinh, a factor of about 50 in value) with the largest noisy count.

    Post-processing of the same noisy histogram (every bin of the fixed grid is noised, empty or not): private.
    """
    for size in (2, 4, 8, 16):
        blocks = raw[: len(raw) // size * size].reshape(-1, size).sum(1)
        passing = np.flatnonzero(blocks >= threshold * np.sqrt(size))
        if len(passing):
            return int(passing[0] * size), int((passing[-1] + 1) * size - 1)
    size = 16
    blocks = raw[: len(raw) // size * size].reshape(-1, size).sum(1)
    best = int(np.argmax(blocks))
    return best * size, (best + 1) * size - 1


def _adaptive_edges(
    hist: np.ndarray, lo: float, hi: float, grid: np.ndarray, split: int = _SPLIT, dp: bool = False
) -> np.ndarray:
    """Stage-2 grid on [lo, hi]: 64 quantiles of the merged stage-1 histogram, each interval cut in 16.

    With DP and no stage-1 bin above the noise (declared bounds): equal steps in ``asinh`` space instead.
    """
    if dp and not hist.any() and hi > lo:
        return np.unique(np.sinh(np.linspace(np.arcsinh(lo), np.arcsinh(hi), _COARSE_QUANTILES * split + 1)))
    if not hist.any() or hi <= lo:
        return np.array([lo, hi if hi > lo else lo + 1.0])
    cum = np.concatenate([[0.0], np.cumsum(hist)]) / hist.sum()
    q = np.interp(np.linspace(0, 1, _COARSE_QUANTILES + 1), cum, grid)
    q = np.clip(np.sinh(q), lo, hi)
    q[0], q[-1] = lo, hi
    q = np.unique(q)
    parts = [np.linspace(a, b, split + 1)[:-1] for a, b in itertools.pairwise(q)]
    return np.unique(np.concatenate([*parts, [hi]]))


def _common_dtype(dtypes: list[str]) -> str:
    """The dtype every site's column can be held in (float64 when integer and float sites mix)."""
    unique = sorted(set(dtypes))
    if len(unique) == 1:
        return unique[0]
    if all(d.startswith(("int", "uint", "float", "Int", "UInt", "Float")) for d in unique):
        return "float64"
    if set(unique) <= {"bool", "boolean", "object"}:
        return "boolean" if "object" not in unique else "object"
    return "object"


# ------------------------------------------------------------------------------------------ the proxy
def _allocate(weights: np.ndarray, total: int) -> np.ndarray:
    """Integers proportional to ``weights`` summing to ``total`` (largest remainders)."""
    w = np.clip(np.asarray(weights, dtype="float64"), 0, None)
    if total <= 0 or w.sum() <= 0:
        return np.zeros(len(w), dtype="int64")
    exact = w / w.sum() * total
    out = np.floor(exact).astype("int64")
    rest = total - out.sum()
    out[np.argsort(-(exact - out), kind="stable")[:rest]] += 1
    return out


def proxy_table(merged: dict[str, Any], metadata: Metadata, rows: int = _PROXY_ROWS) -> pd.DataFrame:
    """A table with the merged marginals, one independent column each (see the module docstring)."""
    n_total = max(merged["n"], 1.0)
    rows = int(min(rows, max(n_total, 200)))
    most_levels = max([len(m.get("levels", [])) for m in merged["columns"].values()] + [0])
    rows = max(rows, 2 * most_levels + 10)
    data: dict[str, pd.Series] = {}
    for name, spec in metadata.columns.items():
        m = merged["columns"][name]
        n_missing = round(rows * min(m.get("missing", 0.0) / n_total, 1.0))
        if spec.kind in _DISCRETE:
            n_missing = min(n_missing, rows - len(m["levels"]))
        if spec.kind in _NUMERIC:
            values = _numeric_proxy(m, rows - n_missing)
            x = np.concatenate([values, np.full(n_missing, np.nan)])
            if spec.kind == "integer":
                x = np.round(x)
            dtype = m["dtype"]
            if n_missing and dtype.startswith(("int", "uint")):
                dtype = "float64"
            data[name] = pd.Series(x).astype(
                dtype if dtype.startswith(("int", "uint", "float", "Int", "UInt", "Float")) else "float64"
            )
        elif spec.kind in _DISCRETE:
            levels = m["levels"]
            if not levels:
                raise DataError(
                    f"column {name!r}: no level is held by enough rows across the sites to be learned "
                    "(with DP, lower the count threshold or drop the column)"
                )
            # every agreed level at least once, so that it stays a level of the transform
            reps = 1 + _allocate(np.asarray(m["counts"]), rows - n_missing - len(levels))
            vals = np.empty(int(reps.sum()) + n_missing, dtype=object)
            vals[: int(reps.sum())] = np.repeat(np.array([*levels, None], dtype=object)[:-1], reps)
            vals[int(reps.sum()) :] = None if m["none_missing"] else np.nan
            data[name] = _discrete_series(vals, m["dtype"], spec.kind)
        else:
            data[name] = pd.Series([None] * rows, dtype=object)
    return pd.DataFrame(data, columns=list(metadata.columns))


def _numeric_proxy(m: dict[str, Any], n: int) -> np.ndarray:
    values = np.asarray(m.get("values", []), dtype="float64")
    vcounts = np.asarray(m.get("value_counts", []), dtype="float64")
    hist = np.asarray(m.get("hist", []), dtype="float64")
    edges = np.asarray(m.get("edges", [m["low"], m["high"]]), dtype="float64")
    if m["exact"] or not hist.any():
        hist = np.zeros(max(len(edges) - 1, 0))
    weights = np.concatenate([vcounts, hist])
    if not weights.any():
        return np.full(n, (m["low"] + m["high"]) / 2)
    alloc = _allocate(weights, n)
    parts = [np.repeat(values, alloc[: len(values)])]
    for k, a in zip(np.flatnonzero(alloc[len(values) :]), alloc[len(values) :][alloc[len(values) :] > 0], strict=True):
        lo, hi = edges[k], edges[k + 1]
        parts.append(lo + (np.arange(a) + 0.5) / a * (hi - lo))
    return np.concatenate(parts)


def _discrete_series(vals: np.ndarray, dtype: str, kind: str) -> pd.Series:
    if kind == "boolean" or dtype in ("object", "category", "string", "str"):
        s = pd.Series(vals, dtype=object)
        return s.astype(dtype) if dtype in ("category", "string") else s
    try:
        return pd.Series(vals).astype(dtype if not pd.isna(vals).any() else "float64")
    except (TypeError, ValueError):
        return pd.Series(vals, dtype=object)


def build_transformer(merged: dict[str, Any], metadata: Metadata, proxy: pd.DataFrame) -> TableTransformer:
    """The agreed table transformer: fitted on the proxy, then given the merged bounds, precision and formats."""
    tt = TableTransformer()
    tt.columns_ = list(metadata.columns)
    tt.transforms_ = {}
    for name, spec in metadata.columns.items():
        m = merged["columns"][name]
        if spec.kind in _GENERATED:
            t = type(transform_for(spec)).from_state(m["state"])
            key = metadata.entity_key
            if spec.kind == "pii" and key is not None and key != name:
                # one fake per entity, the same across its rows, as in a central fit
                t.entity_key_ = key if m.get("entity_constant", 1.0) >= 0.9 else None
        else:
            t = transform_for(spec).fit(proxy[name])
            t.dtype_ = m["dtype"]
            t.missing_rate_ = float(m.get("missing", 0.0) / max(merged["n"], 1.0))
        if spec.kind in _NUMERIC:
            t.min_, t.max_ = float(m["low"]), float(m["high"])
            if spec.kind == "integer":
                t.min_, t.max_ = float(np.floor(t.min_)), float(np.ceil(t.max_))
            t.decimals_ = 0 if spec.kind == "integer" else m["decimals"]
        if spec.kind in _DISCRETE and hasattr(t, "missing_value_"):
            t.missing_value_ = None if m["none_missing"] else "nan"
        tt.transforms_[name] = t
    return tt


def check_plan_columns(plan: dict[str, Any], df: pd.DataFrame) -> None:
    missing = [c for c in plan if c not in df.columns]
    if missing:
        raise ParameterError(f"the server's plan names columns this site does not have: {missing}")
