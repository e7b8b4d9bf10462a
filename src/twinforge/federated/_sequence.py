"""Federated training of the sequence model (``sequences/model.py``): whole entities stay on their site.

A site holds a long table (entity key, time, channels, static columns constant within an entity). It derives two
tables from it, which the usual two-stage statistics of ``_stats`` summarise (histograms on server-fixed grids,
level counts, no row ever sent):

- the *step* table: one row per measurement, its channels and ``__gap__`` (the time since the entity's previous
  step; missing on an entity's first step);
- the *entity* table: one row per entity, its static attributes, ``__length__`` (steps), ``__start__`` (first
  time, in seconds for datetimes) and ``__span__`` (last time minus first).

From the merged statistics the server builds what a central fit reads off the pooled data (``_Encoding.build``
and ``_StaticEncoding.build``): each channel's levels or mean, spread and bounds, the gap's mode (constant, a few
levels, or log-normal), the time scale (the median span), and the static model (``auto`` on the entity table, its
transform fitted on the entity proxy, trained federatedly like federated ``auto``).

Training: every round a site rebuilds the model from the header and the global weights, trains the static model
(``_AutoAdapter``) and the sequence network (``SequenceModel._train``, its own loss and windows, no early stopping)
for the round's local epochs, and returns both networks' weights *without* the per-entity embeddings ``z``: those
stay on the site, in its Flower ``Context.state``, from round to round. After the last round the server sends the
global weights once more; each site fits its entities' ``z`` to them (the network frozen) and returns only the
sums ``n``, ``sum z`` and ``sum z z^T`` over its entities, from which the server gets the embedding distribution
new entities are drawn from (``z_mean_``, ``z_cov_``).
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from twinforge.errors import DataError, MetadataError, ParameterError
from twinforge.federated import _stats
from twinforge.metadata import ColumnSpec, Metadata

__all__ = [
    "SequenceSpec",
    "SharedNet",
    "build_model",
    "check_entity_dp",
    "check_site",
    "site_stage1",
    "site_stage2",
    "train_site",
    "train_site_private",
]

GAP, LENGTH, START, SPAN = "__gap__", "__length__", "__start__", "__span__"
_Z_EPOCHS = 4  # epochs a site fits its entities' embeddings to the final global network (the network frozen)
_MIN_Z_STEPS = 8  # with DP: full-batch steps per such epoch

# What the model's privacy record adds under ``dp="local"`` (entity-level DP; see ``train_site_private``).
ENTITY_DP_RECORD = {
    "unit": "entity",
    "accountant": "RDP (twinforge.privacy), one per site, entity-level: w.r.t. adding or removing one of that "
    "site's entities with all its steps",
    "mechanism": (
        "entity-level DP on each site: the statistics count each step with weight 1 / (its entity's steps), so one "
        "entity moves every count vector by at most 1 (Gaussian noise; categorical channels' levels are declared, "
        "static levels named only above a noisy threshold); every local step is a DP-SGD step in which each entity "
        "is one sample (Poisson-sampled entities; an entity's static row and one window of its sequence give one "
        "gradient, clipped as a whole, so a window never splits an entity across samples); the per-entity "
        "embeddings stay on the site and only their clipped sums leave it, as a third Gaussian release; the "
        "epsilon is the largest any site spent"
    ),
}


class SequenceSpec(dict):
    """The agreed roles of the long table's columns: ``entity_key``, ``time_key`` and ``static`` (a list)."""

    @classmethod
    def resolve(cls, metadata: Metadata, entity_key: str | None, time_key: str | None, static: Any) -> SequenceSpec:
        """The roles from the arguments, else the metadata's ``entity_key``/``time_index``; checked against it."""
        ek = entity_key or metadata.entity_key
        tk = time_key or metadata.time_index
        problems = []
        if ek is None or tk is None:
            missing = " and ".join(n for n, v in (("--entity-key", ek), ("--time-key", tk)) if v is None)
            raise ParameterError(
                f"the federated sequence model needs the long table's {missing}: name them (or set the agreed "
                "metadata's entity_key/time_index)"
            )
        static = [] if static is None else [str(c) for c in static]
        for role, col in (("entity key", ek), ("time key", tk), *(("static column", c) for c in static)):
            if col not in metadata.columns:
                problems.append(f"{role} {col!r} is not a column of the agreed metadata ({list(metadata.columns)})")
        if ek == tk:
            problems.append(f"entity key and time key are both {ek!r}")
        if ek in static or tk in static:
            problems.append("static columns cannot include the entity key or the time key")
        if problems:
            raise ParameterError("; ".join(problems))
        return cls(entity_key=ek, time_key=tk, static=static)

    def channels(self, metadata: Metadata) -> list[str]:
        return [c for c in metadata.columns if c not in (self["entity_key"], self["time_key"], *self["static"])]

    def time_kind(self, metadata: Metadata) -> str:
        return "datetime" if metadata.columns[self["time_key"]].kind == "datetime" else "number"

    def tables_metadata(self, metadata: Metadata) -> tuple[Metadata, Metadata]:
        """Metadata of the step table and of the entity table (derived columns included)."""
        integral = metadata.columns[self["time_key"]].kind == "integer"
        steps = {c: metadata.columns[c] for c in self.channels(metadata)}
        steps[GAP] = ColumnSpec("integer" if integral else "continuous")
        ents = {c: metadata.columns[c] for c in self["static"]}
        ents[LENGTH] = ColumnSpec("integer")
        ents[START] = ColumnSpec("integer" if integral else "continuous")
        ents[SPAN] = ColumnSpec("integer" if integral else "continuous")
        return Metadata(steps), Metadata(ents)


