"""Flower's ClientApp and ServerApp for twinforge, and the in-process simulation that runs them.

The server (:func:`run_server`, the body of the ServerApp's ``@app.main()``):

1. asks every site for stage-1 statistics (a ``query`` message carrying the agreed metadata); a site whose
   columns or kinds differ replies with an error naming them and takes no further part;
2. asks for stage-2 statistics on the grids it derived (see ``_stats``), builds the agreed transform and the
   model's encoding and initial network from the proxy table;
3. runs Flower's FedAvg or FedProx (wrapped in Flower's ``DifferentialPrivacyClientSideFixedClipping`` with
   ``dp="central"``; with ``dp="local"`` each site trains with DP-SGD instead, see ``_localdp``) for ``rounds`` rounds;
   after each round the global weights go to a checkpoint next to the output, so
   a restarted server resumes from its last round;
4. saves the global model as an ordinary twinforge model directory, with a ``federated`` section (sites, rounds,
   strategy, bytes, and the privacy budget spent) in its ``fit_info``.

The client (``ClientApp``) answers the two statistics queries and, for ``train`` messages, rebuilds the model
from the header the server sends, loads the global weights, trains ``local-epochs`` epochs on its own rows and
returns the new weights and its number of rows. Its data path comes from the node config (``data-path``).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from twinforge.errors import DataError, MetadataError, ParameterError
from twinforge.federated import _sequence, _stats
from twinforge.federated._adapters import get_adapter, get_weights, proximal, set_weights
from twinforge.federated._localdp import LocalDP
from twinforge.io import _join_arrays, _split_arrays, read_table
from twinforge.metadata import Metadata

__all__ = ["FederatedSettings", "LocalGrid", "make_client_app", "make_server_app", "run_server", "simulate"]

log = logging.getLogger("twinforge.federated")

_SCHEMA_ERROR = 4001  # Error.code of a site refusing the agreed schema


@dataclass
class FederatedSettings:
    """What the server decides for everyone (sent to the sites as needed).

    Parameters
    ----------
    model : str
        ``auto``, ``tvae``, ``ctgan``, ``ddpm`` or ``sequence`` (per-entity time series; see ``sequence``).
    params : dict
        The model's parameters (as for ``twinforge.create``); training-length ones are ignored.
    rounds, local_epochs : int
        Federated rounds, and local epochs per site per round.
    strategy : str
        ``fedavg``; ``fedprox`` (for non-IID sites; ``proximal_mu`` is its mu); or ``fedavgm`` (FedAvg with
        server momentum ``server_momentum``, Hsu et al. 2019; not with ``dp="central"``, whose accounted
        wrapper needs FedAvg's plain average).
    min_sites : int
        Sites needed before training starts (and per round).
    round_timeout : float
        Seconds a round waits for replies; a site that has not answered by then is left out of that round.
    dp : str or bool
        Differential privacy. ``"central"`` (or True): DP-FedAvg, site-level DP: noisy statistics with a count
        threshold, client-side clipping and central Gaussian noise on the averaged update (``noise_multiplier``,
        ``clipping_norm``), accounted at ``delta``. ``"local"``: sample-level DP on each site, ``(epsilon,
        delta)`` with respect to that site's rows: DP statistics and DP-SGD (Opacus) on every local step (see
        ``_localdp``); the server never sees an un-noised release. With ``model="sequence"`` the unit is a whole
        entity (see ``_sequence.train_site_private``). ``"none"`` (or False): no DP.
    epsilon : float, optional
        ``dp="local"`` only: each site's budget.
    stats_share : float
        ``dp="local"``: the share of epsilon the agreed statistics take (the rest trains the network).
    sequence : dict, optional
        ``model="sequence"``: the long table's roles, ``{"entity_key": ..., "time_key": ..., "static": [...]}``
        (keys default to the metadata's ``entity_key``/``time_index``; static columns are constant within an
        entity). Each site holds whole entities.
    lr_decay : float, optional
        The sites' learning rate in the last round, as a share of the model's: it falls along a cosine over the
        rounds (1: constant). Default 0.1 without DP (a central fit lowers its step size when its validation loss
        stalls; without it the global model keeps the noise of the last local steps) and 1 with DP (noisy
        updates need every step they can take: on churn with local DP at epsilon 3, column pair trends fell from
        0.85 to 0.74 with the decay).
    """

    model: str = "auto"
    params: dict[str, Any] = field(default_factory=dict)
    rounds: int = 10
    local_epochs: int = 1
    strategy: str = "fedavg"
    proximal_mu: float = 0.01
    server_momentum: float = 0.9
    min_sites: int = 2
    round_timeout: float = 600.0
    wait_sites_seconds: float = 120.0
    seed: int | None = 0
    metadata: dict[str, Any] | None = None
    sequence: dict[str, Any] | None = None
    dp: bool | str = False
    epsilon: float | None = None
    stats_share: float = 0.25
    lr_decay: float | None = None
    noise_multiplier: float = 1.0
    clipping_norm: float = 1.0
    stats_noise_multiplier: float = 2.0
    count_threshold: float | None = None
    delta: float = 1e-5
    out: str = ""
    overwrite: bool = False

    @property
    def dp_mode(self) -> str:
        """``"none"``, ``"central"`` or ``"local"``."""
        modes = {False: "none", None: "none", True: "central", "none": "none", "central": "central", "local": "local"}
        if isinstance(self.dp, (bool, str)) and self.dp in modes:
            return modes[self.dp]
        raise ParameterError(f"dp must be 'none', 'central' or 'local', got {self.dp!r}")

    @property
    def dp_on(self) -> bool:
        return self.dp_mode != "none"

    @property
    def lr_final(self) -> float:
        """``lr_decay``, or its default: 0.1 without DP, 1 with it."""
        if self.lr_decay is not None:
            return float(self.lr_decay)
        return 1.0 if self.dp_on else 0.1

    def check(self) -> None:
        get_adapter(self.model)
        mode = self.dp_mode
        if self.model == "sequence":
            self._check_sequence(mode)
        elif self.sequence is not None:
            raise ParameterError(
                f"--entity-key/--time-key/--static describe per-entity time series: use them with --model sequence, "
                f"not {self.model!r}"
            )
        if mode == "local":
            from twinforge.federated._adapters import LOCAL_DP_MODELS
            from twinforge.privacy import check_budget

            if self.epsilon is None:
                raise ParameterError("--dp local needs --epsilon: each site's budget (1 is strong, 10 is weak)")
            check_budget(self.epsilon, self.delta)
            if not 0 < self.stats_share < 1:
                raise ParameterError(f"--stats-share must be in (0, 1) for --dp local, got {self.stats_share!r}")
            if self.model not in LOCAL_DP_MODELS:
                raise ParameterError(
                    f"--dp local trains with DP-SGD on each site, which federated {self.model!r} does not do yet; "
                    f"use --model {' or '.join(LOCAL_DP_MODELS)}, or --dp central"
                )
            if self.strategy != "fedavg":
                raise ParameterError("--dp local works with --strategy fedavg (DP-SGD replaces FedProx's gradient)")
        elif self.epsilon is not None:
            raise ParameterError(
                f"--epsilon {self.epsilon!r} sets the budget of --dp local; --dp {mode} does not take one "
                "(--dp central is set by --noise-multiplier)"
            )
        for name in ("rounds", "local_epochs", "min_sites"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ParameterError(f"{name} must be a positive integer, got {v!r}")
        if self.strategy not in ("fedavg", "fedprox", "fedavgm"):
            raise ParameterError(f"strategy must be 'fedavg', 'fedprox' or 'fedavgm', got {self.strategy!r}")
        if self.strategy == "fedavgm" and mode == "central":
            raise ParameterError(
                "--strategy fedavgm cannot run with --dp central (Flower's accounted DP wrapper needs FedAvg's plain "
                "average): use --strategy fedavg or fedprox"
            )
        m = self.server_momentum
        if isinstance(m, bool) or not isinstance(m, (int, float)) or not 0 <= m < 1:
            raise ParameterError(f"server_momentum must be in [0, 1), got {m!r}")
        for name in ("round_timeout", "noise_multiplier", "clipping_norm", "stats_noise_multiplier"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not v > 0:
                raise ParameterError(f"{name} must be a positive number, got {v!r}")
        if not 0 < self.delta < 1:
            raise ParameterError(f"delta must be in (0, 1), got {self.delta!r}")
        v = self.lr_decay
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v <= 1):
            raise ParameterError(f"lr_decay must be in (0, 1], got {v!r}")
        if not self.out:
            raise ParameterError("out (the model directory to write) is required")
        if self.metadata is None:
            raise ParameterError("metadata (the agreed schema) is required: write one with `twinforge metadata`")

    def _check_sequence(self, mode: str) -> None:
        from twinforge.federated._sequence import SequenceSpec, check_entity_dp

        if mode == "central":
            raise ParameterError(
                "--dp central is not available for --model sequence: its statistics would be accounted per step, "
                "while a time series' unit of privacy is a whole entity; use --dp local (entity-level DP on each "
                "site) or no --dp"
            )
        if self.metadata is None:
            return  # reported below
        seq = dict(self.sequence or {})
        unknown = sorted(set(seq) - {"entity_key", "time_key", "static"})
        if unknown:
            raise ParameterError(f"sequence settings {unknown} are unknown: use entity_key, time_key, static")
        meta = Metadata.from_dict(self.metadata)
        spec = SequenceSpec.resolve(meta, seq.get("entity_key"), seq.get("time_key"), seq.get("static"))
        self.sequence = dict(spec)
        if mode == "local":
            check_entity_dp(meta, spec, self.params)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> FederatedSettings:
        return cls(**json.loads(text))

    def fingerprint(self) -> str:
        """What a checkpoint must share with these settings to be resumed."""
        keep = {k: v for k, v in asdict(self).items() if k not in ("rounds", "round_timeout", "wait_sites_seconds")}
        keep.pop("overwrite")
        return hashlib.sha256(json.dumps(keep, sort_keys=True).encode()).hexdigest()[:16]

    @property
    def stats_releases(self) -> int:
        """Statistics releases of a site under local DP: two stages, and the sequence model's embedding sums."""
        return 3 if self.model == "sequence" else 2

    def stats_noise(self) -> float:
        """``dp="local"``: the noise multiplier of every statistics release."""
        from twinforge.federated._localdp import stats_noise

        return stats_noise(float(self.epsilon), self.delta, self.stats_share, self.stats_releases)

    def sensitivity(self, metadata: Metadata) -> float:
        """L2 sensitivity of one statistics stage to one unit: a row, or (sequence model) a whole entity."""
        if self.model == "sequence" and self.sequence is not None:
            return _sequence.stats_sensitivity(metadata, _sequence.SequenceSpec(self.sequence))
        return _stats.stats_sensitivity(metadata)

    def discrete_columns(self, metadata: Metadata) -> int:
        if self.model == "sequence" and self.sequence is not None:
            steps, ents = _sequence.SequenceSpec(self.sequence).tables_metadata(metadata)
            return sum(s.kind in _stats._DISCRETE for m in (steps, ents) for s in m.columns.values())
        return sum(s.kind in _stats._DISCRETE for s in metadata.columns.values())

    def stats_sigma(self, metadata: Metadata) -> float:
        if self.dp_mode == "local":
            return self.stats_noise() * self.sensitivity(metadata)
        return self.stats_noise_multiplier * self.sensitivity(metadata) if self.dp_on else 0.0

    def level_threshold(self, metadata: Metadata) -> float:
        """``dp="local"``: a site names a category level only if its noisy count passes this (0: always)."""
        if self.dp_mode != "local":
            return 0.0
        from twinforge.federated._localdp import level_threshold

        return level_threshold(self.stats_sigma(metadata), self.delta, self.discrete_columns(metadata))

    def threshold(self, metadata: Metadata, n_sites: int = 1) -> float:
        """Merged counts below this are noise: 4.5 standard deviations of the summed noise of ``n_sites`` sites.

        Over the few thousand bins and levels of a table, a count that is really zero passes it with probability
        about 0.02 in all.
        """
        if self.count_threshold is not None:
            return float(self.count_threshold)
        return 4.5 * self.stats_sigma(metadata) * float(np.sqrt(n_sites)) if self.dp_on else 0.0


