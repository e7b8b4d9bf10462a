"""Per-entity time series, the digital-twin side of twinforge.

- :func:`split_events` checks a long table (entity key, time index, channels) and its static attributes;
- :class:`SequenceModel` (``twinforge.create("sequence")``) learns the population: static attributes, sequence
  length, time gaps and the dynamics of the channels given them; ``sample(entities=N, conditions=...)`` starts
  new entities cold;
- :meth:`SequenceModel.personalize` fine-tunes it on one entity's history into a :class:`Twin`, whose
  ``forecast(horizon, paths)`` gives probabilistic continuations and ``sample(n_sequences)`` more data like it;
- ``event={"column": ..., "value": ..., "within": H}`` produces scenarios (e.g. a failure) on demand.

The model and the twin import torch; they are loaded on first use.
"""

from __future__ import annotations

from typing import Any

from twinforge.sequences._data import SequenceData, detect_keys, split_events, time_problems

__all__ = ["SequenceData", "SequenceModel", "Twin", "detect_keys", "split_events", "time_problems"]


def __getattr__(name: str) -> Any:
    if name in ("SequenceModel", "Twin"):
        from twinforge.sequences import model

        return getattr(model, name)
    raise AttributeError(f"module 'twinforge.sequences' has no attribute {name!r}")