# ------------------------------------------------------------------------------------------ site side
def check_site(df: pd.DataFrame, metadata: Metadata, spec: SequenceSpec, site: str) -> None:
    """MetadataError listing how a site's long table differs from the agreed schema and roles."""
    problems = _stats.schema_problems(df, metadata, site)
    bad = [c for c in spec["static"] if metadata.columns[c].kind == "datetime"]
    if bad:
        problems.append(f"datetime static columns {bad} are not supported by federated training yet")
    if not problems:
        try:
            _split(df, metadata, spec)
        except (DataError, ParameterError) as exc:
            problems.append(str(exc))
    if problems:
        raise MetadataError(problems, header=f"{site} does not match the agreed schema; fix the data or the metadata")


def stats_sensitivity(metadata: Metadata, spec: SequenceSpec) -> float:
    """L2 sensitivity of one statistics stage to one entity: its row of the entity table and its steps of the
    step table, each step weighted ``1 / steps`` (see :func:`site_stage1`), so each table as one row of it."""
    steps, ents = spec.tables_metadata(metadata)
    return float(np.hypot(_stats.stats_sensitivity(steps), _stats.stats_sensitivity(ents)))


def check_entity_dp(metadata: Metadata, spec: SequenceSpec, params: dict[str, Any]) -> None:
    """ParameterError unless entity-level DP can be given as built: what would need a level chosen from one
    entity's steps, or more than one sample per entity, is refused."""
    problems = []
    undeclared = [
        c
        for c in spec.channels(metadata)
        if metadata.columns[c].kind == "categorical" and not metadata.columns[c].categories
    ]
    if undeclared:
        problems.append(
            f"categorical channels {undeclared} have no declared `categories` in the agreed metadata: with --dp "
            "local a channel's levels must be declared (they cost no budget), because one entity's steps can name "
            "many levels and the noisy threshold that hides a level one row holds does not cover that"
        )
    if int(params.get("context", 0) or 0):
        problems.append(
            "the sequence model's context encoder (context > 0) is not trained federatedly with --dp local: "
            "each window's latent would come from another stretch of the same entity in a second network; use "
            "context=0 (the per-entity embeddings)"
        )
    if problems:
        raise ParameterError("--dp local with --model sequence: " + "; ".join(problems))


def step_weights(frames: dict[str, Any]) -> np.ndarray:
    """Each step's weight in the DP statistics: 1 / (its entity's steps), so that every entity weighs 1."""
    lengths = frames["data"].lengths().astype("float64")
    return np.repeat(1.0 / lengths, lengths.astype("int64"))


def step_count(merged: dict[str, Any], metadata: Metadata, spec: SequenceSpec, dp: bool) -> int:
    """The pooled steps: the step table's count, or with DP (whose step counts are per entity) the entities
    times their agreed mean length."""
    if not dp:
        return round(float(merged["steps"]["n"]))
    _, ents = proxies(merged, metadata, spec)
    return round(float(merged["n"]) * float(np.nanmean(ents[LENGTH].to_numpy(dtype="float64", na_value=np.nan))))


def _split(df: pd.DataFrame, metadata: Metadata, spec: SequenceSpec) -> Any:
    from twinforge.sequences._data import split_events

    return split_events(df, spec["entity_key"], spec["time_key"], list(spec["static"]), metadata)


def site_frames(df: pd.DataFrame, metadata: Metadata, spec: SequenceSpec) -> dict[str, Any]:
    """The site's entities split (``SequenceData``), their times as numbers, and the step and entity tables."""
    from twinforge.sequences._data import parse_time

    data = _split(df, metadata, spec)
    tk = spec["time_key"]
    fmt = metadata.columns[tk].datetime_format
    times = parse_time(data.events[tk], tk, fmt)[0]
    lengths = data.lengths()
    offsets = np.r_[0, np.cumsum(lengths)]
    gap = np.r_[np.nan, np.diff(times)]
    gap[offsets[:-1]] = np.nan
    steps = data.events[data.channels].reset_index(drop=True).copy()
    steps[GAP] = gap
    starts, ends = times[offsets[:-1]], times[offsets[1:] - 1]
    ents = data.static[spec["static"]].reset_index(drop=True).copy()
    ents[LENGTH] = lengths.astype("int64")
    integral = metadata.columns[tk].kind == "integer"
    ents[START] = starts.astype("int64") if integral else starts
    ents[SPAN] = (ends - starts).astype("int64") if integral else ends - starts
    return {"data": data, "times": times, "steps": steps, "entities": ents}


