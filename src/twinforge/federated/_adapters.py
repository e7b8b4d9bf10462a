"""What federated training needs from each neural model, written against the models' own building blocks.

For every model an adapter:

- ``init(model, proxy_arrays, n_rows, rng, private)``: builds the model's encoding from the agreed (proxy) marginals
  and a freshly initialised network, exactly as the model's ``_fit`` does before its first epoch (``private``:
  as its DP fit does);
- ``modules(model)``: the torch modules whose weights the sites average (the networks, CTGAN's critic included);
- ``train(model, arrays, epochs, rng, dp)``: a few local epochs on a site's rows, starting from the current weights
  and keeping the encoding fixed, with the model's own loss; with ``dp`` (local DP, :class:`LocalDP`) every step
  is a DP-SGD step, as in the model's own DP fit (``auto``'s any-order loss, ``tvae``'s ELBO, ``ddpm``'s
  diffusion loss, ``ctgan``'s DP epoch: the critic by DP-SGD, the generator through it);
- ``finish(model, proxy_arrays, rng)``: server-side work after the last round (``auto``'s grouped passes, from
  the global model's own samples, and its marginal calibration on the agreed marginals).

Nothing here changes a model file: the adapters call the models' existing losses, encodings and networks
(``Autoregressive._train``, ``TVAE._loss``, ``CTGAN._train_cond``/``_activate``, ``diffusion_loss``), so a model's
training code stays in one place. FedProx's proximal term ``mu/2 ||w - w_global||^2`` (Li et al., "Federated
Optimization in Heterogeneous Networks", MLSys 2020) is added as a gradient hook, ``grad += mu (w - w_global)``,
so it works with any model's loop.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from twinforge.errors import ParameterError

__all__ = ["ADAPTERS", "LOCAL_DP_MODELS", "get_adapter", "get_weights", "proximal", "set_weights"]


def get_weights(modules: dict[str, nn.Module]) -> dict[str, np.ndarray]:
    """All modules' state dicts as float arrays, keyed ``module/parameter``."""
    return {
        f"{m}/{k}": v.detach().cpu().numpy().copy() for m, mod in modules.items() for k, v in mod.state_dict().items()
    }


def set_weights(modules: dict[str, nn.Module], arrays: dict[str, np.ndarray]) -> None:
    """Load ``arrays`` (as written by :func:`get_weights`) into the modules; names and shapes must match."""
    for m, mod in modules.items():
        prefix = f"{m}/"
        state = {k[len(prefix) :]: torch.as_tensor(np.asarray(v)) for k, v in arrays.items() if k.startswith(prefix)}
        mod.load_state_dict(state, strict=True)


