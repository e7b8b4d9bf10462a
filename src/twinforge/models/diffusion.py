"""TabDDPM-style diffusion for mixed tables (Kotelnikov et al., "TabDDPM: Modelling Tabular Data with Diffusion
Models", ICML 2023), written from the papers, with a masked diffusion for the categories and a few-step sampler.

- Representation (:class:`~twinforge.models._tabular_nn.QuantileEncoding`): numeric and datetime columns become
  standard-normal scores through their empirical quantile function (as TabDDPM's quantile transformer); discrete
  columns, numeric columns of a few distinct values (``max_points``), and the "is missing" flag of numeric columns
  with missing values, become categorical tokens. A
  numeric cell that is missing is left out of the loss and drawn afresh as noise in training.
- Gaussian part (Ho et al., NeurIPS 2020): ``x_t = sqrt(a_t) x_0 + sqrt(1 - a_t) eps`` with the cosine schedule
  ``a_t = cos^2(pi/2 (t + s) / (1 + s)) / cos^2(pi/2 s / (1 + s))`` (Nichol and Dhariwal, ICML 2021, eq. 17) in
  continuous time ``t`` in (0, 1]; the network predicts ``v = sqrt(a_t) eps - sqrt(1 - a_t) x_0`` (Salimans and Ho,
  ICLR 2022), which stays well scaled at both ends of the schedule.
- Categorical part: absorbing-state ("masked") diffusion (Austin et al., "Structured Denoising Diffusion Models in
  Discrete State-Spaces", NeurIPS 2021; Sahoo et al., "Simple and Effective Masked Diffusion Language Models",
  NeurIPS 2024): at time ``t`` each token is replaced by a mask state with probability ``t``; the network predicts the
  categories of the masked tokens (cross-entropy), each weighted half by 1 and half by ``1 / t``, the weight of the
  masked-diffusion ELBO (MDLM, eq. 10 for the linear schedule; see :func:`diffusion_loss`). Unlike multinomial
  diffusion (Hoogeboom et al. 2021, the choice of TabDDPM), a given category is simply an unmasked token, so
  conditioning on categories is exact by design.
- Denoiser (:class:`Denoiser`): an MLP over the noisy scores and the tokens' one-hots, plus a sinusoidal timestep
  embedding (Vaswani et al. 2017) passed through a small MLP.
- Sampler (:class:`Sampler`): ``steps`` (default 30) steps from ``t = 1`` to 0. The Gaussian part takes DDIM steps
  (Song et al., "Denoising Diffusion Implicit Models", ICLR 2021, eq. 12, with ``eta``); a masked token is
  revealed between ``t`` and ``s < t`` with probability ``(t - s) / t`` (the reverse of the absorbing process),
  drawn from the predicted categories.

Conditions: given categories are unmasked tokens from the start; given numbers replace the predicted ``x_0`` of
their column at every step, so that the column follows a forward-noised trajectory of the given value while the
others are denoised around it (RePaint, Lugmayr et al., CVPR 2022, replacement of the known part); a range clamps
the column's predicted ``x_0`` to the interval of scores that maps into the range at every step (the last step
returns ``x_0`` itself); a set of categories masks the others out of the token's predicted distribution. The
temperature scales the initial and the added noise and divides the logits.

Marginal calibration: after training, per-token logit biases, added at every reveal, are fitted by raking so
that the generated categories follow the training frequencies (:meth:`TabDDPM._calibrate`); then a monotone map
per numeric column sends generated values onto the training marginal
(:func:`~twinforge.models._tabular_nn.fit_value_map`, the same map as ``ctgan``'s, with a knot at each real row in
the outer 0.5% of each end), which keeps every row's rank, so the dependencies the network learned are untouched.

Derived columns: a numeric or datetime column that is an exact linear function of one or two others (weather's and
flights' hourly stamp, ``24 day + hour`` hours; flights' ``sched_dep_time = 100 hour + minute``) is computed from
its drawn inputs after sampling (:func:`~twinforge.models._tabular_nn.fit_derived`, as ``ctgan``); the network
still learns it, so conditions on it are drawn as before.

Residual pairs: the later column ``y`` of a heavy-tailed numeric pair with a strong linear relation (flights'
departure and arrival delays, correlation 0.93) is also learned as its residual on the earlier ``x``, and rebuilt
from the drawn ``x`` and residual after sampling, as in ``tvae`` (:func:`~twinforge.models._tabular_nn.fit_residuals`);
``y``'s value map is fitted on the rebuilt values, so its marginal is kept too.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from twinforge.errors import ParameterError
from twinforge.models._nn import (
    MLP,
    Adam,
    check_training_params,
    resolve_device,
    seeded,
    segment_nll,
    state_from_arrays,
    state_to_arrays,
    train_loop,
    training_precision,
)
from twinforge.models._registry import register
from twinforge.models._request import SampleRequest
from twinforge.models._tabular_nn import (
    QuantileConstraints,
    QuantileEncoding,
    apply_derived,
    apply_residuals,
    apply_value_map,
    draw_keylike,
    finish,
    fit_derived,
    fit_keylike,
    fit_residuals,
    fit_value_map,
    split_rows,
    with_residuals,
    without,
)
from twinforge.models.base import Synthesizer
from twinforge.privacy import dp_sgd, is_private, public_arrays

_TIME_DIM = 128  # size of the sinusoidal timestep embedding
_EPOCHS = 85  # the default epochs and patience (see TabDDPM's epochs)
_PATIENCE = 20
_VALIDATION_SHARE = 0.1
# with a token wider than the network (see TabDDPM._schedule): epochs, patience (when rows are held out), and no rows
# held out by default
_WIDE_EPOCHS = 200
_WIDE_PATIENCE = 40
_X0_LIMIT = 5.0  # predicted scores are clamped to +-5 (the quantile scores lie within +-4.75)
_BATCH_ROWS = 20_000  # rows per denoiser call when sampling
_CALIBRATION_ROWS = 5_000  # generated rows the value map is fitted on (at most; as many as the training rows)
_TOKEN_ROWS = 1_000  # generated rows per round of the category calibration
_TOKEN_ROUNDS = 3
_ELBO_SHARE = 0.5  # a masked token's cross-entropy weight: 1 - share + share / t (see diffusion_loss)
# 1 / t is capped at 1 / 0.02: times are drawn down to 1e-3, where 1 / t would let a few rows' cross-entropies
# dominate a batch
_ELBO_FLOOR = 0.02


# ------------------------------------------------------------------------------------------ network
def timestep_embedding(t: torch.Tensor, dim: int = _TIME_DIM) -> torch.Tensor:
    """Sinusoidal embedding of ``t`` in [0, 1] (scaled to 0..1000 as in DDPM)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10_000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = 1000.0 * t[:, None].float() * freqs[None, :]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=1)