def site_stage1(
    df: pd.DataFrame, metadata: Metadata, spec: SequenceSpec, sigma: float, seed: int | None, level_threshold: float
) -> dict[str, Any]:
    """Stage-1 aggregates of the step table and of the entity table (``_stats.site_stage1`` on each)."""
    frames = site_frames(df, metadata, spec)
    steps_meta, ents_meta = spec.tables_metadata(metadata)
    rng = np.random.default_rng(seed)
    w = step_weights(frames) if sigma > 0 else None  # DP: the unit of privacy is an entity
    return {
        "steps": _stats.site_stage1(
            frames["steps"], steps_meta, sigma, int(rng.integers(2**62)), level_threshold, weights=w
        ),
        "entities": _stats.site_stage1(frames["entities"], ents_meta, sigma, int(rng.integers(2**62)), level_threshold),
        "time_dtype": str(frames["data"].events[spec["time_key"]].dtype),
        "entity_dtype": str(frames["data"].static[spec["entity_key"]].dtype),
    }


def site_stage2(
    df: pd.DataFrame, metadata: Metadata, spec: SequenceSpec, plan: dict[str, Any], sigma: float, seed: int | None
) -> dict[str, Any]:
    frames = site_frames(df, metadata, spec)
    rng = np.random.default_rng(seed)
    weights = {"steps": step_weights(frames) if sigma > 0 else None, "entities": None}
    return {
        part: _stats.site_stage2(frames[part], plan[part], sigma, int(rng.integers(2**62)), weights[part])
        for part in ("steps", "entities")
    }


# ------------------------------------------------------------------------------------------ server side
def merge_stage1(
    replies: list[dict[str, Any]], metadata: Metadata, spec: SequenceSpec, threshold: float, dp: bool
) -> dict[str, Any]:
    steps_meta, ents_meta = spec.tables_metadata(metadata)
    merged = {
        "steps": _stats.merge_stage1([r["steps"] for r in replies], steps_meta, threshold, dp=dp),
        "entities": _stats.merge_stage1([r["entities"] for r in replies], ents_meta, threshold, dp=dp),
        "time_dtype": _stats._common_dtype([r["time_dtype"] for r in replies]),
        "entity_dtype": _stats._common_dtype([r["entity_dtype"] for r in replies]),
    }
    merged["n"] = merged["entities"]["n"]
    merged["plan"] = {"steps": merged["steps"]["plan"], "entities": merged["entities"]["plan"]}
    return merged


def merge_stage2(merged: dict[str, Any], replies: list[dict[str, Any]], threshold: float, dp: bool) -> dict[str, Any]:
    for part in ("steps", "entities"):
        _stats.merge_stage2(merged[part], [r[part] for r in replies], threshold, dp=dp)
    return merged


