"""Rényi-DP accounting for DP-SGD (the subsampled Gaussian mechanism) and for Gaussian counting queries.

The Rényi divergence of order ``alpha`` between the two mixtures that one step of DP-SGD with Poisson sampling
rate ``q`` and noise multiplier ``sigma`` produces on neighbouring datasets is bounded by ``log(A_alpha) /
(alpha - 1)`` (Mironov, Talwar and Zhang, "Rényi Differential Privacy of the Sampled Gaussian Mechanism", 2019,
section 3.3):

- integer ``alpha``: ``A = sum_{k=0}^{alpha} C(alpha, k) (1-q)^(alpha-k) q^k exp((k^2 - k) / (2 sigma^2))``;
- fractional ``alpha``: ``A = A0 + A1``, two series in ``k`` whose terms carry ``erfc`` factors at the point
  ``z0 = sigma^2 log(1/q - 1) + 1/2`` where the two Gaussians' likelihood ratio crosses over.

RDP composes by addition over steps and over mechanisms (a Gaussian counting query with L2 sensitivity ``s`` and
noise ``sigma`` costs ``alpha s^2 / (2 sigma^2)``). A curve is turned into ``(epsilon, delta)`` with the
conversion of Balle et al., "Hypothesis testing interpretations and Rényi differential privacy", AISTATS 2020,
Theorem 21: ``epsilon = rdp + log((alpha-1)/alpha) - (log delta + log alpha) / (alpha - 1)``, minimised over the
orders. Opacus uses the same analysis; ``tests/test_privacy.py`` checks that both give the same epsilon.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import special

__all__ = [
    "ORDERS",
    "calibrate_noise",
    "epsilon_from_rdp",
    "gaussian_rdp",
    "sampled_gaussian_rdp",
]

# Orders of the RDP curve: Opacus's defaults, plus large orders that make small epsilons reachable
# (with orders up to 63 only, epsilon can never go below about 0.12 at delta = 1e-5, whatever the noise).
ORDERS: tuple[float, ...] = tuple(
    [1 + x / 10.0 for x in range(1, 100)] + list(range(12, 64)) + [80, 96, 128, 192, 256, 384, 512, 1024]
)


def _logaddexp_signed(terms: np.ndarray, signs: np.ndarray) -> float:
    """``log(sum(signs * exp(terms)))`` for a sum known to be positive."""
    top = float(np.max(terms))
    if not math.isfinite(top):
        return -math.inf
    total = float(np.sum(signs * np.exp(terms - top)))
    return top + math.log(total) if total > 0 else -math.inf


def _log_a_integer(q: float, sigma: float, alpha: int) -> float:
    k = np.arange(alpha + 1, dtype="float64")
    log_binom = special.gammaln(alpha + 1) - special.gammaln(k + 1) - special.gammaln(alpha - k + 1)
    terms = log_binom + k * math.log(q) + (alpha - k) * math.log1p(-q) + (k * k - k) / (2 * sigma**2)
    return float(special.logsumexp(terms))


def _log_erfc(x: np.ndarray) -> np.ndarray:
    """``log(erfc(x))`` without underflow for large ``x`` (scaled complementary error function).

    For ``x < 0``, ``erfc(x)`` lies in ``[1, 2]`` and is computed directly: ``erfcx(x)`` would overflow there.
    """
    x = np.asarray(x, dtype="float64")
    with np.errstate(over="ignore"):
        scaled = np.log(special.erfcx(np.maximum(x, 0.0))) - np.maximum(x, 0.0) ** 2
    return np.where(x < 0, np.log(special.erfc(np.minimum(x, 0.0))), scaled)


def _log_a_fractional(q: float, sigma: float, alpha: float) -> float:
    """The two series, vectorised over ``k``; summed up to the first term below ``exp(-30)`` (as Opacus does)."""
    z0 = sigma**2 * math.log(1 / q - 1) + 0.5
    log_q, log_1q = math.log(q), math.log1p(-q)
    size = 64
    while True:
        k = np.arange(size, dtype="float64")
        coef = special.binom(alpha, k)
        with np.errstate(divide="ignore"):
            log_coef = np.log(np.abs(coef))
        j = alpha - k
        e0 = math.log(0.5) + _log_erfc((k - z0) / (math.sqrt(2) * sigma))
        e1 = math.log(0.5) + _log_erfc((z0 - j) / (math.sqrt(2) * sigma))
        s0 = log_coef + k * log_q + j * log_1q + (k * k - k) / (2 * sigma**2) + e0
        s1 = log_coef + j * log_q + k * log_1q + (j * j - j) / (2 * sigma**2) + e1
        small = np.flatnonzero(np.maximum(s0, s1) < -30)
        if len(small) or size >= 16_384:
            stop = int(small[0]) + 1 if len(small) else size
            break
        size *= 4
    signs = np.sign(coef[:stop])
    return float(np.logaddexp(_logaddexp_signed(s0[:stop], signs), _logaddexp_signed(s1[:stop], signs)))


def sampled_gaussian_rdp(q: float, sigma: float, steps: int = 1, orders: Sequence[float] = ORDERS) -> np.ndarray:
    """RDP of ``steps`` steps of the Poisson-subsampled Gaussian mechanism, one value per order.

    ``q`` is the sampling rate, ``sigma`` the noise multiplier (noise std / clipping norm).
    """
    out = np.zeros(len(orders))
    if steps == 0 or q == 0:
        return out
    if sigma == 0:
        return np.full(len(orders), math.inf)
    for i, alpha in enumerate(orders):
        if q == 1.0:
            out[i] = alpha / (2 * sigma**2)
        elif float(alpha).is_integer():
            out[i] = _log_a_integer(q, sigma, int(alpha)) / (alpha - 1)
        else:
            out[i] = _log_a_fractional(q, sigma, float(alpha)) / (alpha - 1)
    return out * steps


def gaussian_rdp(sigma: float, sensitivity: float = 1.0, orders: Sequence[float] = ORDERS) -> np.ndarray:
    """RDP of one Gaussian mechanism with L2 ``sensitivity`` and noise std ``sigma``: ``alpha s^2 / (2 sigma^2)``."""
    return np.asarray(orders, dtype="float64") * sensitivity**2 / (2 * sigma**2)


def epsilon_from_rdp(rdp: np.ndarray, delta: float, orders: Sequence[float] = ORDERS) -> tuple[float, float]:
    """``(epsilon, best order)`` of an RDP curve at ``delta`` (Balle et al. 2020, Theorem 21)."""
    a = np.asarray(orders, dtype="float64")
    rdp = np.asarray(rdp, dtype="float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        eps = rdp - (math.log(delta) + np.log(a)) / (a - 1) + np.log((a - 1) / a)
    eps = np.where(np.isnan(eps), np.inf, eps)
    i = int(np.argmin(eps))
    return max(float(eps[i]), 0.0), float(a[i])


def calibrate_noise(
    epsilon: float,
    delta: float,
    q: float,
    steps: int,
    base_rdp: np.ndarray | None = None,
    orders: Sequence[float] = ORDERS,
    max_sigma: float = 1e3,
) -> float:
    """The smallest noise multiplier for which ``steps`` DP-SGD steps (plus ``base_rdp``) stay within budget.

    Returns ``inf`` when even ``max_sigma`` is not enough.
    """
    base = np.zeros(len(orders)) if base_rdp is None else np.asarray(base_rdp)

    def spent(sigma: float) -> float:
        return epsilon_from_rdp(base + sampled_gaussian_rdp(q, sigma, steps, orders), delta, orders)[0]

    if spent(max_sigma) > epsilon:
        return math.inf
    lo, hi = 0.0, 1.0
    while spent(hi) > epsilon:
        lo, hi = hi, hi * 2
    for _ in range(40):  # bisection to a relative precision far below anything that matters
        mid = 0.5 * (lo + hi)
        if spent(mid) > epsilon:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-4 * hi:
            break
    return hi
