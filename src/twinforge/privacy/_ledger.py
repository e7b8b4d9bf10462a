"""The privacy ledger of one fit: the budget asked for, and every mechanism that spent part of it.

Every data-dependent step of a differentially private fit is one entry: the Gaussian counting queries that
choose the column domains and their histograms (:mod:`twinforge.privacy._domain`), and the DP-SGD steps
(:mod:`twinforge.privacy._dpsgd`), or the noisy marginals of the ``mst`` model. Entries are RDP curves that add
up; :meth:`PrivacyLedger.spent` converts the total to ``(epsilon, delta)`` with :func:`epsilon_from_rdp`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from twinforge.errors import ParameterError
from twinforge.privacy._accountant import ORDERS, epsilon_from_rdp

__all__ = ["PrivacyLedger", "check_budget", "default_delta"]


def default_delta(n_rows: int) -> float:
    """``min(1e-5, 0.1 / n)``: well below ``1 / n``, the level at which one row could be published outright."""
    return float(min(1e-5, 0.1 / max(n_rows, 1)))


def check_budget(epsilon: Any, delta: Any, n_rows: int | None = None) -> None:
    """ParameterError for an epsilon that is not a positive number, or a delta outside ``(0, 1/n)``."""
    if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float, np.floating)) or not math.isfinite(epsilon):
        raise ParameterError(f"epsilon must be a positive number (e.g. 1.0) or None for no privacy, got {epsilon!r}")
    if epsilon <= 0:
        raise ParameterError(
            f"epsilon must be > 0, got {epsilon!r}: smaller is more private; 1 is strong, 10 is weak; "
            "pass None (no --epsilon) to train without differential privacy"
        )
    if delta is None:
        return
    if isinstance(delta, bool) or not isinstance(delta, (int, float, np.floating)) or not 0 < delta < 1:
        raise ParameterError(f"delta must be a number in (0, 1/n), got {delta!r}; leave it unset for a safe default")
    if n_rows is not None and delta >= 1.0 / n_rows:
        raise ParameterError(
            f"delta={delta!r} is >= 1/n = {1.0 / n_rows:.3g} for n={n_rows} rows: such a delta allows publishing a "
            f"row outright; use delta <= {default_delta(n_rows):.3g} (or leave it unset for that default)"
        )


class PrivacyLedger:
    """The budget ``(epsilon, delta)`` of one fit and the RDP curve of what has been spent so far.

    ``delta`` is split: ``delta_selection`` pays for releasing category levels by thresholded noisy counts (the
    chance that a level held by one row passes the threshold), the rest for the RDP-to-``(epsilon, delta)``
    conversion.
    """

    def __init__(self, epsilon: float, delta: float, n_rows: int):
        self.epsilon = float(epsilon)
        self.delta = float(delta)
        self.n_rows = int(n_rows)
        self.rdp = np.zeros(len(ORDERS))
        self.delta_selection = 0.0
        self.entries: list[dict[str, Any]] = []
        self.domain_share = 0.0  # set by the column domains: what share of epsilon they take, their sensitivity
        self.domain_sensitivity = 0.0

    @property
    def delta_rdp(self) -> float:
        return self.delta - self.delta_selection

    def add(self, rdp: np.ndarray, what: str, **details: Any) -> None:
        self.rdp = self.rdp + np.asarray(rdp)
        eps, _ = epsilon_from_rdp(rdp, self.delta_rdp)
        self.entries.append({"what": what, "epsilon_alone": round(eps, 6), **details})

    def spent(self) -> tuple[float, float]:
        """``(epsilon, delta)`` spent so far; epsilon is 0 before any entry."""
        if not self.entries:
            return 0.0, 0.0
        eps, _ = epsilon_from_rdp(self.rdp, self.delta_rdp)
        return eps, self.delta

    def report(self) -> dict[str, Any]:
        """JSON-able summary stored with the model (``fit_info_["privacy"]``)."""
        eps, delta = self.spent()
        return {
            "mechanism": "differential privacy (RDP accountant; Gaussian counts and DP-SGD)",
            "epsilon_budget": self.epsilon,
            "delta_budget": self.delta,
            "epsilon_spent": round(eps, 6),
            "delta_spent": delta,
            "rows": self.n_rows,
            "parts": self.entries,
        }