def proxies(merged: dict[str, Any], metadata: Metadata, spec: SequenceSpec) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The step and entity proxies (the merged marginals, independent columns)."""
    steps_meta, ents_meta = spec.tables_metadata(metadata)
    return _stats.proxy_table(merged["steps"], steps_meta), _stats.proxy_table(merged["entities"], ents_meta)


def _levels(m: dict[str, Any]) -> list[Any]:
    return sorted(m["levels"], key=lambda v: (str(type(v)), v))


def _integral_values(m: dict[str, Any]) -> list[Any] | None:
    """The distinct values of a numeric column, when the agreement kept them all (``exact``), else None."""
    if not m.get("exact") or not m.get("values"):
        return None
    return sorted(float(v) for v in m["values"])


def _encoding_state(
    merged: dict[str, Any], steps_proxy: pd.DataFrame, metadata: Metadata, spec: SequenceSpec, k: int
) -> dict[str, Any]:
    """What ``_Encoding.build`` reads off the pooled data, from the merged statistics and the step proxy."""
    from twinforge.sequences.model import _MAX_GAP_LEVELS, _MAX_INTEGER_LEVELS

    cols = merged["steps"]["columns"]
    blocks: list[dict[str, Any]] = []
    g = cols[GAP]
    values = _integral_values(g)
    gap_obs = steps_proxy[GAP].to_numpy(dtype="float64", na_value=np.nan)
    gap_obs = gap_obs[~np.isnan(gap_obs)]
    if values is not None and len(values) <= 1:
        gap: dict[str, Any] = {"mode": "constant", "value": values[0] if values else 1.0}
    elif values is not None and len(values) <= _MAX_GAP_LEVELS:
        gap = {"mode": "levels", "levels": values}
        blocks.append({"kind": "cat", "name": GAP, "n_feat": len(values), "n_par": len(values)})
    elif len(gap_obs) == 0:
        gap = {"mode": "constant", "value": 1.0}
    else:
        lg = np.log(np.clip(gap_obs, max(float(g["low"]), 1e-12), None))
        gap = {"mode": "continuous", "mean": float(lg.mean()), "std": float(lg.std() or 1.0)}
        blocks.append({"kind": "num", "name": GAP, "n_feat": 1, "n_par": 3 * k, "missing": False})
    start_m = merged["entities"]["columns"][START]
    gap["integral"] = bool(g.get("decimals") == 0 and start_m.get("decimals") == 0)
    gap["min"], gap["max"] = (float(g["low"]), float(g["high"])) if len(gap_obs) or values else (1.0, 1.0)
    channels = spec.channels(metadata)
    kinds = {c: metadata.columns[c].kind for c in channels}
    for c in channels:
        vals = _integral_values(cols[c]) if kinds[c] == "integer" else None
        if vals is not None and len(vals) <= _MAX_INTEGER_LEVELS:
            kinds[c] = "categorical"
            cols[c] = dict(cols[c], levels=[int(v) for v in vals])
    order = [c for c in channels if kinds[c] in ("categorical", "boolean")]
    order += [c for c in channels if kinds[c] not in ("categorical", "boolean")]
    for c in order:
        m = cols[c]
        has_missing = bool(m.get("missing", 0.0) > 0)
        if kinds[c] in ("categorical", "boolean"):
            lv = _levels(m)
            n = len(lv) + has_missing
            blocks.append(
                {
                    "kind": "cat",
                    "name": c,
                    "n_feat": n,
                    "n_par": n,
                    "levels": lv,
                    "has_missing": has_missing,
                    "dtype": m["dtype"],
                }
            )
        else:
            v = steps_proxy[c].to_numpy(dtype="float64", na_value=np.nan)
            obs = v[~np.isnan(v)]
            blocks.append(
                {
                    "kind": "num",
                    "name": c,
                    "n_feat": 1 + has_missing,
                    "n_par": 3 * k + has_missing,
                    "missing": has_missing,
                    "mean": float(obs.mean()) if len(obs) else 0.0,
                    "std": float(obs.std() or 1.0) if len(obs) else 1.0,
                    "min": float(m["low"]),
                    "max": float(m["high"]),
                    "integer": kinds[c] == "integer",
                    "dtype": m["dtype"],
                }
            )
    return {"blocks": blocks, "gap": gap, "k": k, "time_kind": spec.time_kind(metadata)}


def _static_state(merged: dict[str, Any], ents_proxy: pd.DataFrame, metadata: Metadata, spec: SequenceSpec):
    """What ``_StaticEncoding.build`` reads off the pooled static table (levels as text; mean and spread)."""
    state = []
    for c in spec["static"]:
        kind, m = metadata.columns[c].kind, merged["entities"]["columns"][c]
        if kind in ("categorical", "boolean"):
            levels = sorted({str(v) for v in m["levels"]})
            state.append({"name": c, "kind": "cat", "levels": levels, "dim": len(levels)})
        elif kind in ("continuous", "integer"):
            v = ents_proxy[c].to_numpy(dtype="float64", na_value=np.nan)
            state.append(
                {"name": c, "kind": "num", "mean": float(np.nanmean(v)), "std": float(np.nanstd(v) or 1.0), "dim": 2}
            )
    return state


def build_model(
    settings: Any, merged: dict[str, Any], metadata: Metadata, spec: SequenceSpec, rng: np.random.Generator
) -> Any:
    """The global sequence model before round 1: encodings, static model and network from the agreement."""
    from twinforge import create
    from twinforge.federated._adapters import ADAPTERS
    from twinforge.models._nn import resolve_device, seeded
    from twinforge.sequences.model import _Encoding, _StaticEncoding

    from ._apps import _new_model

    model = _new_model(settings)
    steps_proxy, ents_proxy = proxies(merged, metadata, spec)
    model.metadata_ = metadata
    model.encoding_ = _Encoding(_encoding_state(merged, steps_proxy, metadata, spec, int(model.components)))
    model.static_encoding_ = _StaticEncoding(_static_state(merged, ents_proxy, metadata, spec))
    spans = ents_proxy[SPAN].to_numpy(dtype="float64", na_value=np.nan)
    span = float(np.nanmedian(spans)) if np.isfinite(spans).any() else 0.0
    channels = spec.channels(metadata)
    model.layout_ = {
        "entity_key": spec["entity_key"],
        "time_key": spec["time_key"],
        "time_kind": spec.time_kind(metadata),
        "time_dtype": merged["time_dtype"],
        "entity_dtype": merged["entity_dtype"],
        "channels": channels,
        "static_columns": list(spec["static"]),
        "static_in_events": True,
        "column_order": list(metadata.columns),
        "time_scale": span if span > 0 else 1.0,
    }
    # the static model: ``auto`` on the entity table (without the span), agreed like federated ``auto``
    _, ents_meta = spec.tables_metadata(metadata)
    static_meta = Metadata({c: s for c, s in ents_meta.columns.items() if c != SPAN})
    static = create(
        "auto",
        seed=int(rng.integers(2**31)),
        epochs=int(model.static_epochs or 4),
        patience=4,
        progress=False,
    )
    static.metadata_ = static_meta
    static.transformer_ = _stats.build_transformer(
        merged["entities"], static_meta, ents_proxy[list(static_meta.columns)]
    )
    ADAPTERS["auto"].init(
        static,
        static.transformer_.transform(ents_proxy[list(static_meta.columns)]),
        int(merged["n"]),
        rng,
        private=settings.dp_mode == "local",  # entity-level DP-SGD trains it too: its shape head unscaled
    )
    static.fit_info_ = {}
    model.static_model_ = static
    device = resolve_device(model.device)
    with seeded(rng, device):
        model.net_ = model._new_net(1).to(device)
    d = int(model.embedding_dim)
    model.z_mean_, model.z_cov_ = np.zeros(d), np.eye(d)
    model.train_info_ = {}
    model.fit_info_ = {}
    return model


class SharedNet(nn.Module):
    """The sequence network without its per-entity embeddings: the weights the sites average."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.inp, self.h0, self.gru, self.head, self.within = net.inp, net.h0, net.gru, net.head, net.within


