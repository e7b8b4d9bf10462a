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
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from twinforge.errors import ModelFileError, NotFittedError, ParameterError
from twinforge.io import load_model_dir, read_table, save_model_dir
from twinforge.metadata import Metadata
from twinforge.transforms import TableTransformer

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
        df = read_table(data)
        meta = _coerce_metadata(metadata, df)
        meta.validate(df)
        start = time.perf_counter()
        self.metadata_ = meta
        self.transformer_ = TableTransformer().fit(df, meta)
        arrays = self.transformer_.transform(df)
        self._fit(arrays, np.random.default_rng(self._seed_sequence(None, stream=0)))
        self.fit_info_ = {
            "rows": len(df),
            "columns": int(df.shape[1]),
            "seconds": round(time.perf_counter() - start, 4),
            "fitted_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        return self

    def _check_params(self) -> None:
        """Validate constructor parameters (override to add checks; raise ParameterError)."""

    def _fit(self, arrays: dict[str, np.ndarray], rng: np.random.Generator) -> None:
        raise NotImplementedError  # pragma: no cover - abstract

    # ---------------------------------------------------------------------------------- sampling
    def sample(self, n: int, seed: int | None = None) -> pd.DataFrame:
        """``n`` synthetic rows with the original columns, order, dtypes and categories."""
        frames = list(self.sample_chunks(n, seed=seed))
        if len(frames) == 1:
            return frames[0]
        return pd.concat(frames, ignore_index=True)

    def sample_chunks(self, n: int, seed: int | None = None) -> Iterator[pd.DataFrame]:
        """``sample(n, seed)`` in chunks of at most :data:`CHUNK_ROWS` rows, for bounded memory."""
        self._check_fitted()
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n <= 0:
            raise ParameterError(f"the number of rows must be a positive integer, got {n!r}")
        _check_seed(seed, "seed")
        entropy = self._seed_sequence(seed, stream=1).entropy
        n = int(n)
        return self._chunks(n, entropy)

    def _chunks(self, n: int, entropy: Any) -> Iterator[pd.DataFrame]:
        for i, start in enumerate(range(0, n, CHUNK_ROWS)):
            m = min(CHUNK_ROWS, n - start)
            rng = np.random.default_rng(np.random.SeedSequence(entropy, spawn_key=(i,)))
            arrays = self._sample(m, rng)
            yield self.transformer_.inverse_transform(arrays, m, rng, offset=start)

    def _sample(self, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
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
        model = cls(**doc["params"])
        model.metadata_ = Metadata.from_dict(doc["metadata"])
        model.transformer_ = TableTransformer.from_state(doc["transformer"])
        model.fit_info_ = doc["fit_info"]
        model._set_state(doc["state"])
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise ModelFileError(f"{str(path)!r} is corrupted or incomplete ({type(exc).__name__}: {exc})") from None
    return model


def _check_seed(seed: Any, name: str) -> None:
    if seed is None:
        return
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ParameterError(f"{name} must be a non-negative integer or None, got {seed!r}")


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
