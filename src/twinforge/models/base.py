"""The synthesizer contract every model follows.

Public methods validate and then call one private hook that a model overrides:

- ``fit(data, metadata=None)`` reads and checks the data, fits the table transformer, then ``_fit(arrays, rng)``;
- ``sample(n, seed=None)`` checks ``n``, then ``_sample(m, rng)`` chunk by chunk, and rebuilds the table;
- ``save(path)`` writes ``_get_state()``; :func:`twinforge.load` reads it back through ``_set_state(state)``.

``arrays`` maps each learned column to the array of its transform (float64 with NaN for numeric and
datetime columns, int64 codes with -1 for categorical and boolean ones); ``_sample`` returns the same.
"""

from __future__ import annotations

import inspect
import os
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from twinforge.errors import ModelFileError, NotFittedError, ParameterError
from twinforge.io import load_model_dir, read_table, save_model_dir
from twinforge.metadata import Metadata
from twinforge.models._request import SampleRequest, build_request
from twinforge.transforms import TableTransformer
from twinforge.transforms._generated import GeneratedColumn, IdColumn

__all__ = ["Synthesizer", "load", "CHUNK_ROWS"]

# Rows generated per chunk. Fixed, so that sample(n) is the same however it is streamed.
CHUNK_ROWS = 100_000