# ======================================================================================== client side
def _site_data(context: Any) -> tuple[pd.DataFrame, str]:
    cfg = context.node_config
    if "data-key" in cfg:  # in-process simulation: the frame is held in memory
        return _SIM_DATA[str(cfg["data-key"])], str(cfg.get("site-name", cfg["data-key"]))
    if "data-path" not in cfg:
        raise ParameterError("this SuperNode has no data: start it with --node-config \"data-path='local.csv'\"")
    path = str(cfg["data-path"])
    return read_table(path), str(cfg.get("site-name", os.path.basename(path)))


_SIM_DATA: dict[str, pd.DataFrame] = {}
_FAULTS: dict[str, Callable[[str, int], None]] = {}  # simulation only: site -> hook(stage, round) (tests)


def _reply_error(msg: Any, code: int, reason: str) -> Any:
    from flwr.app import Error, Message

    return Message(Error(code=code, reason=reason), reply_to=msg)


def _local_arrays(model: Any, df: pd.DataFrame) -> tuple[dict[str, np.ndarray], int]:
    """The site's rows as the agreed transform's arrays; levels the agreement dropped (rare ones) become missing."""
    tt = model.transformer_
    df = df.copy()
    unseen = 0
    for name in tt.learned:
        t = tt.transforms_[name]
        if hasattr(t, "levels_"):
            known = pd.Series(t.levels_, dtype=object)
            bad = df[name].notna() & ~df[name].astype(object).isin(known)
            unseen += int(bad.sum())
            if bad.any():
                df[name] = df[name].astype(object).where(~bad, None)
    return tt.transform(df), unseen


def _decode_header(config: Any) -> dict[str, Any]:
    body = json.loads(str(config["header"]))
    blob = base64.b64decode(str(config["header-arrays"]))
    with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
        arrays = {k: npz[f"a{i}"] for i, k in enumerate(body.pop("__keys__"))}
    return _join_arrays(body, arrays)


