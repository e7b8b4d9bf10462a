"""The population model of per-entity time series (``"sequence"``) and the digital twins it personalises.

Factorisation. An entity is its static row ``s`` (attributes, sequence length ``T``, start time ``t_0``) and its
steps ``x_1..x_T``, each step a time gap ``g_t`` and the channels. ``p(s) p(z) prod_t p(x_t | x_<t, s, z)``:

- ``p(s)``: the default tabular model (``"auto"``) fitted on one row per entity (static columns, ``__length__``,
  ``__start__``), so cold start honours conditions on static attributes exactly, like ``auto`` does;
- ``z``: a learned per-entity embedding (a random effect, ``z ~ N(0, I)`` prior, MAP-fitted jointly with the
  network). It carries what makes an entity different beyond its attributes (its own level, trend, noise). New
  entities draw ``z`` from a Gaussian fitted to the learned embeddings; a twin fits its own ``z``. With
  ``context=N`` the lookup table gives way to an amortised encoder (a small GRU, ``q(z | steps)``), trained
  episodically as in neural processes (Garnelo et al., 2018): each training window's ``z`` is drawn from the
  encoder applied to another stretch (up to N steps, not overlapping the window) of the same entity, with a KL
  pull to ``N(0, I)``, so a twin's ``z`` is inferred from its history in one pass;
- ``p(x_t | x_<t, s, z)``: a GRU over the previous steps (their values, missing flags, gaps, the elapsed time
  since the start, so trends are learned, and with ``long_range`` each categorical channel's run length and the
  phase of the absolute time in each cycle the fleet shares, so that training windows shorter than a sequence
  still see them) started from and fed with ``s`` and ``z``, as in DeepAR (Salinas et al., 2020) with a
  per-series embedding. Within a step, the gap comes first, then categorical channels, then numeric ones; each
  block's parameters are the GRU head's output plus a masked map of the blocks drawn before it in that step (a
  chain rule over channels, MADE-style masking; linear, or with ``link="bounded"`` a linear part plus saturating
  units whose height comes from the state), so same-step cross-channel correlation is learned. A numeric
  channel is a mixture of ``K`` Gaussians on its standardised value plus, if it has missing values, a Bernoulli
  "missing"; a categorical one (and an integer one with at most 12 distinct values, such as a 0/1 failure flag,
  and the gap when it takes few values) a softmax; an irregular gap a Gaussian mixture on ``log gap``.

Training: Adam on the negative log-likelihood per step (plus the ``z`` prior), windows of at most ``window`` steps
per entity, early stopping on the last ``validation_share`` of every entity's steps (a forecasting split), a
``max_minutes`` budget and a progress bar. The module is plain ``nn.GRU`` + ``nn.Linear`` + ``nn.LayerNorm``; its
weights are a state dict.

Personalisation (transfer learning, :meth:`SequenceModel.personalize`): on one entity's history, first fit its
``z`` alone (MAP under the population's embedding distribution, or from the encoder's ``q(z | history)`` when
there is one), then fine-tune every weight at a small learning
rate with an L2 pull toward the population weights (L2-SP, Li et al., ICML 2018). Forecasts run the GRU over the
history and continue it for ``horizon`` steps, ``paths`` times. A twin may also carry a level offset per numeric
channel (a shrunk mean of its one-step-ahead residuals over the history). Which of these a short history gets
(none: the population's view; the offset; the encoder's latent; fine-tuning for a fixed number of epochs) is
chosen per history length by :meth:`SequenceModel.tune_personalization` on training entities held out from an
inner population fit, and the population's view is kept unless a candidate beats it there by a margin. An
untuned model keeps the population's view (unchecked fine-tuning on a short history forecasts worse).

Scenarios (``event=``): ``{"column": c, "value": v, "within": H}`` makes every generated path contain ``c == v``
(a level of a categorical/boolean channel; for a numeric channel an inclusive range ``(lo, hi)``, ``None`` an open
end) at least once in its first ``H`` steps. No rejection sampling: at step ``j`` of a path without the event so
far, with ``r = H - j`` steps left and the model's probability ``p`` of the event at this step, the event is forced
with probability ``q = p / (1 - (1 - p)^r)`` (the first-hit law under a constant hazard ``p``; ``1/r`` when
``p = 0``), and otherwise the step is drawn from the model with the event excluded. At the last step ``q = 1``, so
the event holds in every path by construction; the rest of each path follows the model given it.
"""

from __future__ import annotations

import copy
import itertools
import math
import os
import time
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from scipy import special, stats
from torch import nn

from twinforge.errors import DataError, NotFittedError, ParameterError
from twinforge.io import read_table, save_model_dir
from twinforge.metadata import Metadata
from twinforge.models._nn import (
    MLP,
    Adam,
    check_training_params,
    resolve_device,
    seeded,
    state_from_arrays,
    state_to_arrays,
    train_loop,
)
from twinforge.models._registry import register
from twinforge.models.base import Synthesizer, _check_seed
from twinforge.sequences._data import SequenceData, parse_time, split_events

__all__ = ["SequenceModel", "Twin"]

_LENGTH, _START = "__length__", "__start__"
_MAX_GAP_LEVELS = 32  # a gap with at most this many distinct values is a category (exact), else log-normal mixture
# an integer channel with at most this many distinct values (a flag, a count, a code) is a category: a softmax keeps
# a rare level (a failure in 0.1% of steps) that a Gaussian mixture on the standardised value smears away
_MAX_INTEGER_LEVELS = 12
_LOGSTD = (-6.0, 3.0)
_MIN_STEPS_PER_EPOCH = 8
# the static model's default epochs: one row per entity is a small table that ``auto`` learns in a few epochs of
# >= 4096 rows each (on BasicMotions and the turbine fleet, 3 to 5 epochs score as 20 do, in a seventh of the time)
_STATIC_EPOCHS = 4
# ... and it stops at the first epoch whose validation loss is no better: on both, the loss rose from the second
# epoch on (a small table memorised), so epochs 3 and 4 ran only for early stopping to restore epoch 1's weights
# (the same samples), at about a tenth of the turbines' fit CPU time
_STATIC_PATIENCE = 1
_MIN_VALIDATION_LENGTH = 8  # entities shorter than this keep all their steps for training
# long_range: the longest cycle (in steps) looked for in a numeric time index, and how much of the channels'
# within-entity variance a cycle shared by the whole fleet must explain to become an input
_MAX_PERIOD = 64
_MIN_PERIOD_SHARE = 0.05
_CALENDAR = (("day", 86400.0), ("week", 7 * 86400.0), ("year", 365.2425 * 86400.0))


def _positive_int(name: str, v: Any, low: int = 1) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < low:
        raise ParameterError(f"{name} must be an integer >= {low}, got {v!r}")
    return int(v)


# =========================================================================================== encoding
class _Encoding:
    """Numbers <-> the network's per-step arrays. Pure numpy; its state is JSON plus a few numbers."""

    def __init__(self, state: dict[str, Any]):
        self.state = state
        self.blocks: list[dict[str, Any]] = state["blocks"]
        f = p = 0
        for b in self.blocks:
            b["f0"], f = f, f + b["n_feat"]
            b["p0"], p = p, p + b["n_par"]
        self.d_step, self.n_par = f, p

    # ---------------------------------------------------------------------------- building
    @classmethod
    def build(cls, data: SequenceData, times: np.ndarray, k: int) -> _Encoding:
        ev = data.events
        blocks: list[dict[str, Any]] = []
        first = np.r_[True, ev[data.entity_key].to_numpy()[1:] != ev[data.entity_key].to_numpy()[:-1]]
        gaps = np.diff(times)[~first[1:]]
        integral_time = bool(np.all(times == np.round(times)))
        levels = np.unique(gaps)
        if len(levels) <= 1:
            gap = {"mode": "constant", "value": float(levels[0]) if len(levels) else 1.0}
        elif len(levels) <= _MAX_GAP_LEVELS:
            gap = {"mode": "levels", "levels": [float(v) for v in levels]}
            blocks.append({"kind": "cat", "name": "__gap__", "n_feat": len(levels), "n_par": len(levels)})
        else:
            lg = np.log(gaps)
            gap = {"mode": "continuous", "mean": float(lg.mean()), "std": float(lg.std() or 1.0)}
            blocks.append({"kind": "num", "name": "__gap__", "n_feat": 1, "n_par": 3 * k, "missing": False})
        gap["integral"] = integral_time
        gap["min"] = float(gaps.min()) if len(gaps) else 1.0
        gap["max"] = float(gaps.max()) if len(gaps) else 1.0
        kinds = {c: data.metadata.columns[c].kind for c in data.channels}
        for c in data.channels:
            if kinds[c] == "integer" and ev[c].nunique(dropna=True) <= _MAX_INTEGER_LEVELS:
                kinds[c] = "categorical"
        order = [c for c in data.channels if kinds[c] in ("categorical", "boolean")]
        order += [c for c in data.channels if kinds[c] not in ("categorical", "boolean")]
        for c in order:
            s = ev[c]
            if kinds[c] in ("categorical", "boolean"):
                if isinstance(s.dtype, pd.CategoricalDtype):
                    lv = [_json_scalar(v) for v in s.cat.categories]
                else:
                    lv = sorted({_json_scalar(v) for v in s.dropna().unique()}, key=lambda v: (str(type(v)), v))
                has_missing = bool(s.isna().any())
                n = len(lv) + has_missing
                blocks.append(
                    {
                        "kind": "cat",
                        "name": c,
                        "n_feat": n,
                        "n_par": n,
                        "levels": lv,
                        "has_missing": has_missing,
                        "dtype": str(s.dtype),
                    }
                )
            else:
                v = s.to_numpy(dtype="float64", na_value=np.nan)
                obs = v[~np.isnan(v)]
                miss = bool(np.isnan(v).any())
                blocks.append(
                    {
                        "kind": "num",
                        "name": c,
                        "n_feat": 1 + miss,
                        "n_par": 3 * k + miss,
                        "missing": miss,
                        "mean": float(obs.mean()),
                        "std": float(obs.std() or 1.0),
                        "min": float(obs.min()),
                        "max": float(obs.max()),
                        "integer": kinds[c] == "integer",
                        "dtype": str(s.dtype),
                    }
                )
        return cls({"blocks": blocks, "gap": gap, "k": k, "time_kind": data.time_kind})

    # ---------------------------------------------------------------------------- values -> arrays
    def encode(self, frame: pd.DataFrame, times: np.ndarray) -> np.ndarray:
        """Steps of ONE entity -> targets ``Y`` (T, n_blocks): category codes, standardised numbers (NaN: missing)."""
        n = len(frame)
        y = np.zeros((n, len(self.blocks)), dtype="float64")
        gaps = np.r_[np.nan, np.diff(times)]
        for i, b in enumerate(self.blocks):
            if b["name"] == "__gap__":
                y[:, i] = self._encode_gap(gaps)
            elif b["kind"] == "cat":
                y[:, i] = self._codes(b, frame[b["name"]])
            else:
                v = frame[b["name"]].to_numpy(dtype="float64", na_value=np.nan)
                y[:, i] = (v - b["mean"]) / b["std"]
        return y

    def _encode_gap(self, gaps: np.ndarray) -> np.ndarray:
        g = self.state["gap"]
        if g["mode"] == "levels":
            lv = np.asarray(g["levels"])
            out = np.abs(gaps[:, None] - lv[None, :]).argmin(1).astype("float64")
            out[np.isnan(gaps)] = np.nan
            return out
        with np.errstate(divide="ignore", invalid="ignore"):
            return (np.log(gaps) - g["mean"]) / g["std"]

    @staticmethod
    def _codes(b: dict[str, Any], s: pd.Series) -> np.ndarray:
        lookup = {v: i for i, v in enumerate(b["levels"])}
        out = np.empty(len(s), dtype="float64")
        for j, v in enumerate(s.tolist()):
            if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
                if not b["has_missing"]:
                    raise DataError(f"channel {b['name']!r} has missing values, which the model never saw there")
                out[j] = len(b["levels"])
                continue
            code = lookup.get(_json_scalar(v))
            if code is None:
                raise DataError(
                    f"channel {b['name']!r} holds {v!r}, a level the model never saw; known levels are {b['levels']}"
                )
            out[j] = code
        return out

    def features(self, y: np.ndarray) -> np.ndarray:
        """Targets (..., n_blocks) -> network input features (..., d_step); a NaN gap (first step) gives zeros."""
        out = np.zeros((*y.shape[:-1], self.d_step), dtype="float32")
        for i, b in enumerate(self.blocks):
            v = y[..., i]
            if b["kind"] == "cat":
                ok = ~np.isnan(v)
                idx = np.where(ok, v, 0).astype("int64")
                onehot = np.eye(b["n_feat"], dtype="float32")[idx] * ok[..., None]
                out[..., b["f0"] : b["f0"] + b["n_feat"]] = onehot
            else:
                miss = np.isnan(v)
                out[..., b["f0"]] = np.where(miss, 0.0, np.clip(v, -10, 10))
                if b.get("missing"):
                    out[..., b["f0"] + 1] = miss
        return out

    # ---------------------------------------------------------------------------- arrays -> values
    def decode(self, y: np.ndarray, widen: float = 0.0) -> dict[str, Any]:
        """Targets (n, n_blocks) -> channel columns (numbers clipped to the training range widened by ``widen``)."""
        out: dict[str, Any] = {}
        for i, b in enumerate(self.blocks):
            if b["name"] == "__gap__":
                continue
            v = y[:, i]
            if b["kind"] == "cat":
                lv = b["levels"] + ([None] if b["has_missing"] else [])
                values = [lv[int(c)] for c in v]
                out[b["name"]] = _restore_levels(values, b)
            else:
                x = v * b["std"] + b["mean"]
                span = b["max"] - b["min"]
                lo, hi = b["min"] - widen * span, b["max"] + widen * span
                if b["min"] >= 0:
                    lo = max(lo, 0.0)
                x = np.clip(x, lo, hi)
                if b["integer"]:
                    x = np.round(x)
                out[b["name"]] = _restore_number(x, b)
        return out

    def gap_value(self, y_gap: np.ndarray) -> np.ndarray:
        g = self.state["gap"]
        if g["mode"] == "levels":
            return np.asarray(g["levels"])[y_gap.astype("int64")]
        v = np.exp(np.clip(y_gap * g["std"] + g["mean"], -50, 50))
        v = np.clip(v, g["min"] * 0.5, g["max"] * 2.0)
        if g["integral"]:
            v = np.maximum(np.round(v), 1.0)
        return v

    def gap_block(self) -> int | None:
        return next((i for i, b in enumerate(self.blocks) if b["name"] == "__gap__"), None)


def _json_scalar(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, pd.Timestamp):
        return v.isoformat()
    return v