class Synthesizer:
    """Base class of every twinforge model. Create models with :func:`twinforge.create`.

    Parameters
    ----------
    seed : int, optional
        Seeds fitting and, when ``sample`` gets no seed of its own, sampling: the same seed and data give
        the same model and the same samples. ``None`` draws fresh entropy each time.
    """

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    # True when ``_sample`` honours a SampleRequest: conditions, rebalance, seed_data, temperature, impute
    supports_conditions: ClassVar[bool] = False
    # True when ``_sample`` takes ``workers``: threads that draw blocks of rows at once, the same rows for any number
    parallel_sampling: ClassVar[bool] = False

    def __init__(self, *, seed: int | None = None):
        self.seed = seed

    # ---------------------------------------------------------------------------------- parameters
    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [p.name for p in sig.parameters.values() if p.name != "self" and p.kind == p.KEYWORD_ONLY]

    def get_params(self) -> dict[str, Any]:
        """The constructor's keyword arguments, as given."""
        return {name: getattr(self, name) for name in self._param_names()}

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"

    # ---------------------------------------------------------------------------------- fitting
    def fit(
        self,
        data: pd.DataFrame | str | os.PathLike,
        metadata: Metadata | dict | str | os.PathLike | None = None,
    ) -> Synthesizer:
        """Learn from ``data`` (a DataFrame or a CSV/Parquet path). Returns self.

        ``metadata`` (a :class:`~twinforge.Metadata`, its dict, or a JSON path) is detected when omitted.
        """
        _check_seed(self.seed, "seed")
        self._check_params()
        if getattr(self, "epsilon", None) is not None or getattr(self, "delta", None) is not None:
            from twinforge.privacy import check_budget

            if self.epsilon is None:
                raise ParameterError("delta is set but epsilon is not: set epsilon to train with differential privacy")
            check_budget(self.epsilon, self.delta)
        df = read_table(data)
        meta = _coerce_metadata(metadata, df)
        meta.validate(df)
        start = time.perf_counter()
        self.metadata_ = meta
        rng = np.random.default_rng(self._seed_sequence(None, stream=0))
        public = None
        if getattr(self, "epsilon", None) is not None:
            # differential privacy: encoders are fitted on a public table built from noisy histograms, and the
            # rows are mapped into its domain (clipped, unreleased levels merged)
            from twinforge.privacy import begin_private_fit

            public, mapped = begin_private_fit(self, df, meta, rng)
        self.transformer_ = TableTransformer().fit(df, meta, learned_from=public)
        if public is not None:
            df = mapped
            for t in self.transformer_.transforms_.values():
                if hasattr(t, "forget_values"):  # the hashes of real PII values are not DP: not kept
                    t.forget_values()
        arrays = self.transformer_.transform(df)
        if getattr(self, "_privacy", None) is not None:
            self._privacy["public_arrays"] = self.transformer_.transform(public)
        self._fit(arrays, rng)
        self.fit_info_ = {
            "rows": len(df),
            "columns": int(df.shape[1]),
            "seconds": round(time.perf_counter() - start, 4),
            "fitted_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        if getattr(self, "_privacy", None) is not None:
            from twinforge.privacy import end_private_fit

            self.fit_info_["privacy"] = end_private_fit(self)
        return self

    def _restore_state(self, state: dict[str, Any]) -> None:
        """``_set_state`` without drawing from torch's RNG (networks are built, then given their saved weights)."""
        if "torch" not in sys.modules:  # a model without networks
            self._set_state(state)
            return
        from twinforge.models._nn import rng_isolated

        with rng_isolated():
            self._set_state(state)

    def _check_params(self) -> None:
        """Validate constructor parameters (override to add checks; raise ParameterError)."""

    def _fit(self, arrays: dict[str, np.ndarray], rng: np.random.Generator) -> None:
        raise NotImplementedError  # pragma: no cover - abstract

    # ---------------------------------------------------------------------------------- sampling
    def sample(
        self,
        n: int | None = None,
        seed: int | None = None,
        *,
        conditions: dict[str, Any] | None = None,
        rebalance: dict[str, dict[Any, float]] | None = None,
        seed_data: pd.DataFrame | None = None,
        temperature: float = 1.0,
        workers: int | None = None,
    ) -> pd.DataFrame:
        """``n`` synthetic rows with the original columns, order, dtypes and categories.

        Models whose ``supports_conditions`` is true also take:

        - ``conditions``: ``{column: value}`` (``None`` = missing), ``{column: [values]}`` for a categorical
          set, ``{column: (low, high)}`` for an inclusive numeric or datetime range (``None`` = open end);
          every row honours every condition exactly, without rejection sampling;
        - ``rebalance``: ``{column: {category: share}}``, the exact category mix of a categorical column,
          the other columns following their learned conditional distribution;
        - ``seed_data``: partial rows (a DataFrame with some of the columns; ``n`` may be omitted); their
          non-missing cells are kept, everything else is generated given them;
        - ``temperature``: below 1 gives more typical rows, above 1 more diverse ones.

        ``workers``: threads that draw rows at once, in models whose ``parallel_sampling`` is true (others draw
        on one thread and ignore it); None: the CPU cores this process may use. The rows are the same whatever
        its value.
        """
        frames = list(
            self.sample_chunks(
                n,
                seed,
                conditions=conditions,
                rebalance=rebalance,
                seed_data=seed_data,
                temperature=temperature,
                workers=workers,
            )
        )
        if len(frames) == 1:
            return frames[0]
        return pd.concat(frames, ignore_index=True)

    def sample_chunks(
        self,
        n: int | None = None,
        seed: int | None = None,
        *,
        conditions: dict[str, Any] | None = None,
        rebalance: dict[str, dict[Any, float]] | None = None,
        seed_data: pd.DataFrame | None = None,
        temperature: float = 1.0,
        workers: int | None = None,
    ) -> Iterator[pd.DataFrame]:
        """``sample(...)`` in chunks of at most :data:`CHUNK_ROWS` rows, for bounded memory."""
        self._check_fitted()
        _check_seed(seed, "seed")
        workers = _check_workers(workers)
        entropy = self._seed_sequence(seed, stream=1).entropy
        if conditions or rebalance or seed_data is not None or temperature != 1.0:
            self._check_supports_conditions()
        request = build_request(
            self.transformer_,
            n,
            conditions=conditions,
            rebalance=rebalance,
            seed_data=seed_data,
            temperature=temperature,
            rng=np.random.default_rng(np.random.SeedSequence(entropy, spawn_key=(2**32 - 1,))),
        )
        return self._chunks(request, entropy, workers)

    def impute(
        self, data: pd.DataFrame | str | os.PathLike, seed: int | None = None, *, workers: int | None = None
    ) -> pd.DataFrame:
        """Fill the missing cells of learned columns in real rows ``data``; every other cell is kept as is.

        ``data`` has the columns the model was fitted on. Returns a new frame with ``data``'s index.
        ``workers`` as in :meth:`sample`.
        """
        self._check_fitted()
        df = read_table(data)
        expected = list(self.transformer_.columns_)
        if sorted(map(str, df.columns)) != sorted(expected):
            missing = [c for c in expected if c not in df.columns]
            extra = [str(c) for c in df.columns if str(c) not in expected]
            raise ParameterError(
                f"impute needs the columns the model was fitted on; missing {missing}, unexpected {extra}"
            )
        self._check_supports_conditions()
        _check_seed(seed, "seed")
        workers = _check_workers(workers)
        entropy = self._seed_sequence(seed, stream=1).entropy
        request = build_request(self.transformer_, None, seed_data=df[expected], fill_missing=True)
        filled = pd.concat(list(self._chunks(request, entropy, workers)), ignore_index=True)
        filled.index = df.index
        for col, t in self.transformer_.transforms_.items():
            if isinstance(t, GeneratedColumn):  # ids, text, PII are not learned; a made-up id could repeat a given one
                filled[col] = df[col]
        return filled[list(df.columns)]

    def _check_supports_conditions(self) -> None:
        if not self.supports_conditions:
            raise ParameterError(
                f"model {self.name!r} does not support conditions, rebalance, seed_data, temperature or impute; "
                f"use one that does: {', '.join(_conditional_models()) or 'none is installed yet'}"
            )

    def _chunks(self, request: SampleRequest, entropy: Any, workers: int = 1) -> Iterator[pd.DataFrame]:
        n = request.n
        threads = {"workers": workers} if self.parallel_sampling else {}
        call_key = int(np.random.SeedSequence(entropy, spawn_key=(2**32 - 2,)).generate_state(2, np.uint64)[0] >> 2)
        shifts = self._id_shifts(request)
        for i, start in enumerate(range(0, n, CHUNK_ROWS)):
            stop = min(start + CHUNK_ROWS, n)
            rng = np.random.default_rng(np.random.SeedSequence(entropy, spawn_key=(i,)))
            part = request.chunk(start, stop)
            if request.empty:  # no condition on a learned column; seed data may still give ids, text or PII
                arrays = self._sample(stop - start, rng, **threads)
            else:
                arrays = self._sample(stop - start, rng, part, **threads)
                part.check(arrays)
            frame = self.transformer_.inverse_transform(arrays, stop - start, rng, offset=start, call_key=call_key)
            if part.given is not None:
                for col in part.given.columns:
                    given = part.given[col]
                    if col in shifts:  # made-up ids go past every given one, so that none repeats a given id
                        frame[col] = frame[col] + shifts[col]
                    frame[col] = given.where(given.notna(), frame[col]).astype(frame[col].dtype)
            yield frame

    def _id_shifts(self, request: SampleRequest) -> dict[str, int]:
        """How far to move the generated numbers of unique numeric id columns that seed data partly gives."""
        shifts: dict[str, int] = {}
        for col, t in self.transformer_.transforms_.items():
            if request.given is None or col not in request.given.columns or not isinstance(t, IdColumn):
                continue
            given = pd.to_numeric(request.given[col], errors="coerce").dropna()
            if t.unique_ and t.numeric_ and len(given):
                shifts[col] = max(0, int(given.max()) + 1 - int(t.start_))
        return shifts

    def _sample(self, n: int, rng: np.random.Generator, request: SampleRequest | None = None) -> dict[str, np.ndarray]:
        """``n`` rows of learned arrays; ``request`` (never given unless ``supports_conditions``) holds conditions."""
        raise NotImplementedError  # pragma: no cover - abstract

    def _seed_sequence(self, seed: int | None, stream: int) -> np.random.SeedSequence:
        if seed is not None:
            return np.random.SeedSequence(int(seed))
        if self.seed is not None:
            return np.random.SeedSequence([int(self.seed), stream])
        return np.random.SeedSequence()

    def _check_fitted(self) -> None:
        if not hasattr(self, "transformer_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet: call fit first")

    # ---------------------------------------------------------------------------------- persistence
    def save(self, path: str | os.PathLike, *, overwrite: bool = False) -> None:
        """Save to directory ``path`` (``model.json`` + ``weights.npz``); reload with :func:`twinforge.load`."""
        self._check_fitted()
        document = {
            "model": self.name,
            "params": self.get_params(),
            "metadata": self.metadata_.to_dict(),
            "fit_info": self.fit_info_,
            "transformer": self.transformer_.get_state(),
            "state": self._get_state(),
        }
        save_model_dir(path, document, overwrite=overwrite)

    def _get_state(self) -> dict[str, Any]:
        raise NotImplementedError  # pragma: no cover - abstract

    def _set_state(self, state: dict[str, Any]) -> None:
        raise NotImplementedError  # pragma: no cover - abstract


def load(path: str | os.PathLike) -> Synthesizer:
    """Load a model saved with ``save``. Raises ModelFileError for a foreign, corrupted or too-new directory."""
    from twinforge.models._registry import get_class

    doc = load_model_dir(path)
    try:
        try:
            cls = get_class(doc["model"])
        except ParameterError:
            raise ModelFileError(
                f"{str(path)!r} holds a {doc['model']!r} model, which this twinforge does not know: upgrade it"
            ) from None
        if hasattr(cls, "_from_document"):  # models with their own layout (sequence models and their twins)
            return cls._from_document(doc)
        model = cls(**doc["params"])
        model.metadata_ = Metadata.from_dict(doc["metadata"])
        model.transformer_ = TableTransformer.from_state(doc["transformer"])
        model.fit_info_ = doc["fit_info"]
        model._restore_state(doc["state"])
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise ModelFileError(f"{str(path)!r} is corrupted or incomplete ({type(exc).__name__}: {exc})") from None
    return model


def _conditional_models() -> list[str]:
    from twinforge.models._registry import available_models, get_class

    return [m for m in available_models() if get_class(m).supports_conditions]


def _check_seed(seed: Any, name: str) -> None:
    if seed is None:
        return
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ParameterError(f"{name} must be a non-negative integer or None, got {seed!r}")


def _check_workers(workers: Any) -> int:
    """``workers`` as a number of threads: None gives the CPU cores this process may use."""
    if workers is None:
        return usable_cores()
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 1:
        raise ParameterError(f"workers must be an integer >= 1 (threads that sample at once) or None, got {workers!r}")
    return int(workers)


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity mask where the OS has one), at least 1."""
    count = getattr(os, "process_cpu_count", None)  # Python 3.13
    if count is not None:
        return max(count() or 1, 1)
    if hasattr(os, "sched_getaffinity"):
        return max(len(os.sched_getaffinity(0)), 1)
    return max(os.cpu_count() or 1, 1)


def _coerce_metadata(metadata: Any, df: pd.DataFrame) -> Metadata:
    if metadata is None:
        return Metadata.detect(df)
    if isinstance(metadata, Metadata):
        return metadata
    if isinstance(metadata, dict):
        return Metadata.from_dict(metadata)
    if isinstance(metadata, (str, os.PathLike)):
        return Metadata.from_json(metadata)
    raise ParameterError(f"metadata must be a Metadata, a dict or a JSON path, got {type(metadata).__name__}")
