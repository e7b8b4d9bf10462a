"""Fidelity: how much the synthetic table looks like the real one it was learned from.

Every metric compares ``real`` (the generator's training data) with ``synthetic`` over the learned columns
(id, free-text and PII columns are generated, not learned, and are left out).

==========================  =======  ================================================================================
metric                      ideal    what it is
==========================  =======  ================================================================================
column_shapes               1        mean over columns of the KS complement ``1 - D`` (numeric, datetime; ``D`` is the
                                     two-sample Kolmogorov-Smirnov statistic) or the TV complement
                                     ``1 - TV`` (categorical, boolean; total variation distance of the level shares)
column_pair_trends          1        mean over the column pairs that are related in real (``|Pearson r| > 0.5`` for
                                     two numeric/datetime columns, Cramér's V > 0.3 otherwise) of the correlation
                                     similarity ``1 - |r_real - r_synth| / 2`` or the contingency similarity
                                     ``1 - TV`` of the two-way table; None when no pair is related
column_pair_trends_all      1        the same mean over every pair
wasserstein                 0        mean over numeric/datetime columns of the Wasserstein-1 distance between the real
                                     and synthetic values divided by the real robust scale (IQR, else range)
mutual_information          1        ``1 - mean |NMI_real - NMI_synth|`` over column pairs; NMI is the mutual
                                     information of the pair (10 real-quantile bins for numbers, missing as its own bin)
                                     divided by ``sqrt(H_a H_b)``
missing_rates               1        mean over columns of ``1 - |missing share real - missing share synthetic|``
detection_auc               0.5      cross-validated ROC-AUC of a gradient-boosting classifier trained to tell real
                                     rows from synthetic ones (1 = trivially told apart)
alpha_precision             1        integrated alpha-precision: do synthetic rows fall where real rows are dense?
beta_recall                 1        integrated beta-recall: does the synthetic data cover the real data's support?
authenticity                --       share of synthetic rows that are not closer to a real row than that real row's
                                     nearest real neighbour (Alaa et al.'s authenticity; higher = fewer copies)
==========================  =======  ================================================================================

``column_shapes`` and ``column_pair_trends`` follow the definitions of SDMetrics' ``QualityReport`` (its Column
Shapes and Column Pair Trends properties, with the default thresholds 0.5 and 0.3): missing values are dropped
for the KS and TV complements; correlations use the rows where both columns are present and are undefined (the
pair is left out) when a column is constant; for a contingency table every row counts and a missing value is a
level of its own; a numeric or datetime column paired with a categorical one is cut into 10 equal-width bins of
its own table's range (``numpy.histogram_bin_edges``), where, as ``numpy.digitize`` does, the maximum value and the
missing values share the top bin. Two choices differ from SDMetrics: a synthetic column with no value at all
scores 0 (SDMetrics leaves it out of the mean), and data above 50,000 rows is subsampled with the ``seed``
(SDMetrics draws its subsample without one). ``benchmarks/bench_evaluate_sdmetrics.py`` checks the agreement.

References
----------
- Kolmogorov-Smirnov and total variation complements, correlation and contingency similarity: SDMetrics
  documentation, "Column Shapes" and "Column Pair Trends" (DataCebo, 2023).
- A. M. Alaa, B. van Breugel, E. Saveliev, M. van der Schaar, "How Faithful is your Synthetic Data?
  Sample-level Metrics for Evaluating and Auditing Generative Models", ICML 2022 (alpha-precision, beta-recall,
  authenticity).
- D. Lopez-Paz, M. Oquab, "Revisiting Classifier Two-Sample Tests", ICLR 2017 (detection by a classifier).
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from twinforge.evaluate._data import (
    MixedEncoder,
    Prepared,
    categorical_mask,
    prepare,
    random_state,
    subsample,
    threads,
    to_display,
    trainable,
    tree_matrix,
)

__all__ = [
    "CORRELATION_THRESHOLD",
    "ASSOCIATION_THRESHOLD",
    "alpha_beta",
    "column_pair_trends",
    "column_shapes",
    "detection_auc",
    "ks_complement",
    "missing_rates",
    "mutual_information",
    "tv_complement",
    "wasserstein",
]

CORRELATION_THRESHOLD = 0.5  # |Pearson r| in real above which a numeric pair counts (SDMetrics' default)
ASSOCIATION_THRESHOLD = 0.3  # Cramér's V in real above which another pair counts (SDMetrics' default)
PAIR_BINS = 10
MI_BINS = 10
MI_LEVELS = 50
ALPHA_GRID = np.linspace(0.05, 0.95, 19)


# ------------------------------------------------------------------------------------------ column shapes
def ks_complement(real: np.ndarray, synthetic: np.ndarray) -> float | None:
    """``1 - D``, D the two-sample Kolmogorov-Smirnov statistic over the non-missing values.

    None when real has no value; 0 when only synthetic has none.

    Examples
    --------
    >>> import numpy as np
    >>> ks_complement(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 3.0]))
    1.0
    >>> ks_complement(np.array([1.0, 2.0]), np.array([5.0, 6.0]))
    0.0
    """
    x = np.sort(real[~np.isnan(real)])
    y = np.sort(synthetic[~np.isnan(synthetic)])
    if len(x) == 0:
        return None
    if len(y) == 0:
        return 0.0
    grid = np.concatenate([x, y])
    gap = np.abs(np.searchsorted(x, grid, side="right") / len(x) - np.searchsorted(y, grid, side="right") / len(y))
    return float(1.0 - gap.max())


def tv_complement(real: np.ndarray, synthetic: np.ndarray) -> float | None:
    """``1 - TV``, TV the total variation distance between the level shares (codes ``>= 0``; -1 is missing).

    Examples
    --------
    >>> import numpy as np
    >>> tv_complement(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]))
    0.75
    """
    x, y = real[real >= 0], synthetic[synthetic >= 0]
    if len(x) == 0:
        return None
    if len(y) == 0:
        return 0.0
    k = int(max(x.max(), y.max())) + 1
    p = np.bincount(x, minlength=k) / len(x)
    q = np.bincount(y, minlength=k) / len(y)
    return float(1.0 - 0.5 * np.abs(p - q).sum())


def _column_shapes(prep: Prepared, rows: dict[str, np.ndarray | None] | None = None) -> dict[str, Any]:
    rows = rows or {}
    real, synth = prep.take("real", rows.get("real")), prep.take("synthetic", rows.get("synthetic"))
    details = {}
    for name, col in prep.columns.items():
        if col.discrete:
            details[name] = {"metric": "TVComplement", "score": tv_complement(real[name], synth[name])}
        else:
            details[name] = {"metric": "KSComplement", "score": ks_complement(real[name], synth[name])}
    return {"score": _mean(d["score"] for d in details.values()), "columns": details}


def column_shapes(real: Any, synthetic: Any, metadata: Any = None) -> dict[str, Any]:
    """Column shapes score (ideal 1) and the score of every learned column.

    Examples
    --------
    >>> import pandas as pd
    >>> real = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "c": ["a", "a", "b", "b"]})
    >>> column_shapes(real, real)["score"]
    1.0
    """
    return _column_shapes(prepare(real, synthetic, None, metadata))


# ------------------------------------------------------------------------------------------ pair trends
def _pair_codes(prep: Prepared, arrays: dict[str, np.ndarray], name: str) -> np.ndarray:
    """Codes for a contingency table: levels (missing = its own code), or 10 equal-width bins of this table."""
    a = arrays[name]
    if prep.columns[name].discrete:
        return np.where(a < 0, len(prep.columns[name].levels), a)
    obs = a[~np.isnan(a)]
    try:
        edges = np.histogram_bin_edges(obs, bins=PAIR_BINS)
    except ValueError:  # a range below the float spacing at its magnitude (a DP sample's constant 1e15): one bin
        return np.where(np.isnan(a), PAIR_BINS + 1, 1)
    return np.digitize(a, edges)  # NaN and the maximum both land in the top code, len(edges)


def _contingency(ca: np.ndarray, cb: np.ndarray, ka: int, kb: int) -> np.ndarray:
    return np.bincount(ca * kb + cb, minlength=ka * kb).reshape(ka, kb)


def cramers_v(table: np.ndarray) -> float | None:
    """Cramér's V of a contingency table (levels that never occur are dropped); None below 2 x 2."""
    table = table[table.sum(axis=1) > 0][:, table.sum(axis=0) > 0]
    if min(table.shape) < 2:
        return None
    n = table.sum()
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / n
    chi2 = float(((table - expected) ** 2 / expected).sum())
    return float(np.sqrt(chi2 / n / (min(table.shape) - 1)))


