"""DP-SGD for the neural models through Opacus: Poisson sampling, per-sample clipping, calibrated Gaussian noise.

Abadi et al., "Deep Learning with Differential Privacy", CCS 2016: each step takes every training row
independently with probability ``q`` (Poisson sampling, what the accountant assumes), clips each row's gradient
to L2 norm ``max_grad_norm``, sums them and adds ``N(0, (sigma * max_grad_norm)^2)`` per coordinate. Opacus
computes the per-sample gradients (``GradSampleModule``) and clips and noises them (``DPOptimizer``); the noise
multiplier ``sigma`` is calibrated here, for the steps the model plans, to spend what the ledger has left
(:func:`~twinforge.privacy._accountant.calibrate_noise`). :meth:`DPSGD.batch` refuses a step that would go over
the budget, so training stops within it; the steps actually taken are added to the ledger.

A model uses it in three places::

    dp = DPSGD(ledger, n_rows=n, batch_size=b, steps=planned, generator=gen)
    opt = dp.make_private(module, opt)          # where the optimiser is made
    rows = dp.batch()                           # instead of a slice of a permutation; None: budget spent
    ...                                         # forward, loss (mean over rows), opt.zero_grad, backward, opt.step
    dp.finish()                                 # after training: hooks removed, steps accounted
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from twinforge.errors import ParameterError
from twinforge.privacy._accountant import calibrate_noise, epsilon_from_rdp, sampled_gaussian_rdp
from twinforge.privacy._ledger import PrivacyLedger

__all__ = ["DPSGD", "MAX_NOISE_MULTIPLIER"]

MAX_NOISE_MULTIPLIER = 50.0  # beyond this, the noise drowns any gradient: stop instead of training on noise


def _opacus() -> Any:
    try:
        import opacus  # noqa: F401
        from opacus import GradSampleModule
        from opacus.optimizers import DPOptimizer
    except ImportError:  # pragma: no cover - depends on the installation
        raise ParameterError("differential privacy (epsilon=...) needs Opacus: pip install 'twinforge[dp]'") from None
    return GradSampleModule, DPOptimizer


class DPSGD:
    """One DP-SGD run: the calibrated noise, the Poisson sampler and the step count (see the module docstring).

    Parameters
    ----------
    ledger : PrivacyLedger
        The fit's budget; the noise is calibrated so that what it has spent plus ``steps`` steps equals epsilon.
    n_rows : int
        Training rows (treated as public).
    batch_size : int
        Expected rows per step; the sampling rate is ``batch_size / n_rows``.
    steps : int
        Planned steps.
    generator : torch.Generator
        Source of the Poisson sampling.
    max_grad_norm : float, default 1.0
        Per-sample clipping norm.
    """

    def __init__(
        self,
        ledger: PrivacyLedger,
        *,
        n_rows: int,
        batch_size: int,
        steps: int,
        generator: torch.Generator,
        max_grad_norm: float = 1.0,
    ):
        self.ledger = ledger
        self.n_rows = int(n_rows)
        self.q = min(1.0, float(batch_size) / max(n_rows, 1))
        self.expected_batch = max(1, round(self.q * n_rows))
        self.planned = max(1, int(steps))
        self.max_grad_norm = float(max_grad_norm)
        self.generator = generator
        self.steps = 0
        base = ledger.rdp
        sigma = calibrate_noise(ledger.epsilon, ledger.delta_rdp, self.q, self.planned, base)
        self.allowed = self.planned
        if sigma > MAX_NOISE_MULTIPLIER:
            sigma = MAX_NOISE_MULTIPLIER
            self.allowed = self._affordable_steps(sigma)
            if self.allowed < 1:
                raise ParameterError(self._too_small_message())
        self.sigma = float(sigma)

    # ------------------------------------------------------------------ budget
    def _epsilon(self, sigma: float, steps: int) -> float:
        rdp = self.ledger.rdp + sampled_gaussian_rdp(self.q, sigma, steps)
        return epsilon_from_rdp(rdp, self.ledger.delta_rdp)[0]

    def _affordable_steps(self, sigma: float) -> int:
        """Most steps at noise ``sigma`` within the budget (0 if not even one)."""
        if self._epsilon(sigma, 1) > self.ledger.epsilon:
            return 0
        lo, hi = 1, self.planned
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self._epsilon(sigma, mid) <= self.ledger.epsilon:
                lo = mid
            else:
                hi = mid - 1
        return lo

    def _too_small_message(self) -> str:
        from twinforge.privacy._domain import required_epsilon

        spent, _ = self.ledger.spent()
        led = self.ledger
        one = required_epsilon(led.delta_rdp, led.domain_share, led.domain_sensitivity, self.q, 1)
        planned = required_epsilon(led.delta_rdp, led.domain_share, led.domain_sensitivity, self.q, self.planned)
        return (
            f"epsilon={led.epsilon:g} (delta={led.delta:.3g}) is too small to train even one DP-SGD "
            f"step: the column domains already take epsilon {spent:.3g}, and a step at the largest useful noise "
            f"(noise multiplier {MAX_NOISE_MULTIPLIER:g}, sampling rate {self.q:.3g}) costs more than is left. "
            f"Use epsilon >= {one:g} to train at all, epsilon >= {planned:g} for the {self.planned} planned "
            "steps; or the 'mst' model, made for small budgets"
        )

    # ------------------------------------------------------------------ training
    def make_private(self, module: nn.Module, optimizer: torch.optim.Optimizer) -> torch.optim.Optimizer:
        """Per-sample gradient hooks on ``module``; the optimiser wrapped to clip and noise. Returns the wrapper."""
        GradSampleModule, DPOptimizer = _opacus()
        # Opacus's hooks on the first layer fire without input gradients, by design; torch warns every step
        warnings.filterwarnings("ignore", message="Full backward hook is firing", category=UserWarning)
        self.module = GradSampleModule(module, batch_first=True, loss_reduction="mean")
        self.optimizer = DPOptimizer(
            optimizer,
            noise_multiplier=self.sigma,
            max_grad_norm=self.max_grad_norm,
            expected_batch_size=self.expected_batch,
            loss_reduction="mean",
        )
        return self.optimizer

    def batch(self) -> torch.Tensor | None:
        """The rows of the next step (Poisson sampling), or None when the budget allows no more steps.

        An empty draw takes its step here (noise only) and the next draw is returned, so callers never see an
        empty batch; it still counts as a step, as the accountant assumes.
        """
        while self.steps < self.allowed:
            self.steps += 1
            take = torch.rand(self.n_rows, generator=self.generator) < self.q
            rows = torch.nonzero(take).reshape(-1)
            if len(rows):
                return rows
            self._noise_step()
        return None

    def epoch(self, steps: int) -> Iterator[torch.Tensor]:
        """Up to ``steps`` batches (fewer when the budget runs out)."""
        for _ in range(steps):
            rows = self.batch()
            if rows is None:
                return
            yield rows

    def _noise_step(self) -> None:
        opt = self.optimizer
        for p in opt.params:
            noise = torch.normal(0.0, self.sigma * self.max_grad_norm, p.shape, device=p.device)
            p.grad = noise / self.expected_batch
        opt.original_optimizer.step()
        opt.original_optimizer.zero_grad(set_to_none=True)

    @property
    def exhausted(self) -> bool:
        return self.steps >= self.allowed

    def should_stop(self) -> str | None:
        """For ``train_loop``: ``"privacy_budget"`` once no step is left."""
        return "privacy_budget" if self.exhausted and self.allowed < self.planned else None

    def finish(self) -> dict[str, Any]:
        """Remove the hooks and add the steps taken to the ledger. Returns what was done (for the model's info)."""
        if hasattr(self, "module"):
            self.module._close()
        self.ledger.add(
            sampled_gaussian_rdp(self.q, self.sigma, self.steps),
            "DP-SGD",
            steps=self.steps,
            planned_steps=self.planned,
            sampling_rate=round(self.q, 6),
            noise_multiplier=round(self.sigma, 4),
            max_grad_norm=self.max_grad_norm,
        )
        return {"steps": self.steps, "noise_multiplier": self.sigma, "sampling_rate": self.q}


def poisson_batches_per_epoch(n_rows: int, batch_size: int) -> int:
    """Steps that make one expected pass over the rows."""
    return max(1, math.ceil(n_rows / max(batch_size, 1)))
