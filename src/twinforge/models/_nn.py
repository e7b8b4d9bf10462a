"""The few torch pieces the neural models share: device choice, seeding, an MLP, weights as arrays, and
one training loop with early stopping, a wall-clock budget and a progress bar.

Every model keeps its own network and loss in its own file; what is here is only what would otherwise be
copied into each of them. Training stays a plain ``torch.nn.Module`` + ``torch.optim`` loop, so Opacus can wrap
the module, optimiser and data loader, and the weights are plain state dicts (for federated averaging).

Seeding never touches global state: :func:`seeded` forks torch's RNG, seeds the fork and restores the
caller's state on exit (scikit-learn's rule of no global reseeding, kept for torch). torch has one RNG per
process, shared by all threads, so :func:`seeded` blocks also hold one process-wide lock: a fit running in another
thread (a federated site that outlived its round, a service worker) cannot draw from, reseed or restore the RNG in
the middle of this one.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from twinforge.errors import ParameterError

__all__ = [
    "MLP",
    "Adam",
    "TrainResult",
    "check_training_params",
    "native_bf16",
    "resolve_device",
    "training_precision",
    "rng_isolated",
    "seeded",
    "segment_nll",
    "state_from_arrays",
    "state_to_arrays",
    "train_loop",
]


def resolve_device(device: str) -> torch.device:
    """``"auto"`` -> a CUDA GPU when present, else the CPU; ``"cpu"``/``"cuda"``/``"cuda:1"`` as given."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ParameterError(f"device must be 'auto', 'cpu' or 'cuda[:N]', got {device!r}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ParameterError(f"device {device!r} asked for, but no CUDA GPU is available: use 'auto' or 'cpu'")
    return dev


def native_bf16(device: torch.device) -> bool:
    """True on a CPU with native bfloat16 arithmetic (AVX512-BF16 or AMX), where bfloat16 matrices run faster."""
    if device.type != "cpu":
        return False
    probe = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
    return bool(probe()) if probe is not None else False


def training_precision(device: torch.device, enabled: bool = True) -> contextlib.AbstractContextManager:
    """Autocast to bfloat16 for a training step on a CPU with native bfloat16, else nothing.

    The matrix products of the small tabular networks run about twice as fast in bfloat16 (oneDNN accumulates in
    float32; weights, optimiser state, losses and normalisations stay float32). Off under DP (``enabled=False``):
    Opacus computes its per-sample gradients in the layers' own dtype.
    """
    if enabled and native_bf16(device):
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def segment_nll(logits: torch.Tensor, segment: torch.Tensor, n_segments: int, target: torch.Tensor) -> torch.Tensor:
    """``[rows, segments]``: the negative log softmax, within each segment, of each row's target logit.

    ``logits`` [rows, positions] lays the categories of several softmaxes side by side, ``segment`` [positions]
    names each position's softmax and ``target`` [rows, segments] the position of each row's category. One
    scatter-max (for stability), one index-add and one gather for every softmax at once: cheaper than a loop over
    softmaxes and than padding them to the widest (ames: 74 spans, the widest 28 categories).
    """
    b = len(logits)
    top = torch.full((b, n_segments), -torch.inf, device=logits.device, dtype=logits.dtype)
    top = top.scatter_reduce(1, segment.expand(b, -1), logits.detach(), "amax")
    top = torch.where(torch.isfinite(top), top, 0.0)
    sums = torch.zeros(b, n_segments, device=logits.device, dtype=logits.dtype)
    # index_select, not top[:, segment]: the same numbers, and on the CPU several times faster along dim 1
    sums = sums.index_add(1, segment, torch.exp(logits - top.index_select(1, segment)))
    return torch.log(sums) + top - logits.gather(1, target)


_TORCH_RNG_LOCK = threading.RLock()  # re-entrant: seeded blocks nest (validation inside training)


@contextlib.contextmanager
def seeded(rng: np.random.Generator, device: torch.device | None = None) -> Iterator[torch.Generator]:
    """Run a block with torch's RNG seeded from ``rng``, restoring the caller's RNG state afterwards.

    Blocks of other threads wait: the RNG is global to the process (see the module docstring).

    Yields a ``torch.Generator`` (on the CPU) seeded from the same source, for explicit use.
    """
    seed = int(rng.integers(0, 2**63 - 1))
    devices = [device.index or 0] if device is not None and device.type == "cuda" else []
    with _TORCH_RNG_LOCK, torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed ^ 0x5DEECE66D)
        yield gen


@contextlib.contextmanager
def rng_isolated() -> Iterator[None]:
    """Run a block on a fork of torch's RNG, under the same lock as :func:`seeded`, restoring it afterwards.

    For building networks whose initial weights are overwritten at once (loading a saved model): their default
    initialisation draws from torch's RNG, which would shift a seeded fit running in another thread.
    """
    with _TORCH_RNG_LOCK, torch.random.fork_rng(devices=[]):
        yield