def _restore_levels(values: list[Any], b: dict[str, Any]) -> pd.Series:
    dtype = b["dtype"]
    if dtype == "category":
        return pd.Series(pd.Categorical(values, categories=b["levels"]))
    if dtype == "bool" and not b["has_missing"]:
        return pd.Series(values, dtype="bool")
    if dtype in ("boolean", "string") or dtype.startswith(("int", "Int", "float", "Float")):
        try:
            return pd.Series(values, dtype=dtype)
        except (TypeError, ValueError):
            pass
    return pd.Series(values, dtype="object")


def _restore_number(x: np.ndarray, b: dict[str, Any]) -> pd.Series:
    dtype = b["dtype"]
    if np.isnan(x).any():
        if dtype.startswith("Int") or dtype.startswith("Float"):
            return pd.Series(x, dtype="float64").astype(dtype)
        return pd.Series(x, dtype="float64")
    try:
        return pd.Series(x.astype(dtype) if not dtype.startswith(("Int", "Float")) else x).astype(dtype)
    except (TypeError, ValueError):
        return pd.Series(x, dtype="float64")


def _static_table_metadata(table: pd.DataFrame, static_meta: Metadata) -> Metadata:
    """The static model's metadata: the static columns' kinds (declared PII stays PII: faked, never learned),
    the length and start time detected."""
    meta = Metadata.detect(table)
    meta.primary_key = None
    for name, spec in static_meta.columns.items():
        meta.columns[name] = spec
    return meta


class _StaticEncoding:
    """Static attributes -> the network's conditioning vector (standardised numbers, one-hot levels)."""

    def __init__(self, state: list[dict[str, Any]]):
        self.state = state
        self.dim = sum(s["dim"] for s in state)

    @classmethod
    def build(cls, frame: pd.DataFrame, meta: Metadata) -> _StaticEncoding:
        state = []
        for c in frame.columns:
            kind = meta.columns[c].kind if c in meta.columns else "id"
            s = frame[c]
            if kind in ("categorical", "boolean"):
                levels = sorted({str(v) for v in s.dropna()})
                state.append({"name": c, "kind": "cat", "levels": levels, "dim": len(levels)})
            elif kind in ("continuous", "integer", "datetime"):
                v = _numeric(s)
                state.append(
                    {
                        "name": c,
                        "kind": "num",
                        "mean": float(np.nanmean(v)),
                        "std": float(np.nanstd(v) or 1.0),
                        "dim": 2,
                    }
                )
        return cls(state)

    def encode(self, frame: pd.DataFrame) -> np.ndarray:
        parts = [np.zeros((len(frame), 0), dtype="float32")]
        for s in self.state:
            col = frame[s["name"]]
            if s["kind"] == "cat":
                text = col.map(lambda v: None if pd.isna(v) else str(v))
                parts.append(
                    np.stack([(text == lv).to_numpy() for lv in s["levels"]], 1).astype("float32")
                    if s["levels"]
                    else np.zeros((len(frame), 0), "float32")
                )
            else:
                v = (_numeric(col) - s["mean"]) / s["std"]
                parts.append(np.stack([np.nan_to_num(np.clip(v, -10, 10)), np.isnan(v)], 1).astype("float32"))
        return np.concatenate(parts, 1)


def _numeric(s: pd.Series) -> np.ndarray:
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        if getattr(s.dt, "tz", None) is not None:  # seconds since the epoch are UTC, as parse_time reads them
            s = s.dt.tz_convert("UTC").dt.tz_localize(None)
        return (
            s.astype("datetime64[ns]").astype("int64").to_numpy().astype("float64")
            / 1e9
            * np.where(s.isna(), np.nan, 1.0)
        )
    return pd.to_numeric(s, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)