def static_frame(ents: pd.DataFrame) -> pd.DataFrame:
    return ents.drop(columns=[SPAN])


def train_site(
    model: Any,
    df: pd.DataFrame,
    spec: SequenceSpec,
    epochs: int,
    rng: np.random.Generator,
    state: Any,
    mu: float,
    modules: Any,
    rounds: int,
) -> tuple[dict[str, float], int]:
    """One round on a site: the static model and the sequence network, its entities' ``z`` kept in ``state``.

    ``modules(model)``: the averaged modules, which FedProx's proximal term (``mu``) pulls toward the global ones.
    The static model's table has one row per entity, a few dozen at a site: one pass per local epoch would give it
    a small fraction of the steps a central fit takes (``static_epochs`` epochs of at least 4,096 rows each, in
    batches of 32), so every site takes that many steps spread over the ``rounds``, the same number whatever its
    size (see ``_AutoAdapter.passes_for``).
    """
    from twinforge.federated._adapters import ADAPTERS, proximal
    from twinforge.federated._apps import _local_arrays
    from twinforge.models._nn import resolve_device, seeded
    from twinforge.models.autoregressive import _MIN_EPOCH_ROWS
    from twinforge.sequences.model import _STATIC_EPOCHS

    frames = site_frames(df, model.metadata_, spec)
    arrays, _ = _local_arrays(model.static_model_, static_frame(frames["entities"]))
    ys, elapsed, cond = _site_sequences(model, frames)
    central_steps = int(model.static_epochs or _STATIC_EPOCHS) * _MIN_EPOCH_ROWS // 32
    steps = max(int(epochs), -(-central_steps // max(int(rounds), 1)))
    static_passes = ADAPTERS["auto"].passes_for(model.static_model_, len(ys), steps)
    device = resolve_device(model.device)
    net = _site_net(model, len(ys), state, rng, device)
    saved = model.epochs, model.validation_share, model.max_minutes, model.progress
    model.epochs, model.validation_share, model.max_minutes, model.progress = int(epochs), 0.0, None, False
    try:
        with proximal(modules(model), mu):
            static_metrics = ADAPTERS["auto"].train(model.static_model_, arrays, static_passes, rng)
            with seeded(rng, device) as gen:
                result = model._train(ys, elapsed, cond, rng, gen, device, None)
    finally:
        model.epochs, model.validation_share, model.max_minutes, model.progress = saved
    net.eval()
    _keep_z(state, net)
    loss = float(result.history[-1]["loss"]) if result.history else float("nan")
    return {"loss": loss, "static-loss": float(static_metrics["loss"])}, len(ys)


class _PrivateParts(nn.Module):
    """The averaged networks as Opacus needs them for entity-level DP-SGD: the sequence network's layers (its GRU
    as Opacus's ``DPGRU``, same weights and names; its masked within-step map as a module) and the static model's
    network. The per-entity embeddings are left out: each is only ever touched by its own entity's gradient and
    never leaves the site (see ``train_site_private``). :meth:`params` computes what ``_SeqNet.initial``, ``run``
    and ``params`` compute (a test checks that they agree)."""

    def __init__(self, net: nn.Module, static_net: nn.Module):
        from opacus.layers import DPGRU

        super().__init__()
        self._net = [net]  # not a submodule: its embeddings stay out of DP-SGD
        self.inp, self.h0, self.head, self.static = net.inp, net.h0, net.head, static_net
        g = net.gru
        self.gru = DPGRU(g.input_size, g.hidden_size, batch_first=True).to(g.weight_ih_l0.device)
        self.gru.load_state_dict(g.state_dict())
        self.within = _MaskedLinear(net.within, net.mask)

    def params(self, prev: torch.Tensor, extra: torch.Tensor, cz: torch.Tensor, cur: torch.Tensor) -> torch.Tensor:
        c = cz.unsqueeze(1).expand(-1, prev.shape[1], -1)
        x = torch.nn.functional.silu(self.inp(torch.cat([prev, extra, c], -1)))
        out, _ = self.gru(x, torch.tanh(self.h0(cz)).unsqueeze(0))
        return self.head(torch.cat([out, c], -1)) + self.within(cur)

    def write_back(self) -> None:
        """The trained GRU weights into the sequence network (the other layers are shared, not copied)."""
        self._net[0].gru.load_state_dict(self.gru.state_dict())


class _MaskedLinear(nn.Module):
    """``x @ (W * mask)^T`` with the network's own ``W`` (the mask is a plain tensor: Opacus wraps no buffers)."""

    def __init__(self, linear: nn.Linear, mask: torch.Tensor):
        super().__init__()
        self.weight = linear.weight
        self._mask = mask

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.linear(x, self.weight * self._mask)


def _entity_losses(
    model: Any, params: Any, z: torch.Tensor, data: tuple, idx: np.ndarray, rng: np.random.Generator, device: Any
) -> torch.Tensor:
    """Per entity of ``idx``: the negative log-likelihood of one random window of its steps plus its embedding's
    share of the ``N(0, I)`` prior, per step of the window. A function of that entity alone (no normalisation by
    the batch), as entity-level DP needs. ``params(prev, extra, cz, cur)``: the network's per-step parameters."""
    from twinforge.sequences.model import _nll

    ys, feats, elapsed, cond, lengths = data
    lens = np.minimum(lengths[idx], int(model.window))
    starts = rng.integers(0, lengths[idx] - lens + 1)
    prev, extra, cur, y, mask, c = model._batch(ys, feats, elapsed, cond, idx, starts, lens, device)
    nll = _nll(model.encoding_, params(prev, extra, torch.cat([c, z], -1), cur), y, mask).sum(1)
    steps = torch.as_tensor(lens, dtype=torch.float32, device=device)
    share = steps / torch.as_tensor(lengths[idx], dtype=torch.float32, device=device)
    return (nll + 0.5 * z.pow(2).sum(-1) * share) / steps


def train_site_private(
    model: Any, df: pd.DataFrame, spec: SequenceSpec, epochs: int, rng: np.random.Generator, state: Any, dp: Any
) -> tuple[dict[str, float], int]:
    """One round on a site under entity-level DP (``dp``: the site's :class:`~twinforge.federated._localdp.LocalDP`).

    Every step is a DP-SGD step (Abadi et al. 2016) whose samples are whole entities: each entity is taken with
    probability ``q`` (Poisson sampling over the site's entities), and its one gradient, that of its static row
    (the static model's loss) plus one random window of its sequence (the sequence network's loss, normalised per
    entity, never by the batch), is clipped as a whole before the noisy sum. No entity is ever split over several
    samples, so per-sample clipping is per-entity clipping and the RDP accountant of the site's ledger (built on its
    number of entities) bounds what adding or removing one entity, with all its steps, can change. The per-entity
    embedding ``z_e`` is updated by its own entity's exact gradient only (a plain Adam outside DP-SGD): it depends on
    that entity and the released iterates alone, stays on the site, and leaves it only through the noisy sums of
    :func:`site_z_moments`.
    """
    from twinforge.federated._adapters import _dp_spent, dp_batch
    from twinforge.federated._apps import _local_arrays
    from twinforge.models import autoregressive as ar
    from twinforge.models._nn import resolve_device, seeded

    frames = site_frames(df, model.metadata_, spec)
    static = model.static_model_
    arrays, _ = _local_arrays(static, static_frame(frames["entities"]))
    tokens = ar._training_matrix(static.columns_, arrays, rng)
    d = len(static.columns_)
    tokens[:, :d] = np.where(tokens[:, :d] < 0, 0, tokens[:, :d])
    ys, elapsed, cond = _site_sequences(model, frames)
    n_e = len(ys)
    device = resolve_device(model.device)
    net = _site_net(model, n_e, state, rng, device)
    data = (ys, [model.encoding_.features(y) for y in ys], elapsed, cond, np.asarray([len(y) for y in ys]))
    static_tokens = torch.as_tensor(tokens, device=device)
    lay = {k: v.to(device) for k, v in static.layout_.items()}
    batch = dp_batch(n_e)
    per_epoch = -(-n_e // batch)
    parts = _PrivateParts(net, static.net_)
    total, count = 0.0, 0
    with seeded(rng, device) as gen:
        dpsgd = dp.dpsgd(n_e, batch, per_epoch, rng)
        shared = [p for n, p in parts.named_parameters() if not n.startswith("static.")]
        opt = torch.optim.Adam(
            [
                {"params": shared, "lr": float(model.learning_rate)},
                {"params": list(static.net_.parameters()), "lr": float(static.learning_rate)},
            ]
        )
        opt = dpsgd.make_private(parts, opt)
        z_opt = torch.optim.Adam(net.entity.parameters(), lr=float(model.learning_rate))
        parts.train()
        for _ in range(int(epochs)):
            for rows in dpsgd.epoch(per_epoch):
                idx = rows.cpu().numpy()
                z = net.entity(rows.to(device))
                seq = _entity_losses(model, parts.params, z, data, idx, rng, device)
                known = static._random_known(len(idx), gen).to(device)
                loss = (seq + ar._loss(parts.static, lay, static_tokens[rows.to(device)], known)).mean()
                opt.zero_grad(set_to_none=True)
                z_opt.zero_grad(set_to_none=True)
                loss.backward()
                net.entity.weight.grad.mul_(len(idx))  # each z_e by its own entity's gradient, whatever the batch
                opt.step()
                z_opt.step()
                total, count = total + float(loss.detach()), count + 1
    parts.write_back()
    net.eval()
    static.net_.eval()
    static._bf16_net = None
    _keep_z(state, net)
    return {"loss": total / max(count, 1), **_dp_spent(dpsgd)}, n_e


def _site_sequences(model: Any, frames: dict[str, Any]) -> tuple[list, list, np.ndarray]:
    data, times = frames["data"], frames["times"]
    offsets = np.r_[0, np.cumsum(data.lengths())]
    enc, scale = model.encoding_, model.layout_["time_scale"]
    pairs = list(itertools.pairwise(offsets))
    ys = [enc.encode(data.events.iloc[a:b], times[a:b]) for a, b in pairs]
    elapsed = [(times[a:b] - times[a]) / scale for a, b in pairs]
    return ys, elapsed, model.static_encoding_.encode(data.static)


def _site_net(model: Any, n_entities: int, state: Any, rng: np.random.Generator, device: Any) -> nn.Module:
    """The global network with this site's entity embeddings (kept from earlier rounds, else new)."""
    from twinforge.models._nn import seeded

    shared = {k: v for k, v in model.net_.state_dict().items() if not k.startswith("entity.")}
    with seeded(rng, device):
        net = model._new_net(n_entities).to(device)
    net.load_state_dict(shared, strict=False)
    z = _stored_z(state)
    if z is not None and z.shape == tuple(net.entity.weight.shape):
        net.entity.weight.data.copy_(torch.as_tensor(z))
    model.net_ = net
    return net


def _stored_z(state: Any) -> np.ndarray | None:
    if state is None or "sequence-z" not in state:
        return None
    return state["sequence-z"]["z"].numpy()


def _keep_z(state: Any, net: nn.Module) -> None:
    from flwr.app import Array, ArrayRecord

    if state is not None:
        z = np.ascontiguousarray(net.entity.weight.detach().cpu().numpy())
        state["sequence-z"] = ArrayRecord({"z": Array(z)})


def site_z_moments(
    model: Any, df: pd.DataFrame, spec: SequenceSpec, rng: np.random.Generator, state: Any, noise: float = 0.0
) -> dict[str, Any]:
    """After the last round: the site's ``z`` fitted to the final global network (frozen); only their sums.

    With ``noise`` (local DP, the statistics' noise multiplier): each ``z_e`` is fitted on its own entity's loss
    alone, clipped to norm :func:`z_clip`, and ``(n, sum z / C, sum z z^T / C^2)``, which one entity moves by at
    most ``sqrt(3)`` in L2, is released with Gaussian noise of std ``noise * sqrt(3)`` (charged in the ledger).
    """
    from twinforge.models._nn import resolve_device, seeded

    frames = site_frames(df, model.metadata_, spec)
    ys, elapsed, cond = _site_sequences(model, frames)
    device = resolve_device(model.device)
    net = _site_net(model, len(ys), state, rng, device)
    for name, p in net.named_parameters():
        p.requires_grad_(name == "entity.weight")
    if noise > 0:
        with seeded(rng, device):
            _fit_z_per_entity(model, net, ys, elapsed, cond, rng, device)
    else:
        saved = model.epochs, model.validation_share, model.max_minutes, model.progress
        model.epochs, model.validation_share, model.max_minutes, model.progress = _Z_EPOCHS, 0.0, None, False
        try:
            with seeded(rng, device) as gen:
                model._train(ys, elapsed, cond, rng, gen, device, None)
        finally:
            model.epochs, model.validation_share, model.max_minutes, model.progress = saved
    _keep_z(state, net)
    z = net.entity.weight.detach().cpu().numpy().astype("float64")
    if noise <= 0:
        return {"n": len(z), "sum": z.sum(0).tolist(), "outer": (z.T @ z).tolist()}
    d, clip = z.shape[1], z_clip(z.shape[1])
    z = z * np.minimum(1.0, clip / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12))
    std = float(noise) * np.sqrt(3.0)
    return {
        "n": float(len(z) + rng.normal(0.0, std)),
        "sum": (z.sum(0) + rng.normal(0.0, std * clip, d)).tolist(),
        "outer": (z.T @ z + rng.normal(0.0, std * clip**2, (d, d))).tolist(),
    }


def z_clip(d: int) -> float:
    """Largest norm of an entity embedding in the DP sums: the typical norm of a draw from the prior N(0, I_d)."""
    return float(np.sqrt(d))


def _fit_z_per_entity(
    model: Any, net: nn.Module, ys: list, elapsed: list, cond: np.ndarray, rng: np.random.Generator, device: Any
) -> None:
    """The embeddings fitted to the frozen network, each by its own entity's loss only (all entities every step)."""
    data = (ys, [model.encoding_.features(y) for y in ys], elapsed, cond, np.asarray([len(y) for y in ys]))
    opt = torch.optim.Adam(net.entity.parameters(), lr=float(model.learning_rate))
    idx = np.arange(len(ys))
    rows = torch.as_tensor(idx, device=device)
    net.train()

    def params(prev: torch.Tensor, extra: torch.Tensor, cz: torch.Tensor, cur: torch.Tensor) -> torch.Tensor:
        out, _ = net.run(prev, extra, cz, net.initial(cz))
        return net.params(out, cz, cur)

    for _ in range(_Z_EPOCHS * _MIN_Z_STEPS):
        opt.zero_grad(set_to_none=True)
        for a in range(0, len(idx), 256):  # the summed loss's gradient, in chunks of entities
            part = slice(a, a + 256)
            _entity_losses(model, params, net.entity(rows[part]), data, idx[part], rng, device).sum().backward()
        opt.step()
    net.eval()


_CALIBRATION_ROUNDS = 3
_MAX_STEP = 2.0  # most a level's logit moves per calibration round


def calibrate_levels(model: Any, merged: dict[str, Any], rng: np.random.Generator) -> dict[str, float]:
    """Match the levels the global model generates to the agreed step marginals (server side, no site asked).

    Averaged weights can under-generate a rare level (a failure in 0.1% of steps), and a sample of a few dozen
    entities then holds none of it. As ``auto`` and ``ctgan`` calibrate their sampled levels to the agreed marginals,
    each categorical channel's output bias moves by ``log(agreed share / generated share)`` (at most 2 per round),
    measured on entities the model samples itself, for a few rounds. Returns the largest share gap left.
    """
    enc = model.encoding_
    cols = merged["steps"]["columns"]
    head = [m for m in model.net_.head.modules() if isinstance(m, nn.Linear)][-1]
    targets = {}
    for b in enc.blocks:
        if b["kind"] != "cat" or b["name"] == GAP:
            continue
        m = cols[b["name"]]
        if "counts" in m and m.get("levels") is not None and len(m["levels"]) == len(m.get("counts", [])):
            held = dict(zip(m["levels"], m["counts"], strict=True))
        else:  # an integer channel modelled as levels: its agreed values and their counts
            held = dict(zip(m.get("values", []), m.get("value_counts", []), strict=True))
        counts = [float(held.get(v, 0.0)) for v in b["levels"]]  # 1 == 1.0 == True as keys
        if b["has_missing"]:
            counts.append(float(m.get("missing", 0.0)))
        total = sum(counts)
        if total > 0:
            targets[b["name"]] = (b, np.asarray(counts) / total)
    gap = 0.0
    n = int(min(max(float(merged["n"]), 64), 256))
    for _ in range(_CALIBRATION_ROUNDS if targets else 0):
        fake = model.sample(entities=n, seed=int(rng.integers(2**31)))
        gap = 0.0
        with torch.no_grad():
            for name, (b, want) in targets.items():
                col = fake[name]
                got = np.array(
                    [float((col == v).sum()) for v in b["levels"]]
                    + ([float(col.isna().sum())] if b["has_missing"] else [])
                )
                got = got / max(len(col), 1)
                eps = 0.5 / max(len(col), 1)
                step = np.clip(np.log((want + eps) / (got + eps)), -_MAX_STEP, _MAX_STEP)
                head.bias[b["p0"] : b["p0"] + b["n_par"]] += torch.as_tensor(step, dtype=head.bias.dtype)
                gap = max(gap, float(np.abs(want - got).max()))
    return gap


def z_distribution(moments: list[dict[str, Any]], d: int) -> tuple[np.ndarray, np.ndarray]:
    """The pooled embeddings' mean and covariance (as ``np.cov``) from the sites' sums."""
    n = float(sum(m["n"] for m in moments))
    if n < 1:
        raise DataError(
            f"the sites' entity embedding sums count {n:.3g} entities, fewer than one: cannot finish the sequence "
            "model (with --dp local: the noise on a few entities; use sites with more entities or a larger epsilon)"
        )
    s = np.sum([np.asarray(m["sum"], dtype="float64") for m in moments], axis=0)
    o = np.sum([np.asarray(m["outer"], dtype="float64") for m in moments], axis=0)
    mean = s / n
    cov = (o - n * np.outer(mean, mean)) / max(n - 1.0, 1.0) if n > 1 else np.eye(d) * 1e-4
    cov = (cov + cov.T) / 2
    # noisy sums (local DP) can leave it indefinite: its eigenvalues floored (post-processing)
    vals, vecs = np.linalg.eigh(cov)
    cov = (vecs * np.maximum(vals, 1e-4)) @ vecs.T
    return mean, cov + np.eye(d) * 1e-6


def header_document(model: Any, spec: SequenceSpec) -> dict[str, Any]:
    """The model's document with the averaged weights left out (they travel as Flower arrays), and the roles."""
    doc = model._document()
    doc["state"]["net"] = {k: v for k, v in doc["state"]["net"].items() if k.startswith("entity.")}
    doc["state"]["static_model"]["state"]["weights"] = None
    doc["sequence"] = dict(spec)
    return doc


def model_from_header(doc: dict[str, Any], weights: dict[str, np.ndarray]) -> Any:
    """The sequence model a header describes, its networks holding ``weights`` (``seq/...``, ``static/...``)."""
    from twinforge.models._nn import rng_isolated
    from twinforge.sequences.model import SequenceModel

    state = dict(doc["state"])
    net = dict(state["net"])
    net.update({k[len("seq/") :]: v for k, v in weights.items() if k.startswith("seq/")})
    state["net"] = net
    static = dict(state["static_model"])
    static["state"] = dict(static["state"], weights={k[7:]: v for k, v in weights.items() if k.startswith("static/")})
    state["static_model"] = static
    with rng_isolated():
        return SequenceModel._from_document(dict(doc, state=state))
