"""CTGAN: a conditional Wasserstein GAN for mixed tables (Xu et al., "Modeling Tabular data using Conditional GAN",
NeurIPS 2019), written from the paper.

- Representation (section 4.2, :class:`~twinforge.models._tabular_nn.ModeEncoding`): each numeric column is a
  mode of a variational Gaussian mixture plus a scalar within the mode; each discrete column a one-hot; missing
  values are one more category of the column's span, so synthetic missing rates follow the real ones.
- Conditional generator and training-by-sampling (section 4.3, :class:`~twinforge.models._tabular_nn.CondVector`):
  the generator gets a one-hot condition ``cond`` naming one category of one span, learns ``P(row | cond)``, and
  a cross-entropy term makes it honour the condition. Categories are drawn for training by log-frequency, so
  rare categories are learned.
- Generator (section 4.4): ``h1 = h0 (+) ReLU(LN(FC(h0)))``, ``h2 = h1 (+) ReLU(LN(FC(h1)))``, then ``tanh`` for the
  scalars and Gumbel-softmax (tau = 0.2; Jang et al. 2017) for the spans. LayerNorm replaces the paper's BatchNorm,
  so that Opacus can wrap the networks.
- Critic: PacGAN (Lin et al., NeurIPS 2018) packs ``pac`` rows into one input against mode collapse; loss WGAN-GP
  (Gulrajani et al., NeurIPS 2017): ``L_D = E[D(fake)] - E[D(real)] + lambda E[(||grad D(x_hat)|| - 1)^2]``.

Early stopping: a GAN's losses say little about sample quality, so after each epoch a fixed noise batch is
generated and compared with the held-out validation rows by a discriminator-free statistic (:func:`_gap`: the mean
absolute difference of the real and generated rank-correlation matrices, per column pair). Marginals are left out
of it: the calibration and the value map after training fix them, and an earlier statistic that counted them
favoured early epochs, whose marginals are good but whose dependencies are not (SDMetrics' quality on churn: 0.80
at epoch 20, 0.83 at 100, 0.88 at 300), and picked epochs with worse utility (churn TSTR/TRTR 0.83 at its pick,
0.92 at the last epoch). ``min_epochs`` keeps a floor under the pick. Early stopping is still off by default
(``validation_share=0``): training runs ``epochs`` (160, or more steps: see ``epochs``) and keeps the last weights.
Measured on churn at 160 epochs, seed 0, the dependence-only statistic with ``validation_share=0.1`` gave
detection AUC 0.977 and TSTR/TRTR 0.946 against 0.972 and 0.965 without it: the held-out tenth costs more than the
pick gains.

Marginal calibration: after training, per-span logit biases are fitted on generated rows so that the sampled
categories and numeric modes follow the training frequencies (:meth:`CTGAN._calibrate`).

Rare levels (``rare_share``): in unconditional sampling, a row whose rarest discrete level is rarer than
``rare_share`` is generated again conditioned on that level, so that it has the profile the generator learned for
the level against the level's own real rows (training-by-sampling), not the one it gives the level among rows
conditioned on other columns. The calibration is fitted on the rows as sampled.

Conditions (``sample(conditions=...)``): each row's condition vector names one of its fixed categories (an
equality of a discrete column, or the mode of a given number), else a category of an allowed set (a set
condition, or a mode a range overlaps). Rows whose generated values disagree with another condition are generated
again (a few rounds), then forced: categories redrawn within the allowed ones from the generator's softmax,
scalars from a normal truncated to the range, given values written as given.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import torch
from scipy import special, stats
from torch import nn
from torch.nn import functional as F

from twinforge.errors import ParameterError
from twinforge.models._nn import (
    Adam,
    check_training_params,
    resolve_device,
    seeded,
    state_from_arrays,
    state_to_arrays,
    train_loop,
    training_precision,
)
from twinforge.models._registry import register
from twinforge.models._request import SampleRequest
from twinforge.models._tabular_nn import (
    CondVector,
    ModeConstraints,
    ModeEncoding,
    apply_derived,
    apply_value_map,
    collapse_rare,
    collapse_request,
    draw_keylike,
    expand_rare,
    finish,
    fit_derived,
    fit_keylike,
    fit_rare_levels,
    fit_value_map,
    rare_transforms,
    split_rows,
    without,
)
from twinforge.models.base import Synthesizer
from twinforge.privacy import dp_sgd, is_private, public_arrays

_TAU = 0.2  # Gumbel-softmax temperature in training (CTGAN)
_EPOCHS = 160  # default epochs ...
_MIN_STEPS = 600  # ... or more on a small table, for at least this many optimiser steps ...
_MIN_WORK = 100_000  # ... and at least this many steps x the width of a row as the critic sees it ...
_TARGET_STEPS = 3_000  # ... and up to _MAX_EPOCHS epochs for this many steps, where that many epochs reach it ...
_LONG_STEPS = 6_000  # ... or for this many, where that many epochs reach them (a large table)
_MAX_EPOCHS = 300
_GP_WEIGHT = 10.0  # lambda of WGAN-GP
_ROUNDS = 10  # generation rounds for rows whose values disagree with their conditions
_BATCH_ROWS = 20_000  # rows per generator call when sampling
_VALIDATION_ROWS = 2_000
_CALIBRATION_ROWS = 5_000  # generated rows the marginal calibration is fitted on
_CALIBRATION_ROUNDS = 20
_RARE_MIN_ROWS = 100  # training rows a rare level needs before sampling redraws rows on it (see ``rare_share``)


# ------------------------------------------------------------------------------------------ networks
class Generator(nn.Module):
    """``(noise, cond) -> raw outputs``: residual blocks that concatenate their input (section 4.4)."""

    def __init__(self, d_noise: int, d_cond: int, width: int, depth: int, d_out: int):
        super().__init__()
        blocks, d = [], d_noise + d_cond
        for _ in range(depth):
            blocks.append(nn.Sequential(nn.Linear(d, width), nn.LayerNorm(width), nn.ReLU()))
            d += width
        self.blocks = nn.ModuleList(blocks)
        self.out = nn.Linear(d, d_out)

    def forward(self, noise: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        h = torch.cat([noise, cond], dim=1)
        for block in self.blocks:
            h = torch.cat([h, block(h)], dim=1)
        return self.out(h)


class _Dropout(nn.Module):
    """Dropout with its mask drawn from uniforms (``u >= p``): ``nn.Dropout`` draws it with ``bernoulli_``, which
    took about 1.5 ms of ``ctgan``'s 24 ms step on the CPU. Identity in eval mode, as ``nn.Dropout``."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        return x * (torch.rand_like(x) >= self.p).to(x.dtype) * (1.0 / (1.0 - self.p))