class Denoiser(nn.Module):
    """``(x_t scores, token one-hots with a mask state, t) -> (v for each score, logits for each token)``.

    A token with more categories than the hidden width (flights' ``tailnum``: 1,839 in 4,000 rows) is "wide": its
    one-hot input and its logits would be most of the network's work (flights: about 85% of the multiply-adds per
    row), though a row needs its logits only where the token is masked (training) or revealed (sampling). With a
    wide token the input layer gathers the tokens' weight columns instead of multiplying their one-hots, and the
    wide token's logits are computed for those rows only; the function is the same. Without one (every other
    table so far) the network runs as one dense product per layer, as before.
    """

    def __init__(self, d_num: int, token_sizes: list[int], width: int, depth: int):
        super().__init__()
        self.d_num = d_num
        self.token_sizes = list(token_sizes)
        d_in = d_num + sum(k + 1 for k in self.token_sizes)
        self.proj = nn.Linear(d_in, width)
        self.time = nn.Sequential(nn.Linear(_TIME_DIM, width), nn.SiLU(), nn.Linear(width, width))
        self.body = MLP(width, width, depth, d_num + sum(self.token_sizes))
        sizes = np.asarray(self.token_sizes, dtype="int64")
        self.wide = [j for j, k in enumerate(self.token_sizes) if k > width]
        narrow = np.asarray([k <= width for k in self.token_sizes], dtype=bool)
        # where token j's one-hot starts in the input, and its logits in the output of the last layer
        self._in_start = d_num + np.concatenate([[0], np.cumsum(sizes + 1)[:-1]]).astype("int64")
        head_start = d_num + np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype("int64")
        self._wide_span = {j: (int(head_start[j]), int(head_start[j] + sizes[j])) for j in self.wide}
        # the "dense" output: the scores' v and the narrow tokens' logits (everything, when no token is wide)
        self._dense_rows = None
        if self.wide:
            keep = [np.arange(d_num)] + [np.arange(head_start[j], head_start[j] + k) for j, k in enumerate(sizes)]
            self._dense_rows = np.concatenate([keep[0], *(keep[j + 1] for j in np.flatnonzero(narrow))])
        dense_sizes = np.where(narrow, sizes, 0)
        dense_start = d_num + np.concatenate([[0], np.cumsum(dense_sizes)[:-1]]).astype("int64")
        widest = int(dense_sizes.max()) if len(sizes) else 0
        # each narrow token's logits, padded to the widest narrow token, in the dense output
        self._logit_valid = np.arange(widest)[None, :] < dense_sizes[:, None]
        self._logit_index = np.where(self._logit_valid, dense_start[:, None] + np.arange(widest)[None, :], d_num)
        self._narrow = np.flatnonzero(narrow)
        self._cache: dict[Any, tuple[torch.Tensor, ...]] = {}

    @property
    def head(self) -> nn.Linear:
        """The last layer: scores' v and every token's logits."""
        return self.body.net[-1]

    def _tensors(self, key: str, device: torch.device, make) -> tuple[torch.Tensor, ...]:
        if (key, device) not in self._cache:
            with torch.inference_mode(False):  # normal tensors even when first asked for under inference mode
                self._cache[key, device] = tuple(torch.as_tensor(a, device=device) for a in make())
        return self._cache[key, device]

    def layout(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(input starts of the tokens, padded narrow logit positions in the dense output (tokens, widest
        narrow), their valid mask)``."""
        return self._tensors("layout", device, lambda: (self._in_start, self._logit_index, self._logit_valid))

    def token_segments(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(dense output positions of the narrow tokens' logits, narrow token of each, where each starts among
        them, the narrow tokens)``."""

        def make():
            sizes = np.asarray(self.token_sizes, dtype="int64")[self._narrow]
            positions = self.d_num + np.arange(int(sizes.sum()))
            segment = np.repeat(np.arange(len(sizes)), sizes)
            return positions, segment, np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype("int64"), self._narrow

        return self._tensors("segments", device, make)

    def _hooked(self) -> bool:
        """Opacus (DP-SGD) hooks the layers for per-sample gradients: they must then be called as modules."""
        return any(m._forward_hooks or m._forward_pre_hooks for m in (self.proj, self.head))

    def hidden(self, x: torch.Tensor, tokens: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The last hidden layer; ``t`` holds one time per row, or a single time for every row (embedded once)."""
        start = self.layout(x.device)[0]
        if self.wide and not self._hooked():  # a sum of the tokens' weight columns, gathered
            w = self.proj.weight
            h = F.linear(x, w[:, : self.d_num], self.proj.bias) + F.embedding_bag(tokens + start, w.t(), mode="sum")
        else:
            inp = F.pad(x, (0, self.proj.in_features - self.d_num))
            if self.token_sizes:  # every token's one-hot in one scatter
                inp = inp.scatter(1, tokens + start, 1.0)
            h = self.proj(inp)
        h = h + self.time(timestep_embedding(t.reshape(-1)))
        return self.body.net[:-1](h)

    def dense(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(the dense output, every output or None)``: with a wide token every output only when hooked."""
        if self._dense_rows is None:
            return self.head(h), None
        rows = self._tensors("dense", h.device, lambda: (self._dense_rows,))[0]
        if self._hooked():
            out = self.head(h)
            return out[:, rows], out
        return F.linear(h, self.head.weight[rows], self.head.bias[rows]), None

    def wide_logits(self, h: torch.Tensor, out: torch.Tensor | None, j: int, rows: torch.Tensor) -> torch.Tensor:
        """The logits of wide token ``j`` for ``rows`` only."""
        a, b = self._wide_span[j]
        if out is not None:
            return out[rows, a:b]
        return F.linear(h[rows], self.head.weight[a:b], self.head.bias[a:b])

    def forward(self, x: torch.Tensor, tokens: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Every output: the scores' v, then each token's logits."""
        return self.head(self.hidden(x, tokens, t))

    def token_logits(self, out: torch.Tensor, rows: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """The logits of narrow token ``tokens[i]`` of row ``rows[i]`` in the dense output, as one (pairs, widest
        narrow) float tensor, padding at -inf."""
        _, index, valid = self.layout(out.device)
        return out[rows[:, None], index[tokens]].float().masked_fill(~valid[tokens], -torch.inf)


# ------------------------------------------------------------------------------------------ schedule
def alpha_bar(t: torch.Tensor, s: float = 0.008) -> torch.Tensor:
    """Cosine schedule (Nichol and Dhariwal 2021, eq. 17), in continuous time."""
    f = torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2
    return (f / math.cos(s / (1 + s) * math.pi / 2) ** 2).clamp(0.0, 1.0)


def diffusion_loss(
    net: Denoiser,
    x0: torch.Tensor,
    valid: torch.Tensor,
    tokens: torch.Tensor,
    t: torch.Tensor,
) -> torch.Tensor:
    """v-prediction MSE on the present scores plus cross-entropy on the masked tokens, per feature and row.

    A masked token's cross-entropy is weighted ``1 - s + s / t`` (``s = _ELBO_SHARE``): ``1 / t`` is the weight of
    the masked-diffusion ELBO (a token is masked with probability ``t``, so its expected weight is 1 at every
    time). Weighted 1 only, the loss counted the tokens at ``t`` near 1, where they are predicted from almost
    nothing, more than those near 0, where they are predicted from the rest of the row: the network learned the
    categories' dependence on the other columns poorly (default: ``P(default = Yes | balance above 2,000)``
    predicted at ``t = 0.001`` from the other columns 0.16 and 0.22 for fit seeds 0 and 1, against 0.72 in the
    rows; ELBO weight 0.63 and 0.67; this half-and-half weight 0.61 and 0.46). Half and half rather than the ELBO's
    own weight: on splits of the bench tables' training rows it gained as much on airports (TSTR/TRTR) and planes
    (quality) and lost less on weather.
    """
    n, d = x0.shape
    x0 = torch.where(valid, x0, torch.randn_like(x0))  # a missing cell carries no information
    eps = torch.randn_like(x0)
    a = alpha_bar(t)[:, None]
    x_t = a.sqrt() * x0 + (1 - a).sqrt() * eps
    v = a.sqrt() * eps - (1 - a).sqrt() * x0
    masked = torch.rand(tokens.shape, device=tokens.device) < t[:, None]
    mask_ids = torch.as_tensor(net.token_sizes, device=tokens.device)
    h = net.hidden(x_t, torch.where(masked, mask_ids, tokens), t)
    out, every = net.dense(h)
    out = out.float()
    total = (((out[:, :d] - v) ** 2) * valid).sum()
    positions, segment, starts, narrow = net.token_segments(out.device)
    weight = (1 - _ELBO_SHARE) + _ELBO_SHARE / t.float().clamp_min(_ELBO_FLOOR)
    if len(narrow):  # cross-entropy of every masked narrow token at once
        ce = segment_nll(out[:, positions], segment, len(narrow), tokens[:, narrow] + starts)
        total = total + (ce * masked[:, narrow] * weight[:, None]).sum()
    for j in net.wide:  # a wide token's, on its masked rows only
        rows = masked[:, j].nonzero(as_tuple=True)[0]
        logits = net.wide_logits(h, every, j, rows).float()
        ce = torch.logsumexp(logits, 1) - logits.gather(1, tokens[rows, j, None])[:, 0]
        total = total + (ce * weight[rows]).sum()
    return total / (n * max(1, d + tokens.shape[1]))


class Sampler:
    """The few-step reverse process (see the module docstring) for one batch of rows and its conditions."""

    def __init__(self, net: Denoiser, steps: int, eta: float):
        self.net, self.steps, self.eta = net, steps, eta
        self.revealed: torch.Tensor | None = None  # set to zeros (tokens, widest) to sum reveal probabilities

    @torch.no_grad()
    def __call__(
        self,
        cons: QuantileConstraints,
        seen: list[np.ndarray],
        temperature: float,
        device: torch.device,
        bias: list[np.ndarray] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        net, n, d = self.net, len(cons.z), self.net.d_num
        sizes = net.token_sizes
        x = torch.randn(n, d, device=device) * temperature
        z_known = torch.as_tensor(np.nan_to_num(cons.z), dtype=torch.float32, device=device)
        known = torch.as_tensor(~np.isnan(cons.z), device=device)
        low = torch.as_tensor(np.maximum(cons.z_low, -_X0_LIMIT), dtype=torch.float32, device=device)
        high = torch.as_tensor(np.minimum(cons.z_high, _X0_LIMIT), dtype=torch.float32, device=device)
        mask_ids = torch.as_tensor(sizes, device=device, dtype=torch.long)
        given = torch.as_tensor(cons.tokens, device=device)
        tokens = torch.where(given >= 0, given, mask_ids.expand(n, -1)) if sizes else given
        # categories a revealed token may take: seen in training and allowed by a set condition (padded)
        allowed = torch.zeros((len(sizes), max(sizes, default=0)), dtype=torch.bool, device=device)
        for j, k in enumerate(sizes):
            ok = seen[j] & cons.allowed.get(j, np.ones(k, dtype=bool))
            if not ok.any():  # a set of only unseen levels: honoured as asked
                ok = cons.allowed[j]
            allowed[j, :k] = torch.as_tensor(ok, device=device)
        shift = torch.zeros(allowed.shape, device=device)  # the calibration's logit biases, padded
        for j, b in enumerate(bias or []):
            shift[j, : len(b)] = torch.as_tensor(b, dtype=torch.float32, device=device)
        ts = torch.linspace(1.0, 0.0, self.steps + 1, device=device)
        x0 = x
        for i in range(self.steps):
            t, s = ts[i], ts[i + 1]
            h = net.hidden(x, tokens, t)
            out, every = net.dense(h)
            a_t, a_s = alpha_bar(t), alpha_bar(s)
            x0 = a_t.sqrt() * x - (1 - a_t).sqrt() * out[:, :d]
            x0 = torch.maximum(torch.minimum(x0, high), low)
            x0 = torch.where(known, z_known, x0)
            eps = (x - a_t.sqrt() * x0) / (1 - a_t).clamp_min(1e-12).sqrt()
            # DDIM step (Song et al. 2021, eq. 12)
            sigma = self.eta * ((1 - a_s) / (1 - a_t).clamp_min(1e-12) * (1 - a_t / a_s.clamp_min(1e-12))).sqrt()
            x = a_s.sqrt() * x0 + (1 - a_s - sigma**2).clamp_min(0).sqrt() * eps
            x = x + sigma * temperature * torch.randn_like(x)
            # reveal masked tokens with probability (t - s) / t, drawn from the predicted categories (Gumbel-max);
            # the noise only for the tokens revealed now (drawing it for every token took half of planes' sampling)
            if sizes:
                reveal = (tokens == mask_ids) & (torch.rand(tokens.shape, device=device) < float((t - s) / t))
                rows, cols = reveal.nonzero(as_tuple=True)
                for r, c, logits in self._reveal_logits(h, out, every, rows, cols):
                    k = logits.shape[1]
                    logits = logits + shift[c, :k]
                    logits = (logits / temperature).masked_fill(~allowed[c, :k], -math.inf)
                    gumbel = -torch.empty_like(logits).exponential_().log()
                    tokens = tokens.index_put((r, c), (logits + gumbel).argmax(1))
                    if self.revealed is not None:  # the categories' probabilities where revealed (calibration)
                        self.revealed[:, :k].index_add_(0, c, torch.softmax(logits, 1).nan_to_num())
        return x0.cpu().numpy().astype("float64"), tokens.cpu().numpy()

    def _reveal_logits(self, h: torch.Tensor, out: torch.Tensor, every: torch.Tensor | None, rows, cols):
        """``(rows, tokens, logits)`` of the tokens revealed now: the narrow ones together, each wide one alone."""
        net = self.net
        if not len(rows):
            return
        if not net.wide:
            yield rows, cols, net.token_logits(out, rows, cols)
            return
        narrow = torch.as_tensor([j not in net.wide for j in range(len(net.token_sizes))], device=cols.device)
        sel = narrow[cols]
        if sel.any():
            yield rows[sel], cols[sel], net.token_logits(out, rows[sel], cols[sel])
        for j in net.wide:
            sel = cols == j
            if sel.any():
                yield rows[sel], cols[sel], net.wide_logits(h, every, j, rows[sel]).float()


@register("ddpm")
class TabDDPM(Synthesizer):
    """Diffusion model for tables: Gaussian diffusion on quantile scores, masked diffusion on categories.

    Parameters
    ----------
    seed : int, optional
        Seed for fitting and sampling; same seed and data give the same model and samples (on the CPU).
    epochs : int, optional
        Passes over the training rows; the learning rate decays (cosine) to a tenth over them, and early stopping
        may end training sooner. None: 85 (100 epochs took 0.35x of SDV TVAE's fit time on churn and covid, above
        the one-third target), or 200 when a discrete column has more categories than ``width`` (a "wide" token:
        see :class:`Denoiser`; not under DP).
    batch_size : int, default 512
        Rows per step.
    width, depth : int, default 192, 3
        Hidden width and number of hidden layers of the denoiser (192 trains in about 60% of the time of 256 with
        the same quality score on covid and default, 0.966 and 0.974).
    learning_rate : float, default 2e-3
        AdamW's learning rate.
    steps : int, default 30
        Denoising steps when sampling (sampling time grows linearly with them).
    eta : float, default 1.0
        DDIM's stochasticity: 0 is deterministic given the initial noise, 1 is as random as the ancestral sampler.
    n_quantiles : int, default 1000
        Quantiles kept per numeric column.
    max_points : int, default 10
        A numeric column with at most this many distinct values (a count of rooms, a 0/1 flag, a time zone) is
        learned as categories of its values, as ``ctgan``'s and ``tvae``'s point modes; 0: every numeric column
        is a quantile score. Not under DP (the set of values would come from the private rows).
    patience : int, optional
        Epochs without a better held-out loss before training stops. None: 20, or 40 with a wide token (as
        ``epochs``).
    validation_share : float, optional
        Share of rows held out for early stopping (0 disables it). None: 0.1, or 0 with a wide token (not under
        DP, which holds none out anyway): see :meth:`TabDDPM._schedule`.
    max_minutes : float, optional
        Wall-clock budget for training; the best weights so far are kept.
    device : str, default "auto"
        "auto" (a GPU when present), "cpu" or "cuda[:N]".
    progress : bool, default True
        Show a progress bar with the losses on stderr.
    epsilon : float, optional
        Train with differential privacy at this budget (DP-SGD; see :mod:`twinforge.privacy`); None: no DP.
        Under DP, early stopping is off.
    delta : float, optional
        The DP delta; by default ``min(1e-5, 0.1 / n)``. Must be below ``1 / n``.

    Examples
    --------
    >>> import twinforge
    >>> real = twinforge.load_demo()
    >>> model = twinforge.create("ddpm", seed=0, epochs=2, progress=False).fit(real)
    >>> model.sample(5, conditions={"churn": "Yes"})["churn"].tolist()
    ['Yes', 'Yes', 'Yes', 'Yes', 'Yes']
    """

    summary = "Diffusion (TabDDPM-style): Gaussian + masked diffusion, few-step sampler, exact conditions"
    supports_conditions = True

    def __init__(
        self,
        *,
        seed: int | None = None,
        epochs: int | None = None,
        batch_size: int = 512,
        width: int = 192,
        depth: int = 3,
        learning_rate: float = 2e-3,
        steps: int = 30,
        eta: float = 1.0,
        n_quantiles: int = 1000,
        max_points: int = 10,
        patience: int | None = None,
        validation_share: float | None = None,
        max_minutes: float | None = None,
        device: str = "auto",
        progress: bool = True,
        epsilon: float | None = None,
        delta: float | None = None,
    ):
        self.seed = seed
        self.epochs = epochs
        self.batch_size = batch_size
        self.width = width
        self.depth = depth
        self.learning_rate = learning_rate
        self.steps = steps
        self.eta = eta
        self.n_quantiles = n_quantiles
        self.max_points = max_points
        self.patience = patience
        self.validation_share = validation_share
        self.max_minutes = max_minutes
        self.device = device
        self.progress = progress
        self.epsilon = epsilon
        self.delta = delta

    def _check_params(self) -> None:
        check_training_params(
            epochs=_EPOCHS if self.epochs is None else self.epochs,
            batch_size=self.batch_size,
            max_minutes=self.max_minutes,
            patience=_PATIENCE if self.patience is None else self.patience,
            validation_share=_VALIDATION_SHARE if self.validation_share is None else self.validation_share,
        )
        for name in ("width", "depth", "steps"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v <= 0:
                raise ParameterError(f"{name} must be a positive integer, got {v!r}")
        q = self.n_quantiles
        if isinstance(q, bool) or not isinstance(q, (int, np.integer)) or q < 2:
            raise ParameterError(f"n_quantiles must be an integer >= 2, got {q!r}")
        k = self.max_points
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
            raise ParameterError(f"max_points must be a non-negative integer (0: none), got {k!r}")
        lr = self.learning_rate
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not 0 < lr < 1:
            raise ParameterError(f"learning_rate must be a number in (0, 1), got {lr!r}")
        eta = self.eta
        if isinstance(eta, bool) or not isinstance(eta, (int, float)) or not 0 <= eta <= 1:
            raise ParameterError(f"eta must be a number in [0, 1], got {eta!r}")
        resolve_device(self.device)

    # ------------------------------------------------------------------------------------ fit
    def _fit(self, arrays: dict[str, np.ndarray], rng: np.random.Generator) -> None:
        self.device_ = resolve_device(self.device)
        self.keylike_ = fit_keylike(arrays, self.transformer_.transforms_, is_private(self))
        arrays = without(arrays, self.keylike_)
        # no random numbers: tables without an exact relation draw the same rows as before
        self.derived_ = fit_derived(arrays, self.transformer_.transforms_, is_private(self))
        # a heavy-tailed linear pair's later column is also learned as its residual (no random numbers, and no
        # such pair on most tables: the same rows as before there)
        transforms = self.transformer_.transforms_
        self.residuals_ = fit_residuals(arrays, transforms, is_private(self))
        arrays = with_residuals(arrays, self.residuals_)
        transforms = {**transforms, **{spec["key"]: transforms[y] for y, spec in self.residuals_.items()}}
        self.encoding_ = QuantileEncoding().fit(
            public_arrays(self, arrays),
            transforms,
            self.n_quantiles,
            max_points=0 if is_private(self) else int(self.max_points),
        )
        enc = self.encoding_
        z, valid, tokens = enc.encode(arrays, rng)
        wide = any(k > self.width for k in enc.token_sizes) and not is_private(self)
        total_epochs, patience, share = self._schedule(wide)
        share = 0.0 if is_private(self) else share  # DP: no data-dependent early stopping
        train, val = split_rows(len(z), share, rng)
        with seeded(rng, self.device_):
            self.denoiser_ = Denoiser(enc.n_numeric_, enc.token_sizes, self.width, self.depth).to(self.device_)
            net = self.denoiser_
            if not enc.columns_:
                self.training_ = {"epochs": 0, "stopped": "no learned columns"}
                return
            data = self._tensors(z[train], valid[train], tokens[train])
            batch = min(int(self.batch_size), len(train))
            steps = max(1, len(train) // batch)
            dp = dp_sgd(self, n_rows=len(train), batch_size=batch, steps=steps * total_epochs, rng=rng)
            if dp is None:
                opt = Adam(net.parameters(), self.learning_rate, weight_decay=1e-4, decoupled=True)
            else:  # Opacus wraps torch.optim's
                opt = dp.make_private(net, torch.optim.AdamW(net.parameters(), self.learning_rate, weight_decay=1e-4))

            def epoch(i: int) -> dict[str, float]:
                net.train()
                perm = torch.randperm(len(train), device=self.device_)
                total = 0.0
                batches = (perm[i * batch : (i + 1) * batch] for i in range(steps)) if dp is None else dp.epoch(steps)
                for rows in batches:
                    # stratified times: one per slice of (0, 1], for a lower-variance loss
                    t = torch.arange(len(rows), device=self.device_) + torch.rand(len(rows), device=self.device_)
                    t = (t / len(rows))[torch.randperm(len(rows), device=self.device_)].clamp_min(1e-3)
                    with training_precision(self.device_, dp is None):
                        loss = diffusion_loss(net, *(x[rows] for x in data), t)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    total += float(loss.detach())
                # cosine decay to a tenth of the rate over ``epochs``: a few epochs go a long way at the end
                decay = 0.1 + 0.45 * (1 + math.cos(math.pi * min(i + 1, total_epochs) / total_epochs))
                for group in opt.param_groups:
                    group["lr"] = self.learning_rate * decay
                return {"loss": total / steps}

            validate = None
            if len(val):
                val_data = self._tensors(z[val], valid[val], tokens[val])
                val_seed = int(rng.integers(2**63 - 1))

                @torch.inference_mode()
                def validate() -> float:
                    net.eval()
                    with seeded(np.random.default_rng(val_seed), self.device_), training_precision(self.device_):
                        # several passes at fixed times and noise: a steadier held-out loss
                        m = len(val_data[0])
                        losses = []
                        for r in range(4):
                            t = ((torch.arange(m, device=self.device_) + (r + 0.5) / 4) / m).clamp_min(1e-3)
                            t = t[torch.randperm(m, device=self.device_)]
                            losses.append(float(diffusion_loss(net, *val_data, t)))
                        return float(np.mean(losses))

            result = train_loop(
                module=net,
                epoch=epoch,
                validate=validate,
                epochs=total_epochs,
                patience=patience,
                max_minutes=self.max_minutes,
                progress=bool(self.progress),
                description="ddpm",
                should_stop=dp.should_stop if dp is not None else None,
            )
            net.eval()
            self.token_bias_ = self._calibrate(rng)
            # under DP the map's target would be the public table, whose numbers come from histograms released
            # with a tenth to three tenths of epsilon: coarser than what the network learned with the rest
            # (airports at epsilon 1: column shapes 0.43 mapped, 0.58 not; churn 0.48 / 0.55; default 0.80 / 0.94)
            self.value_map_ = {} if is_private(self) else self._fit_value_map(arrays, rng)
        self.training_ = result.to_dict()
        if dp is not None:
            self.training_["dp_sgd"] = dp.finish()

    def _schedule(self, wide: bool) -> tuple[int, int, float]:
        """``(epochs, patience, validation share)``: the given ones, or the defaults; with a wide token 200
        epochs and no rows held out.

        A wide token's categories are each seen on a few rows (flights' ``tailnum``: 1.9 rows per level), and on
        a row only where it is masked, so they are learned slowly; the gathered input and the rows-only logits
        (:class:`Denoiser`) keep an epoch's cost as without the token, while a one-hot model such as SDV's TVAE
        pays for its width (flights: 18 s at 85 epochs against SDV TVAE's 119 s). On a split of flights' bench
        training rows (2 fit seeds, 3 sampling seeds each) 170 epochs with patience 40 (early stopping at 112
        and 140) raised the quality score from 0.8237 to 0.8306 (our tvae: 0.8306), mostly in the pairs of
        ``tailnum`` and ``carrier``, ``dest`` and ``arr_delay``. Early stopping itself was then the limit: the
        held-out loss bottomed at epochs 76-100 (81 and 76 with the residual pair), with or without the wide
        token's term in it, while with no rows held out and the full schedule every score kept improving, on the
        rows outside the fit too (quality / detection AUC / TSTR/TRTR, means of the fit seeds: held out 0.8304 /
        0.728 / 0.930; none at 120 epochs 0.8355 / 0.702 / 0.970, 170 epochs 0.8416 / 0.691 / 0.968, 200 epochs
        0.8454 / 0.667 / 0.966, 250 epochs 0.8463 / 0.668 / 0.972): held out, a tenth of the wide token's levels
        are never trained on, and the rest are seen too rarely for their held-out loss to say when to stop. 200
        rather than 250 epochs: fit time (flights: about 0.3x of SDV TVAE's).
        """
        epochs = (_WIDE_EPOCHS if wide else _EPOCHS) if self.epochs is None else int(self.epochs)
        patience = (_WIDE_PATIENCE if wide else _PATIENCE) if self.patience is None else int(self.patience)
        share = (0.0 if wide else _VALIDATION_SHARE) if self.validation_share is None else self.validation_share
        return epochs, patience, float(share)

    def _tensors(self, z: np.ndarray, valid: np.ndarray, tokens: np.ndarray) -> tuple[torch.Tensor, ...]:
        dev = self.device_
        return (
            torch.as_tensor(z, dtype=torch.float32, device=dev),
            torch.as_tensor(valid, device=dev),
            torch.as_tensor(tokens, device=dev),
        )

    def _calibrate(self, rng: np.random.Generator) -> list[np.ndarray]:
        """Per-token logit biases that bring the generated categories to the training frequencies.

        The masked sampler reveals each token from the network's predicted categories; their frequencies over
        generated rows drift from the training ones (covid: ``gender``, ``result``, ``clinic_name`` scored 0.96-0.99
        in SDMetrics' column shapes against ctgan's 0.98-1.00, which calibrates its categories). Each round draws
        ``_TOKEN_ROWS`` rows and moves every bias by ``log(target / generated)`` (raking, as ctgan's
        calibration, but on sampled rows since the reveals have no closed form); a row's category counts by its
        predicted probabilities where it is revealed rather than by its draw, which halves the rows a given
        accuracy needs. The training frequencies are the encoding's, so under DP they are the public ones.
        """
        enc = self.encoding_
        self.token_bias_ = [np.zeros(k) for k in enc.token_sizes]
        if not enc.token_sizes:
            return self.token_bias_
        for _ in range(_TOKEN_ROUNDS):
            with seeded(rng, self.device_):
                freq = self._draw_raw(_TOKEN_ROWS, enc.constraints(None, _TOKEN_ROWS), 1.0, expected=True)
            for j, counts in enumerate(enc.token_counts_):
                seen = counts > 0
                target = counts[seen] / counts.sum()
                got = freq[j, : len(counts)][seen]
                step = np.log(target) - np.log(np.maximum(got, 0.5 / _TOKEN_ROWS))
                self.token_bias_[j][seen] = np.clip(self.token_bias_[j][seen] + step, -5.0, 5.0)
        return self.token_bias_

    def _fit_value_map(self, real: dict[str, np.ndarray], rng: np.random.Generator) -> dict[str, list[np.ndarray]]:
        """Quantile maps of the numeric columns from a batch of generated rows (see ``fit_value_map``).

        The quantile decoding alone leaves the marginals as the network's scores fall: on covid the column shapes
        scored 0.974 against ctgan's 0.988, which maps its values so. A residual pair's ``y`` is mapped after it is
        rebuilt (:meth:`_sample`), so its map is fitted on rebuilt values.
        """
        enc = self.encoding_
        names = [c["name"] for c in enc.columns_ if c["type"] == "numeric"]
        if not names:
            return {}
        n = int(np.clip(len(next(iter(real.values()))), 1_000, _CALIBRATION_ROWS))
        with seeded(rng, self.device_):
            fake = self._draw(n, enc.constraints(None, n), 1.0)
        residuals = getattr(self, "residuals_", {})
        # every numeric score column, few-valued ones too when ``max_points`` leaves them scores (covid's 0/1
        # ``drive_thru_ind`` as a score: 0.947 in SDMetrics' column shapes unmapped, ctgan 0.984); knots at the
        # real rows in the outer 0.5% of each end, so a few far rows are reached (airports' ``lon`` on a split
        # of the training rows, 3 sampling seeds: quality 0.880 -> 0.906 mean; flights 0.809 -> 0.816)
        out = fit_value_map(real, fake, [c for c in names if c not in residuals], min_distinct=2, tail_rows=True)
        if residuals:
            fake = apply_residuals(apply_value_map(fake, out, None, rng), residuals, None)
            out.update(fit_value_map(real, fake, list(residuals), min_distinct=2, tail_rows=True))
        return out

    # ------------------------------------------------------------------------------------ sample
    def _sample(self, n: int, rng: np.random.Generator, request: SampleRequest | None = None) -> dict[str, np.ndarray]:
        enc = self.encoding_
        keys = draw_keylike(getattr(self, "keylike_", {}), n, rng, request)
        if not enc.columns_:
            return finish(keys, request)
        cons = enc.constraints(request, n)
        temperature = request.temperature if request is not None else 1.0
        with seeded(rng, self.device_):
            out = self._draw(n, cons, temperature)
        # a federated model, or one saved before calibration, has no value map, and older or federated models
        # have no residual pairs or derived columns: getattr
        value_map, residuals = getattr(self, "value_map_", {}), getattr(self, "residuals_", {})
        out = apply_value_map(out, {k: v for k, v in value_map.items() if k not in residuals}, request, rng)
        if residuals:  # each rebuilt y, then its map
            out = apply_residuals(out, residuals, request)
            out = apply_value_map(out, {k: v for k, v in value_map.items() if k in residuals}, request, rng)
        out = apply_derived(out, getattr(self, "derived_", {}), request)
        return finish({**out, **keys}, request)

    def _draw(self, n: int, cons: QuantileConstraints, temperature: float) -> dict[str, np.ndarray]:
        """``n`` rows honouring ``cons``, decoded (torch's random state seeded by the caller)."""
        return self.encoding_.decode(*self._draw_raw(n, cons, temperature))

    def _draw_raw(self, n: int, cons: QuantileConstraints, temperature: float, expected: bool = False):
        """``(scores, tokens)`` of ``n`` rows honouring ``cons``; with ``expected``, the tokens' expected category
        frequencies instead (``(tokens, widest)``: the predicted probabilities where each token was revealed)."""
        enc = self.encoding_
        sampler = Sampler(self.denoiser_, int(self.steps), float(self.eta))
        if expected:
            sampler.revealed = torch.zeros((len(enc.token_sizes), max(enc.token_sizes)), device=self.device_)
        seen = [enc.seen(j) for j in range(len(enc.token_sizes))]
        bias = getattr(self, "token_bias_", None)  # none in a federated model, or one saved before calibration
        z = np.zeros((n, enc.n_numeric_))
        tokens = np.zeros((n, len(enc.token_sizes)), dtype="int64")
        for lo in range(0, n, _BATCH_ROWS):
            rows = slice(lo, min(n, lo + _BATCH_ROWS))
            part = QuantileConstraints(cons.z[rows], cons.z_low, cons.z_high, cons.tokens[rows], cons.allowed)
            z[rows], tokens[rows] = sampler(part, seen, temperature, self.device_, bias)
        if expected:
            return sampler.revealed.cpu().numpy().astype("float64") / n
        return z, tokens

    # ------------------------------------------------------------------------------------ state
    def _get_state(self) -> dict[str, Any]:
        return {
            "encoding": self.encoding_.get_state(),
            "denoiser": state_to_arrays(self.denoiser_),
            "keylike": getattr(self, "keylike_", {}),  # none in a federated model
            "value_map": getattr(self, "value_map_", {}),
            "derived": getattr(self, "derived_", {}),
            "residuals": getattr(self, "residuals_", {}),
            "token_bias": getattr(self, "token_bias_", None),
            "training": self.training_,
        }

    def _set_state(self, state: dict[str, Any]) -> None:
        self.device_ = resolve_device(self.device)
        enc = self.encoding_ = QuantileEncoding.from_state(state["encoding"])
        net = Denoiser(enc.n_numeric_, enc.token_sizes, self.width, self.depth)
        self.denoiser_ = state_from_arrays(net, state["denoiser"]).to(self.device_).eval()
        self.keylike_ = state.get("keylike", {})  # none in models saved before key-like columns
        maps = state.get("value_map", {})  # none in models saved before calibration
        self.value_map_ = {k: [np.asarray(a, dtype="float64") for a in v] for k, v in maps.items()}
        self.derived_ = state.get("derived", {})  # none in models saved before derived columns
        self.residuals_ = state.get("residuals", {})  # none in models saved before residual pairs
        if state.get("token_bias") is not None:
            self.token_bias_ = [np.asarray(b, dtype="float64") for b in state["token_bias"]]
        self.training_ = state["training"]