def _encode_header(document: dict[str, Any]) -> tuple[str, str]:
    arrays: dict[str, np.ndarray] = {}
    body = _split_arrays(document, arrays, "")
    body["__keys__"] = list(arrays)
    buf = io.BytesIO()
    np.savez_compressed(buf, **{f"a{i}": a for i, a in enumerate(arrays.values())})
    return json.dumps(body), base64.b64encode(buf.getvalue()).decode()


def _model_from_header(doc: dict[str, Any], weights: dict[str, np.ndarray]) -> Any:
    """The model a header describes, its networks holding ``weights`` (``module/parameter`` arrays)."""
    from twinforge.models._registry import get_class

    if doc["model"] == "sequence":
        return _sequence.model_from_header(doc, weights)
    from twinforge.transforms import TableTransformer

    doc = dict(doc, state=dict(doc["state"]))
    for module, key in get_adapter(doc["model"]).state_keys.items():
        prefix = f"{module}/"
        doc["state"][key] = {k[len(prefix) :]: v for k, v in weights.items() if k.startswith(prefix)}
    cls = get_class(doc["model"])
    model = cls(**doc["params"])
    model.metadata_ = Metadata.from_dict(doc["metadata"])
    model.transformer_ = TableTransformer.from_state(doc["transformer"])
    model.fit_info_ = doc.get("fit_info", {})
    model._restore_state(doc["state"])
    return model


def make_client_app() -> Any:
    """The ClientApp every site runs (Flower Message API: ``@app.query()`` and ``@app.train()``)."""
    from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict
    from flwr.clientapp import ClientApp
    from flwr.clientapp.mod import fixedclipping_mod

    app = ClientApp()

    def maybe_clip(msg: Message, context: Any, call_next: Any) -> Message:
        # Flower's client-side fixed clipping, when the server's DP wrapper asks for it (it sends the norm)
        config = next(iter(msg.content.config_records.values()), {})
        if "clipping_norm" in config:
            return fixedclipping_mod(msg, context, call_next)
        return call_next(msg, context)

    @app.query("stats1")
    def stats1(msg: Message, context: Any) -> Message:
        cfg = msg.content["config"]
        df, site = _site_data(context)
        _fault(site, "stats1", 0)
        meta = Metadata.from_dict(json.loads(str(cfg["metadata"])))
        spec = _sequence_spec(cfg)
        try:
            if spec is None:
                _stats.check_schema(df, meta, site=f"site {site!r}")
            else:
                _sequence.check_site(df, meta, spec, site=f"site {site!r}")
        except MetadataError as exc:
            return _reply_error(msg, _SCHEMA_ERROR, str(exc))
        seed = int(cfg["seed"]) if int(cfg["seed"]) >= 0 else None
        # the unit of privacy: a row, or a whole entity of a time series
        units, unit = (len(df), "rows") if spec is None else (int(df[spec["entity_key"]].nunique()), "entities")
        if "delta" in cfg and float(cfg["delta"]) >= 1.0 / max(units, 1):
            return _reply_error(
                msg,
                _SCHEMA_ERROR,
                f"site {site!r}: delta={float(cfg['delta']):g} is >= 1/n for its {units} {unit}; "
                f"use --delta <= {0.1 / max(units, 1):.3g}",
            )
        args = (float(cfg["sigma"]), _site_seed(seed, site, 1), float(cfg.get("level-threshold", 0.0)))
        stats = _stats.site_stage1(df, meta, *args) if spec is None else _sequence.site_stage1(df, meta, spec, *args)
        return Message(RecordDict({"stats": ConfigRecord({"json": json.dumps(stats)})}), reply_to=msg)

    @app.query("stats2")
    def stats2(msg: Message, context: Any) -> Message:
        cfg = msg.content["config"]
        df, site = _site_data(context)
        plan = json.loads(str(cfg["plan"]))
        seed = int(cfg["seed"]) if int(cfg["seed"]) >= 0 else None
        spec = _sequence_spec(cfg)
        if spec is None:
            stats = _stats.site_stage2(df, plan, float(cfg["sigma"]), _site_seed(seed, site, 2))
        else:
            meta = Metadata.from_dict(json.loads(str(cfg["metadata"])))
            stats = _sequence.site_stage2(df, meta, spec, plan, float(cfg["sigma"]), _site_seed(seed, site, 2))
        return Message(RecordDict({"stats": ConfigRecord({"json": json.dumps(stats)})}), reply_to=msg)

    @app.train(mods=[maybe_clip])
    def train(msg: Message, context: Any) -> Message:
        cfg = msg.content["config"]
        df, site = _site_data(context)
        server_round = int(cfg.get("server-round", 0) or msg.metadata.group_id or 0)
        _fault(site, "train", server_round)
        doc = _decode_header(cfg)
        try:  # a site that joined after the statistics (or rejoined after a restart) was never checked
            meta = Metadata.from_dict(doc["metadata"])
            if doc["model"] == "sequence":
                _sequence.check_site(df, meta, _sequence.SequenceSpec(doc["sequence"]), site=f"site {site!r}")
            else:
                _stats.check_schema(df, meta, site=f"site {site!r}")
        except MetadataError as exc:
            return _reply_error(msg, _SCHEMA_ERROR, str(exc))
        weights = {k: v.numpy() for k, v in msg.content["arrays"].items()}
        model = _model_from_header(doc, weights)
        adapter = get_adapter(doc["model"])
        seed = int(cfg["seed"]) if int(cfg["seed"]) >= 0 else None
        rng = np.random.default_rng(_site_seed(seed, site, 100 + server_round))
        mu = float(cfg.get("proximal-mu", 0.0))
        model.learning_rate = float(model.learning_rate) * _lr_scale(cfg, server_round)
        if doc["model"] == "sequence":
            model.static_model_.learning_rate = float(model.static_model_.learning_rate) * _lr_scale(cfg, server_round)
            spec = _sequence.SequenceSpec(doc["sequence"])
            local_dp = LocalDP.from_config(cfg, server_round)
            if local_dp is None:
                metrics, n = _sequence.train_site(
                    model,
                    df,
                    spec,
                    int(cfg["local-epochs"]),
                    rng,
                    context.state,
                    mu,
                    adapter.modules,
                    int(cfg["rounds"]),
                )
                record = {"num-examples": n, "loss": float(metrics["loss"])}
            else:  # entity-level DP-SGD: only what the site has spent is sent, with equal weights
                metrics, _ = _sequence.train_site_private(
                    model, df, spec, int(cfg["local-epochs"]), rng, context.state, local_dp
                )
                record = {"num-examples": 1, **{k: float(v) for k, v in metrics.items() if k.startswith("dp-")}}
            weights = get_weights(adapter.modules(model))
            reply = RecordDict(
                {
                    "arrays": ArrayRecord({k: _array(v) for k, v in weights.items()}),
                    "metrics": MetricRecord(record),
                }
            )
            if local_dp is not None:  # its ledger is shown under the site's name (a node id changes on restart)
                reply["site"] = ConfigRecord({"name": site})
            return Message(reply, reply_to=msg)
        modules = adapter.modules(model)
        set_weights(modules, weights)
        arrays, unseen = _local_arrays(model, df)
        local_dp = LocalDP.from_config(cfg, server_round)
        with proximal(modules, mu):
            if local_dp is None:
                steps = int(cfg["local-steps"]) if "local-steps" in cfg else None  # equal local steps per site
                metrics = adapter.train(model, arrays, int(cfg["local-epochs"]), rng, steps=steps)
            else:
                metrics = adapter.train(model, arrays, int(cfg["local-epochs"]), rng, dp=local_dp)
        weights = get_weights(modules)
        # with DP the server needs equal weights (and a site's size is not published)
        n = 1 if bool(cfg.get("dp", False)) else len(df)
        record = {"num-examples": n, "loss": float(metrics["loss"]), "unseen-levels": unseen}
        if local_dp is not None:  # the loss and the count of unseen levels are not noised: not sent
            record = {"num-examples": n, **{k: float(v) for k, v in metrics.items() if k.startswith("dp-")}}
        reply = RecordDict(
            {
                "arrays": ArrayRecord({k: _array(v) for k, v in weights.items()}),
                "metrics": MetricRecord(record),
            }
        )
        if local_dp is not None:  # its ledger is shown under the site's name (a node id changes on restart)
            reply["site"] = ConfigRecord({"name": site})
        return Message(reply, reply_to=msg)

    @app.query("seqz")
    def seqz(msg: Message, context: Any) -> Message:
        # after the last round (sequence model): the site's entity embeddings fitted to the final network;
        # only their count, sum and sum of outer products leave the site
        cfg = msg.content["config"]
        df, site = _site_data(context)
        doc = _decode_header(cfg)
        weights = {k: v.numpy() for k, v in msg.content["arrays"].items()}
        model = _model_from_header(doc, weights)
        seed = int(cfg["seed"]) if int(cfg["seed"]) >= 0 else None
        rng = np.random.default_rng(_site_seed(seed, site, 3))
        z_noise = float(cfg.get("z-noise", 0.0))  # local DP: the embedding sums are a Gaussian release
        moments = _sequence.site_z_moments(
            model, df, _sequence.SequenceSpec(doc["sequence"]), rng, context.state, z_noise
        )
        return Message(RecordDict({"stats": ConfigRecord({"json": json.dumps(moments)})}), reply_to=msg)

    return app


