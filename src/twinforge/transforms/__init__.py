"""Reversible per-column transforms and the table transformer that applies them by metadata.

>>> import pandas as pd
>>> from twinforge import Metadata
>>> from twinforge.transforms import TableTransformer
>>> df = pd.DataFrame({"n": [1, 2, None], "c": ["a", "b", "a"]})
>>> tt = TableTransformer().fit(df, Metadata.detect(df))
>>> arrays = tt.transform(df)
>>> arrays["c"].tolist()
[0, 1, 0]
>>> tt.inverse_transform(arrays).equals(df)
True
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from twinforge.errors import DataError
from twinforge.metadata import Metadata
from twinforge.transforms._columns import (
    BooleanTransform,
    CategoricalTransform,
    ColumnTransform,
    DatetimeTransform,
    NumericTransform,
)
from twinforge.transforms._generated import GeneratedColumn, IdColumn, PiiColumn, TextColumn

__all__ = [
    "BooleanTransform",
    "CategoricalTransform",
    "ColumnTransform",
    "DatetimeTransform",
    "GeneratedColumn",
    "IdColumn",
    "NumericTransform",
    "PiiColumn",
    "TableTransformer",
    "TextColumn",
]

_CLASSES: dict[str, type[ColumnTransform]] = {
    c.__name__: c
    for c in (
        NumericTransform,
        DatetimeTransform,
        CategoricalTransform,
        BooleanTransform,
        IdColumn,
        TextColumn,
        PiiColumn,
    )
}


def transform_for(spec: Any) -> ColumnTransform:
    """The transform for one :class:`~twinforge.metadata.ColumnSpec`."""
    kind = spec.kind
    if kind == "continuous":
        return NumericTransform()
    if kind == "integer":
        return NumericTransform(integer=True)
    if kind == "datetime":
        return DatetimeTransform(datetime_format=spec.datetime_format)
    if kind == "categorical":
        return CategoricalTransform()
    if kind == "boolean":
        return BooleanTransform()
    if kind == "id":
        return IdColumn()
    if kind == "text":
        return TextColumn()
    if kind == "pii":
        return PiiColumn(pii_type=spec.pii_type)
    raise DataError(f"no transform for kind {kind!r}")  # metadata validation prevents this


class TableTransformer:
    """Applies one transform per column, as the metadata says.

    ``transform`` returns ``{column: array}`` for the learned columns only (float64 with NaN for numeric and
    datetime columns, int64 codes with -1 for categorical and boolean ones). ``inverse_transform`` rebuilds
    the whole table in the original column order, generating the id, text and PII columns.
    """

    def fit(self, data: pd.DataFrame, metadata: Metadata, learned_from: pd.DataFrame | None = None) -> TableTransformer:
        """Fit every column's transform on ``data``; the learned columns on ``learned_from`` when given.

        ``learned_from`` is the public table of a differentially private fit: the learned columns' encoders may
        read only it, while the generated columns (ids, text, PII) read only their format from ``data``.
        """
        metadata.validate(data)
        self.columns_ = list(metadata.columns)
        source = data if learned_from is None else learned_from
        self.transforms_ = {}
        for name, spec in metadata.columns.items():
            t = transform_for(spec)
            self.transforms_[name] = t.fit(data[name] if isinstance(t, GeneratedColumn) else source[name])
        return self

    @property
    def learned(self) -> list[str]:
        """Names of the learned columns, in table order."""
        return [n for n, t in self.transforms_.items() if not isinstance(t, GeneratedColumn)]

    def transform(self, data: pd.DataFrame) -> dict[str, np.ndarray]:
        return {name: self.transforms_[name].transform(data[name]) for name in self.learned}

    def inverse_transform(
        self,
        arrays: dict[str, np.ndarray],
        n: int | None = None,
        rng: np.random.Generator | None = None,
        offset: int = 0,
    ) -> pd.DataFrame:
        """Rebuild a table from learned arrays; generated columns use ``rng`` (and ``offset`` for unique ids)."""
        if n is None:
            n = len(next(iter(arrays.values()))) if arrays else 0
        rng = rng if rng is not None else np.random.default_rng(0)
        out: dict[str, pd.Series] = {}
        for name in self.columns_:
            t = self.transforms_[name]
            if isinstance(t, GeneratedColumn):
                out[name] = t.generate(n, rng, offset)
            else:
                out[name] = t.inverse_transform(arrays[name])
        # copy=False: no consolidation of the columns into blocks, which costs more than generating them
        frame = pd.DataFrame({k: v.reset_index(drop=True) for k, v in out.items()}, columns=self.columns_, copy=False)
        return frame

    def get_state(self) -> dict[str, Any]:
        return {"columns": self.columns_, "transforms": {n: t.get_state() for n, t in self.transforms_.items()}}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> TableTransformer:
        obj = cls()
        obj.columns_ = list(state["columns"])
        obj.transforms_ = {n: _CLASSES[s["class"]].from_state(s) for n, s in state["transforms"].items()}
        return obj
