"""A Rényi-DP accountant for Gaussian releases without sampling amplification, in Flower's accountant protocol.

Flower's own ``RdpAccountant`` wraps Google's ``dp-accounting`` package; this one needs nothing beyond numpy and
covers the only case federated twinforge uses: every site takes part in every release (no amplification), so a
release with noise multiplier ``z`` costs ``alpha / (2 z^2)`` of Rényi DP at order ``alpha`` (Mironov, "Rényi
Differential Privacy", CSF 2017, Prop. 7), releases add up, and the total converts to ``(epsilon, delta)`` with
Canonne, Kamath and Steinke's bound ("The Discrete Gaussian for Differential Privacy", NeurIPS 2020, Prop. 12):
``epsilon = rdp + log((alpha - 1) / alpha) - (log delta + log alpha) / (alpha - 1)``, minimised over ``alpha``.
The curves and the conversion are :mod:`twinforge.privacy`'s, the same accountant the models' DP-SGD uses.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from twinforge.privacy._accountant import ORDERS, epsilon_from_rdp, gaussian_rdp

__all__ = ["GaussianAccountant"]


class GaussianAccountant:
    """Implements ``flwr.serverapp.PrivacyAccountant`` for no-amplification Gaussian releases."""

    def __init__(self, config: Any):
        self._config = config
        self._events: list[tuple[float, int]] = []  # (noise multiplier, count)

    @property
    def config(self) -> Any:
        return self._config

    @property
    def num_releases(self) -> int:
        return sum(c for _, c in self._events)

    def compose(self, event: Any, count: int = 1) -> None:
        if not event.noise_multiplier > 0:
            raise ValueError("a Gaussian release needs a positive noise multiplier")
        self._events.append((float(event.noise_multiplier), int(count)))

    def _rdp(self, extra: list[tuple[float, int]] | None = None) -> np.ndarray:
        total = np.zeros(len(ORDERS))
        for z, c in self._events + (extra or []):
            total += c * gaussian_rdp(z)
        return total

    def _epsilon(self, delta: float, extra: list[tuple[float, int]] | None = None) -> tuple[float, float]:
        if not self._events and not extra:
            return 0.0, float("nan")
        return epsilon_from_rdp(self._rdp(extra), delta)

    def get_epsilon(self, delta: float) -> float:
        return self._epsilon(delta)[0]

    def get_delta(self, epsilon: float) -> float:
        a = np.asarray(ORDERS)
        rdp = self._rdp()
        # invert the bound above for delta at each order and keep the smallest
        log_delta = (a - 1) * (rdp - epsilon + np.log((a - 1) / a)) - np.log(a)
        return float(min(1.0, np.exp(log_delta.min())))

    def get_privacy_spent(self, delta: float | None = None) -> Any:
        from flwr.serverapp import PrivacySpent

        delta = self._config.target_delta if delta is None else delta
        eps, order = self._epsilon(delta)
        return PrivacySpent(
            epsilon=eps, delta=delta, num_releases=self.num_releases, accounting_method="rdp", optimal_order=order
        )

    def would_exceed(self, event: Any, max_epsilon: float | None = None, count: int = 1) -> bool:
        limit = self._config.max_epsilon if max_epsilon is None else max_epsilon
        if limit is None:
            return False
        return self._epsilon(self._config.target_delta, [(float(event.noise_multiplier), int(count))])[0] > limit

    def state_dict(self) -> dict[str, object]:
        return {"events": [[z, c] for z, c in self._events]}

    def load_state_dict(self, state: dict[str, object]) -> None:
        self._events = [(float(z), int(c)) for z, c in state["events"]]  # type: ignore[union-attr]