def _sequence_spec(cfg: Any) -> Any:
    """The sequence roles a statistics query carries (None: a table)."""
    if "sequence" not in cfg:
        return None
    return _sequence.SequenceSpec(json.loads(str(cfg["sequence"])))


def _lr_scale(cfg: Any, server_round: int) -> float:
    """The round's share of the model's learning rate: a cosine from 1 (first round) to ``lr-decay`` (last)."""
    final, rounds = float(cfg.get("lr-decay", 1.0)), int(cfg.get("rounds", 1))
    done = (int(cfg.get("first-round", 0)) + int(server_round) - 1) / max(rounds - 1, 1)
    return final + (1 - final) * 0.5 * (1 + float(np.cos(np.pi * min(max(done, 0.0), 1.0))))


def _array(v: np.ndarray) -> Any:
    from flwr.app import Array

    return Array(np.ascontiguousarray(v))


def _site_seed(seed: int | None, site: str, stage: int) -> int | None:
    if seed is None:
        return None
    return int.from_bytes(hashlib.sha256(f"{seed}/{site}/{stage}".encode()).digest()[:8], "little")


def _fault(site: str, stage: str, server_round: int) -> None:
    hook = _FAULTS.get(site)
    if hook is not None:
        hook(stage, server_round)


# ======================================================================================== server side
class _Recorder:
    """Counts the bytes of every message and, in tests, keeps the messages."""

    def __init__(self, keep: bool = False):
        self.keep = keep
        self.messages: list[tuple[str, Any]] = []
        self.bytes_by_stage: dict[str, int] = {}

    def add(self, direction: str, stage: str, msg: Any) -> None:
        size = 0 if msg.has_error() else sum(int(r.count_bytes()) for r in msg.content.values())
        self.bytes_by_stage[stage] = self.bytes_by_stage.get(stage, 0) + size
        if self.keep:
            self.messages.append((direction, msg))


class _CountingGrid:
    """Wraps a Flower Grid: every message out and every reply in goes through the recorder."""

    def __init__(self, grid: Any, recorder: _Recorder):
        self._grid, self._rec = grid, recorder
        self.stage = "setup"
        self.refused: set[int] = set()  # the sites that refused the schema at the statistics
        self.train_errors: list[str] = []
        self.site_privacy: dict[str, dict[str, float]] = {}  # local DP: node -> what that site reports spent
        self.min_sites, self.wait_seconds = 0, float("inf")  # rounds: how long to wait for too few sites
        self._short_since: float | None = None

    def get_node_ids(self) -> list[int]:
        """The connected sites that did not refuse the schema: one that joins later, or rejoins after a restart
        (a new node id), trains from the next round on (its train handler checks the schema)."""
        nodes = [n for n in self._grid.get_node_ids() if n not in self.refused]
        if len(nodes) >= self.min_sites:
            self._short_since = None
        else:  # Flower's strategies wait for min_available_nodes without a limit
            now = time.monotonic()
            self._short_since = self._short_since or now
            if now - self._short_since > self.wait_seconds:
                raise DataError(
                    f"only {len(nodes)} site(s) connected for {self.wait_seconds:g} s, {self.min_sites} needed per "
                    "round (--min-sites); the finished rounds are saved: start the sites again and run the same "
                    "server command to resume (or lower --min-sites)"
                )
        return nodes

    def __getattr__(self, name: str) -> Any:
        return getattr(self._grid, name)

    def send_and_receive(self, messages: Iterable[Any], *, timeout: float | None = None) -> Iterable[Any]:
        messages = list(messages)
        for m in messages:
            self._rec.add("out", self.stage, m)
        replies = list(self._grid.send_and_receive(messages, timeout=timeout))
        for r in replies:
            self._rec.add("in", self.stage, r)
            if self.stage == "train" and r.has_error():
                self.train_errors.append(f"node {r.metadata.src_node_id}: {r.error.reason}")
            if self.stage == "train" and not r.has_error() and "metrics" in r.content:
                metrics = r.content["metrics"]
                if "dp-epsilon" in metrics:
                    name = str(r.content["site"]["name"]) if "site" in r.content else None
                    self.site_privacy[name or f"node {r.metadata.src_node_id}"] = {
                        "epsilon": float(metrics["dp-epsilon"]),
                        "delta": float(metrics["dp-delta"]),
                        "noise_multiplier": float(metrics["dp-noise"]),
                    }
        return replies


def _wait_for_sites(grid: Any, settings: FederatedSettings) -> list[int]:
    deadline = time.monotonic() + settings.wait_sites_seconds
    while True:
        nodes = sorted(grid.get_node_ids())
        if len(nodes) >= settings.min_sites:
            return nodes
        if time.monotonic() > deadline:
            raise DataError(
                f"only {len(nodes)} site(s) connected within {settings.wait_sites_seconds:g} s, "
                f"{settings.min_sites} needed: start more clients or lower --min-sites"
            )
        time.sleep(0.5)


