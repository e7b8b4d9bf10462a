"""TVAE: a variational autoencoder for mixed tables (Xu et al., "Modeling Tabular data using Conditional GAN",
NeurIPS 2019, section 5 "TVAE"; Kingma and Welling, "Auto-Encoding Variational Bayes", ICLR 2014), written from
the papers.

- Representation: the same mode-specific normalisation as CTGAN (:class:`~twinforge.models._tabular_nn.ModeEncoding`):
  per numeric column a mixture mode (a softmax span, with "missing" as one more category) and a scalar within the
  mode; per discrete column a softmax span (levels and "missing").
- Encoder ``q(z | x) = N(mu(x), diag sigma^2(x))`` and decoder ``p(x | z)`` are MLPs (LayerNorm, no BatchNorm).
  The decoder's likelihood is one factor per part of the row: a categorical for every span (cross-entropy) and,
  for a present value, a Gaussian ``N(tanh(m(z)), s_j^2)`` for the scalar with a learned scale ``s_j`` per column.
- Loss: the negative ELBO with the reconstruction weighted, ``-E_q[log p(x | z)] * loss_factor + KL(q(z | x) ||
  N(0, I))``; TVAE's ``loss_factor`` 2 makes the encoder spend latent information on rare categories, so their
  dependencies are learned (1, the ELBO itself, keeps category and missing-value rates a little closer, because
  the prior then has fewer regions no row maps to, where the decoder's categories are flat). Early stopping on
  the held-out loss with fixed noise.

Sampling draws ``z ~ N(0, T^2 I)`` (``T`` the temperature) and then each part from its decoder factor (logits / T,
scales * T), except a numeric column's mixture mode, which is the decoder's likeliest (``likeliest_modes``): the
factorised decoder draws every column's mode independently, and where its output spreads over several modes, two
strongly related columns land in unrelated modes (flights' departure and arrival delays, correlation 0.93, came out
at 0.41). A monotone value map, fitted after training on generated rows against the training rows, then gives each
numeric column back its marginal without changing any row's rank (as in ``ctgan``).

A heavy-tailed numeric pair with a strong linear relation (flights' departure and arrival delays) keeps it
through a residual column: the later column is also learned as its residual on the earlier one and rebuilt from
the drawn pair after sampling (``fit_residuals``).

Under conditions, a row whose draw already honours them is an exact draw of the model's conditional distribution,
so rows are first drawn a few times from the prior; rows that still disagree (an equality on a number, a narrow
range, a rare category) go through pseudo-Gibbs sampling (Rezende et al., "Stochastic
Backpropagation and Approximate Inference in Deep Generative Models", ICML 2014, appendix F): every draw keeps
the given values, draws set and range conditions within their allowed region (categories from the renormalised
softmax, scalars from the truncated Gaussian), and the encoder maps the row back to a new ``z``; after a few
sweeps the free columns follow the conditioned ones as far as the model allows.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

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
    ModeConstraints,
    ModeEncoding,
    apply_residuals,
    apply_value_map,
    draw_keylike,
    finish,
    fit_keylike,
    fit_residuals,
    fit_value_map,
    split_rows,
    with_residuals,
    without,
)
from twinforge.models.base import Synthesizer
from twinforge.privacy import dp_sgd, is_private, public_arrays

_ROUNDS = 10  # draws from the prior for rows whose draws disagree with their conditions
_GIBBS_SWEEPS = 20  # encoder/decoder sweeps for the rows still disagreeing after those rounds
_BATCH_ROWS = 20_000  # rows per network call when sampling
_SIGMA_RANGE = (0.01, 1.0)  # learned scalar scales stay in here (as in TVAE)
_EPOCHS = 150  # default epochs ...
_MIN_STEPS = 600  # ... or more on a small table, for at least this many optimiser steps
_WIDE_SPAN = 32  # a span with this many categories or more is a softmax of its own in the loss (see _layout)
_CALIBRATION_ROWS = 5_000  # generated rows the value map is fitted on (at most; as many as the training rows)


# ------------------------------------------------------------------------------------------ networks
class Encoder(nn.Module):
    """``x -> (mu, log variance)`` of ``q(z | x)``."""

    def __init__(self, d_in: int, width: int, depth: int, latent: int):
        super().__init__()
        self.body = MLP(d_in, width, depth, 2 * latent)
        self.latent = latent

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.body(x)
        return h[:, : self.latent], h[:, self.latent :].clamp(-10.0, 10.0)


class Decoder(nn.Module):
    """``z -> raw outputs`` (span logits and scalar means before tanh), and the learned scalar scales."""

    def __init__(self, latent: int, width: int, depth: int, d_out: int, n_scalars: int):
        super().__init__()
        self.body = MLP(latent, width, depth, d_out)
        self.log_sigma = nn.Parameter(torch.full((n_scalars,), float(np.log(0.1))))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.body(z)

    def sigma(self) -> torch.Tensor:
        return self.log_sigma.exp().clamp(*_SIGMA_RANGE)


class _Reparameterise(torch.autograd.Function):
    """``(z, KL)`` from the encoder's output ``h = [mu, log variance]`` (the log variance clamped to [-10, 10], as
    :class:`Encoder` does) and standard normal draws ``eps``: ``z = mu + eps exp(logvar / 2)`` (the
    reparameterisation) and ``KL(N(mu, diag exp(logvar)) || N(0, I)) = -0.5 sum(1 + logvar - mu^2 - exp(logvar))``
    over all rows (Kingma and Welling 2014, appendix B), with the gradient written out:
    ``d/dmu = g_z + g_KL mu``, ``d/dlogvar = 0.5 g_KL exp(logvar) - 0.5 g_KL + 0.5 g_z eps exp(logvar / 2)`` (0 where
    clamped). Autograd's graph of the same expressions took twice the operations (slices, casts, the clamp's mask,
    each product's gradient). The operations and their order are autograd's, so the numbers are the same to the
    bit (tested). Row by row, so DP-SGD's per-sample gradients of the encoder's layers stay exact.
    """

    @staticmethod
    def forward(ctx: Any, h: torch.Tensor, eps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        latent = eps.shape[1]
        mu, unclamped = h[:, :latent], h[:, latent:]
        logvar = unclamped.clamp(-10.0, 10.0)
        inside = logvar == unclamped  # the clamp's gradient mask: within [-10, 10] (NaN: no gradient)
        std = (0.5 * logvar).exp()
        var = logvar.exp()
        kl = -0.5 * (1 + logvar - mu**2 - var).sum()
        ctx.save_for_backward(mu, eps, std, var, inside)
        return mu + eps * std, kl

    @staticmethod
    def backward(ctx: Any, g_z: torch.Tensor, g_kl: torch.Tensor) -> tuple[torch.Tensor, None]:
        mu, eps, std, var, inside = ctx.saved_tensors
        latent = mu.shape[1]
        g = mu.new_empty((len(mu), 2 * latent))
        torch.add(g_kl * mu, g_z, out=g[:, :latent])
        half = 0.5 * g_kl
        g_logvar = (half * var - half) + (g_z * eps * std) * 0.5
        g[:, latent:] = torch.where(inside, g_logvar, 0.0)
        return g, None


class _VAE(nn.Module):
    def __init__(self, encoder: Encoder, decoder: Decoder):
        super().__init__()
        self.encoder, self.decoder = encoder, decoder


@register("tvae")
class TVAE(Synthesizer):
    """Variational autoencoder with mode-specific normalisation and a likelihood per column kind.

    Parameters
    ----------
    seed : int, optional
        Seed for fitting and sampling; same seed and data give the same model and samples (on the CPU).
    epochs : int, optional
        Most passes over the training rows (early stopping may end training sooner). By default 150 (rather than
        100: TSTR/TRTR 0.975 -> 1.001 on default, 0.880 -> 0.894 on ames, at about 0.2x of SDV TVAE's CPU time),
        or more on a small table, so that training takes at least 600 optimiser steps: airports' 1,049 training
        rows make 2 steps an epoch, and its held-out ELBO was still improving at epoch 150 of 150 (given 500
        epochs, early stopping picks epoch 378). Not under DP, whose budget is planned for 150 epochs.
    batch_size : int, default 500
        Rows per step.
    latent_dim : int, default 128
        Size of the latent code ``z``.
    width, depth : int, default 128, 2
        Hidden width and number of hidden layers of the encoder and of the decoder.
    learning_rate : float, default 3e-3
        Adam's learning rate.
    loss_factor : float, default 2.0
        Weight of the reconstruction term against the KL term, as in TVAE: 2 learns dependencies on rare categories
        (a rare target) much better; 1, the ELBO itself, matches category and missing-value rates more closely
        (with 2, parts of the prior that no row maps to decode to flatter categories).
    max_modes : int, default 10
        Most mixture modes per numeric column.
    likeliest_modes : bool, default True
        Encode each numeric value in its likeliest mixture mode and sample each mode as the decoder's likeliest
        (then map the values onto the training marginal), rather than drawing modes: keeps strongly related numeric
        columns together. Flights, fitted on 80% of the bench's training rows and scored on the rest, 3 sampling
        seeds: dep/arr delay correlation 0.41/0.38/0.43 drawn, 0.57/0.62/0.56 likeliest (data 0.93); TSTR/TRTR
        0.58/0.44/0.65 -> 0.74/0.71/0.63; detection AUC 0.98 -> 0.83. False draws the modes, as TVAE does.
    patience : int, default 20
        Epochs without a better held-out ELBO before training stops.
    validation_share : float, default 0.1
        Share of rows held out for early stopping (0 disables it).
    max_minutes : float, optional
        Wall-clock budget for training; the best weights so far are kept.
    device : str, default "auto"
        "auto" (a GPU when present), "cpu" or "cuda[:N]".
    progress : bool, default True
        Show a progress bar with the losses on stderr.
    epsilon : float, optional
        Train with differential privacy at this budget (DP-SGD; see :mod:`twinforge.privacy`); None: no DP.
        Under DP, early stopping is off and the decoder's scalar scales stay fixed.
    delta : float, optional
        The DP delta; by default ``min(1e-5, 0.1 / n)``. Must be below ``1 / n``.

    Examples
    --------
    >>> import twinforge
    >>> real = twinforge.load_demo()
    >>> model = twinforge.create("tvae", seed=0, epochs=2, progress=False).fit(real)
    >>> model.sample(5, conditions={"churn": "Yes"})["churn"].tolist()
    ['Yes', 'Yes', 'Yes', 'Yes', 'Yes']
    """

    summary = "Variational autoencoder (TVAE): mode-specific normalisation, likelihood per column kind"
    supports_conditions = True

    def __init__(
        self,
        *,
        seed: int | None = None,
        epochs: int | None = None,
        batch_size: int = 500,
        latent_dim: int = 128,
        width: int = 128,
        depth: int = 2,
        learning_rate: float = 3e-3,
        loss_factor: float = 2.0,
        max_modes: int = 10,
        likeliest_modes: bool = True,
        patience: int = 20,
        validation_share: float = 0.1,
        max_minutes: float | None = None,
        device: str = "auto",
        progress: bool = True,
        epsilon: float | None = None,
        delta: float | None = None,
    ):
        self.seed = seed
        self.epochs = epochs
        self.batch_size = batch_size
        self.latent_dim = latent_dim
        self.width = width
        self.depth = depth
        self.learning_rate = learning_rate
        self.loss_factor = loss_factor
        self.max_modes = max_modes
        self.likeliest_modes = likeliest_modes
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
            patience=self.patience,
            validation_share=self.validation_share,
        )
        for name in ("latent_dim", "width", "depth", "max_modes"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v <= 0:
                raise ParameterError(f"{name} must be a positive integer, got {v!r}")
        lr = self.learning_rate
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not 0 < lr < 1:
            raise ParameterError(f"learning_rate must be a number in (0, 1), got {lr!r}")
        lf = self.loss_factor
        if isinstance(lf, bool) or not isinstance(lf, (int, float)) or not lf > 0:
            raise ParameterError(f"loss_factor must be a positive number, got {lf!r}")
        if not isinstance(self.likeliest_modes, (bool, np.bool_)):
            raise ParameterError(f"likeliest_modes must be True or False, got {self.likeliest_modes!r}")
        resolve_device(self.device)

    # ------------------------------------------------------------------------------------ fit
    def _fit(self, arrays: dict[str, np.ndarray], rng: np.random.Generator) -> None:
        self.device_ = resolve_device(self.device)
        self.keylike_ = fit_keylike(arrays, self.transformer_.transforms_, is_private(self))
        arrays = without(arrays, self.keylike_)
        transforms = self.transformer_.transforms_
        self.residuals_ = fit_residuals(arrays, transforms, is_private(self))
        arrays = with_residuals(arrays, self.residuals_)
        transforms = {**transforms, **{spec["key"]: transforms[y] for y, spec in self.residuals_.items()}}
        self.encoding_ = ModeEncoding().fit(
            without(public_arrays(self, arrays), self.keylike_), transforms, rng, self.max_modes
        )
        enc = self.encoding_
        # with likeliest modes, each value is encoded in its likeliest mode too: a mode drawn from the posterior
        # makes the encoding a noisy function of the value, which the decoder learns as spread-out mode
        # probabilities (flights, detection AUC on a split of the training rows 0.92 -> 0.83)
        codes, scalars = enc.encode(arrays, None if self.likeliest_modes else rng)
        share = 0.0 if is_private(self) else float(self.validation_share)  # DP: no data-dependent early stopping
        train, val = split_rows(len(codes), share, rng)
        with seeded(rng, self.device_):
            self.encoder_ = Encoder(enc.dim_, self.width, self.depth, self.latent_dim)
            self.decoder_ = Decoder(self.latent_dim, self.width, self.depth, enc.dim_, enc.n_scalars_)
            vae = _VAE(self.encoder_, self.decoder_).to(self.device_)
            if enc.dim_ == 0:
                self.training_ = {"epochs": 0, "stopped": "no learned columns"}
                return
            tensors = self._tensors(codes[train], scalars[train])
            # one fused kernel per step instead of one per tensor (Adam's update was a fifth of the fit's CPU time
            # on default); Opacus wraps torch.optim's plain optimiser
            if is_private(self):
                opt = torch.optim.Adam(vae.parameters(), self.learning_rate, weight_decay=1e-5)
            else:
                fused = self.device_.type in ("cpu", "cuda")
                opt = Adam(vae.parameters(), self.learning_rate, weight_decay=1e-5, fused=fused)
            batch = min(int(self.batch_size), len(train))
            steps = max(1, len(train) // batch)
            epochs = int(self.epochs) if self.epochs is not None else _EPOCHS
            if self.epochs is None and not is_private(self):
                epochs = max(epochs, -(-_MIN_STEPS // steps))
            dp = dp_sgd(self, n_rows=len(train), batch_size=batch, steps=steps * epochs, rng=rng)
            if dp is not None:  # the scales are used outside a layer, where Opacus sees no per-sample gradient
                self.decoder_.log_sigma.requires_grad_(False)
                opt = dp.make_private(vae, opt)

            def epoch(_: int) -> dict[str, float]:
                vae.train()
                perm = torch.randperm(len(train), device=self.device_)
                total = 0.0
                batches = (perm[i * batch : (i + 1) * batch] for i in range(steps)) if dp is None else dp.epoch(steps)
                for rows in batches:
                    with training_precision(self.device_, dp is None):
                        loss = self._loss(*(t.index_select(0, rows) for t in tensors))
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    total += float(loss.detach())
                return {"loss": total / steps}

            validate = None
            if len(val):
                val_tensors = self._tensors(codes[val], scalars[val])
                # the held-out loss uses the same noise every epoch (drawn once, as a seeded draw per epoch gave it)
                with seeded(np.random.default_rng(int(rng.integers(2**63 - 1))), self.device_):
                    val_noise = torch.randn(len(val), self.latent_dim, device=self.device_)

                @torch.inference_mode()
                def validate() -> float:
                    vae.eval()
                    with training_precision(self.device_):
                        return float(self._loss(*val_tensors, noise=val_noise))

            result = train_loop(
                module=vae,
                epoch=epoch,
                validate=validate,
                epochs=epochs,
                patience=int(self.patience),
                max_minutes=self.max_minutes,
                progress=bool(self.progress),
                description="tvae",
                should_stop=dp.should_stop if dp is not None else None,
            )
        vae.eval()
        self.value_map_ = self._fit_value_map(public_arrays(self, arrays), rng)
        self.training_ = result.to_dict()
        if dp is not None:
            self.training_["dp_sgd"] = dp.finish()

    def _fit_value_map(self, real: dict[str, np.ndarray], rng: np.random.Generator) -> dict[str, list[np.ndarray]]:
        """Quantile maps of the numeric columns from generated rows (see ``fit_value_map``); none when modes are
        drawn (the model then samples as TVAE does)."""
        enc = self.encoding_
        names = [c["name"] for c in enc.columns_ if c["type"] == "numeric"]
        self.modes_ = "drawn"
        if not names or not self.likeliest_modes:
            return {}
        self.value_map_: dict[str, list[np.ndarray]] = {}
        self.modes_ = "likeliest"  # the calibration rows are drawn as samples will be
        n = min(_CALIBRATION_ROWS, max(len(next(iter(real.values()))), 1))
        with seeded(rng, self.device_), torch.no_grad():
            codes, scalars = self._draw(n, enc.constraints(None, n), rng, 1.0)
        return fit_value_map(real, enc.decode(codes, scalars), names, min_distinct=int(self.max_modes) + 1)

    def _tensors(self, codes: np.ndarray, scalars: np.ndarray) -> tuple[torch.Tensor, ...]:
        """(one-hot/scalar matrix, span codes, scalars, scalar-is-present mask) on the device."""
        enc, dev = self.encoding_, self.device_
        present = np.ones_like(scalars, dtype=bool)
        for col in enc.columns_:
            if col["type"] == "numeric":
                present[:, col["scalar"]] = codes[:, col["span"]] < len(col["means"])
        return (
            torch.as_tensor(enc.to_matrix(codes, scalars), device=dev),
            torch.as_tensor(codes, device=dev),
            torch.as_tensor(scalars, dtype=torch.float32, device=dev),
            torch.as_tensor(present, dtype=torch.float32, device=dev),
        )

    def _loss(
        self,
        x: torch.Tensor,
        codes: torch.Tensor,
        scalars: torch.Tensor,
        present: torch.Tensor,
        noise: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Negative ELBO per row: loss_factor * reconstruction + KL (Kingma and Welling 2014, eq. 10); ``noise`` the
        reparameterisation's standard normal draws (by default drawn here)."""
        enc = self.encoding_
        h = self.encoder_.body(x).float()
        eps = torch.randn(len(x), self.encoder_.latent, device=x.device) if noise is None else noise
        z, kl = _Reparameterise.apply(h, eps)
        raw = self.decoder_(z).float()
        layout = self._layout(raw.device)
        rec = raw.new_zeros(())
        if layout["narrow"] is not None:  # the cross-entropy of every narrow span at once (segment_nll)
            positions, segment, spans, starts = layout["narrow"]
            target = codes.index_select(1, spans) + starts
            rec = rec + segment_nll(raw.index_select(1, positions), segment, len(spans), target).sum()
        for s, a, k in layout["wide"]:  # a wide span's on its own contiguous logits
            rec = rec + nn.functional.cross_entropy(raw[:, a : a + k], codes[:, s], reduction="sum")
        if enc.n_scalars_:
            sigma = self.decoder_.sigma()
            mean = torch.tanh(raw.index_select(1, layout["scalars"]))
            nll = 0.5 * ((scalars - mean) / sigma) ** 2 + sigma.log()
            rec = rec + (nll * present).sum()
        return (float(self.loss_factor) * rec + kl) / len(x)

    def _layout(self, device: torch.device) -> dict[str, Any]:
        """Index tensors of the loss, built once per device: ``narrow`` (matrix positions of the narrow spans'
        categories, span of each among them, the spans, where each starts among the positions) or None, ``wide``
        ``(span, start, size)`` of each wide span, ``scalars`` the scalars' positions.

        A span of at least ``_WIDE_SPAN`` categories takes its own softmax on its contiguous logits: gathering and
        scattering its positions with the narrow ones cost more than the rest of the step (flights' ``tailnum``,
        1,839 categories: the span loss took 19 of a step's 40 CPU ms; as its own softmax, 5).
        """
        cached = getattr(self, "_layout_cache", None)
        if cached is not None and cached["scalars"].device == device:
            return cached
        enc = self.encoding_
        sizes = np.asarray(enc.span_sizes_, dtype="int64")
        narrow = np.flatnonzero(sizes < _WIDE_SPAN)
        with torch.inference_mode(False):

            def tensor(a: Any) -> torch.Tensor:
                return torch.as_tensor(np.asarray(a, dtype="int64"), device=device)

            cached = {"narrow": None, "scalars": tensor(enc.scalar_pos_)}
            if len(narrow):
                starts = np.asarray(enc.span_starts_, dtype="int64")[narrow]
                positions = np.concatenate([np.arange(a, a + k) for a, k in zip(starts, sizes[narrow], strict=True)])
                segment = np.repeat(np.arange(len(narrow)), sizes[narrow])
                first = np.concatenate([[0], np.cumsum(sizes[narrow])[:-1]])
                cached["narrow"] = (tensor(positions), tensor(segment), tensor(narrow), tensor(first))
        cached["wide"] = [
            (int(s), int(enc.span_starts_[s]), int(sizes[s])) for s in np.flatnonzero(sizes >= _WIDE_SPAN)
        ]
        self._layout_cache = cached
        return cached

    # ------------------------------------------------------------------------------------ sample
    def _sample(self, n: int, rng: np.random.Generator, request: SampleRequest | None = None) -> dict[str, np.ndarray]:
        enc = self.encoding_
        keys = draw_keylike(getattr(self, "keylike_", {}), n, rng, request)
        if enc.dim_ == 0:
            return finish(keys, request)
        cons = enc.constraints(request, n)
        temperature = request.temperature if request is not None else 1.0
        codes = np.zeros((n, enc.n_spans), dtype="int64")
        scalars = np.zeros((n, enc.n_scalars_))
        with seeded(rng, self.device_), torch.no_grad():
            for lo in range(0, n, _BATCH_ROWS):
                rows = np.arange(lo, min(n, lo + _BATCH_ROWS))
                codes[rows], scalars[rows] = self._draw(len(rows), cons.take(rows), rng, temperature)
        out = apply_value_map(enc.decode(codes, scalars), getattr(self, "value_map_", {}), request, rng)
        out = apply_residuals(out, getattr(self, "residuals_", {}), request)  # none in older or federated models
        return finish({**out, **keys}, request)

    def _draw(
        self, n: int, cons: ModeConstraints, rng: np.random.Generator, temperature: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """Rows from the prior; under conditions, rejection rounds first, then pseudo-Gibbs for the rows left."""
        enc = self.encoding_
        codes = np.zeros((n, enc.n_spans), dtype="int64")
        scalars = np.zeros((n, enc.n_scalars_))
        todo = np.arange(n)
        for _ in range(_ROUNDS if cons.any else 1):
            # a row drawn from the prior that happens to honour its conditions is an exact conditional draw
            z = torch.randn(len(todo), self.latent_dim, device=self.device_) * temperature
            codes[todo], scalars[todo], agreed = self._decode_draw(z, cons.take(todo), rng, temperature)
            todo = todo[~agreed]
            if todo.size == 0:
                return codes, scalars
        part = cons.take(todo)
        for _ in range(_GIBBS_SWEEPS):
            # pseudo-Gibbs: the encoder maps the row, given values included, back to a latent code
            x = torch.as_tensor(enc.to_matrix(codes[todo], scalars[todo]), device=self.device_)
            mu, logvar = self.encoder_(x)
            z = mu + torch.randn_like(mu) * (0.5 * logvar).exp() * temperature
            codes[todo], scalars[todo], _ = self._decode_draw(z, part, rng, temperature)
        return codes, scalars

    def _decode_draw(
        self, z: torch.Tensor, cons: ModeConstraints, rng: np.random.Generator, temperature: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each part of the row drawn from its decoder factor, within the conditions (see ModeEncoding.draw)."""
        enc = self.encoding_
        raw = self.decoder_(z).cpu().numpy().astype("float64")
        logits = [raw[:, a : a + b] for a, b in zip(enc.span_starts_, enc.span_sizes_, strict=True)]
        means = np.tanh(raw[:, enc.scalar_pos_])
        stds = np.broadcast_to(self.decoder_.sigma().cpu().numpy().astype("float64"), means.shape)
        # a federated model, or one saved before likeliest modes, has no value map fitted to them: it draws
        likeliest = getattr(self, "modes_", "drawn") == "likeliest"
        return enc.draw(logits, means, stds, cons, rng, temperature, likeliest_modes=likeliest)

    # ------------------------------------------------------------------------------------ state
    def _get_state(self) -> dict[str, Any]:
        return {
            "encoding": self.encoding_.get_state(),
            "encoder": state_to_arrays(self.encoder_),
            "decoder": state_to_arrays(self.decoder_),
            "keylike": getattr(self, "keylike_", {}),  # none in a federated model
            "value_map": getattr(self, "value_map_", {}),  # none in a federated or older model
            "modes": getattr(self, "modes_", "drawn"),
            "residuals": getattr(self, "residuals_", {}),
            "training": self.training_,
        }

    def _set_state(self, state: dict[str, Any]) -> None:
        self.device_ = resolve_device(self.device)
        enc = self.encoding_ = ModeEncoding.from_state(state["encoding"])
        encoder = Encoder(enc.dim_, self.width, self.depth, self.latent_dim)
        decoder = Decoder(self.latent_dim, self.width, self.depth, enc.dim_, enc.n_scalars_)
        self.encoder_ = state_from_arrays(encoder, state["encoder"]).to(self.device_).eval()
        self.decoder_ = state_from_arrays(decoder, state["decoder"]).to(self.device_).eval()
        self.keylike_ = state.get("keylike", {})  # none in models saved before key-like columns
        maps = state.get("value_map", {})  # none in models saved before likeliest modes
        self.value_map_ = {k: [np.asarray(a, dtype="float64") for a in v] for k, v in maps.items()}
        self.modes_ = state.get("modes", "drawn")
        self.residuals_ = state.get("residuals", {})  # none in models saved before residual columns
        self.training_ = state["training"]
