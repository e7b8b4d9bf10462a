"""Row representations shared by the neural models (``ctgan``, ``tvae``, ``ddpm``), and conditions in their terms.

Two encodings of the learned arrays (float64 with NaN for numeric/datetime columns, int64 codes with -1 for
discrete ones):

- :class:`ModeEncoding` (CTGAN and TVAE; Xu et al., "Modeling Tabular data using Conditional GAN", NeurIPS 2019,
  section 4.2 "mode-specific normalization"): a numeric column becomes a *mode* (one category of a softmax
  span; one more category when the column has missing values) and a scalar ``alpha = (x - mu_k) / (4 sigma_k)``
  in [-1, 1], where ``(mu_k, sigma_k)`` is the mode's component of a variational Gaussian mixture fitted to the
  column (:func:`fit_vgmm`). A discrete column becomes one softmax span (its levels, plus "missing").
- :class:`QuantileEncoding` (TabDDPM; Kotelnikov et al., ICML 2023): a numeric column becomes one standard-normal
  score through its empirical quantile function (ties are spread uniformly over their probability interval,
  so that the inverse reproduces repeated values exactly); a discrete column, and the "is missing" flag of a
  numeric column with missing values, become categorical tokens.

Both translate a :class:`~twinforge.models._request.SampleRequest` into their own space: values fixed per row,
the categories a token or mode may take, and the scalar/score interval a range allows. :class:`CondVector` is
CTGAN's conditional vector with training-by-sampling. :func:`finish` is the last guard every model applies: it
writes the given values and clips ranges, so the output honours the request exactly. :func:`fit_residuals` finds
heavy-tailed, strongly linear numeric pairs that ``tvae`` and ``ddpm`` also learn as a residual column.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import special, stats

from twinforge.models._request import SampleRequest

__all__ = [
    "CondVector",
    "ModeConstraints",
    "ModeEncoding",
    "QuantileConstraints",
    "QuantileEncoding",
    "apply_derived",
    "apply_value_map",
    "finish",
    "fit_derived",
    "fit_value_map",
    "fit_vgmm",
    "split_rows",
    "truncated_normal",
    "written_decimals",
]

_GMM_ROWS = 5_000  # values the mixture of one column is fitted on (more barely moves it)
_U_EPS = 1e-6  # quantile scores stay within +-4.75 standard deviations


# ------------------------------------------------------------------------------------------ mixtures
def fit_vgmm(
    x: np.ndarray, max_modes: int, rng: np.random.Generator, *, weight_threshold: float = 0.005, iters: int = 100
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A variational Bayesian Gaussian mixture of the 1-D sample ``x``: ``(weights, means, stds)`` of the modes kept.

    Mean-field VB with a Dirichlet(alpha0) prior on the weights and a Normal-Gamma prior on each component's mean
    and precision (Bishop, *Pattern Recognition and Machine Learning*, 2006, section 10.2, eqs. 10.58-10.65 in one
    dimension). A small ``alpha0`` lets unneeded components empty out; modes with weight below
    ``weight_threshold`` are dropped, as in CTGAN.

    A column with at most ``max_modes`` distinct values (a 0/1 flag, a count of bathrooms) gets one point mode
    per value instead, weighted by its frequency: its values are then categories of the mode span, learned and
    calibrated like a discrete column's, rather than a scalar the network must place exactly on a few points.
    """
    x = np.asarray(x, dtype="float64")
    values, counts = np.unique(x, return_counts=True)
    if len(values) <= max_modes:
        width = float(values[-1] - values[0]) if len(values) > 1 else abs(float(values[0]))
        return counts / counts.sum(), values, np.full(len(values), max(width * 1e-6, 1e-9))
    if len(x) > _GMM_ROWS:
        x = rng.choice(x, _GMM_ROWS, replace=False)
    center, scale = float(np.mean(x)), float(np.std(x))
    z = (x - center) / scale
    k = int(min(max_modes, len(np.unique(z))))
    n = len(z)
    alpha0, beta0, m0, a0, b0 = 1e-3, 1.0, 0.0, 1.0, 0.1
    # start from hard assignments to quantile-spread centres
    init = np.quantile(z, (np.arange(k) + 0.5) / k)
    resp = np.zeros((n, k))
    resp[np.arange(n), np.argmin(np.abs(z[:, None] - init[None, :]), axis=1)] = 1.0
    for _ in range(iters):
        # M step (10.58-10.63): the posterior hyperparameters
        nk = resp.sum(0) + 1e-10
        xbar = resp.T @ z / nk
        sk = (resp * (z[:, None] - xbar) ** 2).sum(0) / nk
        alpha = alpha0 + nk
        beta = beta0 + nk
        m = (beta0 * m0 + nk * xbar) / beta
        a = a0 + nk / 2
        b = b0 + 0.5 * (nk * sk + beta0 * nk * (xbar - m0) ** 2 / beta)
        # E step (10.64-10.66): responsibilities from the expected log weights and log densities
        log_pi = special.digamma(alpha) - special.digamma(alpha.sum())
        log_lam = special.digamma(a) - np.log(b)
        quad = 1.0 / beta + (a / b) * (z[:, None] - m) ** 2
        log_rho = log_pi + 0.5 * log_lam - 0.5 * quad
        new = special.softmax(log_rho, axis=1)
        if np.abs(new.sum(0) - resp.sum(0)).max() < 1e-3 * n:
            resp = new
            break
        resp = new
    weights = alpha / alpha.sum()
    keep = weights > weight_threshold
    if not keep.any():
        keep[np.argmax(weights)] = True
    order = np.argsort(m[keep])
    w, mu, sd = weights[keep][order], m[keep][order], np.sqrt(b / a)[keep][order]
    w, mu, sd = _merge_close(w / w.sum(), mu, sd)
    return w, mu * scale + center, np.maximum(sd * scale, max(scale * 1e-3, 1e-9))


