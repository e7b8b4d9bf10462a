"""MST: differentially private synthesis from noisy marginals and a graphical model (made for small data).

McKenna, Miklau and Sheldon, "Winning the NIST Contest: A scalable and general approach to differentially private
synthetic data", Journal of Privacy and Confidentiality 2021. Every learned column is discretised (numbers into
quantile bins of the DP public table, see :mod:`twinforge.privacy`), then, with the privacy budget left after the
column domains (half of epsilon: see ``_dp_domain_share``) split in three equal parts (zero-concentrated DP,
``rho``):

1. every one-column marginal is measured with Gaussian noise; bins whose noisy count is below three noise
   standard deviations are merged into one (the domain compression of MST);
2. a maximum spanning tree of column pairs is chosen with the exponential mechanism, Kruskal style: each round
   picks one edge joining two components, scored by the L1 distance between the pair's true counts and the
   product of the noisy one-column marginals (sensitivity 1; an ``epsilon_r`` round is ``epsilon_r^2 / 8``-zCDP);
3. the two-column marginals of the tree's edges are measured with Gaussian noise.

Private-PGM (the ``mbi`` package) fits the graphical model that best explains all the noisy measurements
(mirror descent over the marginal polytope), which makes them consistent and non-negative; rows are then drawn
along the tree (root marginal, then each column given its parent), seeded, and decoded: a merged bin draws one of
its bins by their noisy counts, a numeric bin one of the public table's values in it.

Without ``epsilon`` the same model is fitted on exact counts (no noise, the best tree): a fast,
non-private baseline.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from twinforge.errors import ParameterError
from twinforge.models._registry import register
from twinforge.models.base import Synthesizer
from twinforge.privacy import ORDERS, epsilon_from_rdp, is_private, public_arrays
from twinforge.transforms._columns import BooleanTransform, CategoricalTransform

__all__ = ["MST"]

_POOL = 256  # public values kept per numeric bin, drawn from when decoding
_COMPRESS_SIGMAS = 3.0  # MST: bins with a noisy count below this many noise stds are merged


def _mbi() -> Any:
    try:
        with warnings.catch_warnings():  # mbi warns that JAX runs in float32: fine for tables this size
            warnings.simplefilter("ignore")
            import mbi
            from mbi import estimation
    except ImportError:  # pragma: no cover - depends on the installation
        raise ParameterError("the 'mst' model needs mbi (private-pgm): pip install 'twinforge[dp]'") from None
    return mbi, estimation


@register("mst")
class MST(Synthesizer):
    """MST, marginal-based DP synthesis with a tree-shaped graphical model (see the module docstring).

    Parameters
    ----------
    seed : int, optional
        Seed of the fit (noise, tree) and the default seed of ``sample``.
    epsilon : float, optional
        Differential-privacy budget; None: exact marginals, no privacy.
    delta : float, optional
        The DP delta; by default ``min(1e-5, 0.1 / n)``. Must be below ``1 / n``.
    n_bins : int, default 16
        Quantile bins per numeric or datetime column (plus one for missing values where the column has some); under
        DP at most this many, fewer where the budget is small (see ``_fit``).
    iters : int, default 1000
        Mirror-descent iterations of Private-PGM.

    Examples
    --------
    >>> import twinforge
    >>> model = twinforge.create("mst", seed=0, epsilon=1.0).fit(twinforge.load_demo().head(500))
    >>> model.fit_info_["privacy"]["epsilon_spent"] <= 1.0
    True
    """

    summary = "MST: differentially private noisy marginals + a tree graphical model (Private-PGM); for small data"
    supports_conditions = False
    # Half of epsilon for the column domains (levels, ranges, one-column histograms), not a tenth: which levels
    # come out at all is what decides fidelity at small budgets. Churn, 2,400 rows, epsilon 0.5: a tenth released
    # no level of its 11 categorical columns (column shapes 0.33, pair trends 0.03, TSTR 0.50); half gives 0.94,
    # 0.73 and 0.71 (TRTR 0.82). The tree and its marginals need less: Private-PGM makes them consistent.
    _dp_domain_share = 0.5

    def __init__(
        self,
        *,
        seed: int | None = None,
        epsilon: float | None = None,
        delta: float | None = None,
        n_bins: int = 16,
        iters: int = 1000,
    ):
        self.seed = seed
        self.epsilon = epsilon
        self.delta = delta
        self.n_bins = n_bins
        self.iters = iters

    def _check_params(self) -> None:
        for key, low in (("n_bins", 2), ("iters", 1)):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise ParameterError(f"{key} must be an integer >= {low}, got {value!r}")

    # ------------------------------------------------------------------------------------ fit
    def _fit(self, arrays: dict[str, np.ndarray], rng: np.random.Generator) -> None:
        public = public_arrays(self, arrays)
        names = list(arrays)
        bins = int(self.n_bins)
        if is_private(self) and len(names) > 1:
            # Numeric bins from the budget: k bins such that a two-column table of two numeric columns expects
            # about one noise std of rows per cell (n / k^2 ~ sigma2), between 4 and n_bins. Fewer, fuller bins
            # keep the pairs above the noise at small budgets; the shape within a bin still comes from the public
            # table. Weather (1,752 rows, 15 columns) at epsilon 0.5: 6 bins instead of 16, pair trends 0.66 -> 0.74
            # (flights 0.19 -> 0.26), column shapes within 0.03.
            n_rows = len(next(iter(arrays.values())))
            sigma2 = math.sqrt((len(names) - 1) / (2 * self._rho() / 3))
            bins = int(np.clip(math.floor(math.sqrt(n_rows / sigma2)), 4, self.n_bins))
        self.columns_ = []
        fine = {}
        for name in names:
            col, codes = self._discretise(name, arrays[name], public[name], bins)
            self.columns_.append(col)
            fine[name] = codes
        self.order_, self.parent_, self.tables_ = [], [], []
        if not names:
            return
        n = len(next(iter(arrays.values())))
        private = is_private(self)
        rho = self._rho() if private else 0.0
        d = len(names)
        ledger = self._privacy["ledger"] if private else None
        # 1. one-column marginals, then compression (a single column has no pairs: it gets the whole budget)
        rho1 = rho if d == 1 else rho / 3
        sigma1 = math.sqrt(d / (2 * rho1)) if private else 0.0
        one_way = {}
        for col, name in zip(self.columns_, names, strict=True):
            counts = np.bincount(fine[name], minlength=col["size"]).astype("float64")
            noisy = counts + rng.normal(0, sigma1, len(counts)) if private else counts
            col["weights"] = np.clip(noisy, 0, None)
            keep = noisy >= _COMPRESS_SIGMAS * sigma1 if private else counts > 0
            if not keep.any():
                keep[int(np.argmax(noisy))] = True
            mapping = np.cumsum(keep) - 1
            n_keep = int(keep.sum())
            if (~keep).any():
                mapping[~keep] = n_keep
            col["map"] = mapping.astype("int64")
            col["compressed"] = n_keep + int((~keep).any())
            merged = np.bincount(col["map"], weights=noisy, minlength=col["compressed"])
            one_way[name] = merged
        if private:
            ledger.add(np.asarray(ORDERS) * rho1, "MST one-column marginals (Gaussian)", noise_std=sigma1)
        codes = {name: col["map"][fine[name]] for col, name in zip(self.columns_, names, strict=True)}
        sizes = {name: col["compressed"] for col, name in zip(self.columns_, names, strict=True)}
        # 2. the tree: exponential mechanism over pairs, Kruskal style
        edges = self._select_tree(names, codes, sizes, one_way, n, rho / 3 if private else None, rng)
        if private and d > 1:
            ledger.add(np.asarray(ORDERS) * (rho / 3), "MST tree selection (exponential mechanism)", rounds=d - 1)
        # 3. two-column marginals of the tree, Private-PGM
        sigma2 = math.sqrt(max(d - 1, 1) / (2 * rho / 3)) if private else 0.0
        measured = {}
        for a, b in edges:
            counts = np.bincount(codes[a] * sizes[b] + codes[b], minlength=sizes[a] * sizes[b]).astype("float64")
            measured[(a, b)] = counts + rng.normal(0, sigma2, len(counts)) if private else counts
        if private and d > 1:
            ledger.add(np.asarray(ORDERS) * (rho / 3), "MST two-column marginals (Gaussian)", noise_std=sigma2)
        marginals = self._estimate(names, sizes, one_way, measured, sigma1, sigma2, n, private)
        self._tree_tables(names, edges, marginals)

    def _rho(self) -> float:
        """The zCDP budget ``rho`` left: what, added to the ledger's curve, still converts to epsilon."""
        ledger = self._privacy["ledger"]
        alphas = np.asarray(ORDERS)

        def eps(rho: float) -> float:
            return epsilon_from_rdp(ledger.rdp + rho * alphas, ledger.delta_rdp)[0]

        lo, hi = 0.0, 1.0
        while eps(hi) <= ledger.epsilon:
            lo, hi = hi, hi * 2
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if eps(mid) <= ledger.epsilon else (lo, mid)
        if lo <= 0:
            raise ParameterError(
                f"epsilon={ledger.epsilon:g} is too small for 'mst': the column domains took all of it; "
                "declare bounds and categories in the metadata or raise epsilon"
            )
        return lo

    def _discretise(
        self, name: str, values: np.ndarray, public: np.ndarray, k_bins: int
    ) -> tuple[dict[str, Any], np.ndarray]:
        """The column's bins (kept for decoding) and the rows' bin codes."""
        t = self.transformer_.transforms_[name]
        if isinstance(t, (CategoricalTransform, BooleanTransform)):
            k = int(t.n_levels)
            missing = bool((public < 0).any()) or k == 0
            size = k + int(missing)
            codes = np.where(values < 0, k if missing else 0, values)
            return {"name": name, "kind": "discrete", "size": size, "levels": k}, codes.astype("int64")
        pub = public[~np.isnan(public)]
        missing = bool(np.isnan(public).any()) or len(pub) == 0
        cuts = np.linspace(0, 1, k_bins + 1)[1:-1]
        inner = np.unique(np.quantile(pub, cuts)) if len(pub) else np.zeros(0)
        k = len(inner) + 1 if len(pub) else 0
        bins = np.searchsorted(inner, pub, side="right")
        pool, offsets = [], [0]
        chooser = np.random.default_rng(0)  # which public values are kept: post-processing, fixed
        for b in range(k):
            vals = pub[bins == b]
            if len(vals) > _POOL:
                vals = chooser.choice(vals, _POOL, replace=False)
            pool.append(np.sort(vals))
            offsets.append(offsets[-1] + len(vals))
        size = k + int(missing)
        x = np.nan_to_num(values, nan=0.0)
        codes = np.where(np.isnan(values), k if missing else 0, np.searchsorted(inner, x, side="right"))
        col = {
            "name": name,
            "kind": "numeric",
            "size": size,
            "levels": k,
            "edges": inner,
            "pool": np.concatenate(pool) if pool else np.zeros(0),
            "offsets": np.asarray(offsets, dtype="int64"),
        }
        return col, np.minimum(codes, max(size - 1, 0)).astype("int64")

    def _select_tree(self, names, codes, sizes, one_way, n, rho_select, rng) -> list[tuple[str, str]]:
        d = len(names)
        if d < 2:
            return []
        scores = {}
        for i in range(d):
            for j in range(i + 1, d):
                a, b = names[i], names[j]
                pa = np.clip(one_way[a], 0, None)
                pb = np.clip(one_way[b], 0, None)
                pa, pb = pa / max(pa.sum(), 1e-12), pb / max(pb.sum(), 1e-12)
                counts = np.bincount(codes[a] * sizes[b] + codes[b], minlength=sizes[a] * sizes[b])
                scores[(a, b)] = float(np.abs(counts - n * np.outer(pa, pb).ravel()).sum())
        component = {name: name for name in names}

        def find(x: str) -> str:
            while component[x] != x:
                component[x] = component[component[x]]
                x = component[x]
            return x

        eps_round = math.sqrt(8 * rho_select / (d - 1)) if rho_select is not None else None
        edges = []
        for _ in range(d - 1):
            candidates = [e for e in scores if find(e[0]) != find(e[1])]
            s = np.asarray([scores[e] for e in candidates])
            if eps_round is None:
                pick = int(np.argmax(s))
            else:  # exponential mechanism, sensitivity 1
                logits = eps_round * (s - s.max()) / 2
                p = np.exp(logits)
                pick = int(rng.choice(len(candidates), p=p / p.sum()))
            a, b = candidates[pick]
            edges.append((a, b))
            component[find(a)] = find(b)
        return edges

    def _estimate(self, names, sizes, one_way, measured, sigma1, sigma2, n, private) -> dict[tuple[str, ...], Any]:
        """Consistent non-negative marginals: Private-PGM under DP, the exact counts themselves without."""
        if not private:
            out: dict[tuple[str, ...], Any] = {(a,): one_way[a] for a in names}
            out.update({k: v.reshape(sizes[k[0]], sizes[k[1]]) for k, v in measured.items()})
            return out
        mbi, estimation = _mbi()
        import jax.numpy as jnp

        domain = mbi.Domain(tuple(names), tuple(int(sizes[a]) for a in names))
        ms = [mbi.LinearMeasurement(jnp.asarray(one_way[a]), (a,), stddev=sigma1) for a in names]
        ms += [mbi.LinearMeasurement(jnp.asarray(v), k, stddev=sigma2) for k, v in measured.items()]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = estimation.MirrorDescent().estimate(domain, ms, known_total=float(n), iters=int(self.iters))
        out = {(a,): np.asarray(model.project((a,)).datavector(flatten=False), dtype="float64") for a in names}
        for a, b in measured:
            table = np.asarray(model.project((a, b)).datavector(flatten=False), dtype="float64")
            out[(a, b)] = table
        return out

    def _tree_tables(self, names, edges, marginals) -> None:
        """Order the tree from its root; keep the root's marginal and each column's conditional given its parent."""
        neighbours: dict[str, list[tuple[str, str, str]]] = {a: [] for a in names}
        for a, b in edges:
            neighbours[a].append((b, a, b))
            neighbours[b].append((a, a, b))
        index = {a: i for i, a in enumerate(names)}
        seen = {names[0]}
        queue = [names[0]]
        self.order_ = [0]
        self.parent_ = [-1]
        self.tables_ = [_normalise(np.clip(marginals[(names[0],)], 0, None))[None, :]]
        while queue:
            node = queue.pop(0)
            for other, a, b in neighbours[node]:
                if other in seen:
                    continue
                seen.add(other)
                queue.append(other)
                joint = np.clip(marginals[(a, b)], 0, None)
                cond = joint if a == node else joint.T  # rows: the parent's values
                self.order_.append(index[other])
                self.parent_.append(index[node])
                self.tables_.append(np.stack([_normalise(row) for row in cond]))

    # ------------------------------------------------------------------------------------ sample
    def _sample(self, n: int, rng: np.random.Generator, request: Any = None) -> dict[str, np.ndarray]:
        compressed: dict[int, np.ndarray] = {}
        for i, parent, table in zip(self.order_, self.parent_, self.tables_, strict=True):
            cum = np.cumsum(table, axis=1)
            u = rng.random(n)
            if parent < 0:
                compressed[i] = np.minimum(np.searchsorted(cum[0], u, side="right"), table.shape[1] - 1)
                continue
            out = np.empty(n, dtype="int64")
            given = compressed[parent]
            for value in np.unique(given):
                rows = given == value
                out[rows] = np.minimum(np.searchsorted(cum[value], u[rows], side="right"), table.shape[1] - 1)
            compressed[i] = out
        return {col["name"]: self._decode(col, compressed[i], n, rng) for i, col in enumerate(self.columns_)}

    @staticmethod
    def _decode(col: dict[str, Any], compressed: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
        """Bins from compressed values (a merged bin draws a member by its noisy count), then values from bins."""
        mapping, weights = np.asarray(col["map"]), np.asarray(col["weights"], dtype="float64")
        fine = np.empty(n, dtype="int64")
        for c in np.unique(compressed):
            members = np.flatnonzero(mapping == c)
            rows = compressed == c
            w = weights[members]
            p = w / w.sum() if w.sum() > 0 else None
            fine[rows] = members[rng.choice(len(members), int(rows.sum()), p=p)] if len(members) > 1 else members[0]
        k = int(col["levels"])
        if col["kind"] == "discrete":
            return np.where(fine >= k, -1, fine).astype("int64")
        out = np.full(n, np.nan)
        offsets, pool = np.asarray(col["offsets"]), np.asarray(col["pool"], dtype="float64")
        for b in range(k):
            rows = fine == b
            lo, hi = offsets[b], offsets[b + 1]
            if rows.any() and hi > lo:
                out[rows] = pool[lo + rng.integers(0, hi - lo, int(rows.sum()))]
        return out

    # ------------------------------------------------------------------------------------ state
    def _get_state(self) -> dict[str, Any]:
        return {
            "columns": self.columns_,
            "order": self.order_,
            "parent": self.parent_,
            "tables": self.tables_,
        }

    def _set_state(self, state: dict[str, Any]) -> None:
        self.columns_ = [
            {k: (np.asarray(v) if isinstance(v, (list, np.ndarray)) else v) for k, v in col.items()}
            for col in state["columns"]
        ]
        self.order_ = [int(i) for i in state["order"]]
        self.parent_ = [int(i) for i in state["parent"]]
        self.tables_ = [np.asarray(t, dtype="float64") for t in state["tables"]]


def _normalise(p: np.ndarray) -> np.ndarray:
    total = p.sum()
    return p / total if total > 0 else np.full(len(p), 1.0 / len(p))