def _pearson(x: np.ndarray, y: np.ndarray) -> float | None:
    both = ~(np.isnan(x) | np.isnan(y))
    x, y = x[both], y[both]
    if len(x) < 2:
        return None
    x = x - x.mean()
    y = y - y.mean()
    denom = np.sqrt((x * x).sum() * (y * y).sum())
    if denom == 0 or not np.isfinite(denom):
        return None
    return float(np.clip((x * y).sum() / denom, -1.0, 1.0))


def _constant(a: np.ndarray) -> bool:
    obs = a[~np.isnan(a)]
    return len(obs) == 0 or bool(obs.min() == obs.max())


def _column_pair_trends(prep: Prepared, rows: dict[str, np.ndarray | None] | None = None) -> dict[str, Any]:
    rows = rows or {}
    real, synth = prep.take("real", rows.get("real")), prep.take("synthetic", rows.get("synthetic"))
    n_real, n_synth = len(next(iter(real.values()))), len(next(iter(synth.values())))
    codes_r: dict[str, np.ndarray] = {}
    codes_s: dict[str, np.ndarray] = {}
    for name in prep.columns:
        codes_r[name] = _pair_codes(prep, real, name)
        codes_s[name] = _pair_codes(prep, synth, name)
    pairs = []
    for a, b in itertools.combinations(prep.columns, 2):
        ca, cb = prep.columns[a], prep.columns[b]
        item: dict[str, Any] = {"columns": [a, b]}
        if not ca.discrete and not cb.discrete:
            item["metric"] = "CorrelationSimilarity"
            if any(_constant(t[c]) for t in (real, synth) for c in (a, b)):
                item.update(score=None, counted=False, note="a column is constant, correlation is undefined")
            else:
                r_real, r_synth = _pearson(real[a], real[b]), _pearson(synth[a], synth[b])
                score = None if r_real is None or r_synth is None else 1.0 - abs(r_real - r_synth) / 2
                counted = r_real is not None and abs(r_real) > CORRELATION_THRESHOLD
                item.update(score=score, real=r_real, synthetic=r_synth, counted=counted)
        else:
            item["metric"] = "ContingencySimilarity"
            ka = int(max(codes_r[a].max(), codes_s[a].max())) + 1
            kb = int(max(codes_r[b].max(), codes_s[b].max())) + 1
            table_r = _contingency(codes_r[a], codes_r[b], ka, kb)
            table_s = _contingency(codes_s[a], codes_s[b], ka, kb)
            score = 1.0 - 0.5 * np.abs(table_r / n_real - table_s / n_synth).sum()
            v_real, v_synth = cramers_v(table_r), cramers_v(table_s)
            counted = v_real is not None and v_real > ASSOCIATION_THRESHOLD
            item.update(score=float(score), real=v_real, synthetic=v_synth, counted=counted)
        pairs.append(item)
    return {
        "score": _mean(p["score"] for p in pairs if p["counted"]),
        "score_all_pairs": _mean(p["score"] for p in pairs),
        "pairs_counted": sum(p["counted"] and p["score"] is not None for p in pairs),
        "pairs_total": len(pairs),
        "pairs": pairs,
    }


