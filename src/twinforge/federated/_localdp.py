"""Sample-level DP on each site (``dp="local"``): DP statistics and DP-SGD through Opacus, one budget per site.

Each site is its own ``(epsilon, delta)`` mechanism with respect to its own rows (add/remove one row):

1. the two statistics stages are Gaussian releases (noise multiplier :func:`stats_noise`, calibrated so that
   both take ``stats_share`` of epsilon, default :data:`STATS_SHARE`); a category level is only named when its
   noisy count passes :func:`level_threshold`, whose chance of naming a level held by one row is charged to delta;
2. every local step of every planned round is a DP-SGD step (:class:`twinforge.privacy._dpsgd.DPSGD`), its noise
   calibrated once so that ``rounds x local epochs x steps`` spend the rest of the budget.

Nothing is kept at a site between rounds: round ``r`` rebuilds the same ledger, counts the steps of rounds
``1 .. r-1`` as taken (also when the site missed a round: the count can only over-state what was spent) and
reports the epsilon spent so far with its update. The server's weights are post-processing of these releases.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np

from twinforge.errors import ParameterError
from twinforge.privacy import PrivacyLedger, check_budget, epsilon_from_rdp, gaussian_rdp

__all__ = ["STATS_SHARE", "LocalDP", "epsilon_to_name", "level_threshold", "stats_noise"]

STATS_SHARE = 0.25  # default share of each site's epsilon the agreed statistics take
_STATS_RELEASES = 2
_SELECTION_SHARE = 0.1  # share of delta that pays for naming category levels


def stats_noise(epsilon: float, delta: float, share: float = STATS_SHARE, releases: int = _STATS_RELEASES) -> float:
    """Noise multiplier of the statistics releases (two; three for the sequence model, whose sites also release
    their entity embeddings' sums) so that together they spend ``share * epsilon``."""
    target = float(share) * float(epsilon)
    d = float(delta) * (1 - _SELECTION_SHARE)

    def eps(z: float) -> float:
        return epsilon_from_rdp(int(releases) * gaussian_rdp(z), d)[0]

    lo, hi = 1e-3, 1e6
    for _ in range(80):  # bisection on log z: eps decreases with z
        mid = math.sqrt(lo * hi)
        lo, hi = (mid, hi) if eps(mid) > target else (lo, mid)
    return hi


def level_threshold(sigma: float, delta: float, n_discrete: int) -> float:
    """A level is named only if its noisy count is at least this: a one-row level passes with prob. below
    ``_SELECTION_SHARE * delta`` over all ``n_discrete`` columns (one row holds one level per column)."""
    if sigma <= 0 or n_discrete == 0:
        return 0.0
    p = _SELECTION_SHARE * float(delta) / n_discrete
    return 1.0 + sigma * NormalDist().inv_cdf(1.0 - p)


def epsilon_to_name(rows: float, delta: float, share: float, sensitivity: float, n_discrete: int) -> float:
    """The smallest epsilon (3 digits) at which a site names a category level held by ``rows`` of its rows."""

    def names(eps: float) -> bool:
        return level_threshold(stats_noise(eps, delta, share) * sensitivity, delta, n_discrete) <= rows

    if rows <= 1.0 or not names(1e4):
        return math.inf
    lo, hi = 1e-3, 1e4
    for _ in range(60):
        mid = math.sqrt(lo * hi)
        lo, hi = (lo, mid) if names(mid) else (mid, hi)
    return float(f"{hi * 1.005:.3g}")


@dataclass
class LocalDP:
    """One site's budget in one round (sent by the server in the train message's config)."""

    epsilon: float
    delta: float
    stats_noise: float
    rounds: int
    local_epochs: int
    round: int  # 1-based, absolute
    stats_releases: int = _STATS_RELEASES

    @classmethod
    def from_config(cls, cfg: Any, server_round: int) -> LocalDP | None:
        if str(cfg.get("dp-mode", "")) != "local":
            return None
        return cls(
            epsilon=float(cfg["epsilon"]),
            delta=float(cfg["delta"]),
            stats_noise=float(cfg["stats-noise"]),
            rounds=int(cfg["rounds"]),
            local_epochs=int(cfg["local-epochs"]),
            round=int(cfg.get("first-round", 0)) + int(server_round),
            stats_releases=int(cfg.get("stats-releases", _STATS_RELEASES)),
        )

    def ledger(self, n_rows: int) -> PrivacyLedger:
        """The site's ledger with the statistics already charged (``n_rows``: its units, rows or entities)."""
        check_budget(self.epsilon, self.delta, n_rows)
        ledger = PrivacyLedger(self.epsilon, self.delta, n_rows)
        ledger.delta_selection = _SELECTION_SHARE * self.delta
        ledger.add(
            self.stats_releases * gaussian_rdp(self.stats_noise),
            "agreed statistics",
            releases=self.stats_releases,
            noise_multiplier=round(self.stats_noise, 4),
        )
        return ledger

    def dpsgd(self, n_rows: int, batch_size: int, steps_per_epoch: int, rng: np.random.Generator) -> Any:
        """A DPSGD calibrated for every planned step, with the steps of the earlier rounds already taken."""
        import torch

        from twinforge.privacy._dpsgd import DPSGD

        gen = torch.Generator().manual_seed(int(rng.integers(0, 2**63 - 1)))
        per_round = self.local_epochs * steps_per_epoch
        try:
            dp = DPSGD(
                self.ledger(n_rows),
                n_rows=n_rows,
                batch_size=batch_size,
                steps=self.rounds * per_round,
                generator=gen,
            )
        except ParameterError as exc:
            raise ParameterError(f"--dp local: {exc}") from None
        dp.steps = min(dp.allowed, max(self.round - 1, 0) * per_round)
        return dp