class MLP(nn.Module):
    """``depth`` blocks of Linear -> LayerNorm -> SiLU (LayerNorm, not BatchNorm: Opacus cannot wrap BatchNorm)."""

    def __init__(self, d_in: int, width: int, depth: int, d_out: int | None = None, dropout: float = 0.0):
        super().__init__()
        layers: list[nn.Module] = []
        d = d_in
        for _ in range(depth):
            layers += [nn.Linear(d, width), nn.LayerNorm(width), nn.SiLU()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            d = width
        if d_out is not None:
            layers.append(nn.Linear(d, d_out))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Adam:
    """Adam (Kingma and Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015, Algorithm 1) with L2 weight
    decay added to the gradient, or decoupled from it (AdamW: Loshchilov and Hutter, ICLR 2019), for training
    outside DP.

    ``g <- g + wd p`` (AdamW: ``p <- (1 - lr wd) p``), ``m <- b1 m + (1 - b1) g``, ``v <- b2 v + (1 - b2) g^2``, then
    ``p <- p - lr / (1 - b1^t) m / (sqrt(v) / sqrt(1 - b2^t) + eps)``; each operation once for all tensors
    (multi-tensor kernels), in the order ``torch.optim.Adam`` uses on the CPU, so the two give the same numbers
    (tested). Why not ``torch.optim``: its first use in a process imports ``torch._dynamo`` (about 1.3 CPU s, an
    eighth of ``ctgan``'s fit on a table of 1,800 rows), and its default loop over tensors on the CPU took 4.7 ms
    of ``ctgan``'s 30 ms step (this: 1.6 ms). Under DP the models keep ``torch.optim``'s optimisers, which Opacus
    wraps. The learning rate is ``param_groups[0]["lr"]``, as in ``torch.optim``, so that one schedule serves both.
    ``fused=True`` runs torch's one-kernel update instead (``torch._fused_adam_``, the numbers of
    ``torch.optim.Adam(fused=True)``), on the CPU or a GPU.
    """

    def __init__(
        self,
        params: Any,
        lr: float,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        decoupled: bool = False,
        fused: bool = False,
    ):
        self.params = list(params)
        self.param_groups = [{"lr": float(lr)}]
        self.betas, self.eps, self.weight_decay, self.decoupled = betas, float(eps), float(weight_decay), decoupled
        self.fused = fused
        self.state: dict[int, tuple[int, torch.Tensor, torch.Tensor]] = {}  # index -> (steps taken, m, v)

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.zero_()

    @torch.no_grad()
    def step(self) -> None:
        """One update of every tensor that has a gradient (a tensor's step count is its own, as in torch)."""
        b1, b2 = self.betas
        lr = self.param_groups[0]["lr"]
        groups: dict[int, list[int]] = {}
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            if i not in self.state:
                self.state[i] = (0, torch.zeros_like(p), torch.zeros_like(p))
            t, m, v = self.state[i]
            self.state[i] = (t + 1, m, v)
            groups.setdefault(t + 1, []).append(i)
        if self.fused and groups:
            # the kernel reads each tensor's step count from a tensor: one per count, shared by the tensors at it
            # (a per-tensor counter advanced by _foreach_add_ cost as much as the kernel on default's network)
            idx, steps = [], []
            for t, group in groups.items():
                idx += group
                steps += [torch.full((), float(t), device=self.params[group[0]].device)] * len(group)
            kernel = torch._fused_adamw_ if self.decoupled else torch._fused_adam_
            kernel(
                [self.params[i] for i in idx],
                [self.params[i].grad for i in idx],
                [self.state[i][1] for i in idx],
                [self.state[i][2] for i in idx],
                [],
                steps,
                amsgrad=False,
                lr=lr,
                beta1=b1,
                beta2=b2,
                weight_decay=self.weight_decay,
                eps=self.eps,
                maximize=False,
                grad_scale=None,
                found_inf=None,
            )
            return
        for t, idx in groups.items():  # one group but for tensors that missed a step
            params = [self.params[i] for i in idx]
            grads = [p.grad for p in params]
            ms = [self.state[i][1] for i in idx]
            vs = [self.state[i][2] for i in idx]
            if self.weight_decay and self.decoupled:
                torch._foreach_mul_(params, 1 - lr * self.weight_decay)
            elif self.weight_decay:
                grads = torch._foreach_add(grads, params, alpha=self.weight_decay)
            torch._foreach_lerp_(ms, grads, 1 - b1)
            torch._foreach_mul_(vs, b2)
            torch._foreach_addcmul_(vs, grads, grads, 1 - b2)
            denom = torch._foreach_sqrt(vs)
            torch._foreach_div_(denom, (1 - b2**t) ** 0.5)
            torch._foreach_add_(denom, self.eps)
            torch._foreach_addcdiv_(params, ms, denom, -(lr / (1 - b1**t)))


def state_to_arrays(module: nn.Module) -> dict[str, np.ndarray]:
    """A module's state dict as CPU numpy arrays (saved in ``weights.npz``; nothing pickled)."""
    return {k: v.detach().cpu().numpy().copy() for k, v in module.state_dict().items()}


def state_from_arrays(module: nn.Module, arrays: dict[str, np.ndarray]) -> nn.Module:
    """Load arrays written by :func:`state_to_arrays` into ``module`` (strict: names and shapes must match)."""
    state = {k: torch.as_tensor(np.asarray(v)) for k, v in arrays.items()}
    module.load_state_dict(state, strict=True)
    return module


def check_training_params(
    *, epochs: Any, batch_size: Any, max_minutes: Any, patience: Any, validation_share: Any
) -> None:
    """ParameterError naming the first training parameter that cannot work."""

    def positive_int(name: str, v: Any) -> None:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v <= 0:
            raise ParameterError(f"{name} must be a positive integer, got {v!r}")

    positive_int("epochs", epochs)
    positive_int("batch_size", batch_size)
    positive_int("patience", patience)
    if max_minutes is not None and (
        isinstance(max_minutes, bool) or not isinstance(max_minutes, (int, float)) or not max_minutes > 0
    ):
        raise ParameterError(f"max_minutes must be a positive number or None, got {max_minutes!r}")
    if isinstance(validation_share, bool) or not isinstance(validation_share, (int, float)):
        raise ParameterError(f"validation_share must be a number in [0, 0.5], got {validation_share!r}")
    if not 0 <= validation_share <= 0.5:
        raise ParameterError(f"validation_share must be in [0, 0.5], got {validation_share!r}")


@dataclass
class TrainResult:
    """What a training run did: epochs run, why it stopped, the losses per epoch, the best validation loss."""

    epochs: int = 0
    stopped: str = "epochs"  # "epochs" | "early_stopping" | "time_budget" | "privacy_budget"
    best_epoch: int = 0
    best_validation: float = math.inf
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "epochs": self.epochs,
            "stopped": self.stopped,
            "best_epoch": self.best_epoch,
            "best_validation": None if not math.isfinite(self.best_validation) else self.best_validation,
            "seconds": round(self.seconds, 3),
            "history": self.history[-200:],
        }


