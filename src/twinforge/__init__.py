"""twinforge: synthetic data that is faithful, useful and private, with the evidence for all three.

>>> import twinforge
>>> real = twinforge.load_demo()
>>> model = twinforge.create("copula", seed=0).fit(real)
>>> model.sample(3).shape
(3, 20)
"""

from twinforge._version import __version__
from twinforge.datasets import load_demo
from twinforge.errors import (
    DataError,
    MetadataError,
    ModelFileError,
    NotFittedError,
    OutputError,
    ParameterError,
    TwinforgeError,
)
from twinforge.evaluate import EvaluationReport, evaluate
from twinforge.io import read_table, write_table
from twinforge.metadata import ColumnSpec, Metadata
from twinforge.models import Synthesizer, available_models, load

__all__ = [
    "ColumnSpec",
    "DataError",
    "EvaluationReport",
    "Metadata",
    "MetadataError",
    "ModelFileError",
    "NotFittedError",
    "OutputError",
    "ParameterError",
    "Synthesizer",
    "TwinforgeError",
    "__version__",
    "available_models",
    "create",
    "evaluate",
    "load",
    "load_demo",
    "read_table",
    "write_table",
]


def create(name: str, seed: int | None = None, **params) -> Synthesizer:
    """A new, unfitted model: ``create("copula", seed=0)``. See :func:`available_models`.

    Raises ParameterError for an unknown model name or parameter.
    """
    from twinforge.models import get_class

    cls = get_class(name)
    accepted = [p for p in cls._param_names() if p != "seed"]
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise ParameterError(
            f"model {name!r} has no parameter {', '.join(map(repr, unknown))}; "
            f"its parameters are: {', '.join(accepted) or '(none)'}"
        )
    return cls(seed=seed, **params)