def column_pair_trends(real: Any, synthetic: Any, metadata: Any = None) -> dict[str, Any]:
    """Column pair trends over the related pairs (``score``) and over all pairs (``score_all_pairs``); ideal 1.

    ``real``/``synthetic`` in each pair's details are Pearson's r (numeric pairs) or Cramér's V (other pairs).

    Examples
    --------
    >>> import pandas as pd
    >>> real = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "y": [2.0, 4.1, 5.9, 8.2]})
    >>> shuffled = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "y": [8.2, 2.0, 5.9, 4.1]})
    >>> column_pair_trends(real, real)["score"], round(column_pair_trends(real, shuffled)["score"], 2)
    (1.0, 0.29)
    """
    return _column_pair_trends(prepare(real, synthetic, None, metadata))


# ------------------------------------------------------------------------------------------ wasserstein
def _wasserstein(prep: Prepared) -> dict[str, Any]:
    details = {}
    for name, col in prep.columns.items():
        if col.discrete:
            continue
        x, y = prep.values["real"][name], prep.values["synthetic"][name]
        x, y = x[~np.isnan(x)], y[~np.isnan(y)]
        if len(x) == 0 or len(y) == 0:
            details[name] = None
            continue
        raw = float(stats.wasserstein_distance(x, y))
        details[name] = {"distance": raw / col.scale, "scale": col.scale / (86_400e9 if col.kind == "datetime" else 1)}
    score = _mean(d["distance"] if d else None for d in details.values())
    return {"score": score, "normalised_by": "the real column's IQR (its range if the IQR is 0)", "columns": details}