def _merge_close(w: np.ndarray, mu: np.ndarray, sd: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Merge neighbouring modes closer than half the narrower one's std (moment matching).

    Variational inference empties unneeded components only slowly; copies of one mode would otherwise split
    its rows between identical categories.
    """
    ws, ms, vs = [w[0]], [mu[0]], [sd[0] ** 2]
    for wi, mi, si in zip(w[1:], mu[1:], sd[1:], strict=True):
        if mi - ms[-1] < 0.5 * min(si, np.sqrt(vs[-1])):
            total = ws[-1] + wi
            mean = (ws[-1] * ms[-1] + wi * mi) / total
            second = (ws[-1] * (vs[-1] + ms[-1] ** 2) + wi * (si**2 + mi**2)) / total
            ws[-1], ms[-1], vs[-1] = total, mean, max(second - mean**2, 0.0)
        else:
            ws.append(wi)
            ms.append(mi)
            vs.append(si**2)
    return np.asarray(ws), np.asarray(ms), np.sqrt(np.asarray(vs))


def truncated_normal(
    mean: np.ndarray, std: np.ndarray, low: np.ndarray, high: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Draws of N(mean, std^2) truncated to [low, high] (elementwise); a point interval gives the point."""
    mean, std, low, high = np.broadcast_arrays(*(np.asarray(v, dtype="float64") for v in (mean, std, low, high)))
    out = np.clip(mean, low, high).astype("float64")
    ok = (std > 0) & (high > low)
    if ok.any():
        a = (low[ok] - mean[ok]) / std[ok]
        b = (high[ok] - mean[ok]) / std[ok]
        out[ok] = stats.truncnorm.rvs(a, b, loc=mean[ok], scale=std[ok], random_state=rng)
    return np.clip(out, low, high)


def split_rows(n: int, share: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Shuffled training and held-out validation row indices (no validation rows when the share rounds to 0)."""
    perm = rng.permutation(n)
    n_val = round(n * share)
    if n_val < 1 or n - n_val < 1:
        return np.sort(perm), perm[:0]
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def _gumbel_max(logits: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One category per row with probabilities softmax(logits) (-inf = never)."""
    g = -np.log(-np.log(rng.random(logits.shape).clip(1e-300, 1.0 - 1e-16)))
    return np.argmax(logits + g, axis=1)


def _likeliest_mode(logits: np.ndarray, n_modes: int, rng: np.random.Generator) -> np.ndarray:
    """Per row, "missing" (category ``n_modes``, when present) with its softmax probability, else the likeliest
    of the first ``n_modes`` categories (-inf = never)."""
    modes = logits[:, :n_modes]
    best = np.argmax(modes, axis=1)
    if logits.shape[1] == n_modes:
        return best
    top = np.maximum(modes.max(axis=1), logits[:, n_modes])
    with np.errstate(invalid="ignore", over="ignore"):
        present = np.exp(modes - top[:, None]).sum(axis=1)
        missing = np.exp(logits[:, n_modes] - top)
    p_missing = np.where(np.isfinite(top), missing / (missing + present), 0.0)
    out = np.where(rng.random(len(logits)) < p_missing, n_modes, best)
    return np.where(np.isneginf(modes).all(axis=1), n_modes, out)  # only "missing" allowed


# ------------------------------------------------------------------------------------------ CTGAN / TVAE
@dataclass
class ModeConstraints:
    """A request in :class:`ModeEncoding` space, for ``n`` rows.

    ``codes[:, s]`` is the category span ``s`` must take (-1 = free); ``scalars[:, j]`` the value of scalar ``j``
    (NaN = free); ``allowed[s]`` the categories the free rows of span ``s`` may take; ``ranges[j]`` the data-space
    ``(low, high)`` of scalar ``j``'s column.
    """

    codes: np.ndarray
    scalars: np.ndarray
    allowed: dict[int, np.ndarray]
    ranges: dict[int, tuple[float, float]]

    @property
    def any(self) -> bool:
        return bool((self.codes >= 0).any() or self.allowed or self.ranges)

    def take(self, rows: np.ndarray) -> ModeConstraints:
        return ModeConstraints(self.codes[rows], self.scalars[rows], self.allowed, self.ranges)


class ModeEncoding:
    """Mode-specific normalisation (see the module docstring): arrays <-> (span codes, scalars).

    A row is ``codes`` (one category per softmax span) and ``scalars`` (one per numeric column); the network sees
    :meth:`to_matrix`, the one-hot/scalar matrix in column order: ``[alpha, mode one-hot]`` for a numeric column,
    ``[level one-hot]`` for a discrete one.
    """

    def fit(
        self, arrays: dict[str, np.ndarray], transforms: dict[str, Any], rng: np.random.Generator, max_modes: int
    ) -> ModeEncoding:
        self.columns_: list[dict[str, Any]] = []
        self.span_sizes_: list[int] = []
        self.n_scalars_ = 0
        for name, a in arrays.items():
            t = transforms[name]
            if t.discrete:
                size = t.n_levels + int((a < 0).any())
                self.columns_.append(
                    {"name": name, "type": "discrete", "span": len(self.span_sizes_), "n_levels": t.n_levels}
                )
            else:
                obs = a[~np.isnan(a)]
                weights, means, stds = fit_vgmm(obs, max_modes, rng)
                size = len(means) + int(np.isnan(a).any())
                self.columns_.append(
                    {
                        "name": name,
                        "type": "numeric",
                        "span": len(self.span_sizes_),
                        "scalar": self.n_scalars_,
                        "weights": weights,
                        "means": means,
                        "stds": stds,
                        "points": bool(len(np.unique(obs)) <= max_modes),  # one point mode per value (fit_vgmm)
                    }
                )
                self.n_scalars_ += 1
            self.span_sizes_.append(size)
        codes, _ = self.encode(arrays, rng)
        self.span_counts_ = [
            np.bincount(codes[:, s], minlength=size).astype("float64") for s, size in enumerate(self.span_sizes_)
        ]
        self._layout()
        return self

    def _layout(self) -> None:
        """Matrix positions: ``span_starts_[s]`` of each span's one-hot, ``scalar_pos_[j]`` of each scalar."""
        self.span_starts_, scalar_pos, pos = [0] * len(self.span_sizes_), [0] * self.n_scalars_, 0
        for col in self.columns_:
            if col["type"] == "numeric":
                scalar_pos[col["scalar"]] = pos
                pos += 1
            self.span_starts_[col["span"]] = pos
            pos += self.span_sizes_[col["span"]]
        self.scalar_pos_ = np.asarray(scalar_pos, dtype="int64")
        self.dim_ = pos

    @property
    def n_spans(self) -> int:
        return len(self.span_sizes_)

    def padded_spans(self) -> tuple[np.ndarray, np.ndarray]:
        """``(index, valid)``: matrix positions of every span padded to the widest, ``(spans, widest)`` each.

        Lets a model treat all spans in one tensor operation (softmax, cross-entropy) instead of a loop.
        """
        widest = max(self.span_sizes_, default=0)
        idx = np.zeros((self.n_spans, widest), dtype="int64")
        valid = np.zeros_like(idx, dtype=bool)
        for s, (start, size) in enumerate(zip(self.span_starts_, self.span_sizes_, strict=True)):
            idx[s, :size] = np.arange(start, start + size)
            valid[s, :size] = True
        return idx, valid

    def seen(self, s: int) -> np.ndarray:
        """Categories of span ``s`` that occur in the training data (the others are never generated)."""
        return self.span_counts_[s] > 0

    # ------------------------------------------------------------------ arrays <-> codes and scalars
    def _modes(self, col: dict[str, Any], x: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
        """Mode of each (non-missing) value: drawn from the posterior responsibilities, or the likeliest."""
        logp = np.log(col["weights"]) + stats.norm.logpdf(x[:, None], col["means"], col["stds"])
        if rng is None:
            return np.argmax(logp, axis=1)
        return _gumbel_max(logp, rng)

    def encode(self, arrays: dict[str, np.ndarray], rng: np.random.Generator | None) -> tuple[np.ndarray, np.ndarray]:
        """``(codes, scalars)``; modes drawn from the posterior with ``rng`` (as CTGAN trains), else the likeliest."""
        n = len(next(iter(arrays.values()))) if arrays else 0
        codes = np.zeros((n, self.n_spans), dtype="int64")
        scalars = np.zeros((n, self.n_scalars_), dtype="float64")
        for col in self.columns_:
            c, alpha = self._encode_column(col, arrays[col["name"]], rng)
            codes[:, col["span"]] = c
            if alpha is not None:
                scalars[:, col["scalar"]] = alpha
        return codes, scalars

    def _encode_column(
        self, col: dict[str, Any], a: np.ndarray, rng: np.random.Generator | None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        if col["type"] == "discrete":
            return np.where(a < 0, col["n_levels"], a), None
        missing = np.isnan(a)
        k = np.full(len(a), len(col["means"]), dtype="int64")  # the missing category is last
        alpha = np.zeros(len(a))
        if (~missing).any():
            x = a[~missing]
            k[~missing] = self._modes(col, x, rng)
            alpha[~missing] = np.clip((x - col["means"][k[~missing]]) / (4 * col["stds"][k[~missing]]), -0.99, 0.99)
        return k, alpha

    def to_matrix(self, codes: np.ndarray, scalars: np.ndarray) -> np.ndarray:
        n = len(codes)
        out = np.zeros((n, self.dim_), dtype="float32")
        for s, start in enumerate(self.span_starts_):
            out[np.arange(n), start + codes[:, s]] = 1.0
        out[:, self.scalar_pos_] = scalars
        return out

    def decode(self, codes: np.ndarray, scalars: np.ndarray) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for col in self.columns_:
            c = codes[:, col["span"]]
            if col["type"] == "discrete":
                out[col["name"]] = np.where(c >= col["n_levels"], -1, c).astype("int64")
                continue
            n_modes = len(col["means"])
            k = np.minimum(c, n_modes - 1)
            x = col["means"][k] + 4 * col["stds"][k] * np.clip(scalars[:, col["scalar"]], -1, 1)
            out[col["name"]] = np.where(c >= n_modes, np.nan, x)
        return out

    # ------------------------------------------------------------------ conditions
    def constraints(self, request: SampleRequest | None, n: int) -> ModeConstraints:
        cons = ModeConstraints(
            codes=np.full((n, self.n_spans), -1, dtype="int64"),
            scalars=np.full((n, self.n_scalars_), np.nan),
            allowed={},
            ranges={},
        )
        if request is None:
            return cons
        for col in self.columns_:
            name, s = col["name"], col["span"]
            if name in request.known:
                mask, values = request.known_mask[name], request.known[name]
                c, alpha = self._encode_column(col, values[mask], None)
                cons.codes[mask, s] = c
                if alpha is not None:
                    cons.scalars[mask, col["scalar"]] = alpha
            if name in request.allowed:
                codes = request.allowed[name]
                allowed = np.zeros(self.span_sizes_[s], dtype=bool)
                allowed[np.where(codes < 0, col["n_levels"], codes)] = True
                # a set of only unseen levels (declared categories absent in training) is honoured as asked
                cons.allowed[s] = allowed & self.seen(s) if (allowed & self.seen(s)).any() else allowed
            if name in request.ranges:
                low, high = request.ranges[name]
                cons.ranges[col["scalar"]] = (low, high)
                m, sd = col["means"], col["stds"]
                overlaps = (m + 4 * sd >= low) & (m - 4 * sd <= high)
                if not overlaps.any():  # the range falls between modes: the nearest one, clipped into it
                    overlaps[np.argmin(np.minimum(np.abs(m - low), np.abs(m - high)))] = True
                allowed = np.zeros(self.span_sizes_[s], dtype=bool)
                allowed[: len(m)] = overlaps & self.seen(s)[: len(m)]
                if not allowed.any():
                    allowed[: len(m)] = overlaps
                cons.allowed[s] = allowed
        return cons

    def scalar_bounds(self, cons: ModeConstraints, codes: np.ndarray, j: int) -> tuple[np.ndarray, np.ndarray]:
        """The interval of scalar ``j`` that decodes into its range, per row, given the rows' modes."""
        col = next(c for c in self.columns_ if c.get("scalar") == j)
        low, high = cons.ranges[j]
        k = np.minimum(codes[:, col["span"]], len(col["means"]) - 1)
        m, sd = col["means"][k], 4 * col["stds"][k]
        lo = np.maximum((low - m) / sd, -1.0)
        hi = np.minimum((high - m) / sd, 1.0)
        return lo, np.maximum(hi, lo)

    def draw(
        self,
        logits: list[np.ndarray],
        means: np.ndarray,
        stds: np.ndarray | None,
        cons: ModeConstraints,
        rng: np.random.Generator,
        temperature: float = 1.0,
        fallback_std: float = 0.25,
        likeliest_modes: bool = False,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One row per network output, honouring ``cons``: ``(codes, scalars, agreed)``.

        Categories are drawn from softmax(logits / temperature) (never an unseen category), scalars from
        N(means, (stds * temperature)^2), or are ``means`` when ``stds`` is None. ``agreed`` says which rows
        honoured every constraint as drawn; the others had their categories redrawn within the allowed ones and
        their scalars drawn from the truncated normal of the range (``fallback_std`` when ``stds`` is None), so
        every returned row honours the constraints.

        ``likeliest_modes``: a numeric column's mode is its likeliest one rather than a draw (whether the value is
        missing is still drawn, with its probability). The mode is an artefact of the representation, and the
        networks' factorised outputs give every column's mode its own independent draw: where the output spreads
        over several modes (a delay of 300 minutes lies between two wide modes), independent draws put two
        strongly related columns in unrelated modes. The likeliest mode is a function of the network's output,
        so related columns move together; the model's value map then restores each column's marginal. A column
        of point modes (a few distinct values, see :func:`fit_vgmm`) has no value map: its values are categories,
        and its mode is still drawn.
        """
        n = len(means)
        agreed = np.ones(n, dtype=bool)
        codes = np.zeros((n, self.n_spans), dtype="int64")
        n_modes = {
            c["span"]: len(c["means"]) for c in self.columns_ if c["type"] == "numeric" and not c.get("points", True)
        }
        for s in range(self.n_spans):
            k = n_modes.get(s) if likeliest_modes else None
            lg = np.where(self.seen(s), logits[s] / temperature, -np.inf)
            c = _gumbel_max(lg, rng) if k is None else _likeliest_mode(lg, k, rng)
            if s in cons.allowed:
                bad = ~cons.allowed[s][c]
                if bad.any():
                    agreed &= ~bad
                    lg = np.where(cons.allowed[s], logits[s][bad] / temperature, -np.inf)
                    c[bad] = _gumbel_max(lg, rng) if k is None else _likeliest_mode(lg, k, rng)
            fixed = cons.codes[:, s] >= 0
            agreed &= ~fixed | (c == cons.codes[:, s])
            codes[:, s] = np.where(fixed, cons.codes[:, s], c)
        scalars = np.asarray(means, dtype="float64").copy()
        if stds is not None:
            scalars = scalars + np.asarray(stds) * temperature * rng.standard_normal(scalars.shape)
        scalars = np.clip(scalars, -1.0, 1.0)
        for j in cons.ranges:
            lo, hi = self.scalar_bounds(cons, codes, j)
            bad = (scalars[:, j] < lo) | (scalars[:, j] > hi)
            if bad.any():
                agreed &= ~bad
                sd = fallback_std if stds is None else np.maximum(np.asarray(stds)[bad, j] * temperature, 1e-3)
                scalars[bad, j] = truncated_normal(np.asarray(means)[bad, j], sd, lo[bad], hi[bad], rng)
        fixed = ~np.isnan(cons.scalars)
        scalars[fixed] = cons.scalars[fixed]
        return codes, scalars, agreed

    # ------------------------------------------------------------------ state
    def get_state(self) -> dict[str, Any]:
        return {"columns": self.columns_, "span_counts": self.span_counts_, "n_scalars": self.n_scalars_}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> ModeEncoding:
        obj = cls()
        obj.columns_ = [
            {k: np.asarray(v) if k in ("weights", "means", "stds") else v for k, v in c.items()}
            for c in state["columns"]
        ]
        obj.span_counts_ = [np.asarray(c, dtype="float64") for c in state["span_counts"]]
        obj.span_sizes_ = [len(c) for c in obj.span_counts_]
        obj.n_scalars_ = int(state["n_scalars"])
        obj._layout()
        return obj


class CondVector:
    """CTGAN's conditional vector and training-by-sampling (Xu et al. 2019, section 4.3).

    The vector is a one-hot over the categories of every span with at least two seen categories (discrete
    levels, and here also numeric modes and "missing"), with exactly one category set. In training a span is
    chosen uniformly and a category with probability proportional to the log of its frequency, then a real row
    with that category: rare categories are seen as often as the generator needs to learn them. At sampling, the
    category follows its real frequency (so the unconditional distribution is kept), or a condition.
    """

    def __init__(self, spans: list[int], counts: list[np.ndarray]):
        self.spans = [int(s) for s in spans]
        self.counts = [np.asarray(c, dtype="float64") for c in counts]
        self.sizes = [len(c) for c in self.counts]
        self.starts = np.concatenate([[0], np.cumsum(self.sizes)]).astype("int64")
        self.dim = int(self.starts[-1])
        self.log_probs = [_normalise(np.log1p(c) * (c > 0)) for c in self.counts]
        self.probs = [_normalise(c) for c in self.counts]

    @classmethod
    def from_codes(cls, enc: ModeEncoding, codes: np.ndarray) -> CondVector:
        """The vector over the spans that vary in the training rows ``codes``, ready for training-by-sampling."""
        spans = [s for s in range(enc.n_spans) if len(np.unique(codes[:, s])) >= 2]
        obj = cls(spans, [np.bincount(codes[:, s], minlength=enc.span_sizes_[s]) for s in spans])
        obj.n_rows = len(codes)
        # the rows of each category: one stable argsort per span, cut at the category counts
        obj.order = [np.argsort(codes[:, s], kind="stable") for s in obj.spans]
        obj.offsets = [np.concatenate([[0], np.cumsum(c)]).astype("int64") for c in obj.counts]
        return obj

    def get_state(self) -> dict[str, Any]:
        return {"spans": self.spans, "counts": self.counts}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> CondVector:
        return cls(list(state["spans"]), list(state["counts"]))

    def sample_train(self, batch: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(which span, which category, which real row)`` for a batch of training-by-sampling."""
        if not self.spans:
            return np.full(batch, -1), np.zeros(batch, dtype="int64"), rng.integers(0, self.n_rows, batch)
        which = rng.integers(0, len(self.spans), batch)
        cats = np.zeros(batch, dtype="int64")
        rows = np.zeros(batch, dtype="int64")
        for i in np.unique(which):
            sel = which == i
            c = rng.choice(self.sizes[i], sel.sum(), p=self.log_probs[i])
            lo, hi = self.offsets[i][c], self.offsets[i][c + 1]
            rows[sel] = self.order[i][lo + (rng.random(sel.sum()) * (hi - lo)).astype("int64")]
            cats[sel] = c
        return which, cats, rows

    def sample_original(self, batch: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``(which span, which category)`` with categories at their real frequencies."""
        if not self.spans:
            return np.full(batch, -1), np.zeros(batch, dtype="int64")
        which = rng.integers(0, len(self.spans), batch)
        cats = np.zeros(batch, dtype="int64")
        for i in np.unique(which):
            sel = which == i
            cats[sel] = rng.choice(self.sizes[i], sel.sum(), p=self.probs[i])
        return which, cats

    def vectors(self, which: np.ndarray, cats: np.ndarray) -> np.ndarray:
        """The one-hot conditional vectors (float32); ``which = -1`` gives an all-zero vector."""
        out = np.zeros((len(which), self.dim), dtype="float32")
        on = which >= 0
        out[np.flatnonzero(on), self.starts[which[on]] + cats[on]] = 1.0
        return out

    def from_constraints(
        self, cons: ModeConstraints, enc: ModeEncoding, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """A conditional vector per row that serves the row's conditions.

        A row with fixed categories (equalities, seed values, a rebalance) is conditioned on one of them, drawn at
        random; otherwise on one of its allowed sets (a set condition, or the modes a range overlaps), with a
        category drawn from the set by real frequency; otherwise it gets a vector as in unconditional sampling.
        """
        n = len(cons.codes)
        which, cats = self.sample_original(n, rng)
        if not self.spans:
            return which, cats
        score = np.full((n, len(self.spans)), -np.inf)
        for i, s in enumerate(self.spans):
            key = rng.random(n)
            if s in cons.allowed:
                score[:, i] = key + 1.0
            fixed = cons.codes[:, s] >= 0
            score[fixed, i] = key[fixed] + 2.0  # fixed categories win over sets
        best = np.argmax(score, axis=1)
        use = np.isfinite(score[np.arange(n), best])
        for i, s in enumerate(self.spans):
            sel = use & (best == i)
            if not sel.any():
                continue
            which[sel] = i
            fixed = cons.codes[sel, s]
            drawn = fixed
            if s in cons.allowed:
                p = _normalise(
                    self.counts[i] * cons.allowed[s]
                    if (self.counts[i] * cons.allowed[s]).any()
                    else cons.allowed[s][: self.sizes[i]]
                )
                drawn = np.where(fixed >= 0, fixed, rng.choice(self.sizes[i], sel.sum(), p=p))
            cats[sel] = drawn
        return which, cats


def _normalise(w: np.ndarray) -> np.ndarray:
    w = np.asarray(w, dtype="float64")
    total = w.sum()
    return w / total if total > 0 else np.full(len(w), 1.0 / len(w))


# ------------------------------------------------------------------------------------------ TabDDPM
@dataclass
class QuantileConstraints:
    """A request in :class:`QuantileEncoding` space, for ``n`` rows.

    ``z[:, j]`` the score numeric ``j`` must take (NaN = free); ``z_low``/``z_high`` the interval a range allows
    (per numeric, +-inf when free); ``tokens[:, t]`` the category token ``t`` must take (-1 = free);
    ``allowed[t]`` the categories the free rows of token ``t`` may take.
    """

    z: np.ndarray
    z_low: np.ndarray
    z_high: np.ndarray
    tokens: np.ndarray
    allowed: dict[int, np.ndarray]


class QuantileEncoding:
    """Quantile normal scores and categorical tokens (see the module docstring): arrays <-> (z, tokens)."""

    def fit(
        self, arrays: dict[str, np.ndarray], transforms: dict[str, Any], n_quantiles: int, max_points: int = 0
    ) -> QuantileEncoding:
        """Learn the quantiles, categories and tokens of ``arrays``.

        A numeric column with at most ``max_points`` distinct values (a count of bathrooms, a time zone) becomes a
        token whose categories are its values (``"points"``), as ``ctgan``'s and ``tvae``'s point modes: as a
        score, the rows of one value are spread over the value's whole quantile interval, which blurs what the
        network can learn of its joint with other columns (ames' ``Bedroom_AbvGr`` x ``TotRms_AbvGrd``,
        airports' ``tz`` x ``tzone``). 0 (the default) keeps every numeric column a score.
        """
        self.columns_: list[dict[str, Any]] = []
        self.token_counts_: list[np.ndarray] = []
        self.n_numeric_ = 0
        for name, a in arrays.items():
            t = transforms[name]
            if t.discrete:
                missing = bool((a < 0).any())
                counts = np.bincount(np.where(a < 0, t.n_levels, a), minlength=t.n_levels + 1)
                col = {"name": name, "type": "discrete", "token": len(self.token_counts_), "n_levels": t.n_levels}
                self.token_counts_.append(counts[: t.n_levels + int(missing)].astype("float64"))
                self.columns_.append(col)
                continue
            isnan = np.isnan(a)
            obs = a[~isnan]
            values, counts = np.unique(obs, return_counts=True)
            if 0 < len(values) <= max_points:  # one category per value, and one for "missing" if any is
                col = {"name": name, "type": "points", "token": len(self.token_counts_), "values": values}
                self.token_counts_.append(np.append(counts, isnan.sum())[: len(values) + int(isnan.any())] * 1.0)
                self.columns_.append(col)
                continue
            probs = np.linspace(0.0, 1.0, max(2, min(int(n_quantiles), len(obs))))
            col = {
                "name": name,
                "type": "numeric",
                "numeric": self.n_numeric_,
                "token": -1,
                "probs": probs,
                "values": np.quantile(obs, probs),
            }
            self.n_numeric_ += 1
            if isnan.any():  # the "is missing" flag is a token of two categories: present, missing
                col["token"] = len(self.token_counts_)
                self.token_counts_.append(np.bincount(isnan.astype("int64"), minlength=2).astype("float64"))
            self.columns_.append(col)
        return self

    @property
    def token_sizes(self) -> list[int]:
        return [len(c) for c in self.token_counts_]

    def seen(self, t: int) -> np.ndarray:
        return self.token_counts_[t] > 0

    def _cdf_interval(self, col: dict[str, Any], x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``[F(x-), F(x)]`` of the stored quantile function: the probabilities that map back to ``x``."""
        v, p = col["values"], col["probs"]
        left = np.searchsorted(v, x, side="left")
        right = np.searchsorted(v, x, side="right")
        tie = right > left
        lo = np.interp(x, v, p)  # strictly between two quantiles: one point
        hi = lo.copy()
        lo[tie] = p[left[tie]]
        hi[tie] = p[right[tie] - 1]
        lo[x < v[0]], hi[x < v[0]] = 0.0, 0.0
        lo[x > v[-1]], hi[x > v[-1]] = 1.0, 1.0
        return lo, hi

    def encode(
        self, arrays: dict[str, np.ndarray], rng: np.random.Generator | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(z, valid, tokens)``: scores (missing cells 0 and not ``valid``), tokens. Ties spread with ``rng``."""
        n = len(next(iter(arrays.values()))) if arrays else 0
        z = np.zeros((n, self.n_numeric_))
        valid = np.ones((n, self.n_numeric_), dtype=bool)
        tokens = np.zeros((n, len(self.token_counts_)), dtype="int64")
        for col in self.columns_:
            a = arrays[col["name"]]
            if col["type"] == "discrete":
                tokens[:, col["token"]] = np.where(a < 0, col["n_levels"], a)
                continue
            if col["type"] == "points":
                tokens[:, col["token"]] = self._point_codes(col, a)
                continue
            j = col["numeric"]
            isnan = np.isnan(a)
            lo, hi = self._cdf_interval(col, np.where(isnan, col["values"][0], a))
            u = lo + (hi - lo) * (0.5 if rng is None else rng.random(n))
            z[:, j] = np.where(isnan, 0.0, _score(u))
            valid[:, j] = ~isnan
            if col["token"] >= 0:
                tokens[:, col["token"]] = isnan
        return z, valid, tokens

    def decode(self, z: np.ndarray, tokens: np.ndarray) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for col in self.columns_:
            if col["type"] == "discrete":
                c = tokens[:, col["token"]]
                out[col["name"]] = np.where(c >= col["n_levels"], -1, c).astype("int64")
                continue
            if col["type"] == "points":
                c = tokens[:, col["token"]]
                v = col["values"]
                out[col["name"]] = np.where(c >= len(v), np.nan, v[np.minimum(c, len(v) - 1)])
                continue
            x = np.interp(special.ndtr(z[:, col["numeric"]]), col["probs"], col["values"])
            if col["token"] >= 0:
                x = np.where(tokens[:, col["token"]] == 1, np.nan, x)
            out[col["name"]] = x
        return out

    @staticmethod
    def _point_codes(col: dict[str, Any], x: np.ndarray) -> np.ndarray:
        """The category of each value of a points column: its nearest value; missing is the last category."""
        v = col["values"]
        right = np.clip(np.searchsorted(v, np.nan_to_num(x, nan=v[0])), 1, max(1, len(v) - 1))
        left = right - 1
        nearest = np.where(np.abs(x - v[left]) <= np.abs(x - v[np.minimum(right, len(v) - 1)]), left, right)
        return np.where(np.isnan(x), len(v), np.minimum(nearest, len(v) - 1)).astype("int64")

    def constraints(self, request: SampleRequest | None, n: int) -> QuantileConstraints:
        cons = QuantileConstraints(
            z=np.full((n, self.n_numeric_), np.nan),
            z_low=np.full(self.n_numeric_, -np.inf),
            z_high=np.full(self.n_numeric_, np.inf),
            tokens=np.full((n, len(self.token_counts_)), -1, dtype="int64"),
            allowed={},
        )
        if request is None:
            return cons
        for col in self.columns_:
            name, t = col["name"], col["token"]
            if col["type"] == "points":
                self._point_constraints(col, request, cons)
                continue
            if name in request.known:
                mask, values = request.known_mask[name], request.known[name]
                if col["type"] == "discrete":
                    cons.tokens[mask, t] = np.where(values[mask] < 0, col["n_levels"], values[mask])
                else:
                    isnan = np.isnan(values) & mask
                    present = mask & ~isnan
                    lo, hi = self._cdf_interval(col, values[present])
                    cons.z[present, col["numeric"]] = _score((lo + hi) / 2)
                    if t >= 0:
                        cons.tokens[mask, t] = isnan[mask]
            if name in request.allowed:
                codes = request.allowed[name]
                allowed = np.zeros(self.token_sizes[t], dtype=bool)
                allowed[np.where(codes < 0, col["n_levels"], codes)] = True
                cons.allowed[t] = allowed & self.seen(t) if (allowed & self.seen(t)).any() else allowed
            if name in request.ranges:
                low, high = request.ranges[name]
                j = col["numeric"]
                lo, _ = self._cdf_interval(col, np.array([low]))
                _, hi = self._cdf_interval(col, np.array([high]))
                cons.z_low[j], cons.z_high[j] = _score(lo)[0], _score(hi)[0]
                if t >= 0:
                    cons.allowed[t] = np.array([True, False])  # a range excludes missing
        return cons

    def _point_constraints(self, col: dict[str, Any], request: SampleRequest, cons: QuantileConstraints) -> None:
        """A points column's conditions as its token's: a given value is its nearest category (``finish`` writes
        the value itself back); a range allows the values within it, or the nearest one when none is (``finish``
        clips it into the range)."""
        name, t, v = col["name"], col["token"], col["values"]
        has_missing = self.token_sizes[t] > len(v)
        if name in request.known:
            mask, codes = request.known_mask[name], self._point_codes(col, request.known[name])
            ok = mask & ((codes < len(v)) | has_missing)  # a missing value the column never had: left free
            cons.tokens[ok, t] = codes[ok]
        if name in request.ranges:
            low, high = request.ranges[name]
            inside = (v >= low) & (v <= high)
            if not inside.any():
                inside[np.argmin(np.minimum(np.abs(v - low), np.abs(v - high)))] = True
            cons.allowed[t] = np.append(inside, False)[: self.token_sizes[t]]  # a range excludes missing

    def get_state(self) -> dict[str, Any]:
        return {"columns": self.columns_, "token_counts": self.token_counts_, "n_numeric": self.n_numeric_}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> QuantileEncoding:
        obj = cls()
        obj.columns_ = [
            {k: np.asarray(v) if k in ("probs", "values") else v for k, v in c.items()} for c in state["columns"]
        ]
        obj.token_counts_ = [np.asarray(c, dtype="float64") for c in state["token_counts"]]
        obj.n_numeric_ = int(state["n_numeric"])
        return obj


def _score(u: np.ndarray) -> np.ndarray:
    return special.ndtri(np.clip(u, _U_EPS, 1 - _U_EPS))


# ------------------------------------------------------------------------------------------ every model
_MAP_KNOTS = 201  # quantiles per column of a value map


def fit_value_map(
    real: dict[str, np.ndarray],
    fake: dict[str, np.ndarray],
    names: list[str],
    min_distinct: int = 11,
    tail_rows: bool = False,
) -> dict[str, list[np.ndarray]]:
    """Per numeric column, a monotone map of generated values onto the real marginal: ``[fake q, real q]``, or
    ``[fake q, real q, probabilities]`` with ``tail_rows``.

    ``fake q`` and ``real q`` are the two samples' quantiles at the same probabilities, so ``np.interp(x, fake q,
    real q)`` sends a generated value to the real value of the same rank (a quantile mapping, as in the "marginal
    calibration" of generated numbers). A generator whose in-mode scalars saturate piles values at a column's
    bounds (churn's ``monthly_charges``: 10% of generated rows at the minimum, against 0.1% of real ones); the map
    spreads them back as the real rows are spread, and being monotone it keeps every row's rank, so dependencies
    between columns are untouched. Columns with fewer than ``min_distinct`` real values (point modes, learned as
    categories) are left out.

    The knots are ``_MAP_KNOTS`` evenly spaced probabilities, 0.5% apart. Between the last two, a generated value
    lands on the straight line from the real 99.5% quantile to the real maximum, so a few far real rows (airports'
    ``lon``: 3 of 932 training rows east of 0, up to 174; flights' ``distance``: the Honolulu flights at 4,983
    miles, beyond a pile at 2,586) come out as values spread over the gap, or not at all. ``tail_rows`` adds a
    knot at each real row beyond the outermost even knots (at each end), so the extreme ranks go to the real
    extremes.
    """
    probs = np.linspace(0.0, 1.0, _MAP_KNOTS)
    out = {}
    for name in names:
        r, f = real[name], fake[name]
        r, f = r[~np.isnan(r)], f[~np.isnan(f)]
        if len(f) < 50 or len(np.unique(r)) < min_distinct:
            continue
        p = probs
        if tail_rows:  # the order statistics i / (n - 1) within the outer 1 / (_MAP_KNOTS - 1) at each end
            k = int(np.ceil((len(r) - 1) / (_MAP_KNOTS - 1))) + 1
            ends = np.arange(k) / max(len(r) - 1, 1)
            p = np.unique(np.clip(np.concatenate([probs, ends, 1.0 - ends]), 0.0, 1.0))
        out[name] = [np.maximum.accumulate(np.quantile(f, p)), np.quantile(r, p)] + ([p] if tail_rows else [])
    return out


def apply_value_map(
    arrays: dict[str, np.ndarray],
    value_map: dict[str, list[np.ndarray]],
    request: SampleRequest | None,
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    """Map each column of ``value_map`` (see :func:`fit_value_map`).

    A generated value tied with several knots (a pile of equal values) gets a rank drawn uniformly over the tie,
    so the pile is spread. A column with a range condition is left as drawn (its rows were drawn within the range,
    which the map could move them out of).
    """
    for name, (fq, rq, *rest) in value_map.items():
        if name not in arrays or (request is not None and name in request.ranges):
            continue
        probs = rest[0] if rest else np.linspace(0.0, 1.0, _MAP_KNOTS)  # maps without tail rows: even knots
        knots = len(probs)
        a = arrays[name]
        x = np.where(np.isnan(a), fq[0], a)
        left, right = np.searchsorted(fq, x, side="left"), np.searchsorted(fq, x, side="right")
        tie = right - left > 1
        u = np.interp(x, fq + np.arange(knots) * 1e-12 * max(float(fq[-1] - fq[0]), 1.0), probs)
        lo, hi = probs[np.minimum(left, knots - 1)], probs[np.maximum(right - 1, 0)]
        u = np.where(tie, lo + (hi - lo) * rng.random(len(x)), u)
        arrays[name] = np.where(np.isnan(a), np.nan, np.interp(u, probs, rq))
    return arrays


def finish(arrays: dict[str, np.ndarray], request: SampleRequest | None) -> dict[str, np.ndarray]:
    """Write the request's given values and clip its ranges: the exact end of every conditional draw."""
    if request is None:
        return arrays
    for col, (low, high) in request.ranges.items():
        arrays[col] = np.clip(arrays[col], low, high)
    for col, mask in request.known_mask.items():
        a = arrays[col].copy()
        a[mask] = request.known[col][mask]
        arrays[col] = a
    return arrays


# ------------------------------------------------------------------------------------------ key-like columns
_KEYLIKE_MIN_ROWS = 50
_KEYLIKE_SHARE = 0.9


def fit_keylike(arrays: dict[str, np.ndarray], transforms: dict[str, Any], private: bool) -> dict[str, dict]:
    """Discrete columns of (nearly) unique codes, such as airports' ``faa``: ``{name: {"levels", "missing"}}``.

    A column whose levels are each seen once in at least 90% of the rows holds no pattern to learn, while a
    softmax with one level per row spends the network on memorising it: on airports (1,166 rows, 1,166 codes)
    tvae's and ddpm's TSTR/TRTR fell to 0.10 and -0.05 against SDV TVAE's 0.72, which treats the column as a key.
    Such a column is drawn instead, uniformly from its training levels (without repeats while they last) and
    missing at its training rate. Not under DP, where the levels themselves would be the private rows.
    """
    out: dict[str, dict] = {}
    if private:
        return out
    for name, a in arrays.items():
        if not transforms[name].discrete or len(a) < _KEYLIKE_MIN_ROWS:
            continue
        present = a[a >= 0]
        counts = np.bincount(present) if len(present) else np.zeros(0, dtype="int64")
        if (counts == 1).sum() >= _KEYLIKE_SHARE * len(a):
            out[name] = {"levels": np.flatnonzero(counts > 0).astype("int64"), "missing": float((a < 0).mean())}
    return out


def draw_keylike(
    keylike: dict[str, dict], n: int, rng: np.random.Generator, request: SampleRequest | None
) -> dict[str, np.ndarray]:
    """Values of the key-like columns (see :func:`fit_keylike`); a set condition draws within its set."""
    out = {}
    for name, spec in keylike.items():
        levels, missing = np.asarray(spec["levels"], dtype="int64"), float(spec["missing"])
        if request is not None and name in request.allowed:
            allowed = np.asarray(request.allowed[name], dtype="int64")
            levels, missing = allowed, 0.0
        if not len(levels):
            out[name] = np.full(n, -1, dtype="int64")
            continue
        values = rng.choice(levels, n, replace=n > len(levels))
        if missing:
            values = np.where(rng.random(n) < missing, -1, values)
        out[name] = values.astype("int64")
    return out


def without(arrays: dict[str, np.ndarray], names) -> dict[str, np.ndarray]:
    """``arrays`` less the columns ``names``."""
    return {k: v for k, v in arrays.items() if k not in names}


# ------------------------------------------------------------------------------------------ many-level columns
_PARENT_MIN_GAIN = 0.2  # least leave-one-out gain of a parent column over guessing its commonest level


@dataclass(frozen=True)
class _Levels:
    """The transform a collapsed column presents to an encoding: a discrete column of ``n_levels`` levels."""

    n_levels: int
    discrete: bool = True


def fit_rare_levels(
    arrays: dict[str, np.ndarray], transforms: dict[str, Any], max_levels: int | None, private: bool
) -> dict[str, dict]:
    """Discrete columns with more than ``max_levels`` seen levels, as their commonest levels plus one "other".

    Returns ``{name: {"keep", "rare", "parent", "table"}}``: ``keep`` the ``max_levels`` commonest levels (their
    new codes are their positions), ``rare`` the column's other levels (new code ``len(keep)``), ``parent`` the
    discrete column that best predicts which rare level a row has (or None), ``table[p, r]`` the training count
    of rare level ``r`` with parent level ``p`` (the parent's last level is "missing"). :func:`expand_rare` draws a
    rare level for each generated "other" from this table, so rare levels keep their frequencies and their tie to
    the parent (flights' ``tailnum``, 1,839 levels in 4,000 rows, given its ``carrier``), while the network learns
    a span of ``max_levels + 1`` categories instead of one per level (CTGAN's cost grows with the sum of span widths
    twice: generator outputs and conditional vector, both fed ``pac`` times to the critic).

    The parent is picked by leave-one-out accuracy: among rows with a rare level seen at least twice, how often
    the level's commonest parent level (counted without the row) is the row's own, against always guessing the
    commonest parent level; a column gaining less than 20% of the way to perfect is no parent. Not under DP,
    where the table would hold private rows.
    """
    out: dict[str, dict] = {}
    if private or max_levels is None:
        return out
    big = {}
    for name, a in arrays.items():
        if transforms[name].discrete:
            counts = np.bincount(a[a >= 0], minlength=transforms[name].n_levels)
            if (counts > 0).sum() > max_levels:
                big[name] = counts
    parents = [n for n, a in arrays.items() if transforms[n].discrete and n not in big]
    for name, counts in big.items():
        keep = np.sort(np.argsort(-counts, kind="stable")[:max_levels]).astype("int64")
        rare = np.setdiff1d(np.arange(len(counts)), keep).astype("int64")
        a = arrays[name]
        rows = np.flatnonzero(np.isin(a, rare))
        r = np.searchsorted(rare, a[rows])
        best, best_gain = None, _PARENT_MIN_GAIN
        for p in parents:
            gain = _loo_gain(r, _parent_codes(arrays[p], transforms[p].n_levels)[rows], len(rare))
            if gain > best_gain:
                best, best_gain = p, gain
        size = transforms[best].n_levels + 1 if best is not None else 1
        pc = _parent_codes(arrays[best], transforms[best].n_levels)[rows] if best is not None else np.zeros_like(r)
        table = np.zeros((size, len(rare)))
        np.add.at(table, (pc, r), 1.0)
        out[name] = {"keep": keep, "rare": rare, "parent": best, "table": table}
    return out


def _parent_codes(a: np.ndarray, n_levels: int) -> np.ndarray:
    return np.where(a < 0, n_levels, a)


def _loo_gain(child: np.ndarray, parent: np.ndarray, n_child: int) -> float:
    """Leave-one-out accuracy of guessing ``parent`` from ``child``'s commonest parent, as a share of the way
    from guessing the overall commonest parent (0) to perfect (1)."""
    size = int(parent.max()) + 1 if len(parent) else 1
    table = np.zeros((n_child, size))
    np.add.at(table, (child, parent), 1.0)
    seen = table.sum(1)
    table = table[seen >= 2]
    total = table.sum()
    if total == 0 or size < 2:
        return 0.0
    top = np.sort(table, axis=1)
    first, second = top[:, -1:], top[:, -2:-1]
    rival = np.where(table == first, second, first)  # the best other parent level once the row is left out
    correct = (table * ((table - 1 >= rival) & (table > 0))).sum()
    base = table.sum(0).max()
    return float((correct - base) / (total - base)) if total > base else 0.0


def collapse_rare(arrays: dict[str, np.ndarray], rare: dict[str, dict]) -> dict[str, np.ndarray]:
    """The arrays with every column of ``rare`` in its collapsed codes (see :func:`fit_rare_levels`)."""
    out = dict(arrays)
    for name, spec in rare.items():
        out[name] = _collapse(arrays[name], spec)
    return out


def _collapse(a: np.ndarray, spec: dict) -> np.ndarray:
    keep = np.asarray(spec["keep"], dtype="int64")
    pos = np.clip(np.searchsorted(keep, a), 0, len(keep) - 1)
    return np.where(a < 0, -1, np.where(keep[pos] == a, pos, len(keep))).astype("int64")


def rare_transforms(transforms: dict[str, Any], rare: dict[str, dict]) -> dict[str, Any]:
    """``transforms`` with each collapsed column presented as its ``len(keep) + 1`` levels."""
    return {**transforms, **{name: _Levels(len(spec["keep"]) + 1) for name, spec in rare.items()}}


def collapse_request(request: SampleRequest | None, rare: dict[str, dict]) -> SampleRequest | None:
    """The request in collapsed codes: a given rare level conditions on "other" (``finish`` writes it back)."""
    if request is None or not rare or not any(n in request.known or n in request.allowed for n in rare):
        return request
    known, allowed = dict(request.known), dict(request.allowed)
    for name, spec in rare.items():
        if name in known:
            known[name] = _collapse(known[name], spec)
        if name in allowed:
            allowed[name] = np.unique(_collapse(np.asarray(allowed[name], dtype="int64"), spec))
    return SampleRequest(
        n=request.n,
        known=known,
        known_mask=request.known_mask,
        allowed=allowed,
        ranges=request.ranges,
        temperature=request.temperature,
        given=request.given,
    )


def expand_rare(
    arrays: dict[str, np.ndarray], rare: dict[str, dict], rng: np.random.Generator, request: SampleRequest | None
) -> dict[str, np.ndarray]:
    """Collapsed codes back to the column's levels; each "other" gets a rare level drawn given its parent's value.

    A set condition draws within its rare levels (by training frequency, uniformly when none was seen).
    """
    for name, spec in rare.items():
        keep, levels = np.asarray(spec["keep"], dtype="int64"), np.asarray(spec["rare"], dtype="int64")
        table = np.asarray(spec["table"], dtype="float64")
        c = arrays[name]
        out = np.where(c < 0, -1, keep[np.minimum(c, len(keep) - 1)]).astype("int64")
        other = np.flatnonzero(c == len(keep))
        if len(other):
            ok = np.ones(len(levels), dtype=bool)
            if request is not None and name in request.allowed:
                ok = np.isin(levels, request.allowed[name])
            marginal = table.sum(0) * ok
            marginal = marginal if marginal.sum() > 0 else ok.astype("float64")
            parent = spec["parent"]
            if parent is None:
                group = np.zeros(len(other), dtype="int64")
            else:
                group = np.minimum(_parent_codes(arrays[parent][other], len(table) - 1), len(table) - 1)
            drawn = np.zeros(len(other), dtype="int64")
            for g in np.unique(group):
                sel = group == g
                w = table[g] * ok
                drawn[sel] = rng.choice(len(levels), int(sel.sum()), p=_normalise(w if w.sum() > 0 else marginal))
            out[other] = levels[drawn]
        arrays[name] = out
    return arrays


# ------------------------------------------------------------------------------------------ derived columns
_DERIVE_SHARE = 0.99  # the least share of complete rows on which a relation must hold
_DERIVE_R2 = 0.99  # the least multiple R^2 (on the screen rows) of a candidate relation
_DERIVE_SCREEN_ROWS = 2_000
_DERIVE_MIN_VALUES = 32  # a derived column has more distinct values than this (not a flag, nor a few levels)
_DERIVE_TOL = 1e-9  # residual tolerance, relative to the largest absolute value of the derived column
_DERIVE_TRIES = 8  # least-squares fits per column and relation size, the best-screened candidates first


def fit_derived(arrays: dict[str, np.ndarray], transforms: dict[str, Any], private: bool) -> dict[str, dict]:
    """Numeric or datetime columns that are an exact linear function of one or two others: ``{name: spec}``.

    Weather's and flights' hourly stamp is ``24 * day + hour`` hours from a fixed start, and flights' scheduled
    departure ``100 * hour + minute``. A GAN draws each column of such a relation with its own blur, so the sampled
    rows break it (weather: on 0.1-0.4% of ctgan's rows did the stamp match the day and hour), and a detector
    tells them apart by that alone. The derived column is instead computed from its drawn inputs after sampling
    (:func:`apply_derived`); the network still learns it, so conditions on it are drawn as before.

    Candidates are screened by their multiple R^2 (at least 0.99 on up to 2,000 rows), then fitted by least
    squares on all complete rows and kept where the residual is below 1e-9 of the column's scale on at least 99%
    of them. Of a relation's columns the one with the most distinct values is derived (a sum varies more than its
    parts; among equals the last in the table); a column is derived once and is never an input of another. Not
    under DP: the relation would come from the private rows.
    """
    if private:
        return {}
    numeric = {}
    for name, a in arrays.items():
        if transforms[name].discrete:
            continue
        y = np.asarray(a, dtype="float64")
        known = y[~np.isnan(y)]
        if len(known) >= 2 and known.std() > 0:
            numeric[name] = y
    names = list(numeric)
    if len(names) < 2:
        return {}
    n = len(numeric[names[0]])
    screen = np.column_stack([numeric[c] for c in names])[:: max(1, n // _DERIVE_SCREEN_ROWS)]
    # a missing cell is its column's mean here: an exact relation among complete columns keeps its R^2
    screen = np.where(np.isnan(screen), np.nanmean(screen, axis=0), screen)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.nan_to_num(np.corrcoef(screen, rowvar=False))
    distinct = {c: len(np.unique(numeric[c][~np.isnan(numeric[c])])) for c in names}
    k = len(names)
    apart = 1.0 - r**2  # 0 for a pair of (nearly) collinear inputs, which cannot be told apart
    candidates = []
    for t, target in enumerate(names):
        if distinct[target] <= _DERIVE_MIN_VALUES:
            continue
        rt = r[t]
        singles = [(float(rt[a] ** 2), (names[a],)) for a in range(k) if a != t and rt[a] ** 2 >= _DERIVE_R2]
        # the multiple R^2 of every pair of inputs at once (k x k; O(k^3) over all targets, vectorised)
        with np.errstate(invalid="ignore", divide="ignore"):
            r2 = (rt[:, None] ** 2 + rt[None, :] ** 2 - 2 * rt[:, None] * rt[None, :] * r) / apart
        r2[t, :] = r2[:, t] = -1.0
        r2[np.tril_indices(k)] = -1.0
        r2[apart < 1e-12] = -1.0
        a, b = np.nonzero(r2 >= _DERIVE_R2)
        pairs = [(float(r2[i, j]), (names[i], names[j])) for i, j in zip(a, b, strict=True)]
        # the best-screened relations first, a few per column: the exact one, if any, screens at about 1
        best = sorted(singles, key=lambda c: -c[0])[:_DERIVE_TRIES] + sorted(pairs, key=lambda c: -c[0])[:_DERIVE_TRIES]
        candidates += [(target, ins) for _, ins in best]
    out: dict[str, dict] = {}
    inputs: set[str] = set()
    # the most varied column of a relation is derived (among equals the last in the table: a total after its
    # parts); single inputs before pairs
    order = {c: i for i, c in enumerate(names)}
    for target, ins in sorted(candidates, key=lambda c: (-distinct[c[0]], -order[c[0]], len(c[1]))):
        if target in out or target in inputs or any(i in out for i in ins):
            continue
        y = numeric[target]
        cols = np.column_stack([numeric[i] for i in ins])
        complete = ~np.isnan(y) & ~np.isnan(cols).any(axis=1)
        if complete.sum() < 10:
            continue
        design = np.column_stack([cols[complete], np.ones(int(complete.sum()))])
        yc = y[complete]
        tol = _DERIVE_TOL * max(float(np.abs(yc).max()), 1.0)
        fit_rows = np.ones(len(yc), dtype=bool)
        for _ in range(3):  # least squares, refitted without the rows farthest off (the exceptions)
            coef, *_ = np.linalg.lstsq(design[fit_rows], yc[fit_rows], rcond=None)
            off = np.abs(design @ coef - yc)
            fit_rows = off <= max(tol, float(np.quantile(off, _DERIVE_SHARE - 0.01)))
        holds = np.abs(design @ coef - yc) <= tol
        if holds.mean() < _DERIVE_SHARE:
            continue
        out[target] = {
            "inputs": list(ins),
            "coef": [float(c) for c in coef[:-1]],
            "intercept": float(coef[-1]),
            # a drawn input lies between training values until its column rounds it (day 12.37 -> 12): the
            # derived value is computed from the rounded input
            "input_decimals": [written_decimals(numeric[i][~np.isnan(numeric[i])]) for i in ins],
        }
        inputs.update(ins)
    return out


def apply_derived(
    arrays: dict[str, np.ndarray], derived: dict[str, dict], request: SampleRequest | None
) -> dict[str, np.ndarray]:
    """Compute each derived column (see :func:`fit_derived`) from its inputs, where they are present.

    A derived column under a range condition keeps the network's draw (which honours it), and so does each row
    where its value is given; rows with a missing input keep the draw too.
    """
    for name, spec in derived.items():
        if request is not None and name in request.ranges:
            continue
        value = np.full(len(arrays[name]), float(spec["intercept"]))
        for col, c, d in zip(spec["inputs"], spec["coef"], spec["input_decimals"], strict=True):
            x = _final(np.asarray(arrays[col], dtype="float64"), col, request)
            value = value + c * (x if d is None else np.round(x, d))
        keep = np.isnan(value)
        if request is not None and name in request.known_mask:
            keep |= request.known_mask[name]
        arrays[name] = np.where(keep, arrays[name], value)
    return arrays


def _final(x: np.ndarray, col: str, request: SampleRequest | None) -> np.ndarray:
    """An input's values as :func:`finish` will leave them: its range clipped, its given values written."""
    if request is None:
        return x
    if col in request.ranges:
        x = np.clip(x, *request.ranges[col])
    if col in request.known_mask:
        x = np.where(request.known_mask[col], request.known[col], x)
    return x


def written_decimals(y: np.ndarray) -> int | None:
    """The fewest decimals (up to 6) that all of ``y`` is written with, to a relative 1e-6 (a sum computed in floats
    is 1e-14 off its decimals, which ``transforms._columns._decimals``'s exact test would reject); None: more.

    A derived column's inputs (here and in ``auto``) are rounded to it before the relation is applied."""
    for d in range(7):
        scaled = y * 10.0**d
        if np.all(np.abs(scaled - np.round(scaled)) <= 1e-6 * np.maximum(1.0, np.abs(scaled))):
            return d
    return None


# ------------------------------------------------------------------------------------------ residual pairs
_RESIDUAL_R = 0.9  # least |correlation| of a heavy-tailed numeric pair whose later column is also learned as a residual
_RESIDUAL_TAIL = (
    8.0  # heavy-tailed: (99.9% quantile - median) / IQR, or the lower tail's, at least this (a normal: 2.3)
)
_RESIDUAL_MIN_VALUES = 32  # ... and more distinct values than this


def _tail(y: np.ndarray) -> float:
    """How far the farther 0.1% tail reaches from the median, in interquartile ranges."""
    lo, q1, mid, q3, hi = np.quantile(y, [0.001, 0.25, 0.5, 0.75, 0.999])
    return float(max(hi - mid, mid - lo) / (q3 - q1)) if q3 > q1 else 0.0


def fit_residuals(arrays: dict[str, np.ndarray], transforms: dict[str, Any], private: bool) -> dict[str, dict]:
    """Heavy-tailed numeric pairs with a strong linear relation: ``{y: {"key", "input", "slope", "intercept"}}``.

    Flights' departure and arrival delays (correlation 0.93, both with tails of hundreds of minutes over an
    interquartile range of about 15) came out at 0.57: each column's mixture mode and in-mode scalar are drawn
    from their own decoder factor, and in a heavy tail, where the rows that carry the relation are, a few modes
    span hundreds of minutes (rows 30 to 120 minutes late left: arrival spread 64 to 99 minutes, real 20 to 23).
    So the later column ``y`` of such a pair is also learned as its residual ``y - (a + b x)`` on the earlier
    ``x`` (least squares on complete rows), an extra numeric column of the encoding, and rebuilt from the drawn
    ``x`` and residual after sampling (:func:`apply_residuals`); ``y`` itself stays learned, so a condition on
    it is drawn as before and kept. Pairs by falling |correlation|, each column in one pair at most. Not under
    DP: the relation would come from the private rows.
    """
    if private:
        return {}
    names = []
    for name, a in arrays.items():
        if transforms[name].discrete:
            continue
        known = np.asarray(a, dtype="float64")
        known = known[~np.isnan(known)]
        if len(np.unique(known)) > _RESIDUAL_MIN_VALUES and _tail(known) >= _RESIDUAL_TAIL:
            names.append(name)
    pairs = []
    for i, x in enumerate(names):
        for y in names[i + 1 :]:
            a, b = np.asarray(arrays[x], dtype="float64"), np.asarray(arrays[y], dtype="float64")
            both = ~np.isnan(a) & ~np.isnan(b)
            if both.sum() < 10 or a[both].std() == 0 or b[both].std() == 0:
                continue
            r = float(np.corrcoef(a[both], b[both])[0, 1])
            if abs(r) >= _RESIDUAL_R:
                pairs.append((abs(r), x, y))
    out: dict[str, dict] = {}
    used: set[str] = set()
    for _, x, y in sorted(pairs, key=lambda p: -p[0]):
        key = f"{y} (residual on {x})"
        if x in used or y in used or key in arrays:
            continue
        a, b = np.asarray(arrays[x], dtype="float64"), np.asarray(arrays[y], dtype="float64")
        both = ~np.isnan(a) & ~np.isnan(b)
        slope, intercept = np.polyfit(a[both], b[both], 1)
        out[y] = {"key": key, "input": x, "slope": float(slope), "intercept": float(intercept)}
        used |= {x, y}
    return out


def with_residuals(arrays: dict[str, np.ndarray], residuals: dict[str, dict]) -> dict[str, np.ndarray]:
    """``arrays`` and each residual column (missing where ``x`` or ``y`` is), for fitting (see fit_residuals)."""
    if not residuals:
        return arrays
    out = dict(arrays)
    for y, spec in residuals.items():
        x = np.asarray(arrays[spec["input"]], dtype="float64")
        out[spec["key"]] = np.asarray(arrays[y], dtype="float64") - (spec["intercept"] + spec["slope"] * x)
    return out


def apply_residuals(
    arrays: dict[str, np.ndarray], residuals: dict[str, dict], request: SampleRequest | None
) -> dict[str, np.ndarray]:
    """Rebuild each ``y`` as ``a + b x + residual`` from the drawn ``x`` (as the request leaves it) and residual, and
    drop the residual columns. ``y`` keeps its own draw where it is missing, given or under a range condition
    (which that draw honours), and where ``x`` or the residual is missing."""
    for y, spec in residuals.items():
        residual = arrays.pop(spec["key"])
        if request is not None and y in request.ranges:
            continue
        x = _final(np.asarray(arrays[spec["input"]], dtype="float64"), spec["input"], request)
        value = spec["intercept"] + spec["slope"] * x + residual
        keep = np.isnan(value) | np.isnan(arrays[y])
        if request is not None and y in request.known_mask:
            keep |= request.known_mask[y]
        arrays[y] = np.where(keep, arrays[y], value)
    return arrays