def _query(grid: Any, nodes: list[int], action: str, config: dict[str, Any], timeout: float) -> list[Any]:
    from flwr.app import ConfigRecord, Message, RecordDict

    msgs = [
        Message(RecordDict({"config": ConfigRecord(config)}), dst_node_id=n, message_type=f"query.{action}")
        for n in nodes
    ]
    return list(grid.send_and_receive(msgs, timeout=timeout))


def _stats_replies(replies: list[Any], stage: str) -> tuple[dict[int, dict[str, Any]], list[str]]:
    ok, refused = {}, []
    for r in replies:
        if r.has_error():
            node = r.metadata.src_node_id
            reason = r.error.reason or f"error code {r.error.code}"
            log.warning("site (node %s) refused at %s: %s", node, stage, reason)
            refused.append(reason)
            continue
        ok[r.metadata.src_node_id] = json.loads(str(r.content["stats"]["json"]))
    return ok, refused


def _checkpoint_dir(settings: FederatedSettings) -> Path:
    out = Path(settings.out)
    return out.with_name(f".{out.name}.federated-checkpoint")


def _save_checkpoint(settings: FederatedSettings, state: dict[str, Any], weights: dict[str, np.ndarray]) -> None:
    folder = _checkpoint_dir(settings)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    np.savez(tmp / "weights.npz", **{f"a{i}": v for i, v in enumerate(weights.values())})
    (tmp / "state.json").write_text(json.dumps({**state, "weight_keys": list(weights)}))
    old = folder.with_name(folder.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if folder.exists():
        os.replace(folder, old)
    os.replace(tmp, folder)
    shutil.rmtree(old, ignore_errors=True)


def checkpoint_round(settings: FederatedSettings) -> int | None:
    """The last finished round of a checkpoint these settings will resume from, or None (a fresh start)."""
    path = _checkpoint_dir(settings) / "state.json"
    if not path.is_file():
        return None
    state = json.loads(path.read_text())
    return int(state["round"]) if state.get("fingerprint") == settings.fingerprint() else None


def _load_checkpoint(settings: FederatedSettings) -> tuple[dict[str, Any], dict[str, np.ndarray]] | None:
    folder = _checkpoint_dir(settings)
    if not (folder / "state.json").is_file():
        return None
    state = json.loads((folder / "state.json").read_text())
    if state.get("fingerprint") != settings.fingerprint():
        log.warning("ignoring checkpoint %s: it was written with other settings", folder)
        return None
    with np.load(folder / "weights.npz") as npz:
        weights = {k: npz[f"a{i}"] for i, k in enumerate(state["weight_keys"])}
    return state, weights


def run_server(grid: Any, settings: FederatedSettings, recorder: _Recorder | None = None) -> Any:
    """The ServerApp's work (see the module docstring); returns the fitted global model, also saved to ``out``."""
    from flwr.app import ArrayRecord, ConfigRecord, MetricRecord
    from flwr.serverapp import GaussianPrivacyEvent, NeighboringRelation, PrivacyConfig, SamplingMethod
    from flwr.serverapp.strategy import DifferentialPrivacyClientSideFixedClipping, FedAvg, FedAvgM, FedProx

    from twinforge.federated._accountant import GaussianAccountant

    settings.check()
    out = Path(settings.out)
    if out.exists() and not settings.overwrite:
        raise ParameterError(f"{str(out)!r} already exists: choose another --out or pass --overwrite")
    recorder = recorder or _Recorder()
    grid = _CountingGrid(grid, recorder)
    meta = Metadata.from_dict(settings.metadata)
    adapter = get_adapter(settings.model)
    seed = -1 if settings.seed is None else int(settings.seed)
    start = time.perf_counter()
    nodes = connected = _wait_for_sites(grid, settings)
    resumed = _load_checkpoint(settings)

    spec = _sequence.SequenceSpec(settings.sequence) if settings.model == "sequence" else None
    seq_cfg = {} if spec is None else {"sequence": json.dumps(spec), "metadata": json.dumps(meta.to_dict())}
    if resumed is None:
        sigma = settings.stats_sigma(meta)
        grid.stage = "statistics"
        query1: dict[str, Any] = {"metadata": json.dumps(meta.to_dict()), "sigma": sigma, "seed": seed, **seq_cfg}
        if settings.dp_mode == "local":
            query1 |= {"delta": settings.delta, "level-threshold": settings.level_threshold(meta)}
        replies = _query(grid, nodes, "stats1", query1, settings.round_timeout)
        stage1, refused = _stats_replies(replies, "stats1")
        if len(stage1) < settings.min_sites:
            raise MetadataError(
                refused or [f"only {len(stage1)} site(s) answered, {settings.min_sites} needed"],
                header=f"too few sites match the agreed schema ({len(stage1)} of {len(nodes)})",
            )
        nodes = sorted(stage1)
        threshold = settings.threshold(meta, len(nodes))
        try:
            if spec is None:
                merged = _stats.merge_stage1([stage1[n] for n in nodes], meta, threshold, dp=settings.dp_on)
            else:
                merged = _sequence.merge_stage1([stage1[n] for n in nodes], meta, spec, threshold, settings.dp_on)
            replies = _query(
                grid,
                nodes,
                "stats2",
                {"plan": json.dumps(merged["plan"]), "sigma": sigma, "seed": seed, **seq_cfg},
                settings.round_timeout,
            )
            stage2, _ = _stats_replies(replies, "stats2")
            stage2_list = [stage2[n] for n in nodes if n in stage2]
            if spec is None:
                merged = _stats.merge_stage2(merged, stage2_list, threshold, dp=settings.dp_on)
                proxy = _stats.proxy_table(merged, meta)
            else:
                merged, proxy = _sequence.merge_stage2(merged, stage2_list, threshold, settings.dp_on), None
        except DataError as exc:
            if settings.dp_mode != "local":
                raise
            raise DataError(f"{exc}. {_budget_advice(settings, meta, [stage1[n]['n'] for n in nodes])}") from None
        rng = np.random.default_rng(None if settings.seed is None else [settings.seed, 7])
        if spec is not None:
            model = _sequence.build_model(settings, merged, meta, spec, rng)
            header = _sequence.header_document(model, spec)
        else:
            model = _new_model(settings)
            model.metadata_ = meta
            model.transformer_ = _stats.build_transformer(merged, meta, proxy)
            adapter.init(
                model, model.transformer_.transform(proxy), int(merged["n"]), rng, private=settings.dp_mode == "local"
            )
            model.fit_info_ = {}
            state = model._get_state()
            for key in adapter.state_keys.values():
                state[key] = None  # the weights travel as Flower arrays, not in the header
            header = {
                "model": model.name,
                "params": model.get_params(),
                "metadata": meta.to_dict(),
                "transformer": model.transformer_.get_state(),
                "state": state,
            }
        weights = get_weights(adapter.modules(model))
        done, history, accountant_state = 0, [], None
        stats_releases = 2 if settings.dp_mode == "central" else 0
        n_rows = float(merged["n"])
        _save_checkpoint(
            settings,
            {
                "fingerprint": settings.fingerprint(),
                "round": 0,
                "header": _encode_header(header),
                "history": [],
                "sites": len(nodes),
                "rows": n_rows,
                "stats_releases": stats_releases,
                "accountant": None,
                "site_privacy": {},
                "bytes": dict(recorder.bytes_by_stage),
                "merged": merged,
                "nodes": nodes,
            },
            weights,
        )
    else:
        state, weights = resumed
        header = _decode_header({"header": state["header"][0], "header-arrays": state["header"][1]})
        model = _model_from_header(header, weights)
        merged = state["merged"]
        proxy = _stats.proxy_table(merged, meta) if spec is None else None
        nodes = [n for n in nodes if n in set(state["nodes"])] or nodes
        done, history = int(state["round"]), list(state["history"])
        accountant_state, stats_releases, n_rows = state["accountant"], int(state["stats_releases"]), state["rows"]
        grid.site_privacy.update(state.get("site_privacy") or {})
        for k, v in state.get("bytes", {}).items():
            recorder.bytes_by_stage[k] = recorder.bytes_by_stage.get(k, 0) + v
        log.info("resuming from round %d of %d (checkpoint %s)", done, settings.rounds, _checkpoint_dir(settings))

    header_json, header_arrays = _encode_header(header)
    grid.refused = set(connected) - set(nodes) if resumed is None else set()
    grid.min_sites, grid.wait_seconds = settings.min_sites, settings.wait_sites_seconds
    n_sites = len(nodes) if resumed is None else int(resumed[0].get("sites", len(nodes)))  # as agreed
    if settings.strategy == "fedprox":
        base = FedProx(proximal_mu=settings.proximal_mu)
    elif settings.strategy == "fedavgm":
        base = FedAvgM(server_momentum=settings.server_momentum)
    else:
        base = FedAvg()
    for s in (base,):
        s.fraction_evaluate = 0.0
        s.min_evaluate_nodes = 0
        s.min_train_nodes = s.min_available_nodes = settings.min_sites
    strategy: Any = base
    accountant = None
    if settings.dp_mode == "central":
        config = PrivacyConfig(
            target_delta=settings.delta,
            population_size=max(n_sites, 1),
            neighboring_relation=NeighboringRelation.ADD_OR_REMOVE_ONE,
            sampling_method=SamplingMethod.NO_AMPLIFICATION,
        )
        accountant = GaussianAccountant(config)
        if accountant_state is not None:
            accountant.load_state_dict(accountant_state)
        elif stats_releases:
            z = settings.stats_noise_multiplier
            accountant.compose(
                GaussianPrivacyEvent(noise_multiplier=z, sample_size=n_sites, population_size=n_sites), stats_releases
            )
        strategy = (
            DifferentialPrivacyClientSideFixedClipping(
                base, settings.noise_multiplier, settings.clipping_norm, n_sites, accountant=accountant
            )
            if settings.strategy == "fedavg"
            else _dp_wrap_fedprox(base, settings, n_sites, accountant)
        )

    train_cfg: dict[str, Any] = {
        "header": header_json,
        "header-arrays": header_arrays,
        "local-epochs": int(settings.local_epochs),
        "seed": seed,
        "dp": settings.dp_on,
        "rounds": int(settings.rounds),
        "first-round": int(done),
        "lr-decay": settings.lr_final,
    }
    if settings.dp_mode != "local" and hasattr(adapter, "local_steps"):
        # every site takes the same number of local steps per round (see _adapters._EqualSteps)
        train_cfg["local-steps"] = adapter.local_steps(model, n_rows / max(n_sites, 1), settings.local_epochs)
    if settings.dp_mode == "local":
        train_cfg |= {
            "dp-mode": "local",
            "epsilon": float(settings.epsilon),
            "delta": float(settings.delta),
            "stats-noise": settings.stats_noise(),
            "stats-releases": settings.stats_releases,
        }
    train_config = ConfigRecord(train_cfg)
    round_start = [time.perf_counter()]

    def after_round(server_round: int, arrays: Any) -> Any:
        if server_round == 0:
            round_start[0] = time.perf_counter()
            return None
        absolute = done + server_round
        seconds = time.perf_counter() - round_start[0]
        round_start[0] = time.perf_counter()
        history.append(
            {"round": absolute, "seconds": round(seconds, 3), "train_bytes": recorder.bytes_by_stage.get("train", 0)}
        )
        w = {k: v.numpy() for k, v in arrays.items()}
        _save_checkpoint(
            settings,
            {
                "fingerprint": settings.fingerprint(),
                "round": absolute,
                "header": [header_json, header_arrays],
                "history": history,
                "sites": n_sites,
                "rows": n_rows,
                "stats_releases": stats_releases,
                "accountant": accountant.state_dict() if accountant is not None else None,
                "site_privacy": grid.site_privacy,
                "bytes": dict(recorder.bytes_by_stage),
                "merged": merged,
                "nodes": nodes,
            },
            w,
        )
        log.info("round %d/%d done in %.2f s", absolute, settings.rounds, seconds)
        return MetricRecord({"round": absolute})

    remaining = settings.rounds - done
    grid.stage = "train"
    final = weights
    if remaining > 0:
        initial = ArrayRecord({k: _array(v) for k, v in weights.items()})
        result = strategy.start(
            grid=grid,
            initial_arrays=initial,
            num_rounds=remaining,
            timeout=settings.round_timeout,
            train_config=train_config,
            evaluate_fn=after_round,
        )
        final = {k: v.numpy() for k, v in result.arrays.items()}
        if not final:
            reasons = "; ".join(dict.fromkeys(grid.train_errors)) or "no site replied in time"
            raise DataError(f"no site returned a trained model: {reasons}")
    set_weights(adapter.modules(model), final)
    finish_rng = np.random.default_rng(None if settings.seed is None else [settings.seed, 11])
    if spec is None:
        adapter.finish(model, model.transformer_.transform(proxy), finish_rng)
    else:
        grid.stage = "finish"
        _sequence_finish(grid, model, header_json, header_arrays, final, merged, meta, spec, settings, finish_rng)
    train_bytes = recorder.bytes_by_stage.get("train", 0)
    federated = {
        "sites": n_sites,
        "rounds": settings.rounds,
        "local_epochs": settings.local_epochs,
        **({"local_steps": int(train_cfg["local-steps"])} if "local-steps" in train_cfg else {}),
        "strategy": settings.strategy
        + {"fedprox": f" (mu={settings.proximal_mu})", "fedavgm": f" (momentum={settings.server_momentum})"}.get(
            settings.strategy, ""
        ),
        "bytes": dict(recorder.bytes_by_stage),
        "bytes_per_round": round(train_bytes / max(len(history), 1)),
        "history": history,
        "privacy": _privacy_record(settings, accountant, n_sites, grid.site_privacy, meta),
    }
    model.fit_info_ = {
        "rows": round(n_rows) if spec is None else _sequence.step_count(merged, meta, spec, settings.dp_on),
        **({} if spec is None else {"entities": round(n_rows)}),
        "columns": len(meta.columns),
        "seconds": round(time.perf_counter() - start, 4),
        "fitted_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "federated": federated,
    }
    model.save(out, overwrite=settings.overwrite)
    shutil.rmtree(_checkpoint_dir(settings), ignore_errors=True)
    return model


def _sequence_finish(
    grid: Any,
    model: Any,
    header_json: str,
    header_arrays: str,
    weights: dict[str, np.ndarray],
    merged: dict[str, Any],
    meta: Metadata,
    spec: Any,
    settings: FederatedSettings,
    rng: np.random.Generator,
) -> None:
    """The sequence model after the last round: the entity-embedding distribution from the sites' sums (each
    site fits its entities' ``z`` to the final network), the static model's grouped passes and calibration."""
    from flwr.app import ArrayRecord, ConfigRecord, Message, RecordDict

    from twinforge.federated._adapters import ADAPTERS

    seed = -1 if settings.seed is None else int(settings.seed)
    config = {"header": header_json, "header-arrays": header_arrays, "seed": seed}
    if settings.dp_mode == "local":  # charged in every site's ledger from the start (``stats_releases``)
        config["z-noise"] = settings.stats_noise()
    msgs = [
        Message(
            RecordDict(
                {"config": ConfigRecord(config), "arrays": ArrayRecord({k: _array(v) for k, v in weights.items()})}
            ),
            dst_node_id=n,
            message_type="query.seqz",
        )
        for n in grid.get_node_ids()
    ]
    moments, refused = _stats_replies(list(grid.send_and_receive(msgs, timeout=settings.round_timeout)), "seqz")
    if not moments:
        raise DataError(f"no site sent its entities' embedding sums: {'; '.join(refused) or 'no reply in time'}")
    model.z_mean_, model.z_cov_ = _sequence.z_distribution(list(moments.values()), int(model.embedding_dim))
    _, ents_proxy = _sequence.proxies(merged, meta, spec)
    static = model.static_model_
    ADAPTERS["auto"].finish(static, static.transformer_.transform(ents_proxy[list(static.metadata_.columns)]), rng)
    static.fit_info_ = {"rows": round(float(merged["n"])), "columns": len(static.metadata_.columns)}
    model.net_.eval()
    model.train_info_ = {"level_calibration_gap": round(_sequence.calibrate_levels(model, merged, rng), 5)}


def _budget_advice(settings: FederatedSettings, meta: Metadata, site_rows: list[float]) -> str:
    """With local DP, what budget would let the statistics name a level that half of the smallest site holds."""
    from twinforge.federated._localdp import epsilon_to_name

    n_discrete = settings.discrete_columns(meta)
    smallest = max(min(site_rows), 0.0)  # noisy counts: post-processing of the statistics already sent
    tau = settings.level_threshold(meta)
    need = epsilon_to_name(
        smallest / 2, settings.delta, settings.stats_share, settings.sensitivity(meta), max(n_discrete, 1)
    )
    advice = (
        f"With --dp local at --epsilon {settings.epsilon:g} (--stats-share {settings.stats_share:g}) a site names a "
        f"category level only when about {tau:.0f} of its rows hold it, and the smallest site has about "
        f"{smallest:.0f} rows"
    )
    if np.isfinite(need):
        advice += f": --epsilon {need:g} or more names a level held by half of them"
    return advice + (
        "; or declare the columns' `categories` (and `low`/`high`) in the agreed metadata: declared levels and "
        "bounds cost no budget"
    )


def _dp_wrap_fedprox(base: Any, settings: FederatedSettings, n_sites: int, accountant: Any) -> Any:
    """Flower's accounted DP wrapper insists on FedAvg's aggregation; FedProx aggregates the same way."""
    from flwr.serverapp.strategy import DifferentialPrivacyClientSideFixedClipping, FedAvg

    class _FedProxAsFedAvg(FedAvg):
        def __init__(self, prox: Any):
            super().__init__(min_train_nodes=prox.min_train_nodes, min_available_nodes=prox.min_available_nodes)
            self.fraction_evaluate, self.min_evaluate_nodes, self._prox = 0.0, 0, prox

        def configure_train(self, server_round: int, arrays: Any, config: Any, grid: Any) -> Any:
            return self._prox.configure_train(server_round, arrays, config, grid)

    return DifferentialPrivacyClientSideFixedClipping(
        _FedProxAsFedAvg(base), settings.noise_multiplier, settings.clipping_norm, n_sites, accountant=accountant
    )


def _privacy_record(
    settings: FederatedSettings, accountant: Any, n_sites: int, sites: dict[str, dict[str, float]], meta: Metadata
) -> dict[str, Any]:
    if settings.dp_mode == "local":
        worst = max(sites.values(), key=lambda v: v["epsilon"], default={"epsilon": 0.0, "delta": 0.0})
        return {
            "dp": True,
            "mode": "local",
            "epsilon": round(worst["epsilon"], 4),
            "delta": worst["delta"],
            "epsilon_budget": float(settings.epsilon),
            "delta_budget": settings.delta,
            "sites": {k: {n: round(v, 6) for n, v in s.items()} for k, s in sorted(sites.items())},
            "stats_noise_multiplier": round(settings.stats_noise(), 4),
            "stats_share": settings.stats_share,
            "count_threshold": round(settings.threshold(meta, n_sites), 3),
            "accountant": "RDP (twinforge.privacy), one per site, sample-level w.r.t. that site's rows",
            "mechanism": (
                "sample-level DP on each site: Gaussian noise on the statistics (levels named only above a noisy "
                "threshold) and DP-SGD (Opacus: Poisson sampling, per-sample clipping, Gaussian noise) on every "
                "local step, calibrated so that all planned rounds spend the budget; the epsilon is the largest "
                "any site spent"
            ),
        } | (_sequence.ENTITY_DP_RECORD if settings.model == "sequence" else {})
    if settings.dp_mode == "none" or accountant is None:
        return {"dp": False, "note": "no differential privacy: only aggregates left the sites, without noise"}
    spent = accountant.get_privacy_spent()
    return {
        "dp": True,
        "mode": "central",
        "epsilon": round(float(spent.epsilon), 4),
        "delta": settings.delta,
        "releases": int(spent.num_releases),
        "noise_multiplier": settings.noise_multiplier,
        "clipping_norm": settings.clipping_norm,
        "stats_noise_multiplier": settings.stats_noise_multiplier,
        "count_threshold": round(settings.threshold(Metadata.from_dict(settings.metadata), n_sites), 3),
        "accountant": "RDP, Gaussian releases without sampling amplification",
        "mechanism": (
            "client-side fixed clipping + central Gaussian noise on the averaged update (Flower "
            "DifferentialPrivacyClientSideFixedClipping, site-level DP), Gaussian noise on every statistic a site sends"
        ),
    }


def _new_model(settings: FederatedSettings) -> Any:
    from twinforge.models._registry import get_class

    params = dict(settings.params)
    params.setdefault("seed", settings.seed)
    params.setdefault("progress", False)
    model = get_class(settings.model)(**params)
    model._check_params()
    return model


def make_server_app(settings: FederatedSettings | None = None) -> Any:
    """The ServerApp; without ``settings`` it reads them from the run config (``settings-file``)."""
    from flwr.serverapp import ServerApp

    app = ServerApp()

    @app.main()
    def main(grid: Any, context: Any) -> None:
        s = settings
        if s is None:
            s = FederatedSettings.from_json(Path(str(context.run_config["settings-file"])).read_text())
        run_server(grid, s)

    return app


# ======================================================================================== simulation
class LocalGrid:
    """A Flower ``Grid`` that delivers messages to ClientApp objects in this process (no Ray, no network).

    Each site is a node with its own ``Context``; a site's ClientApp runs in a worker thread so that a round's
    ``timeout`` holds: a site that has not replied in time is left out of that round, as over the network.
    """

    def __init__(self, n_sites: int, client_app: Any, node_configs: list[dict[str, Any]]):
        from flwr.app import Context, RecordDict

        self._app = client_app
        self._nodes = {
            i + 1: Context(run_id=1, node_id=i + 1, node_config=cfg, state=RecordDict(), run_config={})
            for i, cfg in enumerate(node_configs)
        }
        self._run = None

    def set_run(self, run: Any) -> None:
        self._run = run

    @property
    def run(self) -> Any:
        return self._run

    def get_node_ids(self) -> list[int]:
        return list(self._nodes)

    def create_message(
        self, content: Any, message_type: str, dst_node_id: int, group_id: str, ttl: float | None = None
    ) -> Any:
        from flwr.app import Message

        return Message(content, dst_node_id, message_type, ttl=ttl, group_id=group_id)

    def push_messages(self, messages: Iterable[Any]) -> list[str]:  # pragma: no cover - send_and_receive is used
        raise NotImplementedError("the in-process grid only exchanges messages through send_and_receive")

    def pull_messages(self, message_ids: Iterable[str]) -> list[Any]:  # pragma: no cover
        raise NotImplementedError("the in-process grid only exchanges messages through send_and_receive")

    def send_and_receive(self, messages: Iterable[Any], *, timeout: float | None = None) -> list[Any]:
        import uuid

        from flwr.app import Error, Message

        deadline = None if timeout is None else time.monotonic() + timeout
        replies: list[Any] = []
        for msg in messages:
            msg.metadata.__dict__["_message_id"] = str(uuid.uuid4())
            msg.metadata.__dict__["_src_node_id"] = 0
            ctx = self._nodes.get(msg.metadata.dst_node_id)
            if ctx is None:
                continue
            box: dict[str, Any] = {}

            def work(msg: Any = msg, ctx: Any = ctx, box: dict[str, Any] = box) -> None:
                try:
                    box["reply"] = self._app(msg, ctx)
                except Exception as exc:  # a site that crashes: an error reply, as a SuperNode sends
                    box["reply"] = Message(Error(code=1, reason=f"{type(exc).__name__}: {exc}"), reply_to=msg)

            worker = threading.Thread(target=work, daemon=True)
            worker.start()
            worker.join(None if deadline is None else max(deadline - time.monotonic(), 0.0))
            if "reply" in box:
                reply = box["reply"]
                reply.metadata.__dict__["_src_node_id"] = msg.metadata.dst_node_id
                replies.append(reply)
            else:
                log.warning("site (node %s) did not reply within the round timeout: left out", msg.metadata.dst_node_id)
        return replies


def simulate(
    data: list[pd.DataFrame | str | os.PathLike],
    out: str | os.PathLike,
    *,
    metadata: Metadata | dict | str | os.PathLike | None = None,
    site_names: list[str] | None = None,
    recorder: _Recorder | None = None,
    **settings: Any,
) -> Any:
    """Federated training of ``settings['model']`` over the sites ``data`` (one table each), in this process.

    Runs the same ClientApp and ServerApp as a deployment, through :class:`LocalGrid`. ``metadata`` is the agreed
    schema (detected from the first site when omitted: in a real federation it is declared, not detected).
    Returns the global model, saved at ``out``.
    """
    frames = [read_table(d) for d in data]
    if len(frames) < 1:
        raise ParameterError("simulate needs at least one site's data")
    names = site_names or [f"site{i + 1}" for i in range(len(frames))]
    if settings.get("model") == "sequence":
        meta, settings["sequence"] = _sequence_roles(metadata, frames, names, settings.get("sequence"))
    else:
        meta = _coerce_meta(metadata, frames[0])
    keys = []
    for name, df in zip(names, frames, strict=True):
        key = f"{id(df)}-{name}"
        _SIM_DATA[key] = df
        keys.append(key)
    settings.setdefault("min_sites", min(2, len(frames)))
    s = FederatedSettings(out=str(out), metadata=meta.to_dict(), **settings)
    grid = LocalGrid(
        len(frames), make_client_app(), [{"data-key": k, "site-name": n} for k, n in zip(keys, names, strict=True)]
    )
    from flwr.supercore.task_identity import TaskIdentity

    identity = (TaskIdentity._run_id, TaskIdentity._task_id, TaskIdentity._node_id)
    # what a Flower runtime sets for the ServerApp process; messages read it when they are created
    TaskIdentity._run_id, TaskIdentity._task_id, TaskIdentity._node_id = 1, 1, 1
    try:
        return run_server(grid, s, recorder)
    finally:
        TaskIdentity._run_id, TaskIdentity._task_id, TaskIdentity._node_id = identity
        for k in keys:
            _SIM_DATA.pop(k, None)


def _sequence_roles(
    metadata: Any, frames: list[pd.DataFrame], names: list[str], roles: dict[str, Any] | None
) -> tuple[Metadata, dict[str, Any]]:
    """Simulation of a sequence federation: the schema and static columns detected on the first site when not
    given (a deployment declares them), and every entity held by one site only."""
    from twinforge.sequences._data import detect_keys, split_events

    roles = dict(roles or {})
    if metadata is None:
        ek, tk = roles.get("entity_key"), roles.get("time_key")
        if ek is None or tk is None:
            guess = detect_keys(frames[0])
            ek, tk = ek or guess[0], tk or guess[1]
        meta = Metadata.detect(frames[0], entity_key=ek, time_index=tk)
        meta.primary_key = None
    else:
        meta = _coerce_meta(metadata, frames[0])
    spec = _sequence.SequenceSpec.resolve(meta, roles.get("entity_key"), roles.get("time_key"), roles.get("static"))
    if roles.get("static") is None:
        data = split_events(frames[0], spec["entity_key"], spec["time_key"], None, meta)
        spec["static"] = list(data.static_columns)
    owner: dict[Any, str] = {}
    for name, df in zip(names, frames, strict=True):
        if spec["entity_key"] not in df.columns:
            continue  # the site's schema check reports it
        for key in pd.unique(df[spec["entity_key"]]):
            if key in owner and owner[key] != name:
                raise DataError(
                    f"entity {key!r} has rows at sites {owner[key]!r} and {name!r}: each site must hold whole "
                    "entities (with --partition-by, split by a column that is constant within every entity)"
                )
            owner[key] = name
    return meta, dict(spec)


def _coerce_meta(metadata: Any, df: pd.DataFrame) -> Metadata:
    if metadata is None:
        return Metadata.detect(df)
    if isinstance(metadata, Metadata):
        return metadata
    if isinstance(metadata, dict):
        return Metadata.from_dict(metadata)
    return Metadata.from_json(metadata)