# =========================================================================================== network
class _SeqNet(nn.Module):
    """GRU over steps conditioned on static attributes and an entity embedding; masked within-step links."""

    def __init__(
        self,
        d_step: int,
        d_static: int,
        d_z: int,
        n_entities: int,
        hidden: int,
        n_par: int,
        context: int = 0,
        link: str = "linear",
        d_extra: int = 2,
    ):
        super().__init__()
        d_cond = d_static + d_z
        self.entity = nn.Embedding(max(n_entities, 1), d_z)
        nn.init.normal_(self.entity.weight, std=0.01)
        self.context = context
        if context:
            # the amortised entity encoder: a small GRU over up to ``context`` steps of the entity (each step's
            # features and a "present" flag, left-padded) -> a Gaussian q(z | steps)
            self.encoder = nn.GRU(d_step + 1, max(16, hidden // 2), batch_first=True)
            self.to_q = nn.Linear(max(16, hidden // 2), 2 * d_z)
        self.inp = nn.Linear(d_step + d_extra + d_cond, hidden)
        self.h0 = nn.Linear(d_cond, hidden)
        self.gru = nn.GRU(hidden, hidden, batch_first=True)
        self.head = MLP(hidden + d_cond, hidden, 1, n_par)
        self.within = _Within(d_step, n_par, hidden + d_cond, link)
        self.link_kind = link
        self.register_buffer("mask", torch.zeros(n_par, d_step), persistent=False)

    def encode(self, ctx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Context steps (B, C, d_step + 1) -> the mean and log-variance of q(z | steps), each (B, d_z)."""
        _, h = self.encoder(ctx)
        mu, logvar = self.to_q(h[0]).chunk(2, -1)
        return mu, logvar.clamp(-8.0, 4.0)

    def initial(self, cond: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.h0(cond)).unsqueeze(0)

    def run(self, prev: torch.Tensor, extra: torch.Tensor, cond: torch.Tensor, h: torch.Tensor):
        """prev (B, L, d_step), extra (B, L, d_extra), cond (B, d_cond), h (1, B, hidden) -> (out (B, L, H), h).

        ``extra``: the previous step's elapsed time since the start, the first-step flag, and (``long_range``)
        how long each categorical channel had held its value and the phase of the fleet's shared cycles (see
        :meth:`SequenceModel._step_state`)."""
        c = cond.unsqueeze(1).expand(-1, prev.shape[1], -1)
        x = F.silu(self.inp(torch.cat([prev, extra, c], -1)))
        return self.gru(x, h)

    def params(self, out: torch.Tensor, cond: torch.Tensor, cur: torch.Tensor) -> torch.Tensor:
        """Per-step parameters: head(GRU output, condition) + masked link from this step's earlier blocks."""
        base, scale, offset = self.base(out, cond)
        return base + self.link(cur, scale, offset)

    def base(self, out: torch.Tensor, cond: torch.Tensor):
        """The state's part: head(GRU output, condition), and the bounded link's scale and offset (or None)."""
        c = cond.unsqueeze(-2).expand(*out.shape[:-1], -1) if out.dim() == 3 else cond
        x = torch.cat([out, c], -1)
        if self.link_kind == "linear":
            return self.head(x), None, None
        if self.link_kind == "clipped":
            return self.head(x), F.softplus(self.within.gate(x)) + 0.05, None
        scale, offset = self.within.gate(x).chunk(2, -1)
        return self.head(x), scale, offset

    def link(self, cur: torch.Tensor, scale: torch.Tensor | None, offset: torch.Tensor | None) -> torch.Tensor:
        """The masked within-step link from this step's earlier blocks ``cur``: linear, plus the bounded part."""
        lin = F.linear(cur, self.within.weight * self.mask)
        if scale is None:
            return lin
        if offset is None:
            return scale * torch.tanh(lin / scale)
        return lin + scale * torch.tanh(F.linear(cur, self.within.sat.weight * self.mask) + offset)


class _Within(nn.Module):
    """The within-step link's weights: the linear map ``weight`` (n_par, d_step) and, for a saturating link,
    its parts (``gate`` from the state; ``sat``, the bounded link's own map). One module, so whatever handles the
    shared network (save/load, federated averaging) carries the whole link."""

    def __init__(self, d_step: int, n_par: int, d_state: int, link: str):
        super().__init__()
        linear = nn.Linear(d_step, n_par, bias=False)  # (its default init draws random numbers: kept for seeding)
        self.weight = nn.Parameter(torch.zeros_like(linear.weight))
        if link == "clipped":
            # the linear link's contribution, softly clipped to +/- a bound the state sets: near-linear for small
            # contributions (the bound starts at 4 standard units), level beyond it
            self.gate = nn.Linear(d_state, n_par)
            nn.init.zeros_(self.gate.weight)
            nn.init.constant_(self.gate.bias, math.log(math.expm1(4.0)))
        if link == "bounded":
            # beside the linear link, one saturating unit per parameter: scale(state) * tanh(w . cur + offset(state)),
            # so a parameter can level off (power at rated power) at a height and place each entity learns; the
            # scale starts at 0, so training starts from the linear model
            self.sat = nn.Linear(d_step, n_par, bias=False)
            nn.init.normal_(self.sat.weight, std=0.3)
            self.gate = nn.Linear(d_state, 2 * n_par)
            nn.init.zeros_(self.gate.weight)
            nn.init.zeros_(self.gate.bias)


def _block_mask(enc: _Encoding) -> torch.Tensor:
    m = torch.zeros(enc.n_par, enc.d_step)
    for i, b in enumerate(enc.blocks):
        for a in enc.blocks[:i]:
            m[b["p0"] : b["p0"] + b["n_par"], a["f0"] : a["f0"] + a["n_feat"]] = 1.0
    return m


def _mixture_parts(p: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    logw = torch.log_softmax(p[..., :k], -1)
    mu = p[..., k : 2 * k]
    logstd = p[..., 2 * k : 3 * k].clamp(*_LOGSTD)
    return logw, mu, logstd


def _numeric_index(enc: _Encoding, device: torch.device) -> dict[str, Any]:
    """Where the numeric blocks' targets and parameters sit, as index tensors, so that :func:`_nll` scores every
    numeric channel in one batched expression instead of one small graph per channel (cached per device)."""
    cache = enc.__dict__.setdefault("_index_cache", {})
    if device not in cache:
        k = enc.state["k"]
        num = [(i, b) for i, b in enumerate(enc.blocks) if b["kind"] == "num"]
        miss = [(i, b) for i, b in num if b.get("missing", False)]
        long = lambda v: torch.as_tensor(v, dtype=torch.long, device=device)  # noqa: E731
        mix = [list(range(b["p0"] + int(b.get("missing", False)), b["p0"] + b["n_par"])) for _, b in num]
        cache[device] = {
            "cols": long([i for i, _ in num]),
            "mix": long(mix).reshape(len(num), 3 * k),
            "miss_cols": long([i for i, _ in miss]),
            "miss_par": long([b["p0"] for _, b in miss]),
            # the gap's missing flag is scored only where the gap exists (not at an entity's first step)
            "miss_gap": torch.as_tensor([b["name"] == "__gap__" for _, b in miss], dtype=torch.bool, device=device),
        }
    return cache[device]


def _nll(enc: _Encoding, par: torch.Tensor, y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Negative log-likelihood per step (B, L), summed over blocks; ``mask`` (B, L) marks steps that count."""
    k = enc.state["k"]
    total = torch.zeros(y.shape[:-1], device=y.device)
    for i, b in enumerate(enc.blocks):
        if b["kind"] != "cat":
            continue
        logits = par[..., b["p0"] : b["p0"] + b["n_par"]]
        v = y[..., i]
        ok = ~torch.isnan(v)
        target = torch.where(ok, v, torch.zeros_like(v)).long()
        nll = -torch.log_softmax(logits, -1).gather(-1, target.unsqueeze(-1)).squeeze(-1)
        total = total + torch.where(ok, nll, torch.zeros_like(nll))
    ix = _numeric_index(enc, y.device)
    if len(ix["cols"]):
        # every numeric channel at once: a k-component Gaussian mixture per channel and step
        v = y[..., ix["cols"]]
        ok = ~torch.isnan(v)
        logw, mu, logstd = _mixture_parts(par[..., ix["mix"]], k)
        x = torch.where(ok, v, torch.zeros_like(v)).unsqueeze(-1)
        lp = logw - 0.5 * ((x - mu) / logstd.exp()) ** 2 - logstd - 0.5 * math.log(2 * math.pi)
        nll = -torch.logsumexp(lp, -1)
        total = total + torch.where(ok, nll, torch.zeros_like(nll)).sum(-1)
    if len(ix["miss_cols"]):
        missing = torch.isnan(y[..., ix["miss_cols"]])
        bce = F.binary_cross_entropy_with_logits(par[..., ix["miss_par"]], missing.float(), reduction="none")
        total = total + torch.where(ix["miss_gap"] & missing, torch.zeros_like(bce), bce).sum(-1)
    return total * mask


# =========================================================================================== the model
@register("sequence")
class SequenceModel(Synthesizer):
    """Population model of per-entity time series; personalises into digital twins.

    Parameters
    ----------
    seed : int, optional
        Seed for fitting and sampling; same seed and data give the same model and samples.
    epochs : int, default 300
        Most epochs; early stopping usually ends sooner.
    batch_size : int, default 64
        Entities (windows) per training step.
    learning_rate : float, default 1e-2
        Adam learning rate.
    hidden : int, default 48
        GRU and head width.
    embedding_dim : int, default 8
        Size of the per-entity embedding ``z``.
    components : int, default 3
        Gaussian mixture components per numeric channel.
    window : int, default 32
        Most steps per training window: longer sequences are trained on random windows (truncated
        backpropagation through time, started from the entity's conditioning), which is several times faster than
        whole sequences and, on BasicMotions and the turbine fleet, scores as well.
    context : int, default 0
        Steps the amortised entity encoder reads (0: none, a learned embedding per training entity instead). Off
        by default: on BasicMotions and the turbine fleet, twins from its latent forecast within 2% of the
        population's view (CRPS x1.00 and x0.98 at 10 steps), for a slower fit.
    link : {"linear", "bounded", "clipped"}, default "bounded"
        How a step's channels depend on the channels drawn before them in the same step: ``"linear"`` (the
        mixture parameters shift linearly); ``"bounded"`` adds one saturating unit per parameter whose height and
        place come from the recurrent state, so a relation can level off per entity (a turbine's power at its
        rated power as the wind rises); ``"clipped"`` softly clips the linear shift to a bound the state sets.
        Both remove most of the turbines' power overshoot. With the long-range inputs, ``"bounded"`` lowers the
        turbines' discriminative AUC on each of fit seeds 0, 1, 2 (0.899 / 0.943 / 0.953, against 0.978 / 0.968
        / 0.960 with the linear link; ``benchmarks/results/twins.md``), so it is the default; BasicMotions holds
        (0.903 vs 0.909).
    long_range : bool, default True
        Long-range context as inputs, computed over the whole sequence so far, so that training windows of
        ``window`` steps still see it: for every categorical channel, how long (in elapsed time) it has held its
        current value (how long a repair has lasted, how long ago the last one ended); and the phase (sin, cos)
        of the absolute time in each cycle the whole fleet shares: the day, week and year for datetimes, or for a
        numeric time the shortest cycle of 2 to 64 steps that explains at least 5% of a numeric channel's
        variance within entities (a daily cycle that every unit follows in step). The elapsed time since the
        sequence's start is always an input. On the turbine fleet it lowers the discriminative AUC on each of fit
        seeds 0, 1, 2 (0.978 / 0.968 / 0.960 against 0.987 / 0.977 / 0.970, ``benchmarks/results/twins.md``);
        BasicMotions (no categorical channel, no shared cycle) is unchanged. ``False``: as before.
    patience : int, default 6
        Epochs (of at least 8 steps each) without a better validation loss before training stops.
    average : float, default 0.0
        Weight averaging: the network that is validated, kept and sampled from is an exponential moving average
        of the training iterates, with this decay per step (0: the last iterate, as before). At the learning rate
        of 1e-2 the iterates jump around; their average is a much better model of the next step. In the bench's
        configuration (64 entities, seed 0) with 0.9 and ``patience=3`` (the average's validation loss is
        smooth): validation negative log-likelihood -0.65 against -0.44 on BasicMotions, -1.19 against -0.84 on
        the turbine fleet; discriminative AUC 0.866 against 0.898 and 0.889 against 0.912; BasicMotions' twins
        forecast better (CRPS 0.290 / 0.294 against 0.298 / 0.304 at k = 10 / 25). But the turbines
        train 37 epochs instead of 30 (fit 8.2 CPU s in the bench, over a third of PAR's) and their tuned twins
        forecast worse (CRPS 0.299 / 0.356 against 0.263 / 0.339 at k = 10 / 25), so it is off by default
        (``benchmarks/results/twins.md``, session 23).
    validation_share : float, default 0.1
        Share of each entity's last steps held out for early stopping (0: train on everything).
    static_epochs : int, optional
        Most epochs of the static model (the default ``auto`` model on one row per entity); default
        ``min(epochs, 4)``. It stops at the first epoch without a better validation loss.
    max_minutes : float, optional
        Wall-clock budget for fitting (static model and dynamics); the best weights so far are kept.
    device : str, default "auto"
        ``"auto"`` (a GPU if present), ``"cpu"`` or ``"cuda[:N]"``.
    progress : bool, default True
        Progress bars on stderr.

    Examples
    --------
    >>> import numpy as np, pandas as pd, twinforge
    >>> rng = np.random.default_rng(0)
    >>> events = pd.DataFrame({"unit": np.repeat(np.arange(20), 15), "t": np.tile(np.arange(15), 20),
    ...                        "temp": rng.normal(size=300).cumsum()})
    >>> model = twinforge.create("sequence", seed=0, epochs=3, progress=False)
    >>> model = model.fit(events, entity_key="unit", time_key="t")
    >>> model.sample(entities=2).columns.tolist()
    ['unit', 't', 'temp']
    >>> twin = model.personalize(events[events.unit == 3], epochs=5)
    >>> twin.forecast(horizon=4, paths=10).shape
    (40, 4)
    """

    summary = "per-entity time series: population model, digital twins (personalize, forecast), scenarios"
    supports_conditions = False
    kind = "sequence"

    def __init__(
        self,
        *,
        seed: int | None = None,
        epochs: int = 300,
        batch_size: int = 64,
        learning_rate: float = 1e-2,
        hidden: int = 48,
        embedding_dim: int = 8,
        components: int = 3,
        window: int = 32,
        context: int = 0,
        link: str = "bounded",
        long_range: bool = True,
        patience: int = 6,
        average: float = 0.0,
        validation_share: float = 0.1,
        static_epochs: int | None = None,
        max_minutes: float | None = None,
        device: str = "auto",
        progress: bool = True,
    ):
        self.seed = seed
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.hidden = hidden
        self.embedding_dim = embedding_dim
        self.components = components
        self.window = window
        self.context = context
        self.link = link
        self.long_range = long_range
        self.patience = patience
        self.average = average
        self.validation_share = validation_share
        self.static_epochs = static_epochs
        self.max_minutes = max_minutes
        self.device = device
        self.progress = progress

    def _check_params(self) -> None:
        check_training_params(
            epochs=self.epochs,
            batch_size=self.batch_size,
            max_minutes=self.max_minutes,
            patience=self.patience,
            validation_share=self.validation_share,
        )
        _positive_int("hidden", self.hidden, 4)
        _positive_int("embedding_dim", self.embedding_dim, 1)
        _positive_int("components", self.components, 1)
        _positive_int("window", self.window, 2)
        _positive_int("context", self.context, 0)
        if self.link not in ("linear", "bounded", "clipped"):
            raise ParameterError(f"link must be 'linear', 'bounded' or 'clipped', got {self.link!r}")
        if not isinstance(self.long_range, bool):
            raise ParameterError(f"long_range must be True or False, got {self.long_range!r}")
        a = self.average
        if isinstance(a, bool) or not isinstance(a, (int, float)) or not 0 <= a < 1:
            raise ParameterError(f"average must be a number in [0, 1) (0: no weight averaging), got {a!r}")
        if self.static_epochs is not None:
            _positive_int("static_epochs", self.static_epochs)
        lr = self.learning_rate
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not 0 < lr < 1:
            raise ParameterError(f"learning_rate must be a number in (0, 1), got {lr!r}")
        resolve_device(self.device)

    def _check_fitted(self) -> None:
        if not hasattr(self, "net_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet: call fit first")

    # ------------------------------------------------------------------------------------ fit
    def fit(
        self,
        events: pd.DataFrame | str | os.PathLike,
        metadata: Metadata | dict | str | os.PathLike | None = None,
        *,
        entity_key: str | None = None,
        time_key: str | None = None,
        static: pd.DataFrame | str | os.PathLike | list[str] | None = None,
    ) -> SequenceModel:
        """Learn the population from a long table ``events`` (one row per entity and time). Returns self.

        ``entity_key``/``time_key`` name the entity and time columns (from ``metadata`` or detected if omitted);
        ``static`` is a table with one row per entity, or the names of columns of ``events`` that are constant
        within an entity (detected if omitted). See :func:`twinforge.sequences.split_events` for the checks.
        """
        _check_seed(self.seed, "seed")
        self._check_params()
        from twinforge.models.base import _coerce_metadata

        df = read_table(events)
        meta = _coerce_metadata(metadata, df) if metadata is not None else None
        if meta is not None:
            meta.validate(df)
        start = time.perf_counter()
        data = split_events(df, entity_key, time_key, static, meta)
        rng = np.random.default_rng(self._seed_sequence(None, stream=0))
        self._fit_sequences(data, rng, start)
        self.fit_info_ = {
            "rows": len(data.events),
            "columns": len(data.column_order),
            "entities": len(data.static),
            "seconds": round(time.perf_counter() - start, 4),
            "fitted_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        return self

    def _fit_sequences(self, data: SequenceData, rng: np.random.Generator, start: float) -> None:
        self.metadata_ = data.metadata
        times = parse_time(data.events[data.time_key], data.time_key, self._time_format())[0]
        self.layout_ = {
            "entity_key": data.entity_key,
            "time_key": data.time_key,
            "time_kind": data.time_kind,
            "time_dtype": str(data.events[data.time_key].dtype),
            "entity_dtype": str(data.static[data.entity_key].dtype),
            "channels": data.channels,
            "static_columns": data.static_columns,
            "static_in_events": data.static_in_events,
            "column_order": data.column_order,
        }
        self.encoding_ = _Encoding.build(data, times, self.components)
        static_meta = data.static_metadata
        self.static_encoding_ = _StaticEncoding.build(data.static[data.static_columns], static_meta)
        # sequences
        lengths = data.lengths()
        offsets = np.r_[0, np.cumsum(lengths)]
        starts = times[offsets[:-1]]
        ends = times[offsets[1:] - 1]
        span = float(np.median(ends - starts)) if len(ends) else 0.0
        self.layout_["time_scale"] = span if span > 0 else 1.0
        ys = [self.encoding_.encode(data.events.iloc[a:b], times[a:b]) for a, b in itertools.pairwise(offsets)]
        elapsed = [(times[a:b] - times[a]) / self.layout_["time_scale"] for a, b in itertools.pairwise(offsets)]
        if self._tracked_blocks():
            runs = np.concatenate([e[:, None] - self._run_starts(y, e) for y, e in zip(ys, elapsed, strict=True)])
            self.layout_["run_scale"] = [float(v) if v > 0 else 1.0 for v in runs.std(0)]
        if self.long_range:
            self.layout_["periods"] = _shared_periods(self.encoding_, ys, times, offsets, data.time_kind)
            # the step states with absolute times: the phase of a cycle the fleet shares is not relative to a start
            elapsed = [
                self._step_state(y, e, times[a:b])
                for y, e, (a, b) in zip(ys, elapsed, itertools.pairwise(offsets), strict=True)
            ]
        cond = self.static_encoding_.encode(data.static)
        # static model: attributes, length and start time, one row per entity
        table = data.static[data.static_columns].copy()
        table[_LENGTH] = lengths.astype("int64")
        start_values = data.events[data.time_key].iloc[offsets[:-1]].reset_index(drop=True)
        table[_START] = start_values if data.time_kind == "datetime" else starts
        if data.time_kind == "datetime" and not pd.api.types.is_datetime64_any_dtype(table[_START].dtype):
            table[_START] = pd.to_datetime(starts * 1e9)
        budget = None if self.max_minutes is None else 0.2 * self.max_minutes
        from twinforge import create

        # the default tabular model, with this model's epoch and patience budget (a few hundred rows at most)
        self.static_model_ = create(
            "auto",
            seed=int(rng.integers(2**31)),
            epochs=min(self.epochs, _STATIC_EPOCHS) if self.static_epochs is None else self.static_epochs,
            patience=min(self.patience, _STATIC_PATIENCE),
            max_minutes=budget,
            progress=self.progress,
        ).fit(table.reset_index(drop=True), metadata=_static_table_metadata(table, static_meta))
        device = resolve_device(self.device)
        remaining = None
        if self.max_minutes is not None:
            remaining = max(self.max_minutes - (time.perf_counter() - start) / 60.0, 0.05 * self.max_minutes)
        with seeded(rng, device) as gen:
            self.net_ = self._new_net(1 if self.context else len(ys)).to(device)
            result = self._train(ys, elapsed, cond, rng, gen, device, remaining)
        self.net_.eval()
        self.train_info_ = result.to_dict()
        if self.context:
            # the population of entity latents: the encoder's q(z | last steps) of every training entity
            mu, var = self._encode_many([self.encoding_.features(y) for y in ys])
            z, extra = mu, np.diag(var.mean(0))
        else:
            z, extra = self.net_.entity.weight.detach().cpu().numpy().astype("float64"), 0.0
        self.z_mean_ = z.mean(0)
        self.z_cov_ = np.cov(z.T).reshape(z.shape[1], z.shape[1]) if len(z) > 1 else np.eye(z.shape[1]) * 1e-4
        self.z_cov_ = self.z_cov_ + extra + np.eye(z.shape[1]) * 1e-6

    def _time_format(self) -> str | None:
        key = getattr(self, "layout_", {}).get("time_key") if hasattr(self, "layout_") else None
        spec = self.metadata_.columns.get(key) if key and hasattr(self, "metadata_") else None
        return spec.datetime_format if spec is not None else None

    def _new_net(self, n_entities: int) -> _SeqNet:
        enc = self.encoding_
        net = _SeqNet(
            enc.d_step,
            self.static_encoding_.dim,
            self.embedding_dim,
            n_entities,
            self.hidden,
            enc.n_par,
            self.context,
            link=self.link,
            d_extra=1 + self._state_width(),
        )
        net.mask.copy_(_block_mask(enc))
        return net

    def _tracked_blocks(self) -> list[int]:
        """The blocks whose run length is an input (``long_range``): every categorical channel (not the gap)."""
        if not self.long_range:
            return []
        return [i for i, b in enumerate(self.encoding_.blocks) if b["kind"] == "cat" and b["name"] != "__gap__"]

    def _run_starts(self, y: np.ndarray, elapsed: np.ndarray) -> np.ndarray:
        """For one entity's targets ``y`` (T, n_blocks) and elapsed times (T,): the elapsed time at which each
        tracked channel's current value began (T, n_tracked): its run started there."""
        tracked = self._tracked_blocks()
        out = np.zeros((len(y), len(tracked)))
        steps = np.arange(len(y))
        for j, i in enumerate(tracked):
            c = y[:, i]
            change = np.r_[True, c[1:] != c[:-1]]
            out[:, j] = elapsed[np.maximum.accumulate(np.where(change, steps, 0))]
        return out

    def _periods(self) -> list[float]:
        """The cycles (in time units) whose phase is an input (``long_range``): see :func:`_shared_periods`."""
        return list(self.layout_.get("periods", [])) if self.long_range else []

    def _state_width(self) -> int:
        return 1 + len(self._tracked_blocks()) + 2 * len(self._periods())

    def _phases(self, t: np.ndarray) -> np.ndarray:
        """sin and cos of the phase of absolute times ``t`` (N,) in each period: (N, 2 * n_periods)."""
        t = np.asarray(t, dtype="float64")
        cols = []
        for period in self._periods():
            angle = 2 * np.pi * np.mod(t, period) / period
            cols += [np.sin(angle), np.cos(angle)]
        return np.column_stack(cols) if cols else np.zeros((len(t), 0))

    def _step_state(self, y: np.ndarray, elapsed: np.ndarray, times: np.ndarray | None = None) -> np.ndarray:
        """What the next step's extra inputs carry of each step of one entity, (T, :meth:`_state_width`): its
        elapsed time since the start and, with ``long_range``, how long each categorical channel has held its
        value (the run length, in units of :meth:`_run_scale`) and the sin and cos of the phase of its absolute
        time ``times`` in each shared cycle (:func:`_shared_periods`), so episode lengths, their spacing and the
        time of day are learnable from windows shorter than the sequence. The first step's own state (elapsed 0,
        runs 0, the start's phase) is also the first step's input. Sampling updates the same quantities step by
        step (:func:`_generate`)."""
        elapsed = np.asarray(elapsed, dtype="float64")
        runs = (elapsed[:, None] - self._run_starts(y, elapsed)) / self._run_scale()
        if times is None:  # relative times only (federated training passes these): the phase from the start
            times = elapsed * self.layout_["time_scale"]
        return np.column_stack([elapsed, runs, self._phases(times)])

    def _run_scale(self) -> np.ndarray:
        """The unit of each tracked channel's run length: its standard deviation over the training steps (in
        elapsed-time units), so that it enters the network at the scale of the other inputs."""
        return np.asarray(self.layout_.get("run_scale", [1.0] * len(self._tracked_blocks())), dtype="float64")

    def _context_array(self, segments: list[np.ndarray | None]) -> np.ndarray:
        """Feature rows of up to ``context`` steps per entity -> the encoder's input (B, context, d_step + 1):
        left-padded, with a "present" flag; ``None`` or fewer than 2 steps give an empty context."""
        C, d = self.context, self.encoding_.d_step
        out = np.zeros((len(segments), C, d + 1), dtype="float32")
        for r, seg in enumerate(segments):
            if seg is None or len(seg) < 2:
                continue
            seg = seg[-C:]
            out[r, C - len(seg) :, :d] = seg
            out[r, C - len(seg) :, d] = 1.0
        return out

    def _encode_many(self, feats: list[np.ndarray], net: _SeqNet | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The encoder's q(z | last ``context`` steps) for each entity's features: means and variances."""
        net = net or self.net_
        device = next(net.parameters()).device
        mus, vs = [], []
        with torch.no_grad():
            for a in range(0, len(feats), 256):
                ctx = torch.as_tensor(self._context_array(feats[a : a + 256]), device=device)
                mu, logvar = net.encode(ctx)
                mus.append(mu.cpu().numpy())
                vs.append(logvar.exp().cpu().numpy())
        return np.concatenate(mus).astype("float64"), np.concatenate(vs).astype("float64")

    def _batch(self, ys, feats, elapsed, cond, idx: np.ndarray, starts: np.ndarray, lengths: np.ndarray, device):
        """Padded window tensors for entities ``idx``: prev features, extra inputs, features, targets, mask.

        ``feats[e]`` is ``encoding_.features(ys[e])``, computed once per fit rather than per batch; ``elapsed[e]``
        is the entity's elapsed times (T,) or its step states (see :meth:`_step_state`)."""
        enc = self.encoding_
        L = int(lengths.max())
        B = len(idx)
        y = np.full((B, L, len(enc.blocks)), np.nan)
        el = np.zeros((B, L, self._state_width()))
        prev = np.zeros((B, L, enc.d_step), dtype="float32")
        cur = np.zeros((B, L, enc.d_step), dtype="float32")
        first = np.zeros((B, L), dtype="float32")
        mask = np.zeros((B, L), dtype="float32")
        for r, (e, s, n) in enumerate(zip(idx, starts, lengths, strict=True)):
            ye, fe = ys[e], feats[e]
            state = np.asarray(elapsed[e])
            if state.ndim == 1:
                state = self._step_state(ye, state)
            y[r, :n] = ye[s : s + n]
            cur[r, :n] = fe[s : s + n]
            if s == 0:
                prev[r, 1:n] = fe[: n - 1]
                first[r, 0] = 1.0
                el[r, 0] = state[0]  # the first step's own: elapsed 0, runs 0, the phase of the start time
                el[r, 1:n] = state[: n - 1]
            else:
                prev[r, :n] = fe[s - 1 : s + n - 1]
                el[r, :n] = state[s - 1 : s + n - 1]
            mask[r, :n] = 1.0
        t = lambda a: torch.tensor(np.asarray(a), dtype=torch.float32, device=device)  # noqa: E731
        extra = np.concatenate([el[..., :1], first[..., None], el[..., 1:]], -1)
        return t(prev), t(extra), t(cur), t(y), t(mask), t(cond[idx])

    def _train(self, ys, elapsed, cond, rng, gen, device, max_minutes):
        n_e = len(ys)
        lengths = np.asarray([len(y) for y in ys])
        n_val = np.zeros(n_e, dtype="int64")
        if self.validation_share > 0:
            long = lengths >= _MIN_VALIDATION_LENGTH
            n_val[long] = np.maximum(1, np.round(self.validation_share * lengths[long])).astype("int64")
        n_train = lengths - n_val
        net = self.net_
        # our multi-tensor Adam: torch.optim.Adam's arithmetic without its first-use import of torch._dynamo (about
        # 1 CPU s of the fit); the fused CPU kernel was tried: on the turbines it trained to a much worse validation
        # loss, -0.53 against -0.84
        opt = Adam(net.parameters(), self.learning_rate)
        batch = min(self.batch_size, n_e)
        steps = max(-(-n_e // batch), _MIN_STEPS_PER_EPOCH)
        W = self.window

        feats = [self.encoding_.features(y) for y in ys]
        # the step states once per fit, not per batch
        elapsed = [self._step_state(y, e) if np.ndim(e) == 1 else e for y, e in zip(ys, elapsed, strict=True)]

        C = self.context

        def contexts(idx, starts, lens) -> torch.Tensor:
            """Episodes: each window's entity latent is inferred from another stretch of the same entity (2 to
            ``context`` steps, before or after the window, never overlapping it), as a twin infers it from its
            history; no room for one gives the empty context."""
            segs = []
            for e, s, n in zip(idx, starts, lens, strict=True):
                left, right = s, n_train[e] - s - n
                c = min(int(rng.integers(2, C + 1)), max(left, right))
                if c < 2:
                    segs.append(None)
                    continue
                use_left = left >= c and (right < c or rng.random() < 0.5)
                lo, hi = (0, left) if use_left else (s + n, n_train[e])
                a = int(rng.integers(lo, hi - c + 1))
                segs.append(feats[e][a : a + c])
            return torch.as_tensor(self._context_array(segs), device=device)

        def loss_of(idx, starts, lens, score_from=None, tensors=None, ctx=None):
            prev, extra, cur, y, mask, c = tensors or self._batch(ys, feats, elapsed, cond, idx, starts, lens, device)
            if C:
                mu, logvar = net.encode(ctx)
                z = mu + (0.5 * logvar).exp() * torch.randn_like(mu) if net.training else mu
                # KL(q(z | context) || N(0, I)) takes the place of the embeddings' prior below
                kl = 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1.0).sum(-1)
            else:
                z = net.entity(torch.as_tensor(idx, device=device))
                kl = 0.5 * z.pow(2).sum(-1)
            cz = torch.cat([c, z], -1)
            out, _ = net.run(prev, extra, cz, net.initial(cz))
            if score_from is not None:
                pos = torch.arange(mask.shape[1], device=device)[None, :]
                mask = mask * (pos >= torch.as_tensor(score_from, device=device)[:, None]).float()
                # the recurrent state needs every step; the parameters and likelihood only the scored ones
                lo = int(np.min(score_from))
                out, cur, y, mask = out[:, lo:], cur[:, lo:], y[:, lo:], mask[:, lo:]
            par = net.params(out, cz, cur)
            nll = _nll(self.encoding_, par, y, mask)
            return nll.sum(), mask.sum(), kl

        # weight averaging (``average``): an exponential moving average of the iterates is what validation scores
        # and early stopping keeps; training itself goes on from the raw iterates
        decay = float(self.average)
        params = list(net.parameters())
        ema = [p.detach().clone() for p in params] if decay else None
        raw: list[torch.Tensor] = []

        def epoch(_: int) -> dict[str, float]:
            net.train()
            if raw:  # validation swapped the averaged weights in: train on from the raw ones
                with torch.no_grad():
                    for p, r in zip(params, raw, strict=True):
                        p.copy_(r)
                raw.clear()
            total = 0.0
            for _s in range(steps):
                idx = rng.choice(n_e, size=batch, replace=n_e < batch)
                lens = np.minimum(n_train[idx], W)
                starts = rng.integers(0, n_train[idx] - lens + 1)
                nll, count, kl = loss_of(idx, starts, lens, ctx=contexts(idx, starts, lens) if C else None)
                # MAP for the embeddings (or the encoder's KL): each window carries its share of the entity's prior
                share = torch.as_tensor(lens / lengths[idx], dtype=torch.float32, device=device)
                prior = (kl * share).sum()
                loss = (nll + prior) / count.clamp_min(1)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                nn.utils.clip_grad_norm_(net.parameters(), 1.0, foreach=True)
                opt.step()
                if ema is not None:
                    with torch.no_grad():
                        torch._foreach_lerp_(ema, params, 1.0 - decay)
                total += float(loss.detach())
            return {"loss": total / steps}

        has_val = bool(n_val.sum())
        order = np.flatnonzero(n_val > 0)
        val_batches = []  # the same every epoch: built once
        for a in range(0, len(order), 64):
            idx = order[a : a + 64]
            starts = np.zeros(len(idx), "int64")
            # the latent of a validation forecast comes from the steps before it, as a twin's from its history
            ctx = self._context_array([feats[e][: n_train[e]] for e in idx]) if C else None
            tensors = self._batch(ys, feats, elapsed, cond, idx, starts, lengths[idx], device)
            val_batches.append((idx, tensors, None if ctx is None else torch.as_tensor(ctx, device=device)))

        def validate() -> float:
            net.eval()
            if ema is not None:
                with torch.no_grad():
                    raw.extend(p.detach().clone() for p in params)
                    for p, a in zip(params, ema, strict=True):
                        p.copy_(a)
            total, count = 0.0, 0.0
            with torch.no_grad():
                for idx, tensors, ctx in val_batches:
                    nll, cnt, _ = loss_of(idx, None, lengths[idx], score_from=n_train[idx], tensors=tensors, ctx=ctx)
                    total, count = total + float(nll), count + float(cnt)
            return total / max(count, 1.0)

        result = train_loop(
            module=net,
            epoch=epoch,
            validate=validate if has_val else None,
            epochs=self.epochs,
            patience=self.patience,
            max_minutes=max_minutes,
            progress=self.progress,
            description="fitting sequence",
        )
        if ema is not None and not has_val:  # nothing validated (and kept) the average: it is the fitted network
            with torch.no_grad():
                for p, a in zip(params, ema, strict=True):
                    p.copy_(a)
        return result

    # ------------------------------------------------------------------------------------ sampling
    def sample(
        self,
        n: int | None = None,
        seed: int | None = None,
        *,
        entities: int | None = None,
        conditions: dict[str, Any] | None = None,
        event: dict[str, Any] | None = None,
        **unsupported: Any,
    ) -> pd.DataFrame:
        """``entities`` new entities (cold start): their static rows and full sequences, as one long table.

        Columns: entity key (new keys), time, static attributes repeated on each row, channels.
        ``conditions`` fixes static attributes like ``auto`` does: ``{col: value}``, ``{col: [values]}``,
        ``{col: (low, high)}``; every entity honours them exactly. ``event`` (see the module docstring) makes
        every sequence contain an event within its first ``within`` steps. ``n`` is a synonym of ``entities``.
        """
        self._check_fitted()
        if unsupported:
            raise ParameterError(
                f"the sequence model does not take {sorted(unsupported)}; it takes entities, conditions, event, seed"
            )
        if n is not None and entities is not None and n != entities:
            raise ParameterError("give the number of entities once: entities=N")
        count = _positive_int("entities", entities if entities is not None else n if n is not None else -1)
        _check_seed(seed, "seed")
        lay = self.layout_
        if conditions:
            unknown = [c for c in conditions if c not in lay["static_columns"]]
            if unknown:
                raise ParameterError(
                    f"conditions on {unknown}: only static attributes can be conditioned on "
                    f"({lay['static_columns'] or 'this model has none'}); to make a channel take a value use event="
                )
        rng = np.random.default_rng(self._seed_sequence(seed, stream=1))
        static = self.static_model_.sample(count, seed=int(rng.integers(2**31)), conditions=conditions or None)
        z = rng.multivariate_normal(self.z_mean_, self.z_cov_, size=count, method="cholesky")
        lengths = static[_LENGTH].to_numpy(dtype="int64")
        lengths = np.maximum(lengths, 1)
        start = static[_START]
        start_num = _numeric(start) if lay["time_kind"] == "datetime" else start.to_numpy(dtype="float64")
        ev = _Event.parse(self, event, default_within=int(lengths.max()))
        cond = self.static_encoding_.encode(static)
        y, times = _generate(self, self.net_, cond, z, None, lengths, start_num, rng, ev)
        keys = self._new_keys(count)
        rows = np.repeat(np.arange(count), lengths)
        step = np.concatenate([np.arange(n) for n in lengths])
        yy = y[rows, step]
        out = {lay["entity_key"]: keys[rows], lay["time_key"]: self._times_out(times[rows, step])}
        for c in lay["static_columns"]:
            out[c] = static[c].iloc[rows].reset_index(drop=True)
        out.update(self.encoding_.decode(yy))
        frame = pd.DataFrame(out)
        return frame[self._output_order()]

    def _output_order(self) -> list[str]:
        lay = self.layout_
        if lay["static_in_events"]:
            return list(lay["column_order"])
        return [lay["entity_key"], lay["time_key"], *lay["static_columns"], *lay["channels"]]

    def _new_keys(self, count: int) -> np.ndarray:
        dtype = self.layout_["entity_dtype"]
        if dtype.startswith(("int", "uint", "Int", "UInt")):
            return np.arange(count)
        return np.asarray([f"synthetic-{i}" for i in range(count)], dtype=object)

    def _times_out(self, t: np.ndarray) -> pd.Series:
        lay = self.layout_
        if lay["time_kind"] == "datetime":
            out = pd.Series(pd.to_datetime(np.round(t * 1e9).astype("int64")))
            tz = getattr(pd.api.types.pandas_dtype(lay["time_dtype"]), "tz", None)  # the input's zone, if it had one
            return out.dt.tz_localize("UTC").dt.tz_convert(tz) if tz is not None else out
        dtype = lay["time_dtype"]
        if self.encoding_.state["gap"]["integral"] and dtype.startswith(("int", "uint", "Int")):
            return pd.Series(np.round(t).astype("int64"))
        return pd.Series(t, dtype="float64")

    def sample_chunks(self, n=None, seed=None, **kwargs):
        """The tabular chunked API does not apply: use ``sample(entities=N)``."""
        raise ParameterError("the sequence model samples whole entities: use sample(entities=N)")

    def impute(self, data, seed=None, *, workers=None):
        raise ParameterError("the sequence model does not impute; use personalize(history) and forecast")

    # ------------------------------------------------------------------------------------ twins
    def personalize(
        self,
        history: pd.DataFrame | str | os.PathLike,
        *,
        epochs: int | None = None,
        level: float | None = None,
        encode: bool | None = None,
        select: bool | None = None,
        posterior: bool | None = None,
        temper: float | None = None,
        max_minutes: float | None = None,
        static: dict[str, Any] | None = None,
        learning_rate: float = 0.05,
        fine_tune_share: float | None = None,
        anchor: float = 0.1,
        seed: int | None = None,
        progress: bool | None = None,
    ) -> Twin:
        """A digital twin of one entity, from its history (its rows of the long table).

        The population model is fine-tuned on the history: the entity embedding alone first (MAP under the
        population's embedding distribution, learning rate ``learning_rate``), then, for the last
        ``fine_tune_share`` of ``epochs``, every weight at a learning rate 100 times smaller with an L2 pull of
        strength ``anchor`` toward the population weights. ``epochs`` is an upper bound: a trial run on the first
        70% of the history, snapshotted after 0, 1/8, 1/4, 1/2, 3/4 and all of ``epochs``, forecasts the last 30%
        (32 free-running paths each, the same random numbers for every snapshot) and the number of epochs with
        the lowest CRPS wins (0, the population model as is, on ties), so a few records cannot make the twin
        worse than the population on what it has seen. ``epochs=0`` gives the population model's own view
        of the entity (no fine-tuning: the history only warms up the recurrent state). The defaults
        (``fine_tune_share=0.6``, ``anchor=0.1``) were chosen on training entities of BasicMotions and the turbine
        fleet held out from an inner population fit, never on the benchmark's test entities.

        ``level`` (in [0, 2]) adds a per-channel level offset to the twin's numeric channels: ``level`` times the
        mean one-step-ahead residual of the (fine-tuned) model over the history, a shrunk estimate of how far this
        entity sits from what the model expects of it (0: none, 1: the full mean residual).

        ``encode`` (a model fitted with ``context > 0``) starts the twin from the entity latent that the model's
        amortised encoder infers from the history, instead of the population's mean latent. ``select=False``
        trains exactly ``epochs`` epochs, without the trial run on the history's last 30%.

        ``posterior=True`` averages the twin over the entity latent's posterior given the history instead of
        fixing one latent: 2,048 latents are drawn from the population's latent distribution (the prior each
        training entity's embedding was fitted under), each is weighted by the likelihood of the history under
        the (fine-tuned) network, and every forecast path draws its latent from these weights (importance
        sampling; no gradient steps, so it cannot overfit a short history the way fine-tuning can). ``temper``
        (in (0, 1], default 1) raises the history's likelihood to that power: a tempered posterior (Grunwald's
        "safe Bayes" learning rate), broader than the exact one, for when the network is over-confident about
        what a few steps say of the entity (with the exact one, 2,048 latents often come down to 1 to 5).

        ``epochs``, ``level``, ``encode``, ``select``, ``posterior`` and ``temper`` default to what
        :meth:`tune_personalization` chose on training entities held out from an inner population fit, for
        histories up to twice the longest tuned length. Without a tuned policy (or for longer histories) the
        default is the safe one: no fine-tuning (``epochs=0``, ``level=0``, ``posterior=False``; ``encode`` if
        the model has an encoder), because fine-tuning on a short history, unchecked, forecasts worse than the
        population model on BasicMotions and the turbine fleet.
        Given explicitly, they override the policy.

        ``history`` has the time column and every channel; the entity key column is optional (one entity only).
        Static attributes come from its columns (constant) or from ``static={column: value}``.
        """
        self._check_fitted()
        _check_seed(seed, "seed")
        entity, frame, static_row, times = self._read_history(history, static)
        policy = self._policy_for(len(frame))
        epochs = _positive_int("epochs", policy["epochs"] if epochs is None else epochs, 0)
        level = policy["level"] if level is None else level
        encode = policy["encode"] if encode is None else encode
        select = policy["select"] if select is None else select
        posterior = policy["posterior"] if posterior is None else posterior
        temper = policy["temper"] if temper is None else temper
        fine_tune_share = policy["fine_tune_share"] if fine_tune_share is None else fine_tune_share
        for name, flag in (("encode", encode), ("select", select), ("posterior", posterior)):
            if not isinstance(flag, bool):
                raise ParameterError(f"{name} must be True or False, got {flag!r}")
        if isinstance(temper, bool) or not isinstance(temper, (int, float)) or not 0 < temper <= 1:
            raise ParameterError(f"temper must be a number in (0, 1], got {temper!r}")
        if encode and not self.context:
            raise ParameterError("encode=True needs a model fitted with an entity encoder (context > 0)")
        if isinstance(level, bool) or not isinstance(level, (int, float)) or not 0 <= level <= 2:
            raise ParameterError(f"level must be a number in [0, 2], got {level!r}")
        if max_minutes is not None and (isinstance(max_minutes, bool) or not max_minutes > 0):
            raise ParameterError(f"max_minutes must be a positive number or None, got {max_minutes!r}")
        if (
            isinstance(fine_tune_share, bool)
            or not isinstance(fine_tune_share, (int, float))
            or not 0 <= fine_tune_share <= 1
        ):
            raise ParameterError(f"fine_tune_share must be in [0, 1], got {fine_tune_share!r}")
        y = self.encoding_.encode(frame, times)
        rng = np.random.default_rng(self._seed_sequence(seed, stream=2))
        device = resolve_device(self.device)
        net = self._new_net(1).to(device)
        # a twin keeps no other entity's embedding: its own z is held apart
        weights = {k: v for k, v in self.net_.state_dict().items() if k != "entity.weight"}
        net.load_state_dict(weights, strict=False)
        cond = self.static_encoding_.encode(static_row)
        # the entity latent: the population's mean, or what the encoder infers from the history (amortised)
        z0, z_var = self.z_mean_.copy(), np.diag(self.z_cov_).copy()
        if encode:
            mu, var = self._encode_many([self.encoding_.features(y)])
            z0, z_var = mu[0], var[0]
        net.entity.weight.data.copy_(torch.as_tensor(z0[None], dtype=torch.float32))
        info: dict[str, Any] = {"epochs": 0, "steps": len(frame), "encoded": bool(encode)}
        if epochs > 0:
            with seeded(rng, device):
                z0, info = self._fine_tune(
                    net, y, times, cond, epochs, max_minutes, learning_rate, fine_tune_share, anchor, progress,
                    device, (z0, z_var), select,
                )  # fmt: skip
                info["encoded"] = bool(encode)
        net.eval()
        draws = weights = None
        if posterior:
            prior_mean, prior_cov = (self.z_mean_, self.z_cov_) if not encode else (mu[0], np.diag(var[0]))
            draws, weights = self._latent_posterior(net, y, times, cond, prior_mean, prior_cov, rng, float(temper))
            z0 = weights @ draws  # the posterior mean: the twin's point latent (level offset)
            info["posterior_ess"] = float(1.0 / np.sum(weights**2))  # effective number of the 2,048 latents
        info["posterior"] = bool(posterior)
        info["temper"] = float(temper)
        offset = self._level_offset(net, y, times, cond, z0, float(level))
        info["level"] = float(level)
        info["level_offset"] = {
            b["name"]: float(offset[i] * b["std"]) for i, b in enumerate(self.encoding_.blocks) if offset[i] != 0
        }
        twin = Twin._new(self, net, entity, static_row, frame, times, y, z0, info)
        twin.offset_ = offset
        twin.z_draws_, twin.z_weights_ = draws, weights
        return twin

    def _history_inputs(self, y: np.ndarray, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The network's inputs for one entity's history (a batch of one): each step's previous values, and
        (the previous step's elapsed time since the start, first-step flag, its long-range state)."""
        enc = self.encoding_
        n = len(y)
        prev = np.zeros((1, n, enc.d_step), dtype="float32")
        prev[0, 1:] = enc.features(y[:-1])
        state = self._step_state(y, (times - times[0]) / self.layout_["time_scale"], times)
        state = np.concatenate([state[:1], state[:-1]])  # step t sees step t-1's state; the first step its own
        extra = np.zeros((1, n, 1 + state.shape[1]), dtype="float32")
        extra[0, :, 0] = state[:, 0]
        extra[0, :, 2:] = state[:, 1:]
        extra[0, 0, 1] = 1.0
        return prev, extra

    def _latent_posterior(self, net, y, times, cond, mean, cov, rng, temper: float = 1.0, draws: int = 2048):
        """Importance sampling of the entity latent given the history: ``draws`` latents from N(mean, cov) and
        their normalised likelihoods p(history | z) ** temper under ``net`` (one batched pass over the history)."""
        enc = self.encoding_
        device = next(net.parameters()).device
        z = rng.multivariate_normal(np.asarray(mean, dtype="float64"), np.asarray(cov, dtype="float64"), draws)
        n = len(y)
        prev, extra = self._history_inputs(y, times)
        t = lambda a: torch.tensor(np.asarray(a), dtype=torch.float32, device=device)  # noqa: E731
        cz = torch.cat([t(np.repeat(cond, draws, 0)), t(z)], -1)
        grow = lambda a: t(a).expand(draws, *a.shape[1:])  # noqa: E731
        with torch.no_grad():
            out, _ = net.run(grow(prev), grow(extra), cz, net.initial(cz))
            par = net.params(out, cz, grow(enc.features(y)[None]))
            loglik = -_nll(enc, par, grow(y[None]), torch.ones(draws, n, device=device)).sum(1)
        weights = torch.softmax(temper * loglik.double(), 0).cpu().numpy()
        return z, weights / weights.sum()

    def _policy_for(self, history_length: int) -> dict[str, Any]:
        """The personalisation settings for a history of ``history_length`` steps: the tuned choice of the nearest
        tuned length (up to twice the longest), else the defaults."""
        default = {
            "epochs": 0,
            "level": 0.0,
            "encode": bool(self.context),
            "select": True,
            "posterior": False,
            "temper": 1.0,
            "fine_tune_share": 0.6,
        }
        policy = getattr(self, "twin_policy_", None)
        if not policy or history_length > 2 * max(policy["ks"]):
            return default
        ks = np.asarray(policy["ks"], dtype="float64")
        choice = policy["choices"][int(np.argmin(np.abs(np.log(ks) - np.log(max(history_length, 1)))))]
        encode = bool(choice.get("encode", False)) and bool(self.context)
        select = bool(choice.get("select", True))
        posterior = bool(choice.get("posterior", False))
        return {
            "epochs": int(choice["epochs"]),
            "level": float(choice["level"]),
            "encode": encode,
            "select": select,
            "posterior": posterior,
            "temper": float(choice.get("temper", 1.0)),
            "fine_tune_share": float(choice.get("fine_tune_share", 0.6)),
        }

    def _level_offset(self, net, y, times, cond, z, level: float) -> np.ndarray:
        """``level`` x the mean one-step-ahead residual (standardised) of each numeric channel over the history."""
        enc = self.encoding_
        offset = np.zeros(len(enc.blocks))
        if level == 0 or len(y) < 2:
            return offset
        device = next(net.parameters()).device
        prev, extra = self._history_inputs(y, times)
        t = lambda a: torch.tensor(np.asarray(a), dtype=torch.float32, device=device)  # noqa: E731
        cz = torch.cat([t(cond), t(np.asarray(z, dtype="float64")[None])], -1)
        with torch.no_grad():
            out, _ = net.run(t(prev), t(extra), cz, net.initial(cz))
            par = net.params(out, cz, t(enc.features(y)[None]))[0].cpu()
        k = enc.state["k"]
        for i, b in enumerate(enc.blocks):
            if b["kind"] != "num" or b["name"] == "__gap__":
                continue
            p = par[:, b["p0"] + int(bool(b.get("missing"))) : b["p0"] + b["n_par"]]
            logw, mu, _ = _mixture_parts(p, k)
            expected = (logw.exp() * mu).sum(-1).numpy().astype("float64")
            resid = (y[:, i] - expected)[1:]  # the first step has no past to predict it from
            if np.isfinite(resid).any():
                offset[i] = level * float(np.nanmean(resid))
        return offset

    def forecast(
        self,
        history: pd.DataFrame | str | os.PathLike,
        horizon: int,
        paths: int = 100,
        *,
        seed: int | None = None,
        event: dict[str, Any] | None = None,
        static: dict[str, Any] | None = None,
    ) -> pd.DataFrame:
        """The population model's forecast for an entity (no personalisation): ``personalize(history,
        epochs=0, level=0).forecast(...)``. Useful as the baseline a twin should beat."""
        twin = self.personalize(history, epochs=0, level=0.0, encode=False, posterior=False, static=static)
        return twin.forecast(horizon, paths, seed=seed, event=event)

    def tune_personalization(
        self,
        events: pd.DataFrame | str | os.PathLike,
        *,
        static: pd.DataFrame | str | os.PathLike | None = None,
        ks: tuple[int, ...] | list[int] = (10, 25),
        horizon: int = 25,
        holdout_share: float = 0.25,
        paths: int = 32,
        margin: float = 0.02,
        epochs: int | tuple[int, ...] | list[int] = (15, 30, 60),
        seed: int | None = None,
        progress: bool | None = None,
    ) -> SequenceModel:
        """Choose how :meth:`personalize` adapts to a history of each length in ``ks``, on training entities only.

        Fits an inner population model (this model's parameters) on ``1 - holdout_share`` of the entities of
        ``events`` (the training table; static attributes as its columns or in the table ``static``), then, for
        each entity of the rest and each ``k``, forecasts the ``horizon`` steps after its first ``k`` with each
        candidate: the population's view (``epochs=0, level=0``), a level offset (``level`` 0.5 or 1), the
        latent the entity encoder infers from the history (a model with ``context > 0``), the latent's posterior
        given the history (``posterior=True``, alone, with ``level`` 0.5, and tempered with ``temper`` 0.1 and
        0.3), fine-tuning for exactly each number of ``epochs`` (default 15, 30 and 60; ``select=False``) and
        fitting the latent alone for the middle of them.
        The candidate with the lowest mean CRPS (standardised units, numeric channels) wins if it beats the
        population's view by more than ``margin`` (relative); otherwise the twin keeps the population's view, so
        short histories cannot make it worse than the population model on the inner entities. The choice is stored
        in ``twin_policy_`` (saved with the model) and used by ``personalize`` by default. Returns self.
        """
        self._check_fitted()
        _check_seed(seed, "seed")
        ks = sorted({_positive_int("ks", k) for k in ks})
        if not ks:
            raise ParameterError("ks is empty: give the history lengths to tune for, e.g. ks=(10, 25)")
        horizon = _positive_int("horizon", horizon)
        paths = _positive_int("paths", paths)
        grid = epochs if isinstance(epochs, (tuple, list)) else [epochs]
        epoch_grid = sorted({_positive_int("epochs", e) for e in grid})
        if isinstance(holdout_share, bool) or not isinstance(holdout_share, (int, float)) or not 0 < holdout_share < 1:
            raise ParameterError(f"holdout_share must be a number in (0, 1), got {holdout_share!r}")
        if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not 0 <= margin < 1:
            raise ParameterError(f"margin must be a number in [0, 1), got {margin!r}")
        from twinforge.evaluate.forecast import twin_benchmark

        lay = self.layout_
        ek, tk = lay["entity_key"], lay["time_key"]
        df = read_table(events)
        if static is not None:
            table = read_table(static)
            wanted = [c for c in lay["static_columns"] if c not in df.columns and c in table.columns]
            if ek not in table.columns:
                raise DataError(f"the static table has no entity key column {ek!r}; its columns are {list(table)}")
            df = df.merge(table[[ek, *wanted]], on=ek, how="left", validate="many_to_one")
        missing = [c for c in [ek, tk, *lay["static_columns"], *lay["channels"]] if c not in df.columns]
        if missing:
            raise DataError(
                f"events lacks the columns {missing}: give the long training table with static columns in it "
                "(or the static table as static=)"
            )
        rng = np.random.default_rng(self._seed_sequence(seed, stream=5))
        entities = np.asarray(pd.unique(df[ek]))
        n_inner = max(2, round(holdout_share * len(entities)))
        if len(entities) - n_inner < 2:
            raise DataError(f"tuning needs at least 4 entities in events, got {len(entities)}")
        held = set(rng.choice(entities, n_inner, replace=False).tolist())
        mask = df[ek].isin(held).to_numpy()
        show = self.progress if progress is None else progress
        params = {**self.get_params(), "seed": int(rng.integers(2**31)), "progress": show}
        inner = type(self)(**params).fit(
            df[~mask].reset_index(drop=True), entity_key=ek, time_key=tk, static=lay["static_columns"] or None
        )
        numeric = [b["name"] for b in self.encoding_.blocks if b["kind"] == "num" and b["name"] != "__gap__"]
        if not numeric:
            raise DataError("tuning scores numeric channels, and this model has none")
        scale = {c: float(np.nanstd(df.loc[~mask, c].to_numpy(dtype="float64"))) or 1.0 for c in numeric}
        e = bool(self.context)  # with an encoder, the inferred latent is a candidate and fine-tuning starts from it
        plain = {"encode": False, "select": False, "posterior": False}
        candidates = {
            "population": {"epochs": 0, "level": 0.0, **plain},
            "level 0.5": {"epochs": 0, "level": 0.5, **plain},
            "level 1": {"epochs": 0, "level": 1.0, **plain},
            "posterior": {**plain, "epochs": 0, "level": 0.0, "posterior": True},
            "posterior, level 0.5": {**plain, "epochs": 0, "level": 0.5, "posterior": True},
            "posterior, tempered 0.1": {**plain, "epochs": 0, "level": 0.0, "posterior": True, "temper": 0.1},
            "posterior, tempered 0.3": {**plain, "epochs": 0, "level": 0.0, "posterior": True, "temper": 0.3},
        }
        if e:
            candidates["encoder"] = {"epochs": 0, "level": 0.0, "encode": True, "select": False}
        for n in epoch_grid:  # exactly n epochs: choosing them on a few held-back steps of the history is noisier
            candidates[f"fine-tune {n}"] = {"epochs": n, "level": 0.0, "encode": e, "select": False, "posterior": False}
        # the entity's latent alone (MAP under the population's latent distribution), the weights untouched; one
        # length only (the grid's middle): 15, 30 and 60 epochs scored within 3% of one another on the inner
        # entities of BasicMotions and the turbines, and each adds a fine-tune per entity and k to tuning
        n = epoch_grid[len(epoch_grid) // 2]
        candidates[f"latent {n}"] = {**candidates[f"fine-tune {n}"], "fine_tune_share": 0.0}

        def forecaster(settings):
            def run(history, steps, n_paths, run_seed):
                twin = inner.personalize(history, seed=run_seed, progress=False, **settings)
                return twin.forecast(steps, n_paths, seed=run_seed)

            return run

        result = twin_benchmark(
            df[mask].reset_index(drop=True),
            {name: forecaster(settings) for name, settings in candidates.items()},
            entity_key=ek, time_key=tk, ks=ks, horizon=horizon, paths=paths, seed=int(rng.integers(2**31)),
            channels=numeric, scale=scale, progress=show,
        )  # fmt: skip
        choices, scores = [], {}
        for k in ks:
            table = result["results"][str(k)]
            crps = {name: table[name]["crps_scaled"] for name in candidates}
            scores[str(k)] = crps
            best = min(candidates, key=lambda name: crps[name])
            if crps[best] > (1 - margin) * crps["population"]:
                best = "population"
            choices.append({**candidates[best], "name": best})
        self.twin_policy_ = {"ks": ks, "choices": choices, "scores": scores, "inner_entities": n_inner}
        return self

    def _read_history(self, history: Any, static: dict[str, Any] | None):
        lay = self.layout_
        df = read_table(history).rename(columns=str)
        ek, tk = lay["entity_key"], lay["time_key"]
        if tk not in df.columns:
            raise DataError(f"the history has no time column {tk!r}; its columns are {list(df.columns)}")
        missing = [c for c in lay["channels"] if c not in df.columns]
        if missing:
            raise DataError(f"the history lacks the channels {missing}: give every channel (missing values allowed)")
        if ek in df.columns:
            keys = df[ek].dropna().unique()
            if len(keys) != 1 or df[ek].isna().any():
                raise DataError(
                    f"the history must hold one entity; {ek!r} has {len(keys)} distinct values"
                    + (" and missing values" if df[ek].isna().any() else "")
                    + ": pass the rows of one entity"
                )
            entity = _json_scalar(keys[0])
        else:
            entity = "twin"
            df = df.assign(**{ek: entity})
        from twinforge.sequences._data import time_problems

        problems = time_problems(df, ek, tk)
        if problems:
            raise DataError("the history cannot be used as a time series:\n" + "\n".join(f"  - {p}" for p in problems))
        times, kind = parse_time(df[tk], tk, self._time_format())
        if kind != lay["time_kind"]:
            raise DataError(f"time column {tk!r} holds {kind}s, but the model was fitted on {lay['time_kind']}s")
        values: dict[str, Any] = {}
        lacking = []
        for c in lay["static_columns"]:
            if static is not None and c in static:
                values[c] = static[c]
                other = df[c].dropna().drop_duplicates().tolist() if c in df.columns else []
                if other and (pd.isna(static[c]) or any(v != static[c] for v in other)):
                    raise DataError(
                        f"static attribute {c!r} is {static[c]!r} in static= (--static) but {other[:3]} in the "
                        "history's own column: give one value (drop the column from the history, or fix either)"
                    )
            elif c in df.columns:
                distinct = df[c].drop_duplicates()
                if len(distinct) > 1:
                    raise DataError(
                        f"static column {c!r} varies in the history ({distinct.tolist()[:3]}): give one value"
                    )
                values[c] = df[c].iloc[0]
            else:
                lacking.append(c)
        if lacking:
            raise DataError(
                f"the history lacks the static attributes {lacking}: add them as columns or pass static={{...}}"
            )
        extra = sorted(set(static or {}) - set(lay["static_columns"]))
        if extra:
            raise ParameterError(f"static= names {extra}, which are not static attributes {lay['static_columns']}")
        row = pd.DataFrame({c: [v] for c, v in values.items()}) if values else pd.DataFrame(index=[0])
        return entity, df.reset_index(drop=True), row, times

    def _fine_tune(self, net, y, times, cond, epochs, max_minutes, lr, share, anchor, progress, device, prior, select):
        """Fit the entity's ``z`` (then every weight, pulled toward the population's) on its history.

        How long to train is chosen on the history itself (a rolling origin inside the history): a trial run
        trains on its first 70% and, at a few snapshots (epoch 0: the population model as is), forecasts the last
        30% free-running, scored by CRPS; the final run trains on the whole history for the best snapshot's number
        of epochs. A history too short to split (under 8 steps) trains for ``epochs``.
        """
        enc = self.encoding_
        n = len(y)
        prev, extra = self._history_inputs(y, times)
        t = lambda a: torch.tensor(np.asarray(a), dtype=torch.float32, device=device)  # noqa: E731
        prev_t, extra_t, cur_t, y_t = t(prev), t(extra), t(enc.features(y)[None]), t(y[None])
        c = t(cond)
        mean, var = t(prior[0]), t(prior[1])
        n_fine = round(share * epochs)
        n_z = epochs - n_fine
        start = time.perf_counter()
        show = self.progress if progress is None else progress
        n_val = max(2, round(0.3 * n)) if select and n >= _MIN_VALIDATION_LENGTH else 0

        def run(module: _SeqNet, n_train: int, stop: int, advance, keep=()) -> tuple[torch.Tensor, list[float], list]:
            """Train ``module`` in place for ``stop`` epochs on the first ``n_train`` steps; returns z, the training
            losses and (when steps are left over) the validation losses after 0..stop epochs; ``snapshots`` holds
            (epochs, z, weights) after each number of epochs in ``keep``."""
            z = nn.Parameter(mean.clone()[None])
            for p in module.parameters():
                p.requires_grad_(False)
            pop = {k: v.detach().clone() for k, v in module.named_parameters()}
            train_mask = torch.zeros(1, n, device=device)
            train_mask[0, :n_train] = 1.0
            val_mask = 1.0 - train_mask
            opt = torch.optim.Adam([z], lr=lr)
            losses: list[float] = []
            vals: list[float] = []

            def nll_of(mask: torch.Tensor) -> torch.Tensor:
                cz = torch.cat([c, z], -1)
                out, _ = module.run(prev_t, extra_t, cz, module.initial(cz))
                return _nll(enc, module.params(out, cz, cur_t), y_t, mask).sum() / mask.sum().clamp_min(1.0)

            def score() -> None:
                if n_train < n:
                    with torch.no_grad():
                        vals.append(float(nll_of(val_mask)))
                if len(losses) in keep:
                    snapshots.append((len(losses), z.detach().clone(), copy.deepcopy(module.state_dict())))

            snapshots: list = []

            score()
            for i in range(stop):
                if i == n_z:
                    for name, p in module.named_parameters():
                        p.requires_grad_(name != "entity.weight")
                    opt = torch.optim.Adam(
                        [
                            {"params": [z], "lr": lr},
                            {"params": [p for p in module.parameters() if p.requires_grad], "lr": lr / 100},
                        ]
                    )
                nll = nll_of(train_mask)
                loss = nll + 0.5 * ((z[0] - mean) ** 2 / var).sum() / n_train
                if i >= n_z and anchor > 0:
                    loss = loss + anchor * sum(
                        ((p - pop[k]) ** 2).sum() for k, p in module.named_parameters() if p.requires_grad
                    )
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                losses.append(float(nll.detach()))
                score()
                advance({"loss": losses[-1]})
                if max_minutes is not None and time.perf_counter() - start > 60.0 * max_minutes:
                    break
            for p in module.parameters():
                p.requires_grad_(False)
            return z.detach(), losses, (vals, snapshots)

        from twinforge.models._nn import _progress

        best = epochs
        vals: list[float] = []
        forecast_scores: dict[int, float] = {}
        with _progress(show, "personalizing", epochs * (2 if n_val else 1)) as (advance,):
            if n_val:
                keep = sorted({0, *(max(1, round(epochs * f)) for f in (0.125, 0.25, 0.5, 0.75, 1.0))})
                trial = copy.deepcopy(net)
                _, _, (vals, snapshots) = run(trial, n - n_val, epochs, advance, keep=keep)
                # the forecast the twin is for: free-running paths over the held-back steps, scored by CRPS
                # (Brier for categories) with the same random numbers for every candidate; 0 epochs (the
                # population model) wins ties, so the twin is never worse than it on what it has seen
                for done, z_k, weights in snapshots:
                    trial.load_state_dict(weights)
                    forecast_scores[done] = self._holdout_forecast_score(trial, y, times, cond, z_k, n - n_val)
                best = min(forecast_scores, key=lambda e: (forecast_scores[e], e))
            z, losses, _ = run(net, n, best, advance)
        timed_out = max_minutes is not None and time.perf_counter() - start > 60.0 * max_minutes
        info = {
            "epochs": len(losses),
            "chosen_epochs": best,
            "validation_steps": n_val,
            # one-step negative log-likelihood per step of the held-back steps: the population model's (0 epochs)
            # and the chosen number of epochs' (never higher: 0 epochs is a candidate)
            "population_validation_nll": vals[0] if vals else None,
            "validation_nll": vals[best] if vals else None,
            # mean CRPS (standardised units; Brier for categories) of free-running forecasts of the held-back steps
            "population_validation_crps": forecast_scores.get(0),
            "validation_crps": forecast_scores.get(best),
            "stopped": "time_budget" if timed_out else "epochs",
            "steps": n,
            "loss": losses[-1] if losses else None,
            "seconds": round(time.perf_counter() - start, 3),
        }
        return z.cpu().numpy()[0].astype("float64"), info

    def _holdout_forecast_score(self, net, y, times, cond, z, n_train: int, paths: int = 32) -> float:
        """Mean score of ``paths`` forecasts of steps ``n_train..`` of ``y`` from the steps before (fixed seed)."""
        rng = np.random.default_rng(0)
        zz = np.repeat(z.cpu().numpy().astype("float64"), paths, 0)
        horizon = len(y) - n_train
        hist = {"y": y[:n_train], "times": times[:n_train]}
        drawn, _ = _generate(self, net, np.repeat(cond, paths, 0), zz, hist, np.full(paths, horizon), None, rng, None)
        scores = []
        for i, b in enumerate(self.encoding_.blocks):
            actual = y[n_train:, i]
            if b["name"] == "__gap__" or np.isnan(actual).all():
                continue
            if b["kind"] == "cat":
                levels = b["n_feat"]
                share = np.stack([(drawn[:, :, i] == c).mean(0) for c in range(levels)], 1)
                ok = ~np.isnan(actual)
                onehot = np.eye(levels)[np.where(ok, actual, 0).astype("int64")]
                scores.append(float(((share - onehot) ** 2).sum(1)[ok].mean()))
            else:
                from twinforge.evaluate.forecast import crps

                scores.append(float(np.nanmean(crps(drawn[:, :, i], actual))))
        return float(np.mean(scores)) if scores else 0.0

    # ------------------------------------------------------------------------------------ persistence
    def _document(self) -> dict[str, Any]:
        self._check_fitted()
        return {
            "model": self.name,
            "params": self.get_params(),
            "metadata": self.metadata_.to_dict(),
            "fit_info": self.fit_info_,
            "state": {
                "layout": self.layout_,
                "encoding": self.encoding_.state,
                "static_encoding": self.static_encoding_.state,
                "net": state_to_arrays(self.net_),
                "n_entities": int(self.net_.entity.num_embeddings),
                "z_mean": self.z_mean_,
                "z_cov": self.z_cov_,
                "train_info": self.train_info_,
                "static_model": _synth_document(self.static_model_),
                "twin_policy": getattr(self, "twin_policy_", None),
            },
        }

    def save(self, path: str | os.PathLike, *, overwrite: bool = False) -> None:
        """Save to directory ``path`` (``model.json`` + ``weights.npz``); reload with :func:`twinforge.load`."""
        save_model_dir(path, self._document(), overwrite=overwrite)

    @classmethod
    def _from_document(cls, doc: dict[str, Any]) -> SequenceModel | Twin:
        # saved before the encoder, the bounded link or the long-range inputs existed: none
        model = cls(**{"context": 0, "link": "linear", "long_range": False, **doc["params"]})
        model.metadata_ = Metadata.from_dict(doc["metadata"])
        model.fit_info_ = doc["fit_info"]
        st = doc["state"]
        model.layout_ = st["layout"]
        model.encoding_ = _Encoding(st["encoding"])
        model.static_encoding_ = _StaticEncoding(st["static_encoding"])
        model.z_mean_ = np.asarray(st["z_mean"], dtype="float64")
        model.z_cov_ = np.asarray(st["z_cov"], dtype="float64")
        model.train_info_ = st["train_info"]
        model.static_model_ = _synth_from_document(st["static_model"])
        # the saturating links' parts were top-level modules before they moved into ``within`` (session 18)
        moved = {
            "sat.weight": "within.sat.weight",
            "sat_gate.weight": "within.gate.weight",
            "sat_gate.bias": "within.gate.bias",
        }
        arrays = {moved.get(k, k): v for k, v in st["net"].items()}
        model.net_ = state_from_arrays(model._new_net(int(st["n_entities"])), arrays)
        model.net_.to(resolve_device(model.device)).eval()
        if st.get("twin_policy"):
            model.twin_policy_ = st["twin_policy"]
        if "twin" in doc:
            return Twin._from_state(model, doc["twin"])
        return model


def _synth_document(m: Synthesizer) -> dict[str, Any]:
    return {
        "model": m.name,
        "params": m.get_params(),
        "metadata": m.metadata_.to_dict(),
        "fit_info": m.fit_info_,
        "transformer": m.transformer_.get_state(),
        "state": m._get_state(),
    }


def _synth_from_document(doc: dict[str, Any]) -> Synthesizer:
    from twinforge.models._registry import get_class
    from twinforge.transforms import TableTransformer

    m = get_class(doc["model"])(**doc["params"])
    m.metadata_ = Metadata.from_dict(doc["metadata"])
    m.transformer_ = TableTransformer.from_state(doc["transformer"])
    m.fit_info_ = doc["fit_info"]
    m._restore_state(doc["state"])
    return m


# =========================================================================================== generation
def _check_within(ev: _Event | None, steps: int, what: str) -> None:
    """An event asked for within more steps than a path has would be forced into fewer: say so instead."""
    if ev is not None and ev.within > steps:
        raise ParameterError(
            f"event within must be at most {what} ({steps} steps), got {ev.within}: every path would have the "
            f"event within {steps} steps, not {ev.within}; lower it, or ask for more steps"
        )


class _Event:
    """A scenario: channel ``block`` takes ``code`` (categorical) or a value in [lo, hi] (standardised numeric)
    at least once within the first ``within`` generated steps of every path."""

    def __init__(self, block: int, within: int, code: int | None = None, lo: float = -np.inf, hi: float = np.inf):
        self.block, self.within, self.code, self.lo, self.hi = block, within, code, lo, hi

    @classmethod
    def parse(
        cls, model: SequenceModel, event: dict[str, Any] | None, default_within: int, widen: float = 0.0
    ) -> _Event | None:
        if event is None:
            return None
        if not isinstance(event, dict) or "column" not in event or "value" not in event:
            raise ParameterError(
                'event must be a dict like {"column": "failure", "value": 1, "within": 24} '
                '(for a numeric channel, "value": (low, high))'
            )
        unknown = sorted(set(event) - {"column", "value", "within"})
        if unknown:
            raise ParameterError(f"event has unknown keys {unknown}; it takes column, value and within")
        col = event["column"]
        enc = model.encoding_
        index = next((i for i, b in enumerate(enc.blocks) if b["name"] == col), None)
        if index is None:
            raise ParameterError(f"event column {col!r} is not a channel; channels are {model.layout_['channels']}")
        within = event.get("within", default_within)
        within = _positive_int("event within", within)
        b = enc.blocks[index]
        value = event["value"]
        if b["kind"] == "cat":
            lookup = {v: i for i, v in enumerate(b["levels"])}
            code = lookup.get(_json_scalar(value))
            if code is None and isinstance(value, str):  # written as text (the command line): "1", "true"
                text = {"true": "True", "false": "False"}.get(value.strip().lower(), value.strip())
                code = next((i for i, v in enumerate(b["levels"]) if str(v) == text), None)
            if code is None:
                raise ParameterError(f"event value {value!r} is not a level of {col!r}; levels are {b['levels']}")
            return cls(index, within, code=code)
        if not isinstance(value, (tuple, list)) or len(value) != 2:
            value = (value, value)
        lo, hi = (None if v is None else float(v) for v in value)
        lo = -np.inf if lo is None else lo
        hi = np.inf if hi is None else hi
        # generated values are clipped to the training range (widened by ``widen`` of it): keep the event inside
        span = b["max"] - b["min"]
        low, high = b["min"] - widen * span, b["max"] + widen * span
        if b["min"] >= 0:
            low = max(low, 0.0)
        if lo > high or hi < low:
            raise ParameterError(
                f"event value {value!r} for {col!r} is outside what the model generates for it "
                f"([{low:.6g}, {high:.6g}], the training range{' widened by half' if widen else ''})"
            )
        lo, hi = max(lo, low), min(hi, high)
        if b["integer"]:
            lo, hi = math.ceil(lo) - 0.49, math.floor(hi) + 0.49
        if not lo <= hi:
            raise ParameterError(f"event value {value!r} for {col!r} is an empty range")
        if lo == hi:  # a single value of a continuous channel has probability 0: use a tiny range around it
            pad = 1e-6 * max(abs(lo), 1.0)
            lo, hi = lo - pad, hi + pad
        return cls(index, within, lo=(lo - b["mean"]) / b["std"], hi=(hi - b["mean"]) / b["std"])


def _shared_periods(enc: _Encoding, ys: list[np.ndarray], times: np.ndarray, offsets: np.ndarray, kind: str) -> list:
    """Cycles of absolute time whose phase the network gets as an input (``long_range``): the phase of a cycle
    the whole fleet shares (a day, a season) cannot be told from a window of values or from the time since a
    sequence's start, when every entity starts at another point of it.

    Datetimes: the day, week and year, each if the median spacing resolves it (at most a quarter of it). Numbers
    spaced in whole units: the shortest cycle of 2 to 64 units whose phase means explain, within entities, at
    least 5% of some numeric channel's variance (and within 90% of the best cycle's share, so that a multiple of
    the true cycle does not win), else none."""
    first = np.zeros(len(times), dtype=bool)
    first[offsets[:-1]] = True
    gaps = np.diff(times)[~first[1:]]
    if not len(gaps):
        return []
    if kind == "datetime":
        gap = float(np.median(gaps))
        return [period for _, period in _CALENDAR if gap <= period / 4]
    unit = float(gaps.min())
    if unit <= 0 or not np.allclose(gaps / unit, np.round(gaps / unit)):
        return []
    steps = np.round(times / unit).astype("int64") if np.allclose(times / unit, np.round(times / unit)) else None
    if steps is None:
        return []
    numeric = [i for i, b in enumerate(enc.blocks) if b["kind"] == "num" and b["name"] != "__gap__"]
    if not numeric:
        return []
    # each channel's deviations from its entity's mean, pooled over the fleet
    parts = []
    for y in ys:
        v = y[:, numeric]
        seen = ~np.isnan(v)
        mean = np.where(seen, v, 0.0).sum(0) / np.maximum(seen.sum(0), 1)  # a channel never seen: NaN stays NaN
        parts.append(v - mean)
    x = np.concatenate(parts)
    ok = ~np.isnan(x)
    x = np.where(ok, x, 0.0)
    total = (x**2).sum(0)
    longest = min(_MAX_PERIOD, int(np.median(np.diff(offsets))) // 2)
    share = {}
    for period in range(2, longest + 1):
        phase = np.mod(steps, period)
        count = np.stack([np.bincount(phase, weights=ok[:, c], minlength=period) for c in range(x.shape[1])], 1)
        sums = np.stack([np.bincount(phase, weights=x[:, c], minlength=period) for c in range(x.shape[1])], 1)
        between = (sums**2 / np.maximum(count, 1)).sum(0)
        # chance alone explains about (period - 1) / n of the variance: discount it
        explained = between / np.maximum(total, 1e-12) - (period - 1) / np.maximum(ok.sum(0), 1)
        share[period] = float(explained.max())
    if not share or max(share.values()) < _MIN_PERIOD_SHARE:
        return []
    best = max(share.values())
    return [float(unit * min(p for p, v in share.items() if v >= 0.9 * best))]


def _generate(
    model: SequenceModel,
    net: _SeqNet,
    cond: np.ndarray,
    z: np.ndarray,
    history: dict[str, np.ndarray] | None,
    lengths: np.ndarray,
    t0: np.ndarray,
    rng: np.random.Generator,
    event: _Event | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``lengths[i]`` steps for each row. Without ``history``, sequences start at time ``t0`` (no gap on the
    first step); with it (``y``, ``times`` of one entity), every row continues that history. Returns the targets
    (N, max_len, n_blocks) and the times (N, max_len)."""
    enc = model.encoding_
    k = enc.state["k"]
    device = next(net.parameters()).device
    n = len(lengths)
    steps = int(lengths.max())
    scale = model.layout_["time_scale"]
    gap_block = enc.gap_block()
    gap_state = enc.state["gap"]
    y_out = np.full((n, steps, len(enc.blocks)), np.nan)
    t_out = np.zeros((n, steps))
    hit = np.zeros(n, dtype=bool)
    # long-range inputs (``long_range``): each tracked channel's last value and the elapsed time its run began,
    # updated step by step exactly as :meth:`SequenceModel._step_state` computes them on a whole sequence
    tracked = model._tracked_blocks()
    n_runs = 2 + len(tracked)  # extra columns before the phases
    d_extra = 1 + model._state_width()
    last = np.full((n, len(tracked)), np.nan)
    run_start = np.zeros((n, len(tracked)))
    run_scale = model._run_scale()
    with torch.no_grad():
        cz = torch.as_tensor(np.concatenate([cond, z], 1), dtype=torch.float32, device=device)
        h = net.initial(cz)
        if history is None:
            prev = torch.zeros(n, 1, enc.d_step, device=device)
            extra = torch.zeros(n, 1, d_extra, device=device)
            extra[:, 0, 1] = 1.0
            extra[:, 0, n_runs:] = torch.as_tensor(model._phases(t0), dtype=torch.float32)
            t_prev = t0.astype("float64")
            start = t0.astype("float64")
        else:
            hy, ht = history["y"], history["times"]
            start = np.full(n, ht[0])
            el = (ht - ht[0]) / scale
            p, e = model._history_inputs(hy, ht)
            if tracked:
                last[:] = hy[-1, tracked]
                run_start[:] = model._run_starts(hy, el)[-1]
            # one warm-up serves every row when they share the latent and attributes; else one per row
            rows = 1 if bool((cz == cz[:1]).all()) else n
            czh = cz[:rows]
            pt = torch.as_tensor(p, device=device).expand(rows, -1, -1)
            et = torch.as_tensor(e, device=device).expand(rows, -1, -1)
            _, h1 = net.run(pt, et, czh, net.initial(czh))
            h = h1.expand(-1, n, -1).contiguous() if rows == 1 else h1
            prev = torch.as_tensor(enc.features(hy[-1:]), device=device)[None].expand(n, 1, -1).contiguous()
            extra = torch.zeros(n, 1, d_extra, device=device)
            extra[:, 0, 0] = float(el[-1])
            extra[:, 0, 2:n_runs] = torch.as_tensor((el[-1] - run_start) / run_scale, dtype=torch.float32)
            extra[:, 0, n_runs:] = torch.as_tensor(model._phases(ht[-1:]), dtype=torch.float32)
            t_prev = np.full(n, ht[-1])
        for j in range(steps):
            out, h = net.run(prev, extra, cz, h)
            base, gain, offset = net.base(out[:, 0], cz)
            cur = np.zeros((n, enc.d_step), dtype="float32")
            weight = (net.within.weight * net.mask).cpu().numpy()
            base_np = base.cpu().numpy().astype("float64")
            if gain is not None:
                gain = gain.cpu().numpy().astype("float64")
            if offset is not None:
                sat = (net.within.sat.weight * net.mask).cpu().numpy().astype("float64")
                offset = offset.cpu().numpy().astype("float64")
            y = np.full((n, len(enc.blocks)), np.nan)
            first_step = history is None and j == 0
            for i, b in enumerate(enc.blocks):
                if i == gap_block and first_step:
                    continue
                sl = slice(b["p0"], b["p0"] + b["n_par"])
                lin = cur @ weight[sl].T.astype("float64")
                if gain is not None and offset is None:
                    lin = gain[:, sl] * np.tanh(lin / gain[:, sl])
                par = base_np[:, sl] + lin
                if offset is not None:
                    par = par + gain[:, sl] * np.tanh(cur @ sat[sl].T + offset[:, sl])
                forced = None
                if event is not None and i == event.block:
                    forced = _event_mask(hit, j, event, lengths)
                y[:, i] = _draw(b, par, k, rng, event if i == (event.block if event else -1) else None, forced)
                if event is not None and i == event.block:
                    hit |= _is_event(y[:, i], event)
                cur[:, b["f0"] : b["f0"] + b["n_feat"]] = enc.features(_one_block(y, i, len(enc.blocks)))[
                    :, b["f0"] : b["f0"] + b["n_feat"]
                ]
            if gap_block is None:
                gap = np.full(n, gap_state["value"])
            elif first_step:
                gap = np.zeros(n)
            else:
                gap = enc.gap_value(y[:, gap_block])
            t_now = t_prev + (0.0 if first_step else gap)
            if first_step:
                t_now = start.copy()
            y_out[:, j] = y
            t_out[:, j] = t_now
            prev = torch.as_tensor(enc.features(y), device=device)[:, None]
            extra = torch.zeros(n, 1, d_extra, device=device)
            el_now = (t_now - start) / scale
            extra[:, 0, 0] = torch.as_tensor(el_now, dtype=torch.float32)
            if tracked:
                codes = y[:, tracked]
                changed = (codes != last) | first_step
                run_start = np.where(changed, el_now[:, None], run_start)
                last = codes
                extra[:, 0, 2:n_runs] = torch.as_tensor((el_now[:, None] - run_start) / run_scale, dtype=torch.float32)
            extra[:, 0, n_runs:] = torch.as_tensor(model._phases(t_now), dtype=torch.float32)
            t_prev = t_now
    return y_out, t_out


def _one_block(y: np.ndarray, i: int, nb: int) -> np.ndarray:
    out = np.full_like(y, np.nan)
    out[:, i] = y[:, i]
    return out


def _event_mask(hit: np.ndarray, j: int, event: _Event, lengths: np.ndarray) -> np.ndarray:
    """Rows that still need the event and are inside its window; value: steps left including this one."""
    window = np.minimum(event.within, lengths)
    left = window - j
    return np.where(~hit & (left >= 1), left, 0)


def _is_event(v: np.ndarray, event: _Event) -> np.ndarray:
    if event.code is not None:
        return v == event.code
    return (v >= event.lo) & (v <= event.hi)


def _draw(
    b: dict[str, Any], par: np.ndarray, k: int, rng: np.random.Generator, event: _Event | None, left: np.ndarray | None
) -> np.ndarray:
    """One value per row of a block from its parameters; rows with ``left > 0`` are steered to the event."""
    n = len(par)
    if b["kind"] == "cat":
        logits = par - par.max(1, keepdims=True)
        prob = np.exp(logits)
        prob /= prob.sum(1, keepdims=True)
        if event is not None and left is not None:
            need = left > 0
            p = prob[:, event.code]
            force = need & (rng.random(n) < _hit_probability(p, left))
            prob = prob.copy()
            avoid = need & ~force
            prob[avoid, event.code] = 0.0
            sums = prob[avoid].sum(1, keepdims=True)
            bad = (sums[:, 0] <= 0) if avoid.any() else np.zeros(0, bool)
            prob[avoid] = np.where(sums > 0, prob[avoid] / np.where(sums > 0, sums, 1.0), 0)
            if avoid.any() and bad.any():  # the model puts all its mass on the event: take it
                force[np.flatnonzero(avoid)[bad]] = True
            prob[force] = 0.0
            prob[force, event.code] = 1.0
        u = rng.random((n, 1))
        return np.minimum((prob.cumsum(1) < u).sum(1), prob.shape[1] - 1).astype("float64")
    miss = b.get("missing", False)
    out = np.full(n, np.nan)
    observed = np.ones(n, dtype=bool)
    if miss:
        p_miss = special.expit(par[:, 0])
        observed = rng.random(n) >= p_miss
        par = par[:, 1:]
    w = par[:, :k] - par[:, :k].max(1, keepdims=True)
    w = np.exp(w)
    w /= w.sum(1, keepdims=True)
    mu = par[:, k : 2 * k]
    sd = np.exp(np.clip(par[:, 2 * k : 3 * k], *_LOGSTD))
    if event is not None and left is not None and (left > 0).any():
        need = left > 0
        a = (event.lo - mu) / sd
        bb = (event.hi - mu) / sd
        inside = np.clip(special.ndtr(bb) - special.ndtr(a), 0, 1)
        p = (w * inside).sum(1)
        if miss:
            p = p * (1 - p_miss)
        force = need & (rng.random(n) < _hit_probability(p, left))
        # forced rows: observed, a component by its in-range mass, then a truncated normal draw
        rows = np.flatnonzero(force)
        if len(rows):
            wi = w[rows] * inside[rows] + 1e-300
            comp = _choose(wi / wi.sum(1, keepdims=True), rng)
            out[rows] = _truncnorm(a[rows, comp], bb[rows, comp], mu[rows, comp], sd[rows, comp], rng)
            observed[rows] = True
        # avoiding rows: a component by its out-of-range mass, then the side, then a truncated draw
        rows = np.flatnonzero(need & ~force & observed)
        if len(rows):
            below, above = special.ndtr(a[rows]), special.ndtr(-bb[rows])
            wo = w[rows] * (below + above) + 1e-300
            comp = _choose(wo / wo.sum(1, keepdims=True), rng)
            r = np.arange(len(rows))
            lo_side = rng.random(len(rows)) * (below[r, comp] + above[r, comp]) < below[r, comp]
            aa = np.where(lo_side, -np.inf, bb[rows, comp])
            bbb = np.where(lo_side, a[rows, comp], np.inf)
            out[rows] = _truncnorm(aa, bbb, mu[rows, comp], sd[rows, comp], rng)
        todo = ~need & observed
    else:
        todo = observed
    rows = np.flatnonzero(todo)
    if len(rows):
        comp = _choose(w[rows], rng)
        out[rows] = mu[rows, comp] + sd[rows, comp] * rng.standard_normal(len(rows))
    return out


def _hit_probability(p: np.ndarray, left: np.ndarray) -> np.ndarray:
    """``q = p / (1 - (1 - p)^left)``: the chance that the first event of ``left`` steps (constant hazard ``p``)
    is now; ``1 / left`` when ``p`` is 0, 1 when ``left`` is 1."""
    left = np.maximum(left, 1).astype("float64")
    p = np.clip(p, 0.0, 1.0)
    denom = -np.expm1(left * np.log1p(-np.minimum(p, 1 - 1e-12)))
    q = np.where(p > 1e-12, p / np.maximum(denom, 1e-300), 1.0 / left)
    return np.where(left <= 1, 1.0, np.clip(q, 0.0, 1.0))


def _choose(prob: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    u = rng.random((len(prob), 1))
    return np.minimum((prob.cumsum(1) < u).sum(1), prob.shape[1] - 1)


def _truncnorm(a, b, mu, sd, rng: np.random.Generator) -> np.ndarray:
    """Normal(mu, sd) truncated to standardised bounds [a, b] (scipy handles far tails stably)."""
    if len(np.atleast_1d(a)) == 0:
        return np.zeros(0)
    return stats.truncnorm.rvs(a, b, loc=mu, scale=sd, random_state=rng)


# =========================================================================================== twins
class Twin:
    """A digital twin: the population model fine-tuned on one entity's history.

    Made by :meth:`SequenceModel.personalize`; saved with :meth:`save` and reloaded with :func:`twinforge.load`.

    Attributes
    ----------
    entity : scalar
        The entity's key.
    history : DataFrame
        The rows it was personalised on.
    static : dict
        Its static attributes.
    """

    def __init__(self) -> None:  # use SequenceModel.personalize
        pass

    @classmethod
    def _new(cls, model, net, entity, static_row, frame, times, y, z, info) -> Twin:
        twin = cls()
        twin.model_ = copy.copy(model)
        twin.model_.net_ = net
        twin.entity = entity
        twin.static_row_ = static_row.reset_index(drop=True)
        lay = model.layout_
        keep = [
            c
            for c in [lay["entity_key"], lay["time_key"], *lay["static_columns"], *lay["channels"]]
            if c in frame.columns
        ]
        twin.history = frame[keep].reset_index(drop=True)
        twin.times_ = np.asarray(times, dtype="float64")
        twin.y_ = y
        twin.z_ = np.asarray(z, dtype="float64")
        twin.info_ = info
        twin.offset_ = np.zeros(len(model.encoding_.blocks))
        twin.z_draws_ = twin.z_weights_ = None
        return twin

    @property
    def static(self) -> dict[str, Any]:
        return {c: _json_scalar(self.static_row_[c].iloc[0]) for c in self.static_row_.columns}

    def __repr__(self) -> str:
        return f"Twin(entity={self.entity!r}, steps={len(self.y_)}, static={self.static})"

    # ------------------------------------------------------------------------------------ generation
    def forecast(
        self, horizon: int, paths: int = 100, *, seed: int | None = None, event: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        """``paths`` probabilistic continuations of the history, ``horizon`` steps each, as one long table.

        Columns: the entity key, ``path`` (0..paths-1), the time (continuing the history's spacing) and the
        channels. ``event={"column": c, "value": v, "within": H}`` makes every path contain ``c == v`` (for a
        numeric channel ``v`` may be a range ``(lo, hi)``) within its first ``H`` steps (default: the horizon).
        """
        horizon = _positive_int("horizon", horizon)
        paths = _positive_int("paths", paths)
        _check_seed(seed, "seed")
        m = self.model_
        rng = np.random.default_rng(m._seed_sequence(seed, stream=3))
        ev = _Event.parse(m, event, default_within=horizon, widen=0.5)
        _check_within(ev, horizon, "the horizon")
        cond = np.repeat(m.static_encoding_.encode(self.static_row_), paths, 0)
        z = self._latents(paths, rng)
        lengths = np.full(paths, horizon)
        y, times = _generate(m, m.net_, cond, z, {"y": self.y_, "times": self.times_}, lengths, None, rng, ev)
        y = self._shifted(y, ev)
        lay = m.layout_
        flat_y = y.reshape(paths * horizon, -1)
        out = {
            lay["entity_key"]: np.repeat(np.asarray([self.entity], dtype=object), paths * horizon),
            "path": np.repeat(np.arange(paths), horizon),
            lay["time_key"]: m._times_out(times.reshape(-1)),
        }
        out.update(m.encoding_.decode(flat_y, widen=0.5))
        frame = pd.DataFrame(out)
        frame[lay["entity_key"]] = self._key_series(len(frame))
        return frame[[lay["entity_key"], "path", lay["time_key"], *lay["channels"]]]

    def sample(
        self,
        n_sequences: int = 1,
        *,
        length: int | None = None,
        seed: int | None = None,
        event: dict[str, Any] | None = None,
    ) -> pd.DataFrame:
        """``n_sequences`` new sequences like this entity's, from its start (same attributes, its embedding).

        Columns: the entity key (this entity's), ``sequence`` (0..n_sequences-1), the time (from the history's
        start), the static attributes and the channels. ``length`` defaults to the history's length.
        """
        n_sequences = _positive_int("n_sequences", n_sequences)
        length = _positive_int("length", len(self.y_) if length is None else length)
        _check_seed(seed, "seed")
        m = self.model_
        rng = np.random.default_rng(m._seed_sequence(seed, stream=4))
        ev = _Event.parse(m, event, default_within=length)
        _check_within(ev, length, "the length")
        cond = np.repeat(m.static_encoding_.encode(self.static_row_), n_sequences, 0)
        z = self._latents(n_sequences, rng)
        lengths = np.full(n_sequences, length)
        t0 = np.full(n_sequences, self.times_[0])
        y, times = _generate(m, m.net_, cond, z, None, lengths, t0, rng, ev)
        y = self._shifted(y, ev)
        lay = m.layout_
        out = {
            lay["entity_key"]: self._key_series(n_sequences * length),
            "sequence": np.repeat(np.arange(n_sequences), length),
            lay["time_key"]: m._times_out(times.reshape(-1)),
        }
        for c in lay["static_columns"]:
            out[c] = pd.concat([self.static_row_[c]] * (n_sequences * length), ignore_index=True)
        out.update(m.encoding_.decode(y.reshape(n_sequences * length, -1)))
        # the data's column order, as the population model's sample and the twin's forecast give it
        order = [lay["entity_key"], "sequence", lay["time_key"], *lay["static_columns"], *lay["channels"]]
        return pd.DataFrame(out)[order]

    def _latents(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """One entity latent per path: the twin's own, or draws from its posterior (``personalize(posterior=True)``)."""
        if getattr(self, "z_draws_", None) is None:
            return np.repeat(self.z_[None], n, 0)
        return self.z_draws_[rng.choice(len(self.z_weights_), n, p=self.z_weights_)]

    def _shifted(self, y: np.ndarray, event: _Event | None) -> np.ndarray:
        """Generated targets plus the twin's level offset (not on an event's channel: its range stays exact)."""
        offset = self.offset_.copy()
        if event is not None:
            offset[event.block] = 0.0
        if not offset.any():
            return y
        return y + offset

    def _key_series(self, n: int) -> pd.Series:
        dtype = self.model_.layout_["entity_dtype"]
        values = [self.entity] * n
        try:
            return pd.Series(values, dtype=dtype if dtype != "category" else "object")
        except (TypeError, ValueError):
            return pd.Series(values, dtype="object")

    # ------------------------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike, *, overwrite: bool = False) -> None:
        """Save to directory ``path``; reload with :func:`twinforge.load`."""
        doc = self.model_._document()
        doc["twin"] = {
            "entity": self.entity,
            "static": {c: _cell_state(self.static_row_[c]) for c in self.static_row_.columns},
            "history": {c: _cell_state(self.history[c]) for c in self.history.columns},
            "times": self.times_,
            "y": self.y_,
            "z": self.z_,
            "offset": self.offset_,
            "z_draws": getattr(self, "z_draws_", None),
            "z_weights": getattr(self, "z_weights_", None),
            "info": self.info_,
        }
        save_model_dir(path, doc, overwrite=overwrite)

    @classmethod
    def _from_state(cls, model: SequenceModel, st: dict[str, Any]) -> Twin:
        twin = cls()
        twin.model_ = model
        twin.entity = st["entity"]
        twin.static_row_ = pd.DataFrame({c: _cell_restore(v) for c, v in st["static"].items()})
        if twin.static_row_.shape[1] == 0:
            twin.static_row_ = pd.DataFrame(index=[0])
        twin.history = pd.DataFrame({c: _cell_restore(v) for c, v in st["history"].items()})
        twin.times_ = np.asarray(st["times"], dtype="float64")
        twin.y_ = np.asarray(st["y"], dtype="float64")
        twin.z_ = np.asarray(st["z"], dtype="float64")
        twin.info_ = st["info"]
        twin.offset_ = np.asarray(st.get("offset", np.zeros(len(model.encoding_.blocks))), dtype="float64")
        draws, weights = st.get("z_draws"), st.get("z_weights")
        twin.z_draws_ = None if draws is None else np.asarray(draws, dtype="float64").reshape(len(weights), -1)
        twin.z_weights_ = None if weights is None else np.asarray(weights, dtype="float64")
        return twin


def _cell_state(s: pd.Series) -> dict[str, Any]:
    """A column as JSON-able values plus its dtype (datetimes as ISO text)."""
    dtype = str(s.dtype)
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        values = [None if pd.isna(v) else v.isoformat() for v in s]
    elif isinstance(s.dtype, pd.CategoricalDtype):
        return {
            "dtype": "category",
            "values": [None if pd.isna(v) else _json_scalar(v) for v in s],
            "categories": [_json_scalar(v) for v in s.cat.categories],
        }
    else:
        values = [None if (v is None or (not isinstance(v, str) and pd.isna(v))) else _json_scalar(v) for v in s]
    return {"dtype": dtype, "values": values}


def _cell_restore(st: dict[str, Any]) -> pd.Series:
    if st["dtype"] == "category":
        return pd.Series(pd.Categorical(st["values"], categories=st["categories"]))
    values = st["values"]
    try:
        if st["dtype"].startswith("datetime64"):
            return pd.Series(pd.to_datetime(values)).astype(st["dtype"])
        return pd.Series(values).astype(st["dtype"])
    except (TypeError, ValueError):
        return pd.Series(values, dtype="object")