def local_batch(batch_size: int, n_rows: int, min_steps: int = 8, floor: int = 32) -> int:
    """A site's batch: the model's, made smaller so that a local epoch takes at least ``min_steps`` steps.

    FedAvg's progress per round is about one site's local steps; with the pooled data's batch a small site would
    make one or two steps per epoch, and the federation would need many times more rounds than central training
    needs epochs.
    """
    return max(1, min(batch_size, n_rows, max(floor, -(-n_rows // min_steps))))


# local DP: a site's epoch is this many DP-SGD steps (expected batch: rows / this); on churn (auto, 2 sites,
# epsilon 3, no learning-rate decay) 16 steps gave column pair trends 0.85, 8 steps 0.82
DP_STEPS_PER_EPOCH = 16


def dp_batch(n_rows: int) -> int:
    """A site's expected DP-SGD batch (its Poisson sampling rate times its rows).

    Fixed per epoch, whatever the model's own batch: the accountant's sampling rate is then the same for every
    model and site size (``1 / DP_STEPS_PER_EPOCH``).
    """
    return max(1, -(-int(n_rows) // DP_STEPS_PER_EPOCH))


@contextlib.contextmanager
def proximal(modules: dict[str, nn.Module], mu: float) -> Iterator[None]:
    """FedProx: while active, every gradient gets ``mu * (w - w_start)`` added (the proximal term's gradient)."""
    if mu <= 0:
        yield
        return
    handles = []
    for mod in modules.values():
        for p in mod.parameters():
            if not p.requires_grad:
                continue
            anchor = p.detach().clone()
            handles.append(p.register_hook(lambda g, p=p, a=anchor: g + mu * (p.detach() - a)))
    try:
        yield
    finally:
        for h in handles:
            h.remove()


class _EqualSteps:
    """Equal local steps: every site takes the same number of optimiser steps per round, whatever its size.

    FedAvg weights a site's update by its rows, but a site that takes more local steps moves further: with steps
    t_i and weights p_i, FedAvg minimises sum p_i t_i F_i rather than sum p_i F_i (Wang et al., "Tackling the
    Objective Inconsistency Problem in Heterogeneous Federated Optimization", NeurIPS 2020). One pass per local
    epoch gives a large site many times the steps of a small one, so the global model leans toward the large
    sites' mix. Every site therefore takes the steps a site of average size takes in ``local_epochs`` passes (the
    server sends them as ``local-steps``), in as many passes over its own rows as that needs. Not under local DP,
    whose accountant is set per epoch.
    """

    def site_batch(self, model: Any, n_rows: int) -> int:
        """The batch a site with ``n_rows`` rows trains with (at most its rows)."""
        return local_batch(int(model.batch_size), n_rows)

    def steps_per_pass(self, model: Any, n_rows: float) -> int:
        n = max(1, round(float(n_rows)))
        return max(1, n // self.site_batch(model, n))

    def local_steps(self, model: Any, mean_rows: float, local_epochs: int) -> int:
        """Steps every site takes per round: ``local_epochs`` passes of a site with ``mean_rows`` rows."""
        return int(local_epochs) * self.steps_per_pass(model, mean_rows)

    def passes_for(self, model: Any, n_rows: int, local_steps: int) -> int:
        """Passes over a site's ``n_rows`` rows that come closest to ``local_steps`` steps (at least one)."""
        return max(1, round(local_steps / self.steps_per_pass(model, n_rows)))


def _batches(n_rows: int, batch: int, steps: int, device: Any) -> Iterator[torch.Tensor]:
    """``steps`` batches of ``batch`` row indices, going through the rows in fresh random orders, one after another
    (under the caller's seeded torch generator)."""
    passes = -(-steps * batch // n_rows)
    order = torch.cat([torch.randperm(n_rows, device=device) for _ in range(passes)])
    for i in range(steps):
        yield order[i * batch : (i + 1) * batch]


class _AutoAdapter(_EqualSteps):
    """``auto`` (models/autoregressive.py): tokens planned on the proxy; local epochs through ``_train``."""

    state_keys: ClassVar[dict[str, str]] = {"net": "weights"}  # module -> where ``_get_state`` keeps its weights

    def init(
        self, model: Any, proxy: dict[str, np.ndarray], n_rows: int, rng: np.random.Generator, private: bool = False
    ) -> None:
        from twinforge.models import autoregressive as ar
        from twinforge.models._nn import resolve_device, seeded

        model.columns_ = [
            ar._plan(name, a, model.transformer_.transforms_[name], model.n_bins, model.max_levels)
            for name, a in proxy.items()
        ]
        model.config_ = {
            "width": int(model.width or ar._auto_width(n_rows)),
            "depth": int(model.depth),
            # as a central fit: sharp conditionals without DP, the unscaled head under local DP-SGD
            "shape_scale": ar._DP_SHAPE_SCALE if private else ar._SHAPE_SCALE,
        }
        model.order_ = ar._sampling_order(model.columns_)
        model.train_info_ = {}
        model._build_layout()
        device = resolve_device(model.device)
        with seeded(rng, device):
            model.net_ = model._new_net().to(device)
        model._bf16_net = None
        model.bias_ = [np.zeros(ar._n_tokens(col), dtype="float32") for col in model.columns_]

    def modules(self, model: Any) -> dict[str, nn.Module]:
        return {"net": model.net_}

    def site_batch(self, model: Any, n_rows: int) -> int:
        # as ``_train`` picks it (auto's batch grows slowly with the rows); a site smaller than it takes one step
        return model.batch_size or int(np.clip(2 ** round(np.log2(max(n_rows / 16, 1))), 32, 1024))

    def steps_per_pass(self, model: Any, n_rows: float) -> int:
        return max(1, -(-round(float(n_rows)) // self.site_batch(model, round(float(n_rows)))))

    def train(
        self,
        model: Any,
        arrays: dict[str, np.ndarray],
        epochs: int,
        rng: np.random.Generator,
        dp: Any = None,
        steps: int | None = None,
    ) -> dict:
        """``epochs`` passes over the site's rows or, with ``steps`` (equal local steps), the whole passes that
        come closest to that many steps (``_train``'s loop)."""
        from twinforge.models import autoregressive as ar
        from twinforge.models._nn import resolve_device, seeded

        tokens = ar._training_matrix(model.columns_, arrays, rng)  # tokens, then within-bin places (-1: none)
        d = len(model.columns_)
        # a missing value in a column the agreed statistics saw none in
        tokens[:, :d] = np.where(tokens[:, :d] < 0, 0, tokens[:, :d])
        device = resolve_device(model.device)
        if dp is not None:
            return self._train_private(model, torch.as_tensor(tokens), epochs, rng, dp, device)
        if steps is not None:
            epochs = self.passes_for(model, len(tokens), steps)
        saved = model.epochs, model.validation_share, model.max_minutes, model.progress
        # one pass per epoch, no local early stopping: the server decides when training ends
        model.epochs, model.validation_share, model.max_minutes, model.progress = int(epochs), 0.0, None, False
        try:
            with seeded(rng, device) as gen, ar._cpu_threads(device):
                model.net_.train()
                result, _ = model._train(torch.as_tensor(tokens), gen, device, rng)
        finally:
            model.epochs, model.validation_share, model.max_minutes, model.progress = saved
        model.net_.eval()
        model._bf16_net = None
        loss = float(result.history[-1]["loss"]) if result.history else float("nan")
        return {"loss": loss, "steps": int(epochs) * self.steps_per_pass(model, len(tokens))}

    def _train_private(
        self, model: Any, tokens: torch.Tensor, epochs: int, rng: np.random.Generator, dp: Any, device: Any
    ) -> dict:
        """Local DP: the model's any-order loss on Poisson-sampled batches, by DP-SGD (as its own DP fit does)."""
        from twinforge.models import autoregressive as ar
        from twinforge.models._nn import seeded

        n = len(tokens)
        batch = dp_batch(n)
        steps = -(-n // batch)
        lay = {k: v.to(device) for k, v in model.layout_.items()}
        net, data = model.net_, tokens.to(device)
        total, count = 0.0, 0
        with seeded(rng, device) as gen, ar._cpu_threads(device):
            dpsgd = dp.dpsgd(n, batch, steps, rng)
            opt = dpsgd.make_private(
                net, torch.optim.AdamW(net.parameters(), lr=model.learning_rate, weight_decay=1e-5)
            )
            net.train()
            for _ in range(int(epochs)):
                for rows in dpsgd.epoch(steps):
                    rows = rows.to(device)
                    loss = ar._loss(net, lay, data[rows], model._random_known(len(rows), gen).to(device)).mean()
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    total, count = total + float(loss.detach()), count + 1
        net.eval()
        model._bf16_net = None
        return {"loss": total / max(count, 1), **_dp_spent(dpsgd)}

    def finish(self, model: Any, proxy: dict[str, np.ndarray], rng: np.random.Generator) -> None:
        from twinforge.models import autoregressive as ar

        model._bf16_net = None
        model.bias_ = [np.zeros(ar._n_tokens(col), dtype="float32") for col in model.columns_]
        # the grouped passes, as a central fit picks them: measured on rows the global model samples itself, so
        # no site is asked for anything and DP is untouched
        model._group_columns(rng)
        tokens = np.column_stack([ar._encode(col, proxy[col["column"]], rng) for col in model.columns_])
        tokens = np.where(tokens < 0, 0, tokens)
        model._calibrate(tokens, rng)


class _TVAEAdapter(_EqualSteps):
    """``tvae`` (models/vae.py): mode-specific normalisation fitted on the proxy; the model's negative ELBO."""

    state_keys: ClassVar[dict[str, str]] = {"encoder": "encoder", "decoder": "decoder"}

    def init(
        self, model: Any, proxy: dict[str, np.ndarray], n_rows: int, rng: np.random.Generator, private: bool = False
    ) -> None:
        from twinforge.models._nn import resolve_device, seeded
        from twinforge.models._tabular_nn import ModeEncoding
        from twinforge.models.vae import Decoder, Encoder

        model.device_ = resolve_device(model.device)
        enc = model.encoding_ = ModeEncoding().fit(proxy, model.transformer_.transforms_, rng, model.max_modes)
        with seeded(rng, model.device_):
            model.encoder_ = Encoder(enc.dim_, model.width, model.depth, model.latent_dim).to(model.device_)
            model.decoder_ = Decoder(model.latent_dim, model.width, model.depth, enc.dim_, enc.n_scalars_).to(
                model.device_
            )
        model.training_ = {}

    def modules(self, model: Any) -> dict[str, nn.Module]:
        return {"encoder": model.encoder_, "decoder": model.decoder_}

    def train(
        self,
        model: Any,
        arrays: dict[str, np.ndarray],
        epochs: int,
        rng: np.random.Generator,
        dp: Any = None,
        steps: int | None = None,
    ) -> dict:
        """``epochs`` passes over the site's rows, or exactly ``steps`` steps (equal local steps; not with DP)."""
        from twinforge.models._nn import seeded
        from twinforge.models.vae import _VAE

        codes, scalars = model.encoding_.encode(arrays, rng)
        for s, size in enumerate(model.encoding_.span_sizes_):  # e.g. missing values the agreed statistics saw none of
            codes[:, s] = np.minimum(codes[:, s], size - 1)
        tensors = model._tensors(codes, scalars)
        vae = _VAE(model.encoder_, model.decoder_)
        opt = torch.optim.Adam(vae.parameters(), model.learning_rate, weight_decay=1e-5)
        total, count = 0.0, 0
        with seeded(rng, model.device_):
            dpsgd = None
            if dp is None:
                batch = self.site_batch(model, len(codes))
                if steps is None:
                    steps = int(epochs) * self.steps_per_pass(model, len(codes))
                epochs_batches = [_batches(len(codes), batch, int(steps), model.device_)]
            else:  # the scales sit outside a layer, where Opacus sees no per-sample gradient
                batch = dp_batch(len(codes))
                per_epoch = max(1, len(codes) // batch)
                dpsgd = dp.dpsgd(len(codes), batch, per_epoch, rng)
                model.decoder_.log_sigma.requires_grad_(False)
                opt = dpsgd.make_private(vae, opt)
                epochs_batches = (dpsgd.epoch(per_epoch) for _ in range(int(epochs)))
            vae.train()
            for batches in epochs_batches:
                for rows in batches:
                    loss = model._loss(*(t[rows] for t in tensors))
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    total, count = total + float(loss.detach()), count + 1
        vae.eval()
        return {"loss": total / max(count, 1), "steps": count, **_dp_spent(dpsgd)}

    def finish(self, model: Any, proxy: dict[str, np.ndarray], rng: np.random.Generator) -> None:
        pass


class _CTGANAdapter(_EqualSteps):
    """``ctgan`` (models/gan.py): generator and critic both averaged; training-by-sampling on the site's rows."""

    state_keys: ClassVar[dict[str, str]] = {"generator": "generator"}  # the critic is only trained, never saved

    def init(
        self, model: Any, proxy: dict[str, np.ndarray], n_rows: int, rng: np.random.Generator, private: bool = False
    ) -> None:
        from twinforge.models._nn import resolve_device, seeded
        from twinforge.models._tabular_nn import CondVector, ModeEncoding
        from twinforge.models.gan import Critic, Generator

        model.device_ = resolve_device(model.device)
        if private:  # DP-SGD clips one row's gradient: the critic sees rows one by one (as in a central DP fit)
            model.pac = 1
        enc = model.encoding_ = ModeEncoding().fit(proxy, model.transformer_.transforms_, rng, model.max_modes)
        # every span with two or more agreed categories is conditioned on; counts are the agreed marginals
        spans = [s for s in range(enc.n_spans) if int((enc.span_counts_[s] > 0).sum()) >= 2]
        model.cond_ = CondVector(spans, [enc.span_counts_[s] for s in spans])
        with seeded(rng, model.device_):
            model.generator_ = Generator(model.noise_dim, model.cond_.dim, model.width, model.depth, enc.dim_)
            model.generator_.to(model.device_)
            model._fed_critic = Critic(enc.dim_ + model.cond_.dim, model.width, model.depth, int(model.pac)).to(
                model.device_
            )
        model.training_ = {}
        model.span_bias_ = [np.zeros(size) for size in enc.span_sizes_]
        model.value_map_ = {}

    def modules(self, model: Any) -> dict[str, nn.Module]:
        if not hasattr(model, "_fed_critic"):
            from twinforge.models.gan import Critic

            model._fed_critic = Critic(
                model.encoding_.dim_ + model.cond_.dim, model.width, model.depth, int(model.pac)
            ).to(model.device_)
        return {"generator": model.generator_, "critic": model._fed_critic}

    def site_batch(self, model: Any, n_rows: int) -> int:
        # whole packs of ``pac`` rows (the critic judges packs)
        pac = int(model.pac)
        return max(pac, local_batch(int(model.batch_size), max(n_rows, pac)) // pac * pac)

    def train(
        self,
        model: Any,
        arrays: dict[str, np.ndarray],
        epochs: int,
        rng: np.random.Generator,
        dp: Any = None,
        steps: int | None = None,
    ) -> dict:
        """``epochs`` passes' worth of steps, or exactly ``steps`` steps (equal local steps; not with DP); each
        step trains the critic once and the generator once, by training-by-sampling on the site's rows."""
        from twinforge.models._nn import seeded
        from twinforge.models._tabular_nn import CondVector
        from twinforge.models.gan import _GP_WEIGHT, gradient_penalty

        enc, dev = model.encoding_, model.device_
        critic = self.modules(model)["critic"]
        codes, scalars = enc.encode(arrays, rng)
        if dp is not None:
            return self._train_private(model, critic, codes, scalars, epochs, rng, dp)
        glob = model.cond_
        local = CondVector(glob.spans, [np.bincount(codes[:, s], minlength=enc.span_sizes_[s]) for s in glob.spans])
        local.n_rows = len(codes)
        local.order = [np.argsort(codes[:, s], kind="stable") for s in local.spans]
        local.offsets = [np.concatenate([[0], np.cumsum(c)]).astype("int64") for c in local.counts]
        data = torch.as_tensor(enc.to_matrix(codes, scalars), device=dev)
        batch = self.site_batch(model, len(codes))
        if steps is None:
            steps = int(epochs) * self.steps_per_pass(model, len(codes))
        opt_g = torch.optim.Adam(
            model.generator_.parameters(), model.learning_rate, betas=(0.5, 0.9), weight_decay=1e-6
        )
        opt_d = torch.optim.Adam(critic.parameters(), model.learning_rate, betas=(0.5, 0.9), weight_decay=1e-6)
        model.cond_ = local  # training-by-sampling draws this site's rows (same vector layout as the global one)
        total_d = total_g = 0.0
        try:
            with seeded(rng, dev):
                model.generator_.train()
                for _ in range(int(steps)):
                    cond, _, _, rows = model._train_cond(batch, rng)
                    real = torch.cat([data[torch.as_tensor(rows, device=dev)], cond], dim=1)
                    fake = torch.cat([model._activate(model._generate(batch, cond)), cond], dim=1)
                    loss_d = critic(fake.detach()).mean() - critic(real).mean()
                    penalty = gradient_penalty(critic, real, fake.detach())
                    opt_d.zero_grad(set_to_none=True)
                    (loss_d + _GP_WEIGHT * penalty).backward()
                    opt_d.step()
                    cond, which, cats, _ = model._train_cond(batch, rng)
                    raw = model._generate(batch, cond)
                    fake = torch.cat([model._activate(raw), cond], dim=1)
                    loss_g = -critic(fake).mean() + model._cond_loss(raw, which, cats)
                    opt_g.zero_grad(set_to_none=True)
                    loss_g.backward()
                    opt_g.step()
                    total_d += float(loss_d.detach())
                    total_g += float(loss_g.detach())
        finally:
            model.cond_ = glob
        model.generator_.eval()
        n = max(int(steps), 1)
        return {"loss": total_g / n, "loss_d": total_d / n, "steps": int(steps)}

    def _train_private(
        self,
        model: Any,
        critic: nn.Module,
        codes: np.ndarray,
        scalars: np.ndarray,
        epochs: int,
        rng: np.random.Generator,
        dp: Any,
    ) -> dict:
        """Local DP: the model's own DP epoch (the critic by DP-SGD on Poisson-sampled rows, the generator through
        it); conditions for generated rows come from the agreed (noisy) frequencies, never from this site's rows."""
        from twinforge.models._nn import seeded
        from twinforge.models._tabular_nn import CondVector

        enc, dev = model.encoding_, model.device_
        data = torch.as_tensor(enc.to_matrix(codes, scalars), device=dev)
        codes_t = torch.as_tensor(codes, device=dev)
        batch = dp_batch(len(codes))
        steps = max(1, len(codes) // batch)
        glob = model.cond_
        # training-by-sampling's draws for the generator need no real row: an index of one dummy row per category
        agreed = CondVector(glob.spans, glob.counts)
        agreed.n_rows = 1
        agreed.order = [np.zeros(1, dtype="int64") for _ in glob.spans]
        agreed.offsets = [np.zeros(size + 1, dtype="int64") for size in agreed.sizes]
        opt_g = torch.optim.Adam(
            model.generator_.parameters(), model.learning_rate, betas=(0.5, 0.9), weight_decay=1e-6
        )
        opt_d = torch.optim.Adam(critic.parameters(), model.learning_rate, betas=(0.5, 0.9), weight_decay=1e-6)
        losses: list[dict[str, float]] = []
        model.cond_ = agreed
        try:
            with seeded(rng, dev):
                dpsgd = dp.dpsgd(len(codes), batch, steps, rng)
                opt_d = dpsgd.make_private(critic, opt_d)
                model.generator_.train()
                for _ in range(int(epochs)):
                    losses.append(model._dp_epoch(dpsgd, steps, data, codes_t, critic, opt_d, opt_g, rng))
        finally:
            model.cond_ = glob
        model.generator_.eval()
        loss = float(np.mean([x["loss_g"] for x in losses])) if losses else float("nan")
        return {"loss": loss, **_dp_spent(dpsgd)}

    def finish(self, model: Any, proxy: dict[str, np.ndarray], rng: np.random.Generator) -> None:
        from twinforge.models._nn import seeded

        # calibrate the sampled categories and modes to the agreed marginals, and map the numbers onto the
        # proxy's (the merged marginals), as a central fit does with its own rows
        model.generator_.eval()
        with seeded(rng, model.device_):
            model.span_bias_ = model._calibrate()
        model.value_map_ = model._fit_value_map(proxy, rng)


class _DDPMAdapter(_EqualSteps):
    """``ddpm`` (models/diffusion.py): quantile encoding on the proxy; the model's diffusion loss."""

    state_keys: ClassVar[dict[str, str]] = {"denoiser": "denoiser"}

    def init(
        self, model: Any, proxy: dict[str, np.ndarray], n_rows: int, rng: np.random.Generator, private: bool = False
    ) -> None:
        from twinforge.models._nn import resolve_device, seeded
        from twinforge.models._tabular_nn import QuantileEncoding
        from twinforge.models.diffusion import Denoiser

        model.device_ = resolve_device(model.device)
        enc = model.encoding_ = QuantileEncoding().fit(proxy, model.transformer_.transforms_, model.n_quantiles)
        with seeded(rng, model.device_):
            model.denoiser_ = Denoiser(enc.n_numeric_, enc.token_sizes, model.width, model.depth).to(model.device_)
        model.training_ = {}

    def modules(self, model: Any) -> dict[str, nn.Module]:
        return {"denoiser": model.denoiser_}

    def train(
        self,
        model: Any,
        arrays: dict[str, np.ndarray],
        epochs: int,
        rng: np.random.Generator,
        dp: Any = None,
        steps: int | None = None,
    ) -> dict:
        """``epochs`` passes over the site's rows, or exactly ``steps`` steps (equal local steps; not with DP)."""
        from twinforge.models._nn import seeded
        from twinforge.models.diffusion import diffusion_loss

        z, valid, tokens = model.encoding_.encode(arrays, rng)
        for j, size in enumerate(model.encoding_.token_sizes):  # a category the agreed statistics dropped
            tokens[:, j] = np.minimum(tokens[:, j], size - 1)
        data = model._tensors(z, valid, tokens)
        net, dev = model.denoiser_, model.device_
        opt = torch.optim.AdamW(net.parameters(), model.learning_rate, weight_decay=1e-4)
        total, count = 0.0, 0
        with seeded(rng, dev):
            dpsgd = None
            if dp is None:
                batch = self.site_batch(model, len(z))
                if steps is None:
                    steps = int(epochs) * self.steps_per_pass(model, len(z))
                epochs_batches = [_batches(len(z), batch, int(steps), dev)]
            else:
                batch = dp_batch(len(z))
                per_epoch = max(1, len(z) // batch)
                dpsgd = dp.dpsgd(len(z), batch, per_epoch, rng)
                opt = dpsgd.make_private(net, opt)
                epochs_batches = (dpsgd.epoch(per_epoch) for _ in range(int(epochs)))
            net.train()
            for batches in epochs_batches:
                for rows in batches:
                    t = torch.arange(len(rows), device=dev) + torch.rand(len(rows), device=dev)
                    t = (t / len(rows))[torch.randperm(len(rows), device=dev)].clamp_min(1e-3)
                    loss = diffusion_loss(net, *(x[rows] for x in data), t)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    total, count = total + float(loss.detach()), count + 1
        net.eval()
        return {"loss": total / max(count, 1), "steps": count, **_dp_spent(dpsgd)}

    def finish(self, model: Any, proxy: dict[str, np.ndarray], rng: np.random.Generator) -> None:
        pass


def _dp_spent(dpsgd: Any) -> dict[str, float]:
    """With local DP: what the site has spent up to the end of this round (hooks removed, steps accounted)."""
    if dpsgd is None:
        return {}
    dpsgd.finish()
    eps, delta = dpsgd.ledger.spent()
    return {"dp-epsilon": float(eps), "dp-delta": float(delta), "dp-noise": float(dpsgd.sigma)}


class _SequenceAdapter:
    """``sequence`` (sequences/model.py): the sequence network without its per-entity embeddings, and the static
    model's network. Agreement, site rounds and the finish are in ``_sequence`` (a site's data are entities)."""

    state_keys: ClassVar[dict[str, str]] = {}

    def modules(self, model: Any) -> dict[str, nn.Module]:
        from twinforge.federated._sequence import SharedNet

        return {"seq": SharedNet(model.net_), "static": model.static_model_.net_}


# models whose federated training runs DP-SGD on each site (the sequence model at entity level, see _sequence)
LOCAL_DP_MODELS = ("auto", "ctgan", "ddpm", "tvae", "sequence")

ADAPTERS: dict[str, Any] = {
    "auto": _AutoAdapter(),
    "tvae": _TVAEAdapter(),
    "ctgan": _CTGANAdapter(),
    "ddpm": _DDPMAdapter(),
    "sequence": _SequenceAdapter(),
}


def get_adapter(name: str) -> Any:
    if name not in ADAPTERS:
        raise ParameterError(
            f"model {name!r} cannot be trained federatedly; choose one of: {', '.join(sorted(ADAPTERS))}"
        )
    return ADAPTERS[name]