def wasserstein(real: Any, synthetic: Any, metadata: Any = None) -> dict[str, Any]:
    """Wasserstein-1 distance per numeric/datetime column in units of the real IQR, and their mean (ideal 0)."""
    return _wasserstein(prepare(real, synthetic, None, metadata))


# ------------------------------------------------------------------------------------------ mutual information
def _mi_codes(prep: Prepared, name: str, arrays: dict[str, np.ndarray]) -> tuple[np.ndarray, int]:
    col = prep.columns[name]
    a = arrays[name]
    if col.discrete:
        kept = min(len(col.levels), MI_LEVELS)
        return np.where(a < 0, kept + 1, np.minimum(a, kept)), kept + 2
    real = prep.values["real"][name]
    obs = real[~np.isnan(real)]
    edges = np.unique(np.quantile(obs, np.linspace(0, 1, MI_BINS + 1)[1:-1])) if len(obs) else np.array([])
    codes = np.searchsorted(edges, a, side="right")
    return np.where(np.isnan(a), len(edges) + 1, codes), len(edges) + 2


def _entropy(counts: np.ndarray) -> float:
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


def _nmi_matrix(prep: Prepared, arrays: dict[str, np.ndarray]) -> np.ndarray:
    names = prep.names
    coded = [_mi_codes(prep, name, arrays) for name in names]
    h = [_entropy(np.bincount(c, minlength=k)) for c, k in coded]
    m = np.eye(len(names))
    for i, j in itertools.combinations(range(len(names)), 2):
        (ci, ki), (cj, kj) = coded[i], coded[j]
        joint = _entropy(np.bincount(ci * kj + cj, minlength=ki * kj))
        mi = max(h[i] + h[j] - joint, 0.0)
        denom = np.sqrt(h[i] * h[j])
        m[i, j] = m[j, i] = mi / denom if denom > 0 else 0.0
    return m


def _mutual_information(prep: Prepared, rows: dict[str, np.ndarray | None] | None = None) -> dict[str, Any]:
    rows = rows or {}
    real = _nmi_matrix(prep, prep.take("real", rows.get("real")))
    synth = _nmi_matrix(prep, prep.take("synthetic", rows.get("synthetic")))
    upper = np.triu_indices(len(prep.names), k=1)
    diff = np.abs(real - synth)[upper]
    return {
        "score": float(1.0 - diff.mean()) if len(diff) else None,
        "columns": prep.names,
        "real": np.round(real, 4).tolist(),
        "synthetic": np.round(synth, 4).tolist(),
    }


def mutual_information(real: Any, synthetic: Any, metadata: Any = None) -> dict[str, Any]:
    """Normalised mutual-information matrices of real and synthetic, and ``1 - mean |difference|`` (ideal 1)."""
    return _mutual_information(prepare(real, synthetic, None, metadata))


# ------------------------------------------------------------------------------------------ missing rates
def _missing_rates(prep: Prepared) -> dict[str, Any]:
    details = {}
    for name, col in prep.columns.items():
        share = {}
        for table in ("real", "synthetic"):
            a = prep.values[table][name]
            share[table] = float((a < 0).mean() if col.discrete else np.isnan(a).mean())
        details[name] = {**share, "score": 1.0 - abs(share["real"] - share["synthetic"])}
    return {"score": _mean(d["score"] for d in details.values()), "columns": details}


def missing_rates(real: Any, synthetic: Any, metadata: Any = None) -> dict[str, Any]:
    """Missing share per column in real and synthetic, and the mean match ``1 - |difference|`` (ideal 1)."""
    return _missing_rates(prepare(real, synthetic, None, metadata))