class Critic(nn.Module):
    """PacGAN critic: ``pac`` rows (with their conditions) in, one score out."""

    def __init__(self, d_in: int, width: int, depth: int, pac: int):
        super().__init__()
        self.pac = pac
        layers: list[nn.Module] = []
        d = d_in * pac
        for _ in range(depth):
            layers += [nn.Linear(d, width), nn.LeakyReLU(0.2), _Dropout(0.5)]
            d = width
        layers.append(nn.Linear(d, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.reshape(-1, x.shape[1] * self.pac))


class _Pair(nn.Module):
    """Generator and critic as one module, so that early stopping restores both."""

    def __init__(self, generator: Generator, critic: Critic):
        super().__init__()
        self.generator, self.critic = generator, critic


def gradient_penalty(critic: Critic, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """WGAN-GP's penalty on points between real and fake packs (one mixing weight per pack)."""
    pac = critic.pac
    alpha = torch.rand(real.shape[0] // pac, 1, 1, device=real.device).expand(-1, pac, real.shape[1])
    alpha = alpha.reshape(-1, real.shape[1])
    mixed = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(mixed).float().sum(), mixed, create_graph=True)
    norm = grad.float().reshape(-1, pac * real.shape[1]).norm(2, dim=1)
    return ((norm - 1) ** 2).mean()


@register("ctgan")
class CTGAN(Synthesizer):
    """Conditional tabular GAN with mode-specific normalisation, training-by-sampling, PacGAN and WGAN-GP.

    Parameters
    ----------
    seed : int, optional
        Seed for fitting and sampling; same seed and data give the same model and samples (on the CPU).
    epochs : int, optional
        Passes over the training rows (SDV's CTGAN runs 300 of its slower epochs). By default 160, with two floors
        in optimiser steps (a GAN learns per step, not per row). At least 600 steps (as ``tvae``): airports' 1,166
        training rows make 2 steps an epoch, and on a split of them (fit on 80%, 1 step an epoch; sampling seeds
        0/1/2) detection AUC against the other 20% went 0.965 -> 0.959 -> 0.944 (mean) from 320 to 500 to 640
        steps. And at least 3,000 steps where at most 300 epochs reach them (10 or more steps an epoch, about 5,000
        rows): on a split of churn's training rows (9 steps an epoch) TSTR/TRTR went 0.906 -> 0.960 -> 0.984 and
        detection AUC 0.972 -> 0.964 -> 0.957 (means of sampling seeds 0/1/2) from 160 to 240 to 300 epochs. A
        smaller table would need more than 300 epochs, over the fit-time target (weather, 3 steps an epoch: 600
        steps already take 0.24x of SDV CTGAN's CPU time). A large table, where at most 300 epochs reach 6,000
        steps (20 or more steps an epoch: 10,000 rows or more), trains for 6,000: a rare category's dependence on
        the other columns is learned late. On a split of covid's training rows (19 steps an epoch; fit seeds 0/1,
        means of sampling seeds 0/1/2), 160 -> 250 -> 316 epochs (3,040 -> 4,750 -> 6,004 steps): TSTR/TRTR
        0.855/0.845 -> 0.895/0.860 -> 0.900/0.896, detection AUC 0.948/0.951 -> 0.943/0.945 -> 0.936/0.942. The
        dependence lost at 160 epochs was that of the rare ``invalid`` result on long ``rec_ver_tat`` times
        (one-vs-rest AUC of ``invalid`` trained on our rows 0.64, on SDV CTGAN's 0.76, on the real ones 0.96).
        And a floor on the work, not only on the steps: at least 100,000 / w steps, w the width of a row as the
        critic sees it (encoded columns and conditional vector), because a step's cost grows with w. A narrow
        table's steps are cheap and it gets more of them: airports (w = 76) 1,316 steps, weather (186) and wider
        tables no more than before. Airports' split (1 step an epoch, means of sampling seeds 0/1/2; pac 10): 600
        steps detection AUC 0.955, TSTR/TRTR -0.27; 1,000 steps 0.761, 0.48; 1,200 steps 0.699, 0.42. Not under
        DP, whose budget is planned for the given epochs.
    batch_size : int, default 500
        Rows per step (rounded down to a multiple of ``pac``).
    noise_dim : int, default 128
        Size of the generator's noise input.
    width, depth : int, default 256, 2
        Hidden width and number of hidden layers of the generator and of the critic.
    pac : int, default 5
        Rows the critic sees at once (PacGAN; the paper and SDV use 10). A smaller pack lets the critic judge
        each row's own combination of values, where rare rows (covid's positive tests and their ct values, a
        category pinned by another) were lost in a pack of ten. On splits of the bench's training rows (fit on
        80%, scored on the other 20%, means of sampling seeds 0/1/2), pac 10 -> 5 -> 2: churn (300 epochs)
        detection AUC 0.957 -> 0.918 -> 0.892, TSTR/TRTR 0.984 -> 1.000 -> 0.997; covid TSTR/TRTR 0.784 ->
        0.855, detection 0.963 -> 0.948; basic_motions TSTR/TRTR 0.867 -> 0.879 -> 0.868, detection 0.857 ->
        0.858 -> 0.898; airports detection 0.955 -> 0.912 -> 0.763. 2 costs more CPU (more packs through the
        critic's inner layers: churn +24%, over the fit-time target) and was worse on basic_motions.
    penalty_every : int, default 1
        The critic's gradient penalty is computed every this many steps, weighted up by as much ("lazy
        regularisation", Karras et al., "Analyzing and Improving the Image Quality of StyleGAN", CVPR 2020,
        section 3.1): the penalty's double backward pass is the costliest part of a step. 1 is WGAN-GP as published.
    learning_rate : float, default 2e-4
        Adam's learning rate for both networks.
    max_modes : int, default 10
        Most mixture modes per numeric column.
    max_levels : int or None, default 100
        A discrete column with more levels than this learns its ``max_levels`` commonest levels and one "other";
        a row generated as "other" gets one of the remaining levels, drawn from their training frequencies given
        the column's most predictive other discrete column (flights' ``tailnum`` given ``carrier``). Keeps the
        generator's outputs and the conditional vector narrow: on flights (4,000 rows, 1,839 tail numbers) the
        network would otherwise be 2,085 outputs wide and the critic's input 41,530. None learns every level.
        Not under DP.
    likeliest_modes : bool, default False
        Sample each numeric column's mixture mode as the generator's likeliest, not as a draw from its softmax; the
        value map then gives each column its marginal back. Independent draws per column put strongly related
        numeric columns in unrelated modes (a 0.99-correlated heavy-tailed pair: 0.67 drawn, 0.83 likeliest). Off by
        default: on a split of the bench's training rows it helped churn a little (TSTR/TRTR 0.944 -> 0.966, mean
        of 3 sampling seeds; detection 0.974 -> 0.971) but cost covid more (TSTR/TRTR 0.790 -> 0.677, one seed).
    rare_share : float, default 0.05
        In unconditional sampling, a row whose rarest discrete level has a training share below this, and at least
        100 training rows, is generated again, conditioned on that level (of its discrete columns' levels, the one
        with the smallest share). The generator learns ``P(row | level)`` from the critic comparing its rows with
        the level's real rows (training-by-sampling), but it places a rare level among rows conditioned on other
        columns by its own ``P(level | condition)``, which the critic judges on few rows: covid's 1.9% ``invalid``
        results came out of such rows within the commonest drive-through profile (73% clinical lab; real invalid
        rows: 33%). Redrawn rows take their level's learned profile; the marginal calibration is fitted on the rows
        as sampled, so levels keep their frequencies. Covid, bench fit (6,000 steps, sampling seeds 0/1/2),
        TSTR/TRTR 0.911/0.919/0.928 -> 0.955/0.966/0.969, detection AUC 0.941/0.943/0.945 -> 0.945/0.938/0.943.
        A level seen on fewer rows is left alone: its learned profile is poor (without the 100-row floor, on
        planes, whose ``model`` puts 76% of rows on levels under 5%, TSTR/TRTR fell 0.320 -> 0.040; ames 0.085 ->
        -0.285, with the floor -0.071; covid's seeds 0.955/0.941/0.929). On a split of covid's training rows
        without the floor (fit on 80%, means of sampling seeds 0/1/2), TSTR/TRTR 0.900 -> 0.957 (fit seed 0) and
        0.896 -> 0.922 (fit seed 1). Without the calibration on redrawn rows, ``invalid`` rose to 2.7-3.6% of rows.
        0 turns it off. Rows under conditions, rebalancing or seed data are drawn as before.
    patience : int, default 30
        Epochs without a better validation statistic before training stops (counted from ``min_epochs``).
    min_epochs : int, default 80
        Epochs trained before early stopping may pick or stop at an epoch (at most two thirds of ``epochs``): the
        statistic favours early epochs, whose marginals are good but whose dependencies between columns are not
        yet learned.
    validation_share : float, default 0.0
        Share of rows held out for early stopping (0 disables it; see the module docstring for why it is off).
    max_minutes : float, optional
        Wall-clock budget for training; the best weights so far are kept.
    device : str, default "auto"
        "auto" (a GPU when present), "cpu" or "cuda[:N]".
    progress : bool, default True
        Show a progress bar with the losses on stderr.
    epsilon : float, optional
        Train with differential privacy at this budget; None: no DP. Under DP (as in DP-GAN, Xie et al. 2018)
        only the critic sees real rows and it trains with DP-SGD (:mod:`twinforge.privacy`), one row per input
        (``pac`` is 1: a pack would mix rows in one clipped gradient) and with the standard GAN loss (the
        gradient penalty of WGAN-GP has no per-sample gradients); the generator learns only through the critic.
        Real rows are drawn by Poisson sampling, each conditioned on one of its own categories; fake rows get
        conditions from the DP frequencies. Early stopping is off.
    delta : float, optional
        The DP delta; by default ``min(1e-5, 0.1 / n)``. Must be below ``1 / n``.

    Examples
    --------
    >>> import twinforge
    >>> real = twinforge.load_demo()
    >>> model = twinforge.create("ctgan", seed=0, epochs=2, progress=False).fit(real)
    >>> model.sample(5, conditions={"churn": "Yes"})["churn"].tolist()
    ['Yes', 'Yes', 'Yes', 'Yes', 'Yes']
    """

    summary = "Conditional GAN (CTGAN): mode-specific normalisation, training-by-sampling, PacGAN, WGAN-GP"
    supports_conditions = True

    def __init__(
        self,
        *,
        seed: int | None = None,
        epochs: int | None = None,
        batch_size: int = 500,
        noise_dim: int = 128,
        width: int = 256,
        depth: int = 2,
        pac: int = 5,
        penalty_every: int = 1,
        learning_rate: float = 2e-4,
        max_modes: int = 10,
        max_levels: int | None = 100,
        likeliest_modes: bool = False,
        rare_share: float = 0.05,
        patience: int = 30,
        min_epochs: int = 80,
        validation_share: float = 0.0,
        max_minutes: float | None = None,
        device: str = "auto",
        progress: bool = True,
        epsilon: float | None = None,
        delta: float | None = None,
    ):
        self.seed = seed
        self.epochs = epochs
        self.batch_size = batch_size
        self.noise_dim = noise_dim
        self.width = width
        self.depth = depth
        self.pac = pac
        self.penalty_every = penalty_every
        self.learning_rate = learning_rate
        self.max_modes = max_modes
        self.max_levels = max_levels
        self.likeliest_modes = likeliest_modes
        self.rare_share = rare_share
        self.patience = patience
        self.min_epochs = min_epochs
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
            patience=self.patience,
            validation_share=self.validation_share,
        )
        for name in ("noise_dim", "width", "depth", "pac", "penalty_every", "max_modes"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v <= 0:
                raise ParameterError(f"{name} must be a positive integer, got {v!r}")
        k = self.max_levels
        if k is not None and (isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 2):
            raise ParameterError(f"max_levels must be an integer of at least 2, or None (learn every level); got {k!r}")
        if not isinstance(self.likeliest_modes, (bool, np.bool_)):
            raise ParameterError(f"likeliest_modes must be True or False, got {self.likeliest_modes!r}")
        r = self.rare_share
        if isinstance(r, bool) or not isinstance(r, (int, float)) or not 0 <= r <= 1:
            raise ParameterError(f"rare_share must be a number in [0, 1] (0 turns the redraw off), got {r!r}")
        m = self.min_epochs
        if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or m < 0:
            raise ParameterError(f"min_epochs must be a non-negative integer, got {m!r}")
        lr = self.learning_rate
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not 0 < lr < 1:
            raise ParameterError(f"learning_rate must be a number in (0, 1), got {lr!r}")
        resolve_device(self.device)

    # ------------------------------------------------------------------------------------ fit
    def _fit(self, arrays: dict[str, np.ndarray], rng: np.random.Generator) -> None:
        self.device_ = resolve_device(self.device)
        self.keylike_ = fit_keylike(arrays, self.transformer_.transforms_, is_private(self))
        arrays = without(arrays, self.keylike_)
        transforms = self.transformer_.transforms_
        self.rare_ = fit_rare_levels(arrays, transforms, self.max_levels, is_private(self))
        arrays = collapse_rare(arrays, self.rare_)
        self.derived_ = fit_derived(arrays, transforms, is_private(self))
        public = public_arrays(self, arrays)
        self.encoding_ = ModeEncoding().fit(public, rare_transforms(transforms, self.rare_), rng, self.max_modes)
        enc = self.encoding_
        codes, scalars = enc.encode(arrays, rng)
        n = len(codes)
        private = is_private(self)
        train, val = split_rows(n, 0.0 if private else float(self.validation_share), rng)
        # under DP the conditional vector's frequencies come from the public table (DP histograms)
        self.cond_ = CondVector.from_codes(enc, enc.encode(public, rng)[0] if private else codes[train])
        pac = 1 if private else int(self.pac)
        batch = max(pac, int(self.batch_size) // pac * pac)
        self.span_bias_ = [np.zeros(size) for size in enc.span_sizes_]
        self.value_map_: dict[str, list[np.ndarray]] = {}
        self.modes_ = "likeliest" if self.likeliest_modes else "drawn"  # as samples and the value map draw
        self.rare_share_ = float(self.rare_share)  # as samples and the value map draw
        with seeded(rng, self.device_):
            self.generator_ = Generator(self.noise_dim, self.cond_.dim, self.width, self.depth, enc.dim_)
            critic = Critic(enc.dim_ + self.cond_.dim, self.width, self.depth, pac)
            pair = _Pair(self.generator_, critic).to(self.device_)
            if enc.dim_ == 0:  # nothing to learn (no learned columns)
                self.training_ = {"epochs": 0, "stopped": "no learned columns"}
                return
            data = torch.as_tensor(enc.to_matrix(codes[train], scalars[train]), device=self.device_)
            steps = max(1, len(train) // batch)
            epochs = int(self.epochs) if self.epochs is not None else _EPOCHS
            if self.epochs is None and not private:
                floor = max(_MIN_STEPS, -(-_MIN_WORK // (enc.dim_ + self.cond_.dim)))
                epochs = max(epochs, -(-floor // steps))
                for target in (_LONG_STEPS, _TARGET_STEPS):  # the longer target where the epoch cap allows it
                    if -(-target // steps) <= _MAX_EPOCHS:
                        epochs = max(epochs, -(-target // steps))
                        break
            dp = dp_sgd(self, n_rows=len(train), batch_size=batch, steps=steps * epochs, rng=rng)
            # Opacus wraps torch.optim's; outside DP torch's one-kernel (fused) update
            adam = functools.partial(Adam, fused=True) if dp is None else torch.optim.Adam
            opt_g = adam(self.generator_.parameters(), self.learning_rate, betas=(0.5, 0.9), weight_decay=1e-6)
            opt_d = adam(critic.parameters(), self.learning_rate, betas=(0.5, 0.9), weight_decay=1e-6)
            if dp is not None:
                opt_d = dp.make_private(critic, opt_d)
                codes_t = torch.as_tensor(codes[train], device=self.device_)

                def epoch(_: int) -> dict[str, float]:
                    return self._dp_epoch(dp, steps, data, codes_t, critic, opt_d, opt_g, rng)

            every = int(self.penalty_every)
            mixed = training_precision(self.device_)
            step_count = [0]

            def non_private_epoch(_: int) -> dict[str, float]:
                loss_d_sum = loss_g_sum = 0.0
                for _ in range(steps):
                    # one generated batch serves both steps: the critic sees it detached, then the generator
                    # (whose weights have not moved yet) is scored by the updated critic
                    cond, which, cats, rows = self._train_cond(batch, rng)
                    real = torch.cat([data[torch.as_tensor(rows, device=self.device_)], cond], dim=1)
                    with mixed:
                        raw = self._generate(batch, cond).float()
                        fake = torch.cat([self._activate(raw), cond], dim=1)
                        # critic step (WGAN-GP); the penalty only every ``penalty_every`` steps, weighted up as much
                        # one critic call for both halves (packs never straddle them: batch is a multiple of pac)
                        scores = critic(torch.cat([fake.detach(), real])).float()
                        loss_d = scores[: len(scores) // 2].mean() - scores[len(scores) // 2 :].mean()
                        penalty = None
                        if step_count[0] % every == 0:
                            penalty = gradient_penalty(critic, real, fake.detach())
                    step_count[0] += 1
                    opt_d.zero_grad(set_to_none=True)
                    (loss_d if penalty is None else loss_d + _GP_WEIGHT * every * penalty).backward()
                    opt_d.step()
                    # generator step: fool the critic and honour the condition
                    with mixed:
                        loss_g = -critic(fake).float().mean() + self._cond_loss(raw, which, cats)
                    opt_g.zero_grad(set_to_none=True)
                    loss_g.backward()
                    opt_g.step()
                    loss_d_sum += float(loss_d.detach())
                    loss_g_sum += float(loss_g.detach())
                return {"loss_d": loss_d_sum / steps, "loss_g": loss_g_sum / steps}

            if dp is None:
                epoch = non_private_epoch
            validate = None
            if len(val):
                real_val = enc.decode(codes[val], scalars[val])
                val_seed = int(rng.integers(2**63 - 1))
                validate = lambda: self._validation_gap(real_val, val_seed)  # noqa: E731
            result = train_loop(
                module=pair,
                epoch=epoch,
                validate=validate,
                epochs=epochs,
                patience=int(self.patience),
                max_minutes=self.max_minutes,
                progress=bool(self.progress),
                description="ctgan",
                min_epochs=min(int(self.min_epochs), 2 * epochs // 3),
                should_stop=dp.should_stop if dp is not None else None,
            )
            self.generator_.eval()
            self.span_bias_ = self._calibrate()
            self.value_map_ = self._fit_value_map(public_arrays(self, arrays), rng)
        self.training_ = result.to_dict()
        if dp is not None:
            self.training_["dp_sgd"] = dp.finish()

    def _dp_epoch(self, dp, steps, data, codes, critic, opt_d, opt_g, rng) -> dict[str, float]:
        """One epoch of DP training: the critic by DP-SGD on Poisson-sampled real rows, the generator through it.

        Each real row is conditioned on one of its own categories (a span drawn at random); the fake rows, a fixed
        number per step (so that one real row changes only its own clipped gradient), on categories drawn from
        the DP frequencies. Loss: the standard (non-saturating) GAN loss with logits.
        """
        spans = self.cond_.spans
        fake_n = dp.expected_batch
        loss_d_sum = loss_g_sum = 0.0
        done = 0
        for rows in dp.epoch(steps):
            which = rng.integers(0, len(spans), len(rows)) if spans else np.full(len(rows), -1)
            cats = np.zeros(len(rows), dtype="int64")
            if spans:
                span_idx = torch.as_tensor(np.asarray(spans)[which], device=codes.device)
                cats = codes[rows, span_idx].cpu().numpy()
            cond_real = torch.as_tensor(self.cond_.vectors(which, cats), device=self.device_)
            real = torch.cat([data[rows.to(self.device_)], cond_real], dim=1)
            w_fake, c_fake = self.cond_.sample_original(fake_n, rng)
            cond_fake = torch.as_tensor(self.cond_.vectors(w_fake, c_fake), device=self.device_)
            with torch.no_grad():
                fake = torch.cat([self._activate(self._generate(fake_n, cond_fake)), cond_fake], dim=1)
            scores = critic(torch.cat([real, fake]))
            labels = torch.cat([torch.ones(len(real), 1), torch.zeros(fake_n, 1)]).to(scores.device)
            loss_d = F.binary_cross_entropy_with_logits(scores, labels)
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
            # generator step: no real row involved; the critic's per-sample hooks are off
            dp.module.disable_hooks()
            cond, which_g, cats_g, _ = self._train_cond(fake_n, rng)
            raw = self._generate(fake_n, cond)
            fake = torch.cat([self._activate(raw), cond], dim=1)
            loss_g = F.softplus(-critic(fake)).mean() + self._cond_loss(raw, which_g, cats_g)
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            opt_g.step()
            opt_d.zero_grad(set_to_none=True)
            dp.module.enable_hooks()
            loss_d_sum += float(loss_d.detach())
            loss_g_sum += float(loss_g.detach())
            done += 1
        return {"loss_d": loss_d_sum / max(done, 1), "loss_g": loss_g_sum / max(done, 1)}

    @torch.no_grad()
    def _calibrate(self) -> list[np.ndarray]:
        """Per-span logit biases that make the sampled categories and modes follow the training frequencies.

        A GAN's marginals drift while its dependencies are still being learned (churn, 120 epochs: a balanced
        binary column generated 72/28). The generator's raw outputs for unconditional sampling do not depend on
        the biases, so the expected category frequencies ``mean(softmax(logits + b))`` are matched exactly by
        iterative proportional fitting of ``b`` (raking) on a batch of generated rows.
        """
        enc = self.encoding_
        n = _CALIBRATION_ROWS
        rng = np.random.default_rng(int(torch.randint(0, 2**62, (1,))))
        which, cats = self.cond_.sample_original(n, rng)
        cond = torch.as_tensor(self.cond_.vectors(which, cats), device=self.device_)
        raw = self._generate(n, cond).cpu().numpy().astype("float64")
        biases = self._rake(raw, raw, np.full(n, -1))
        share = float(getattr(self, "rare_share_", 0.0))  # 0 in federated models
        if share > 0:
            # sampling draws some rows again on their rare level (``rare_share``): the biases are raked again on
            # the rows as sampled, the raw outputs of a redrawn row in every span but the one of its level (which
            # the first draw chose, so that its frequency still follows the biases)
            spans = zip(enc.span_starts_, enc.span_sizes_, biases, strict=True)
            logits = [raw[:, a : a + b] + bias for a, b, bias in spans]
            codes, _, _ = enc.draw(logits, np.tanh(raw[:, enc.scalar_pos_]), None, enc.constraints(None, n), rng)
            redo, span, cat = self._rarest(codes, which, cats, share)
            if len(redo):
                again = raw.copy()
                cond = torch.as_tensor(self.cond_.vectors(span, cat), device=self.device_)
                again[redo] = self._generate(len(redo), cond).cpu().numpy().astype("float64")
                owner = np.full(n, -1)
                owner[redo] = np.asarray(self.cond_.spans)[span]
                biases = self._rake(raw, again, owner)
        return biases

    def _rake(self, first: np.ndarray, again: np.ndarray, owner: np.ndarray) -> list[np.ndarray]:
        """Per-span biases ``b`` with ``mean(softmax(logits + b))`` at the training frequencies (raking).

        The logits of span ``s`` are ``again``'s, but ``first``'s in the rows whose ``owner`` is ``s``."""
        enc = self.encoding_
        biases = []
        for s, (start, size) in enumerate(zip(enc.span_starts_, enc.span_sizes_, strict=True)):
            seen = enc.seen(s)
            target = enc.span_counts_[s][seen] / enc.span_counts_[s][seen].sum()
            logits = np.where((owner == s)[:, None], first[:, start : start + size], again[:, start : start + size])
            logits = logits[:, seen]
            bias = np.zeros(int(seen.sum()))
            for _ in range(_CALIBRATION_ROUNDS):
                p = special.softmax(logits + bias, axis=1).mean(0)
                bias = np.clip(bias + np.log(target) - np.log(np.maximum(p, 1e-12)), -10.0, 10.0)
            full = np.zeros(size)
            full[seen] = bias
            biases.append(full)
        return biases

    def _fit_value_map(self, real: dict[str, np.ndarray], rng: np.random.Generator) -> dict[str, list[np.ndarray]]:
        """Quantile maps of the numeric columns from a batch of generated rows (see ``fit_value_map``)."""
        enc = self.encoding_
        names = [c["name"] for c in enc.columns_ if c["type"] == "numeric"]
        if not names:
            return {}
        with seeded(rng, self.device_):
            fake = self._draw(_CALIBRATION_ROWS, rng, enc.constraints(None, _CALIBRATION_ROWS), 1.0)
        return fit_value_map(real, fake, names, min_distinct=int(self.max_modes) + 1)

    def _train_cond(self, batch: int, rng: np.random.Generator):
        which, cats, rows = self.cond_.sample_train(batch, rng)
        cond = torch.as_tensor(self.cond_.vectors(which, cats), device=self.device_)
        return cond, which, cats, rows

    def _generate(self, n: int, cond: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
        noise = torch.randn(n, self.noise_dim, device=cond.device) * temperature
        return self.generator_(noise, cond)

    def _activate(self, raw: torch.Tensor) -> torch.Tensor:
        """tanh for the scalars, Gumbel-softmax for the spans, in matrix order (all spans at once).

        The softmax runs per span over the spans' categories laid side by side (a scatter-max and an index-add),
        not over spans padded to the widest: on ames (74 spans, the widest 28 categories) padding made most of
        the work.
        """
        enc = self.encoding_
        idx, valid, flat = self._span_index(raw.device)
        out = torch.empty_like(raw)
        pos = torch.as_tensor(enc.scalar_pos_, device=raw.device)
        out[:, pos] = torch.tanh(raw[:, pos])
        if flat.numel():
            segment = self._span_segment(idx, valid)
            logits = raw[:, flat]
            # Gumbel noise -log(-log u) from uniforms: ``exponential_`` cost about 3x as much on the CPU
            u = torch.rand_like(logits).clamp_min_(torch.finfo(logits.dtype).tiny)
            logits = (logits - torch.log(-torch.log(u))) / _TAU
            b, n = len(raw), len(idx)
            top = torch.full((b, n), -torch.inf, device=raw.device, dtype=logits.dtype)
            top = top.scatter_reduce(1, segment.expand(b, -1), logits.detach(), "amax")
            e = torch.exp(logits - top[:, segment])
            sums = torch.zeros(b, n, device=raw.device, dtype=logits.dtype).index_add(1, segment, e)
            out[:, flat] = e / sums[:, segment]
        return out

    def _span_segment(self, idx: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """The span of each of the flat span positions of :meth:`_span_index`."""
        cached = getattr(self, "_span_segment_cache", None)
        if cached is None or cached.device != idx.device:
            with torch.inference_mode(False):
                cached = torch.arange(len(idx), device=idx.device)[:, None].expand_as(idx)[valid].contiguous()
            self._span_segment_cache = cached
        return cached

    def _span_index(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Padded matrix positions of every span: ``(index (spans, widest), valid mask, flat positions)``."""
        cached = getattr(self, "_span_index_cache", None)
        if cached is not None and cached[0].device == device:
            return cached
        idx, valid = self.encoding_.padded_spans()
        cached = tuple(torch.as_tensor(a, device=device) for a in (idx, valid, idx[valid]))
        self._span_index_cache = cached
        return cached

    def _cond_loss(self, raw: torch.Tensor, which: np.ndarray, cats: np.ndarray) -> torch.Tensor:
        """Cross-entropy between each row's conditioned span and its condition (section 4.3)."""
        if not self.cond_.spans:
            return raw.new_zeros(())
        idx, valid, _ = self._span_index(raw.device)
        spans = torch.as_tensor(np.asarray(self.cond_.spans)[which], device=raw.device)
        logits = raw.gather(1, idx[spans]).masked_fill(~valid[spans], -torch.inf)
        return F.cross_entropy(logits, torch.as_tensor(cats, device=raw.device), reduction="mean")

    def _validation_gap(self, real: dict[str, np.ndarray], seed: int) -> float:
        """The discriminator-free statistic of early stopping, for the same noise at every epoch."""
        n = int(np.clip(2 * len(next(iter(real.values()))), 500, _VALIDATION_ROWS))
        rng = np.random.default_rng(seed)
        self.generator_.eval()
        with seeded(np.random.default_rng(seed), self.device_):
            fake = self._draw(n, rng, self.encoding_.constraints(None, n), 1.0)
        self.generator_.train()
        return _gap(real, fake, self.encoding_)

    # ------------------------------------------------------------------------------------ sample
    def _sample(self, n: int, rng: np.random.Generator, request: SampleRequest | None = None) -> dict[str, np.ndarray]:
        enc = self.encoding_
        keys = draw_keylike(getattr(self, "keylike_", {}), n, rng, request)  # none in a federated model
        if enc.dim_ == 0:
            return finish(keys, request)
        rare = getattr(self, "rare_", {})  # none in a federated model
        cons = enc.constraints(collapse_request(request, rare), n)
        temperature = request.temperature if request is not None else 1.0
        with seeded(rng, self.device_):
            out = self._draw(n, rng, cons, temperature)
        # a federated model has no value map (its sites' rows never meet): getattr
        out = apply_value_map(out, getattr(self, "value_map_", {}), request, rng)
        out = apply_derived(out, getattr(self, "derived_", {}), request)  # none in older or federated models
        return finish({**expand_rare(out, rare, rng, request), **keys}, request)

    @torch.no_grad()
    def _draw(
        self, n: int, rng: np.random.Generator, cons: ModeConstraints, temperature: float
    ) -> dict[str, np.ndarray]:
        enc = self.encoding_
        if cons.any:
            which, cats = self.cond_.from_constraints(cons, enc, rng)
        else:
            which, cats = self.cond_.sample_original(n, rng)
        codes, scalars = self._rows(which, cats, cons, rng, temperature)
        share = float(getattr(self, "rare_share_", 0.0))  # 0 in federated models and models saved before it
        if not cons.any and share > 0:
            redo, span, cat = self._rarest(codes, which, cats, share)
            if len(redo):
                # each of these rows again, conditioned on its rare level (see ``rare_share``)
                sub = enc.constraints(None, len(redo))
                sub.codes[np.arange(len(redo)), np.asarray(self.cond_.spans)[span]] = cat
                codes[redo], scalars[redo] = self._rows(span, cat, sub, rng, temperature)
        return enc.decode(codes, scalars)

    def _rows(
        self, which: np.ndarray, cats: np.ndarray, cons: ModeConstraints, rng: np.random.Generator, temperature: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(codes, scalars)`` of one row per conditional vector ``(which, cats)``, honouring ``cons``: rows that
        disagree with it are generated again (a few rounds), then forced (``ModeEncoding.draw``)."""
        enc = self.encoding_
        n = len(which)
        codes = np.zeros((n, enc.n_spans), dtype="int64")
        scalars = np.zeros((n, enc.n_scalars_))
        todo = np.arange(n)
        # a federated model, or one saved before likeliest modes, has no value map fitted to them: it draws
        likeliest = getattr(self, "modes_", "drawn") == "likeliest"
        for _ in range(_ROUNDS if cons.any else 1):
            failed = []
            for lo in range(0, len(todo), _BATCH_ROWS):
                rows = todo[lo : lo + _BATCH_ROWS]
                cond = torch.as_tensor(self.cond_.vectors(which[rows], cats[rows]), device=self.device_)
                raw = self._generate(len(rows), cond, temperature).cpu().numpy().astype("float64")
                spans = zip(enc.span_starts_, enc.span_sizes_, self.span_bias_, strict=True)
                logits = [raw[:, a : a + b] + bias for a, b, bias in spans]
                means = np.tanh(raw[:, enc.scalar_pos_])
                c, s, agreed = enc.draw(
                    logits, means, None, cons.take(rows), rng, temperature, likeliest_modes=likeliest
                )
                codes[rows], scalars[rows] = c, s
                failed.append(rows[~agreed])
            todo = np.concatenate(failed)
            if todo.size == 0:
                break
        return codes, scalars

    def _rarest(
        self, codes: np.ndarray, which: np.ndarray, cats: np.ndarray, share: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(rows, span, level)``: the rows whose rarest discrete level (by training share, over the conditional
        vector's discrete spans) is below ``share`` and has at least ``_RARE_MIN_ROWS`` training rows, with that
        level, leaving out rows already conditioned on it."""
        enc = self.encoding_
        discrete = {c["span"] for c in enc.columns_ if c["type"] == "discrete"}
        idx = [i for i, s in enumerate(self.cond_.spans) if s in discrete]
        none = np.zeros(0, dtype="int64")
        if not idx:
            return none, none, none
        spans = np.asarray(self.cond_.spans)[idx]
        shares = np.column_stack([self.cond_.probs[i][codes[:, s]] for i, s in zip(idx, spans, strict=True)])
        pick = np.argmin(shares, axis=1)  # the first of equally rare levels
        counts = np.column_stack([self.cond_.counts[i][codes[:, s]] for i, s in zip(idx, spans, strict=True)])
        at = np.arange(len(codes)), pick
        rows = np.flatnonzero((shares[at] < share) & (counts[at] >= _RARE_MIN_ROWS))
        span = np.asarray(idx, dtype="int64")[pick[rows]]
        cat = codes[rows, spans[pick[rows]]]
        fresh = (which[rows] != span) | (cats[rows] != cat)
        return rows[fresh], span[fresh], cat[fresh]

    # ------------------------------------------------------------------------------------ state
    def _get_state(self) -> dict[str, Any]:
        return {
            "encoding": self.encoding_.get_state(),
            "cond": self.cond_.get_state(),
            "generator": state_to_arrays(self.generator_),
            "span_bias": self.span_bias_,
            "value_map": getattr(self, "value_map_", {}),  # none in a federated model
            "modes": getattr(self, "modes_", "drawn"),
            "rare_share": float(getattr(self, "rare_share_", 0.0)),
            "keylike": getattr(self, "keylike_", {}),
            "rare": getattr(self, "rare_", {}),
            "derived": getattr(self, "derived_", {}),
            "training": self.training_,
        }

    def _set_state(self, state: dict[str, Any]) -> None:
        self.device_ = resolve_device(self.device)
        self.encoding_ = ModeEncoding.from_state(state["encoding"])
        self.cond_ = CondVector.from_state(state["cond"])
        generator = Generator(self.noise_dim, self.cond_.dim, self.width, self.depth, self.encoding_.dim_)
        self.generator_ = state_from_arrays(generator, state["generator"]).to(self.device_).eval()
        biases = state.get("span_bias") or [np.zeros(size) for size in self.encoding_.span_sizes_]
        self.span_bias_ = [np.asarray(b, dtype="float64") for b in biases]
        maps = state.get("value_map", {})
        self.value_map_ = {k: [np.asarray(a, dtype="float64") for a in v] for k, v in maps.items()}
        self.modes_ = state.get("modes", "drawn")  # models saved before likeliest modes drew them
        self.rare_share_ = float(state.get("rare_share", 0.0))  # models saved before it sample as they did
        self.keylike_ = state.get("keylike", {})  # none in models saved before key-like columns
        self.rare_ = state.get("rare", {})  # none in models saved before many-level columns
        self.derived_ = state.get("derived", {})  # none in models saved before derived columns
        self.training_ = state["training"]


def _gap(real: dict[str, np.ndarray], fake: dict[str, np.ndarray], enc: ModeEncoding) -> float:
    """Mean absolute difference of the real and generated rank-correlation matrices, averaged per column pair.

    Each discrete column is its level indicators (missing is one more level), each numeric column its ranks in
    the pooled values plus a missing indicator. Marginals are left out on purpose: the marginal calibration and
    the value map after training fix them, so only the dependencies between columns say how good an epoch is.
    """
    feats_r, feats_f, owner = [], [], []
    for i, col in enumerate(enc.columns_):
        a, b = real[col["name"]], fake[col["name"]]
        if col["type"] == "discrete":
            ca, cb = np.where(a < 0, col["n_levels"], a), np.where(b < 0, col["n_levels"], b)
            for level in range(enc.span_sizes_[col["span"]]):
                feats_r.append(ca == level)
                feats_f.append(cb == level)
                owner.append(i)
            continue
        ma, mb = np.isnan(a), np.isnan(b)
        ranks = stats.rankdata(np.concatenate([np.where(ma, 0.0, a), np.where(mb, 0.0, b)]))
        ranks[np.concatenate([ma, mb])] = 0.0
        feats_r.append(ranks[: len(a)])
        feats_f.append(ranks[len(a) :])
        owner.append(i)
        if ma.any() or mb.any():
            feats_r.append(ma)
            feats_f.append(mb)
            owner.append(i)
    if len(set(owner)) < 2:
        return 0.0
    mr = np.column_stack(feats_r).astype("float64")
    mf = np.column_stack(feats_f).astype("float64")
    with np.errstate(invalid="ignore", divide="ignore"):
        diff = np.abs(np.nan_to_num(np.corrcoef(mr, rowvar=False)) - np.nan_to_num(np.corrcoef(mf, rowvar=False)))
    owner_ = np.asarray(owner)
    k = len(enc.columns_)
    sums, counts = np.zeros((k, k)), np.zeros((k, k))
    np.add.at(sums, (owner_[:, None], owner_[None, :]), diff)
    np.add.at(counts, (owner_[:, None], owner_[None, :]), 1.0)
    upper = np.triu(counts > 0, 1)
    return float((sums[upper] / counts[upper]).mean())
