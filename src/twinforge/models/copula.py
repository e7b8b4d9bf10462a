"""Gaussian copula over empirical marginals: the fast baseline every other model must beat.

Each learned column becomes one standard-normal variable (Nelsen, *An Introduction to Copulas*, 2006;
Sklar's theorem): ``z = Phi^-1(F(x))``.

- numeric and datetime columns: ``F`` is the empirical CDF through mid-ranks, ``u = (rank - 1/2) / n``;
  its inverse interpolates between up to ``n_quantiles`` empirical quantiles, so the marginal is the data's
  own (no parametric family to mis-fit), and the transform rounds and clips it back to the column's grid;
- categorical and boolean columns: each level owns an interval of [0, 1] as wide as its frequency
  (most frequent first), and a row's ``u`` is drawn uniformly inside its level's interval;
- missing values: a column with missing values gets a second, binary variable "is missing", so the
  synthetic missing rate matches the real one and missingness keeps its correlations.

The dependence is the correlation matrix ``R`` of the normal scores (pairwise-complete when values are
missing), repaired to the nearest valid correlation matrix. Sampling draws ``z ~ N(0, R)`` and inverts each
marginal: every step is vectorised, hundreds of thousands of rows per second.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import special, stats

from twinforge.errors import ParameterError
from twinforge.models._registry import register
from twinforge.models.base import Synthesizer

_EPS = 1e-9


@register("copula")
class GaussianCopula(Synthesizer):
    """Gaussian copula with empirical marginals.

    Parameters
    ----------
    seed : int, optional
        Seed for fitting and sampling; same seed and data give the same output.
    n_quantiles : int, default 1000
        Empirical quantiles kept per numeric column (more = closer marginals, bigger model).

    Examples
    --------
    >>> import twinforge
    >>> real = twinforge.load_demo()
    >>> model = twinforge.create("copula", seed=0).fit(real)
    >>> synthetic = model.sample(500)
    >>> list(synthetic.columns) == list(real.columns)
    True
    """

    summary = "Gaussian copula over empirical marginals; fast baseline for every column kind"

    def __init__(self, *, seed: int | None = None, n_quantiles: int = 1000):
        self.seed = seed
        self.n_quantiles = n_quantiles

    def _check_params(self) -> None:
        q = self.n_quantiles
        if isinstance(q, bool) or not isinstance(q, (int, np.integer)) or q < 2:
            raise ParameterError(f"n_quantiles must be an integer >= 2, got {q!r}")

    # ------------------------------------------------------------------------------------ fit
    def _fit(self, arrays: dict[str, np.ndarray], rng: np.random.Generator) -> None:
        variables: list[dict[str, Any]] = []
        scores: list[np.ndarray] = []
        for name, a in arrays.items():
            if self.transformer_.transforms_[name].discrete:
                var, z = _fit_discrete(a, self.transformer_.transforms_[name].n_levels, rng)
                variables.append({"column": name, "type": "discrete", **var})
                scores.append(z)
                continue
            missing = np.isnan(a)
            obs = a[~missing]
            probs = np.linspace(0.0, 1.0, max(2, min(int(self.n_quantiles), len(obs))))
            variables.append({"column": name, "type": "numeric", "probs": probs, "quantiles": np.quantile(obs, probs)})
            z = np.full(len(a), np.nan)
            z[~missing] = special.ndtri((stats.rankdata(obs) - 0.5) / len(obs))
            scores.append(z)
            if missing.any():
                var, z = _fit_discrete(missing.astype("int64"), 2, rng)
                variables.append({"column": name, "type": "missing", **var})
                scores.append(z)
        self.variables_ = variables
        self.correlation_ = _nearest_correlation(np.column_stack(scores)) if scores else np.zeros((0, 0))
        self.cholesky_ = np.linalg.cholesky(self.correlation_) if scores else np.zeros((0, 0))

    # ------------------------------------------------------------------------------------ sample
    def _sample(self, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        d = len(self.variables_)
        u = special.ndtr(rng.standard_normal((n, d)) @ self.cholesky_.T)
        out: dict[str, np.ndarray] = {}
        for j, var in enumerate(self.variables_):
            col = var["column"]
            if var["type"] == "numeric":
                out[col] = np.interp(u[:, j], var["probs"], var["quantiles"])
            else:
                pos = np.searchsorted(var["cum"], u[:, j], side="right") - 1
                codes = var["order"][np.clip(pos, 0, len(var["order"]) - 1)]
                if var["type"] == "missing":
                    out[col][codes == 1] = np.nan  # numeric variable precedes its missing flag
                else:
                    out[col] = np.where(codes == var["n_levels"], -1, codes)
        return out

    # ------------------------------------------------------------------------------------ state
    def _get_state(self) -> dict[str, Any]:
        return {"variables": self.variables_, "correlation": self.correlation_, "cholesky": self.cholesky_}

    def _set_state(self, state: dict[str, Any]) -> None:
        self.variables_ = state["variables"]
        self.correlation_ = np.asarray(state["correlation"])
        self.cholesky_ = np.asarray(state["cholesky"])


def _fit_discrete(codes: np.ndarray, n_levels: int, rng: np.random.Generator) -> tuple[dict[str, Any], np.ndarray]:
    """Frequency intervals for codes 0..n_levels-1 (code -1, missing, becomes level n_levels)."""
    codes = np.where(codes < 0, n_levels, codes)
    counts = np.bincount(codes, minlength=n_levels + 1).astype("float64")
    order = np.argsort(-counts, kind="stable")
    order = order[counts[order] > 0]  # a level never seen is never generated
    p = counts[order] / counts.sum()
    cum = np.concatenate([[0.0], np.cumsum(p)])
    cum[-1] = 1.0
    rank = np.empty(n_levels + 1, dtype="int64")
    rank[order] = np.arange(len(order))
    r = rank[codes]
    u = cum[r] + p[r] * rng.random(len(codes))
    z = special.ndtri(np.clip(u, _EPS, 1 - _EPS))
    return {"order": order, "cum": cum, "n_levels": n_levels}, z


def _nearest_correlation(z: np.ndarray) -> np.ndarray:
    """Correlation of the normal scores (pairwise-complete), made positive definite with unit diagonal."""
    if np.isnan(z).any():
        corr = pd.DataFrame(z).corr(min_periods=3).to_numpy()
    else:
        with np.errstate(invalid="ignore", divide="ignore"):
            corr = np.atleast_2d(np.corrcoef(z, rowvar=False))
    corr = np.nan_to_num(corr, nan=0.0)
    np.fill_diagonal(corr, 1.0)
    w, v = np.linalg.eigh((corr + corr.T) / 2)
    corr = (v * np.clip(w, 1e-6, None)) @ v.T
    d = np.sqrt(np.diag(corr))
    corr = corr / np.outer(d, d)
    np.fill_diagonal(corr, 1.0)
    return corr