# ------------------------------------------------------------------------------------------ detection
def _detection_auc(prep: Prepared, rng: np.random.Generator, cap: int, folds: int = 5) -> dict[str, Any]:
    """Out-of-fold ROC-AUC of gradient boosting on real (0) against synthetic (1) rows, equal numbers of each.

    Identical rows are kept in the same fold: otherwise a synthetic copy of a real row would be scored by a model
    that saw the copy labelled "real", and a perfect copy of the data would score far below 0.5.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score

    n = min(prep.rows["real"], prep.rows["synthetic"], cap)
    take_r = np.sort(rng.choice(prep.rows["real"], n, replace=False))
    take_s = np.sort(rng.choice(prep.rows["synthetic"], n, replace=False))
    names = prep.names
    x = np.vstack(
        [tree_matrix(prep, prep.take("real", take_r), names), tree_matrix(prep, prep.take("synthetic", take_s), names)]
    )
    x = trainable(x)
    y = np.r_[np.zeros(n), np.ones(n)]
    groups = np.unique(pd.util.hash_pandas_object(pd.DataFrame(x), index=False).to_numpy(), return_inverse=True)[1]
    fold = rng.permutation(groups.max() + 1)[groups] % folds
    if n < folds or len(np.unique(fold)) < 2:
        return {"score": None, "rows_per_side": n, "note": "too few distinct rows to cross-validate"}
    scores = np.full(len(y), 0.5)
    with threads():
        for k in range(folds):
            test = fold == k
            train = ~test
            if not test.any() or len(np.unique(y[train])) < 2:
                continue
            model = HistGradientBoostingClassifier(
                max_iter=100,
                early_stopping=False,
                categorical_features=categorical_mask(prep, names),
                random_state=random_state(rng),
            )
            model.fit(x[train], y[train])
            scores[test] = model.predict_proba(x[test])[:, 1]
    return {"score": float(roc_auc_score(y, scores)), "rows_per_side": n, "folds": folds}


def detection_auc(real: Any, synthetic: Any, metadata: Any = None, *, seed: int = 0, cap: int = 10_000) -> float:
    """Cross-validated ROC-AUC of a classifier separating real from synthetic rows (ideal 0.5)."""
    return _detection_auc(prepare(real, synthetic, None, metadata), np.random.default_rng(seed), cap)["score"]


# ------------------------------------------------------------------------------------------ alpha / beta
def _alpha_beta(prep: Prepared, rng: np.random.Generator, cap: int) -> dict[str, Any]:
    """Alpha-precision, beta-recall and authenticity (Alaa et al. 2022) on the mixed-type embedding.

    As in the paper's hypersphere model (without its learned one-class embedding), the alpha-support of a table
    is the ball about its centroid that holds the share alpha of its rows. P(alpha) is the share of synthetic
    rows inside real's alpha-support; R(beta) is the share of real rows inside synthetic's beta-support. Both
    equal alpha (beta) when the two tables come from one distribution; a generator that puts rows where real data
    is rare lowers P, one that covers only part of the real data (mode collapse) lowers R. The integrated scores
    are ``1 - 2 mean |P(a) - a|`` over alpha in 0.05..0.95 (likewise for R), 1 at best.
    """
    from sklearn.neighbors import NearestNeighbors

    enc = MixedEncoder(prep)
    take_r = subsample(prep.rows["real"], cap, rng)
    take_s = subsample(prep.rows["synthetic"], cap, rng)
    xr = enc.transform(prep.take("real", take_r))
    xs = enc.transform(prep.take("synthetic", take_s))
    if len(xr) < 2 or len(xs) < 2:
        return {"alpha_precision": None, "beta_recall": None, "authenticity": None, "note": "too few rows"}
    centre_r, centre_s = xr.mean(axis=0), xs.mean(axis=0)
    r_to_r, s_to_r = np.linalg.norm(xr - centre_r, axis=1), np.linalg.norm(xs - centre_r, axis=1)
    s_to_s, r_to_s = np.linalg.norm(xs - centre_s, axis=1), np.linalg.norm(xr - centre_s, axis=1)
    precision = (s_to_r[:, None] <= np.quantile(r_to_r, ALPHA_GRID)[None, :]).mean(axis=0)
    recall = (r_to_s[:, None] <= np.quantile(s_to_s, ALPHA_GRID)[None, :]).mean(axis=0)

    # authenticity: a synthetic row is authentic unless it is closer to its nearest real row than that real row
    # is to its own nearest real neighbour
    with threads():
        real_nn = NearestNeighbors(n_neighbors=2).fit(xr)
        d_rr = real_nn.kneighbors(xr)[0][:, 1]
        d_sr, i_sr = real_nn.kneighbors(xs, n_neighbors=1)
    authentic = d_sr[:, 0] > d_rr[i_sr[:, 0]]
    return {
        "alpha_precision": float(max(0.0, 1 - 2 * np.abs(precision - ALPHA_GRID).mean())),
        "beta_recall": float(max(0.0, 1 - 2 * np.abs(recall - ALPHA_GRID).mean())),
        "authenticity": float(authentic.mean()),
        "alpha": ALPHA_GRID.round(2).tolist(),
        "precision_curve": precision.round(4).tolist(),
        "recall_curve": recall.round(4).tolist(),
        "rows": {"real": len(xr), "synthetic": len(xs)},
    }


def alpha_beta(real: Any, synthetic: Any, metadata: Any = None, *, seed: int = 0, cap: int = 5_000) -> dict:
    """Integrated alpha-precision and beta-recall (ideal 1 each) and authenticity; see :func:`_alpha_beta`."""
    return _alpha_beta(prepare(real, synthetic, None, metadata), np.random.default_rng(seed), cap)


# ------------------------------------------------------------------------------------------ plots' data
def histograms(prep: Prepared, name: str, bins: int = 30, levels: int = 20) -> dict[str, Any]:
    """Shares per bin (numbers, datetimes) or level (the ``levels`` most frequent) in real and synthetic."""
    col = prep.columns[name]
    real, synth = prep.values["real"][name], prep.values["synthetic"][name]
    if col.discrete:
        k = len(col.levels)
        p = np.bincount(real[real >= 0], minlength=k) / max(len(real), 1)
        q = np.bincount(synth[synth >= 0], minlength=k) / max(len(synth), 1)
        top = np.argsort(-(p + q), kind="stable")[:levels]
        labels = [str(col.levels[i]) for i in top]
        out = {"kind": "bar", "x": labels, "real": p[top].tolist(), "synthetic": q[top].tolist()}
        if (real < 0).any() or (synth < 0).any():
            out["x"].append("(missing)")
            out["real"].append(float((real < 0).mean()))
            out["synthetic"].append(float((synth < 0).mean()))
        return out
    x, y = to_display(col, real[~np.isnan(real)]), to_display(col, synth[~np.isnan(synth)])
    both = np.concatenate([x, y])
    if len(both) == 0:
        return {"kind": "hist", "x": [], "real": [], "synthetic": []}
    lo, hi = np.quantile(both, [0.001, 0.999]) if len(both) > 1000 else (both.min(), both.max())
    edges = np.linspace(lo, hi if hi > lo else lo + 1, bins + 1)
    if not (np.diff(edges) > 0).all():  # a range below the float spacing at its magnitude: widen it until it shows
        edges = lo + np.arange(bins + 1) * max(abs(lo), 1.0) * 1e-6
    p = np.histogram(np.clip(x, lo, hi), edges)[0] / max(len(real), 1)
    q = np.histogram(np.clip(y, lo, hi), edges)[0] / max(len(synth), 1)
    centres = (edges[:-1] + edges[1:]) / 2
    if col.kind == "datetime":
        centres = pd.to_datetime(centres * 86_400e9).strftime("%Y-%m-%d %H:%M").tolist()
    else:
        centres = centres.tolist()
    return {"kind": "hist", "x": centres, "real": p.tolist(), "synthetic": q.tolist()}


def correlations(prep: Prepared, rows: dict[str, np.ndarray | None] | None = None) -> dict[str, Any]:
    """Pearson correlation matrices of the numeric and datetime columns in real and synthetic."""
    rows = rows or {}
    names = [n for n, c in prep.columns.items() if not c.discrete]
    out: dict[str, Any] = {"columns": names}
    for table in ("real", "synthetic"):
        arrays = prep.take(table, rows.get(table))
        frame = pd.DataFrame({n: arrays[n] for n in names})
        out[table] = np.round(frame.corr().to_numpy(), 4).tolist() if names else []
    return out


def _mean(values: Any) -> float | None:
    kept = [v for v in values if v is not None and not np.isnan(v)]
    return float(np.mean(kept)) if kept else None
