"""Privacy: does the synthetic table give away the real rows it was learned from?

Most metrics need a *holdout*: real rows the generator never saw. A generator that learned the population, not
its training rows, puts synthetic rows as close to holdout rows as to training rows.

Distances are Euclidean on a mixed-type encoding (:class:`~twinforge.evaluate._data.MixedEncoder`): numeric and
datetime columns in units of the real IQR (range if the IQR is 0), a missing value at the median plus 1 for
"missing"; categorical and boolean columns add 1 to the squared distance when the levels differ (missing is a
level). Nearest neighbours come from scikit-learn's ``NearestNeighbors``.

==========================  ====================  ==================================================================
metric                      ideal                 what it is
==========================  ====================  ==================================================================
dcr_share                   |T| / (|T| + |H|)     share of synthetic rows closer to their nearest training row (T)
                            (0.5 if equal sizes)  than to their nearest holdout row (H); ties count one half. Near 1:
                                                  synthetic rows sit on top of training rows
dcr (percentiles)           synthetic >= holdout  1st/5th/50th percentiles of the distance to the closest training
                                                  record of synthetic rows, beside the same for holdout rows
nndr (percentiles)          synthetic >= holdout  nearest-neighbour distance ratio d1/d2 to training rows (0/0 = 1);
                                                  near 0: a synthetic row singles out one training row
exact_copy_rate             <= holdout's rate     share of synthetic rows equal to a training row in every learned
                                                  column, beside the same share for holdout rows (duplicates occur
                                                  naturally in discrete data)
mia_auc                     0.5                   the highest ROC-AUC among the membership-inference attacks below
                                                  (training rows = members, holdout rows = non-members)
  distance attack           0.5                   score = minus the distance to the closest synthetic row
  density attack            0.5                   DOMIAS: score = log density of synthetic / log density of a
                                                  reference (the other half of the holdout), each a Gaussian
                                                  mixture on a PCA of the encoding; cross-fitted over the two
                                                  halves of the holdout, the AUC is the mean of the halves'
attribute_inference         gap 0                 per ``sensitive`` column: a gradient-boosting attacker trained on
                                                  synthetic predicts it from the other columns; accuracy (R^2 for
                                                  numbers) on training rows, on holdout rows and of the majority
                                                  (mean) baseline. The gap train - holdout is the leak specific to
                                                  training rows. The attacker picks among the 10 most frequent
                                                  synthetic levels (a rarer level counts as a miss)
                                                  and trains on at most 20,000 synthetic rows
==========================  ====================  ==================================================================

Samples: for the distances, synthetic rows are subsampled to ``cap`` rows, and training and holdout rows at one
rate that leaves the larger of the two with ``cap`` rows (seeded), so the ideal dcr_share is the same for the
subsamples as for the whole tables; the attacks score every training row as a member and every holdout row as
a non-member (each up to ``cap``; more members than non-members lower the AUC's variance and leave its expected
value alone; ``auc_se`` is its standard error), and at most ``distance_rows`` synthetic rows. Exact copies are
looked up among *all* rows (by hashing the learned columns), so a row with an exact copy anywhere in the other
table is at distance 0 even when that copy is not in the subsample: subsampling never hides an exact copy, only
near copies.

References
----------
- M. Platzer, T. Reutterer, "Holdout-Based Empirical Assessment of Mixed-Type Synthetic Data", Frontiers in Big
  Data 2021 (DCR against a holdout, NNDR).
- J. Hayes, L. Melis, G. Danezis, E. De Cristofaro, "LOGAN: Membership Inference Attacks Against Generative
  Models", PoPETs 2019; T. Stadler, B. Oprisanu, C. Troncoso, "Synthetic Data - Anonymisation Groundhog Day",
  USENIX Security 2022 (membership and attribute inference on synthetic data).
- B. van Breugel, H. Sun, Z. Qian, M. van der Schaar, "Membership Inference Attacks against Synthetic Data
  through Overfitting Detection" (DOMIAS), AISTATS 2023.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from twinforge.errors import ParameterError
from twinforge.evaluate._data import (
    MixedEncoder,
    Prepared,
    categorical_mask,
    prepare,
    random_state,
    subsample,
    threads,
    trainable,
    tree_matrix,
)

__all__ = ["attribute_inference", "dcr", "exact_copy_rate", "membership_inference"]

PERCENTILES = (1, 5, 50)
_TIE = 1e-9
ATTACKER_TRAIN_ROWS = 20_000  # synthetic rows an attribute-inference attacker trains on
ATTACK_LEVELS = 10  # levels of a categorical sensitive column the attacker predicts (rarer ones: "other")


def _exact_copies(prep: Prepared) -> dict[str, Any]:
    train = prep.hashes("real")
    out: dict[str, Any] = {"synthetic": float(np.isin(prep.hashes("synthetic"), train).mean())}
    out["holdout"] = float(np.isin(prep.hashes("holdout"), train).mean()) if prep.has_holdout else None
    return out


def _copied(prep: Prepared, table: str, rows: np.ndarray | None, reference: str) -> np.ndarray:
    """Which of ``rows`` of ``table`` equal some row of ``reference`` (all of its rows, not a subsample)."""
    h = prep.hashes(table)
    return np.isin(h if rows is None else h[rows], prep.hashes(reference))


def exact_copy_rate(real: Any, synthetic: Any, holdout: Any = None, metadata: Any = None) -> dict[str, Any]:
    """Share of synthetic (and holdout) rows equal to a training row over the learned columns.

    Examples
    --------
    >>> import pandas as pd
    >>> real = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "c": ["a", "b", "a", "b"]})
    >>> fake = pd.DataFrame({"x": [1.0, 2.5, 3.0, 9.0], "c": ["a", "b", "b", "b"]})
    >>> exact_copy_rate(real, fake)["synthetic"]
    0.25
    """
    return _exact_copies(prepare(real, synthetic, holdout, metadata))


def _percentiles(d: np.ndarray) -> dict[str, float]:
    return {f"p{p}": float(np.percentile(d, p)) for p in PERCENTILES}


def _nndr(d: np.ndarray) -> np.ndarray:
    d1, d2 = d[:, 0], d[:, 1]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(d2 > 0, d1 / np.where(d2 > 0, d2, 1), 1.0)


def _histogram(values: dict[str, np.ndarray], bins: int = 30) -> dict[str, Any]:
    both = np.concatenate(list(values.values()))
    hi = float(np.quantile(both, 0.99)) if len(both) else 1.0
    edges = np.linspace(0, hi if hi > 0 else 1.0, bins + 1)
    return {
        "edges": edges.round(6).tolist(),
        **{k: (np.histogram(np.clip(v, 0, edges[-1]), edges)[0] / max(len(v), 1)).tolist() for k, v in values.items()},
    }


def _distances(prep: Prepared, rng: np.random.Generator, cap: int) -> dict[str, Any]:
    enc = MixedEncoder(prep)
    # training and holdout rows are sampled at one rate, so the subsamples keep the ratio of the tables' sizes
    # (and the ideal dcr_share), which the exact-copy look-up over all rows also follows
    rate = min(1.0, cap / max(prep.rows[t] for t in prep.values if t != "synthetic"))
    take = {"synthetic": subsample(prep.rows["synthetic"], cap, rng)}
    for t in (t for t in prep.values if t != "synthetic"):
        take[t] = subsample(prep.rows[t], max(1, round(prep.rows[t] * rate)), rng)
    x = {t: enc.transform(prep.take(t, take[t])) for t in prep.values}
    out: dict[str, Any] = {"rows": {t: len(v) for t, v in x.items()}}
    k = 2 if len(x["real"]) >= 2 else 1
    with threads():
        return _nearest(prep, x, k, take, out)


def _nearest(
    prep: Prepared, x: dict[str, np.ndarray], k: int, take: dict[str, np.ndarray | None], out: dict[str, Any]
) -> dict[str, Any]:
    from sklearn.neighbors import NearestNeighbors

    train_nn = NearestNeighbors(n_neighbors=k).fit(x["real"])
    d_st = train_nn.kneighbors(x["synthetic"])[0]
    # an exact copy of a training row is at distance 0 even when that row is not in the training subsample
    d_st[_copied(prep, "synthetic", take["synthetic"], "real"), 0] = 0.0
    out["dcr"] = {"synthetic": _percentiles(d_st[:, 0])}
    out["nndr"] = {"synthetic": _percentiles(_nndr(d_st))} if k == 2 else {}
    hist = {"synthetic": d_st[:, 0]}
    if prep.has_holdout:
        d_ht = train_nn.kneighbors(x["holdout"])[0]
        d_ht[_copied(prep, "holdout", take["holdout"], "real"), 0] = 0.0
        d_sh = NearestNeighbors(n_neighbors=1).fit(x["holdout"]).kneighbors(x["synthetic"])[0][:, 0]
        d_sh[_copied(prep, "synthetic", take["synthetic"], "holdout")] = 0.0
        closer = d_st[:, 0] < d_sh - _TIE
        tie = np.abs(d_st[:, 0] - d_sh) <= _TIE
        out["dcr_share"] = float(closer.mean() + 0.5 * tie.mean())
        out["dcr_share_ideal"] = len(x["real"]) / (len(x["real"]) + len(x["holdout"]))
        out["dcr"]["holdout"] = _percentiles(d_ht[:, 0])
        if k == 2:
            out["nndr"]["holdout"] = _percentiles(_nndr(d_ht))
        hist["holdout"] = d_ht[:, 0]
    out["histogram"] = _histogram(hist)
    out["subsampled"] = {t: {"rows": len(x[t]), "of": prep.rows[t]} for t in x if len(x[t]) < prep.rows[t]}
    return out


def dcr(
    real: Any, synthetic: Any, holdout: Any = None, metadata: Any = None, *, seed: int = 0, cap: int = 20_000
) -> dict[str, Any]:
    """Distance to closest record, its share against the holdout, and NNDR; see the module docstring.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> train = pd.DataFrame({"x": rng.normal(size=500), "y": rng.normal(size=500)})
    >>> holdout = pd.DataFrame({"x": rng.normal(size=500), "y": rng.normal(size=500)})
    >>> dcr(train, train.copy(), holdout)["dcr_share"]  # a copy of the training rows
    1.0
    """
    return _distances(prepare(real, synthetic, holdout, metadata), np.random.default_rng(seed), cap)


def _density_attack(
    x_syn: np.ndarray, x_ref: np.ndarray, x_eval: np.ndarray, rng: np.random.Generator
) -> np.ndarray | None:
    """DOMIAS scores: log p_synthetic(x) - log p_reference(x), each density a Gaussian mixture on a PCA."""
    from sklearn.decomposition import PCA
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.mixture import GaussianMixture

    dims = min(10, x_ref.shape[1], len(x_ref) - 1)
    if dims < 1 or len(x_ref) < 20:
        return None
    pca = PCA(n_components=dims, random_state=random_state(rng)).fit(x_ref)
    z_syn, z_ref, z_eval = pca.transform(x_syn), pca.transform(x_ref), pca.transform(x_eval)
    scores = []
    for z in (z_syn, z_ref):
        seed = random_state(rng)
        # a far-off synthetic table (values 1e9 where the real ones are near 0: a DP model at a small budget) makes
        # the covariances too ill-conditioned for 1e-3 of regularisation: raise it with the data's own scale
        scale = max(float(np.var(z, axis=0).max()), 1.0)
        for reg in (1e-3, 1e-6 * scale, 1e-3 * scale, 1e-1 * scale):
            gmm = GaussianMixture(
                n_components=max(1, min(10, len(z) // 50)), covariance_type="full", reg_covar=reg, random_state=seed
            )
            try:
                with warnings.catch_warnings():  # fewer distinct rows than components: the fit is still a density
                    warnings.simplefilter("ignore", ConvergenceWarning)
                    gmm.fit(z)
                break
            except ValueError:  # "ill-defined empirical covariance"
                if reg == 1e-1 * scale:
                    raise
        scores.append(gmm.score_samples(z_eval))
    return scores[0] - scores[1]


def _auc_se(auc: float, n_pos: int, n_neg: int) -> float:
    """Standard error of an ROC-AUC (Hanley and McNeil 1982)."""
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    var = auc * (1 - auc) + (n_pos - 1) * (q1 - auc * auc) + (n_neg - 1) * (q2 - auc * auc)
    return float(math.sqrt(max(var, 0.0) / max(n_pos * n_neg, 1)))


def _membership(
    prep: Prepared, rng: np.random.Generator, cap: int, synthetic_cap: int = 20_000, balanced: bool = False
) -> dict[str, Any]:
    """Both attacks on up to ``cap`` non-members (holdout rows) and up to ``cap`` members (training rows).

    The density attack needs a reference of real non-members it does not score. It is cross-fitted: the holdout
    is cut in two halves; the non-members of each half are scored against the other half as reference, and the
    attack's AUC is the mean of the two halves' AUCs. Each half's AUC is the attack of a single split (half of
    the holdout as reference), so the attack is as strong as one split, and every holdout row is scored.

    Every training row (up to ``cap``) is a member, not only as many as there are non-members: an AUC does not
    depend on the share of members, and its variance, about (1/members + 1/non-members)/12 near 0.5 (Hanley and
    McNeil), falls with more of them (by a third with four times as many members as non-members).
    ``balanced=True`` takes as many members as non-members (the estimator before 2026-11-24, kept to compare).
    """
    from sklearn.metrics import roc_auc_score
    from sklearn.neighbors import NearestNeighbors

    n_h = prep.rows["holdout"]
    folds = 2 if n_h >= 40 else 0  # the density attack needs at least 20 reference rows
    n_non = min(prep.rows["real"], n_h, cap) if balanced else min(n_h, cap)
    holdout_order = rng.permutation(n_h)
    half = n_h // 2
    if folds:  # non-members taken evenly from the two halves
        n_non = 2 * min(n_non // 2, half)
        non_members = np.r_[holdout_order[: n_non // 2], holdout_order[half : half + n_non // 2]]
    else:
        non_members = holdout_order[:n_non]
    n_mem = n_non if balanced else min(prep.rows["real"], cap)
    members = rng.choice(prep.rows["real"], n_mem, replace=False)
    syn_rows = subsample(prep.rows["synthetic"], synthetic_cap, rng)

    enc = MixedEncoder(prep)
    x_syn = enc.transform(prep.take("synthetic", syn_rows))
    x_mem = enc.transform(prep.take("real", members))
    x_non = enc.transform(prep.take("holdout", non_members))
    x_eval = np.vstack([x_mem, x_non])
    y = np.r_[np.ones(n_mem), np.zeros(n_non)]

    with threads():
        d = NearestNeighbors(n_neighbors=1).fit(x_syn).kneighbors(x_eval)[0][:, 0]
        # a candidate copied into synthetic is at distance 0 even when its copy is not in the synthetic subsample
        d[np.r_[_copied(prep, "real", members, "synthetic"), _copied(prep, "holdout", non_members, "synthetic")]] = 0.0
        density = []
        for fold in range(folds):
            reference = holdout_order[half:] if fold == 0 else holdout_order[:half]
            mem = x_mem[fold * (n_mem // 2) : (fold + 1) * (n_mem // 2)]  # members: random, so halves are too
            non = x_non[fold * (n_non // 2) : (fold + 1) * (n_non // 2)]
            x_fold = np.vstack([mem, non])
            scores = _density_attack(x_syn, enc.transform(prep.take("holdout", np.sort(reference))), x_fold, rng)
            if scores is not None:
                y_fold = np.r_[np.ones(len(mem)), np.zeros(len(non))]
                density.append(float(roc_auc_score(y_fold, scores)))
    attacks: dict[str, Any] = {"distance": float(roc_auc_score(y, -d))}
    notes = []
    if not density:
        attacks["density"] = None
        notes.append("density attack skipped: it needs at least 40 holdout rows (half of them as reference)")
    else:
        attacks["density"] = float(np.mean(density))
    valid = {k: v for k, v in attacks.items() if v is not None}
    best = max(valid, key=valid.get)
    return {
        "auc": valid[best],
        "auc_se": _auc_se(valid[best], n_mem, n_non),
        "attacks": attacks,
        "density_folds": density,
        "members": n_mem,
        "non_members": n_non,
        "reference_rows": n_h - half if folds else 0,
        "synthetic_rows": len(x_syn),
        "notes": notes,
    }


def membership_inference(
    real: Any, synthetic: Any, holdout: Any, metadata: Any = None, *, seed: int = 0, cap: int = 5_000
) -> dict[str, Any]:
    """Distance-based and density-based (DOMIAS) membership-inference attacks; ``auc`` is the strongest (ideal 0.5)."""
    if holdout is None:
        raise ParameterError("membership inference needs a holdout: real rows the generator never saw")
    return _membership(prepare(real, synthetic, holdout, metadata), np.random.default_rng(seed), cap)


def _attribute(prep: Prepared, column: str, rng: np.random.Generator, cap: int) -> dict[str, Any]:
    col = prep.columns[column]
    features = [c for c in prep.names if c != column]
    if not features:
        return {"column": column, "note": "no other learned column to infer it from"}
    a = prep.values["synthetic"][column]
    train_rows = np.flatnonzero(a >= 0 if col.discrete else ~np.isnan(a))
    if len(train_rows) > ATTACKER_TRAIN_ROWS:
        train_rows = np.sort(rng.choice(train_rows, ATTACKER_TRAIN_ROWS, replace=False))
    if len(train_rows) == 0:
        return {"column": column, "note": "synthetic has no value in this column"}
    with threads():
        return _attack(prep, column, features, train_rows, rng, cap)


def _attack(
    prep: Prepared, column: str, features: list[str], train_rows: np.ndarray, rng: np.random.Generator, cap: int
) -> dict[str, Any]:
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.metrics import r2_score

    col = prep.columns[column]

    def rows_with_value(table: str, limit: int) -> np.ndarray:
        """Rows where the sensitive value is known (the others cannot be scored; ``rows`` says how many)."""
        a = prep.values[table][column]
        rows = np.flatnonzero(a >= 0 if col.discrete else ~np.isnan(a))
        return np.sort(rng.choice(rows, limit, replace=False)) if len(rows) > limit else rows

    x = trainable(tree_matrix(prep, prep.take("synthetic", train_rows), features))
    y = prep.values["synthetic"][column][train_rows]
    mask = categorical_mask(prep, features)
    settings = {"categorical_features": mask, "early_stopping": False, "random_state": random_state(rng)}
    if col.discrete:
        counts = np.bincount(y)
        majority = int(counts.argmax())
        # one tree per class and round: the attacker picks among the most frequent levels or "other" (never right)
        top = np.argsort(-counts, kind="stable")[:ATTACK_LEVELS]
        y = np.where(np.isin(y, top), y, -2)
        model = HistGradientBoostingClassifier(**settings).fit(x, y) if len(np.unique(y)) > 1 else None
    else:
        model = HistGradientBoostingRegressor(**settings).fit(x, y)
        mean = float(y.mean())
    out: dict[str, Any] = {"column": column, "metric": "accuracy" if col.discrete else "r2"}
    tables = ["real", "holdout"] if prep.has_holdout else ["real"]
    limit = min(cap, *(prep.rows[t] for t in tables))
    out["rows"] = {"synthetic": len(train_rows)}
    for table in tables:
        rows = rows_with_value(table, limit)
        out["rows"]["train" if table == "real" else table] = len(rows)
        if len(rows) == 0:
            out[table] = out[f"{table}_baseline"] = None
            continue
        xt = tree_matrix(prep, prep.take(table, rows), features)
        yt = prep.values[table][column][rows]
        if col.discrete:
            pred = model.predict(xt) if model is not None else np.full(len(yt), majority)
            out[table] = float((pred == yt).mean())
            out[f"{table}_baseline"] = float((yt == majority).mean())
        else:
            out[table] = float(r2_score(yt, model.predict(xt))) if len(yt) > 1 else None
            out[f"{table}_baseline"] = float(r2_score(yt, np.full(len(yt), mean))) if len(yt) > 1 else None
    out["train"] = out.pop("real")
    out["train_baseline"] = out.pop("real_baseline")
    if prep.has_holdout and out["train"] is not None and out["holdout"] is not None:
        out["gap"] = out["train"] - out["holdout"]
    return out


def attribute_inference(
    real: Any,
    synthetic: Any,
    sensitive: list[str],
    holdout: Any = None,
    metadata: Any = None,
    *,
    seed: int = 0,
    cap: int = 5_000,
) -> list[dict[str, Any]]:
    """For each sensitive column, the attacker's score on training rows, holdout rows and the baseline."""
    from twinforge.evaluate.utility import check_target

    prep = prepare(real, synthetic, holdout, metadata)
    for column in sensitive:
        check_target(prep, column, argument="sensitive column")
    rng = np.random.default_rng(seed)
    return [_attribute(prep, column, rng, cap) for column in sensitive]