def train_loop(
    *,
    module: nn.Module,
    epoch: Callable[[int], dict[str, float]],
    validate: Callable[[], float] | None,
    epochs: int,
    patience: int,
    max_minutes: float | None,
    progress: bool,
    description: str,
    should_stop: Callable[[], str | None] | None = None,
    min_epochs: int = 0,
) -> TrainResult:
    """Run ``epoch(i)`` (returns mean training losses) up to ``epochs`` times.

    After each epoch ``validate()`` (a held-out loss, lower is better) drives early stopping: training stops
    after ``patience`` epochs without improvement and the best weights are restored. ``max_minutes`` stops
    training after the epoch that crosses the budget (the best weights so far are kept). ``should_stop`` may
    return a reason to stop (e.g. a spent privacy budget). A rich progress bar on stderr shows the losses.

    ``min_epochs`` is a warm-up: the validation loss of the first ``min_epochs`` epochs is recorded but neither
    chosen as the best nor counted for patience, so early stopping cannot pick (or stop at) an early epoch whose
    statistic looks good by chance (a GAN's, say). The budget and ``should_stop`` still apply.
    """
    result = TrainResult()
    start = time.perf_counter()
    best_state: dict[str, torch.Tensor] | None = None
    bar = _progress(progress, description, epochs)
    with bar as (advance,):
        for i in range(epochs):
            losses = epoch(i)
            val = validate() if validate is not None else math.nan
            record = {k: float(v) for k, v in losses.items()}
            if validate is not None:
                record["validation"] = float(val)
            result.history.append(record)
            result.epochs = i + 1
            warm = i + 1 >= min_epochs
            if validate is not None and warm and val < result.best_validation - 1e-6:
                result.best_validation, result.best_epoch = float(val), i + 1
                best_state = {k: v.detach().clone() for k, v in module.state_dict().items()}
            advance(record)
            if validate is not None and warm and i + 1 - max(result.best_epoch, min_epochs - 1) >= patience:
                result.stopped = "early_stopping"
                break
            if max_minutes is not None and time.perf_counter() - start > 60.0 * max_minutes:
                result.stopped = "time_budget"
                break
            reason = should_stop() if should_stop is not None else None
            if reason:
                result.stopped = reason
                break
    if best_state is not None:
        module.load_state_dict(best_state)
    result.seconds = time.perf_counter() - start
    return result


@contextlib.contextmanager
def _progress(enabled: bool, description: str, total: int) -> Iterator[tuple[Callable[[dict[str, float]], None]]]:
    if not enabled:
        yield (lambda record: None,)
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[losses]}"),
    )
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(description, total=total, losses="")

        def advance(record: dict[str, float]) -> None:
            text = " ".join(f"{k}={v:.4g}" for k, v in record.items())
            bar.update(task, advance=1, losses=text)

        yield (advance,)
