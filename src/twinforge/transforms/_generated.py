"""Columns that are never learned: identifiers, free text and personal data.

A model never sees their values. On sampling they are generated afresh: identifiers in the same format
(unique if the real ones were, repeating about as often otherwise), free text as placeholder sentences of a
similar length, personal data as realistic fake values from Faker. Only the format, the missing rate and
(for ids) the repetition rate are kept, never a real value.
"""

from __future__ import annotations

import string
from functools import cached_property
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from twinforge.transforms._columns import ColumnTransform, nullable_int

_POOL = 2000  # fake values drawn per chunk; values repeat within a chunk beyond this, as real names do


class GeneratedColumn(ColumnTransform):
    """Base class of the generated columns: ``fit`` reads only the format; ``generate`` makes values."""

    learned: ClassVar[bool] = False

    def generate(self, n: int, rng: np.random.Generator, offset: int = 0) -> pd.Series:
        values = self._generate(n, rng, offset)
        if self.missing_rate_ > 0:
            values = values.astype(object)
            values[rng.random(n) < self.missing_rate_] = None if self.dtype_ != "object" else np.nan
        if self.dtype_ in ("object", "category"):
            return pd.Series(values, name=self.name_, dtype=object).astype(self.dtype_)
        out = pd.Series(values, name=self.name_)
        if self.missing_rate_ > 0 and self.dtype_.startswith(("int", "uint")):
            return out.astype(nullable_int(self.dtype_))
        return out.astype(self.dtype_)

    def _generate(self, n: int, rng: np.random.Generator, offset: int) -> np.ndarray:
        raise NotImplementedError  # pragma: no cover - abstract


class IdColumn(GeneratedColumn):
    """Identifiers: sequential numbers, or strings in the shape of the real ones ('7590-VHVEG').

    Unique identifiers stay unique across every chunk of one sampling call; repeating identifiers (an
    entity key in a flat table) repeat with the real mean number of rows per identifier.
    """

    kind = "id"

    def _fit(self, s: pd.Series) -> None:
        nonnull = s.dropna()
        self.unique_ = bool(nonnull.is_unique)
        self.rows_per_id_ = float(len(nonnull) / max(nonnull.nunique(), 1))
        self.numeric_ = bool(pd.api.types.is_numeric_dtype(s.dtype))
        if self.numeric_:
            self.start_ = int(nonnull.min())
            self.template_ = None
        else:
            texts = nonnull.astype(str)
            # the most common shape (letters -> A/a, digits -> 9) wins; its first example is the template
            shapes = texts.str.replace(r"[A-Z]", "A", regex=True).str.replace(r"[a-z]", "a", regex=True)
            shapes = shapes.str.replace(r"\d", "9", regex=True)
            self.template_ = shapes.value_counts().index[0]
            self.start_ = 0

    def _generate(self, n: int, rng: np.random.Generator, offset: int) -> np.ndarray:
        k = offset + np.arange(n, dtype="int64")
        if not self.unique_:
            k = np.floor(k / max(self.rows_per_id_, 1.0)).astype("int64")
            k = rng.permutation(k)
        if self.numeric_:
            return self.start_ + k
        return np.asarray([self._format(int(i)) for i in k], dtype=object)

    def _format(self, i: int) -> str:
        """Write ``i`` into the template's letter and digit slots (mixed radix), least significant last."""
        out = list(self.template_)
        for pos in range(len(out) - 1, -1, -1):
            slot = out[pos]
            alphabet = {"9": string.digits, "A": string.ascii_uppercase, "a": string.ascii_lowercase}.get(slot)
            if alphabet is None:
                continue
            i, r = divmod(i, len(alphabet))
            out[pos] = alphabet[r]
        return "".join(out) if i == 0 else f"{''.join(out)}-{i}"


class TextColumn(GeneratedColumn):
    """Free text, replaced by placeholder sentences with the real mean word count."""

    kind = "text"

    def _fit(self, s: pd.Series) -> None:
        words = s.dropna().astype(str).str.split().str.len()
        self.mean_words_ = float(max(words.mean(), 1.0))
        self.locale_ = self.options.get("locale", "en_US")

    @cached_property
    def _faker(self) -> Any:
        from faker import Faker

        return Faker(self.locale_)

    def _generate(self, n: int, rng: np.random.Generator, offset: int) -> np.ndarray:
        fake = self._faker
        fake.seed_instance(int(rng.integers(2**31)))
        m = min(n, _POOL)
        lengths = np.maximum(1, rng.poisson(self.mean_words_, size=m))
        pool = np.asarray([fake.sentence(nb_words=int(w), variable_nb_words=False) for w in lengths], dtype=object)
        return pool[rng.integers(0, m, size=n)] if m < n else pool


_FAKERS = {
    "name": lambda f: f.name(),
    "first_name": lambda f: f.first_name(),
    "last_name": lambda f: f.last_name(),
    "email": lambda f: f.email(),
    "phone": lambda f: f.phone_number(),
    "address": lambda f: f.address().replace("\n", ", "),
    "national_id": lambda f: f.ssn(),
    "other": lambda f: f.bothify("??-########"),
}


class PiiColumn(TextColumn):
    """Personal data replaced by fake values of the same type (``pii_type``) from Faker."""

    kind = "pii"

    def _fit(self, s: pd.Series) -> None:
        self.pii_type_ = self.options.get("pii_type") or "other"
        self.locale_ = self.options.get("locale", "en_US")
        texts = s.dropna().astype(str)
        self.case_ = "lower" if texts.str.islower().all() else "upper" if texts.str.isupper().all() else None

    def _generate(self, n: int, rng: np.random.Generator, offset: int) -> np.ndarray:
        fake = self._faker
        fake.seed_instance(int(rng.integers(2**31)))
        make = _FAKERS[self.pii_type_]
        m = min(n, _POOL)
        pool = [make(fake) for _ in range(m)]
        if self.case_ == "lower":
            pool = [v.lower() for v in pool]
        elif self.case_ == "upper":
            pool = [v.upper() for v in pool]
        arr = np.asarray(pool, dtype=object)
        return arr[rng.integers(0, m, size=n)] if m < n else arr
