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
        return TextColumn(locale=spec.locale)
    if kind == "pii":
        return PiiColumn(pii_type=spec.pii_type, locale=spec.locale, fake_style=spec.fake_style)
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
        pii = [name for name, t in self.transforms_.items() if isinstance(t, PiiColumn)]
        if len(pii) > 1:  # a real first name must not come out as a fake last name either
            every = pd.concat([data[name] for name in pii], ignore_index=True)
            for name in pii:
                self.transforms_[name].avoid(every)
        key = metadata.entity_key
        for name, t in self.transforms_.items():
            if isinstance(t, PiiColumn) and key is not None and name != key:
                # one fake per entity where the real column holds one value per entity (nearly always);
                # a DP fit (learned_from given) may not look: it takes the declared entity key as enough
                pairs = data[[key, name]].dropna()
                constant = pairs.groupby(key, sort=False)[name].nunique().le(1).mean() if len(pairs) else 1.0
                t.entity_key_ = key if learned_from is not None or constant >= 0.9 else None
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
        call_key: int | None = None,
    ) -> pd.DataFrame:
        """Rebuild a table from learned arrays; generated columns use ``rng`` (and ``offset`` for unique ids).

        ``call_key`` is the same for every chunk of one sampling call: PII that follows an entity gets the same fake
        value for the same entity across chunks.
        """
        if n is None:
            n = len(next(iter(arrays.values()))) if arrays else 0
        rng = rng if rng is not None else np.random.default_rng(0)
        if call_key is None:
            call_key = int(rng.integers(2**62))
        out: dict[str, pd.Series] = {}
        per_entity = []
        for name in self.columns_:
            t = self.transforms_[name]
            if getattr(t, "entity_key_", None) is not None:
                per_entity.append(name)  # after the entity column itself
            elif isinstance(t, GeneratedColumn):
                out[name] = t.generate(n, rng, offset)
            else:
                out[name] = t.inverse_transform(arrays[name])
        for name in per_entity:
            t = self.transforms_[name]
            out[name] = t.generate_per_entity(out[t.entity_key_].reset_index(drop=True), call_key)
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
