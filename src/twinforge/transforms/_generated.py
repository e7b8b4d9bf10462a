"""Columns that are never learned: identifiers, free text and personal data.

A model never sees their values. On sampling they are generated afresh: identifiers in the same format
(unique if the real ones were, repeating about as often otherwise), free text as placeholder sentences of a
similar length, personal data as realistic fake values from Faker. Only the format, the missing rate and
(for ids) the repetition rate are kept, never a real value.
"""

from __future__ import annotations

import hashlib
import math
import string
import warnings
from functools import cached_property
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from twinforge.transforms._columns import ColumnTransform, nullable_int

_POOL = 2000  # fake values drawn per chunk; values repeat within a chunk beyond this, as real names do


_DP_MEAN_WORDS = 8.0  # free text in a DP fit: the length is not learned


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

    def forget_values(self) -> None:
        """Drop what was read off the values (a differentially private fit keeps only dtype and options).

        The share of missing values is a count of the data: no value is missing in a DP fit's output.
        """
        self.missing_rate_ = 0.0


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

    def forget_values(self) -> None:
        """A DP fit: unique ids from 1 (or ``A``/``a``/``0`` in the real shape); how often an id repeats and its
        smallest value are statistics of the data. The shape (the most common one) is kept as format."""
        super().forget_values()
        self.unique_, self.rows_per_id_ = True, 1.0
        self.start_ = 1 if self.numeric_ else 0

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
        self.locale_ = self.options.get("locale") or "en_US"

    def forget_values(self) -> None:
        """A DP fit: sentences of a fixed mean length, not the real one."""
        super().forget_values()
        self.mean_words_ = _DP_MEAN_WORDS

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


def _make_fakes(fake: Any, pii_type: str, count: int) -> list[str]:
    """``count`` fake values of ``pii_type``.

    A first or last name is one of the locale's weighted name list (Faker's ``random_element`` of it); where the
    locale keeps Faker's plain draw, the whole batch comes from one weighted draw. Faker rebuilds the cumulative
    weights on every call, which made fake names 13% of covid's sampling time.
    """
    attribute = {"first_name": "first_names", "last_name": "last_names"}.get(pii_type)
    if attribute is not None and count > 1:
        from faker.providers.person import Provider as PersonProvider

        try:
            provider = fake.provider("faker.providers.person")
        except (AttributeError, NotImplementedError):  # a Faker of several locales
            provider = None
        elements = getattr(provider, attribute, None)
        plain = provider is not None and getattr(type(provider), pii_type) is getattr(PersonProvider, pii_type)
        if plain and isinstance(elements, dict) and elements:
            return [str(v) for v in fake.random_elements(elements, length=count, use_weighting=True)]
    make = _FAKERS[pii_type]
    return [make(fake) for _ in range(count)]


def _private_email(f: Any) -> str:
    """An email no person has: a reserved domain (example.com/.net/.org, RFC 2606) and a local part with a
    five-digit tag that Faker's own user names never carry, so it cannot equal an input value either."""
    return f"{f.user_name()}.{f.numerify('%####')}@{f.safe_domain_name()}"


_NAME_TYPES = ("name", "first_name", "last_name")


def _pseudonym(name: str, f: Any) -> str:
    """A name no person has: a Faker name and a tag of '#' and four digits ('Maria Lopez #4821'), which no real
    name carries, so it cannot equal an input value either (the DP default for names, see ``fake_style``)."""
    return f"{name} #{f.numerify('%###')}"


def _digest(values: Any, bits: int) -> np.ndarray:
    """The first ``bits`` bits of a keyed BLAKE2b hash of each value (stripped, lower case), as int64."""
    out = np.empty(len(values), dtype="int64")
    for i, v in enumerate(values):
        h = hashlib.blake2b(str(v).strip().lower().encode(), digest_size=8, key=b"twinforge-pii").digest()
        out[i] = int.from_bytes(h, "big") >> (64 - bits)
    return out


class PiiColumn(TextColumn):
    """Personal data replaced by fake values of the same type (``pii_type``) and ``locale`` from Faker.

    No real value is ever emitted, not even by coincidence (Faker's names are real people's names too): a fake
    whose hash matches a real value's is drawn again; in a DP fit, which keeps no hashes, names are pseudonyms
    (``fake_style``) and emails take a reserved domain. Only short hashes are kept (a few bits more than the number
    of distinct real values needs, so that about one name in sixteen matches some real value's hash by chance:
    the stored hashes do not tell which names are real). A column that holds one value per entity (the
    ``entity_key`` of the metadata) gets one fake per entity, the same across rows and chunks of a sampling call.
    """

    kind = "pii"

    def _fit(self, s: pd.Series) -> None:
        self.pii_type_ = self.options.get("pii_type") or "other"
        self.locale_ = self.options.get("locale") or "en_US"
        texts = s.dropna().astype(str)
        self.case_ = "lower" if texts.str.islower().all() else "upper" if texts.str.isupper().all() else None
        self.avoid(texts)
        self.entity_key_ = None  # set by TableTransformer when the values follow the entity

    def avoid(self, values: pd.Series) -> None:
        """Never emit any of ``values`` (TableTransformer passes the values of every PII column of the table)."""
        distinct = values.dropna().astype(str).str.strip().str.lower().unique()
        self.hash_bits_ = int(min(40, max(8, math.ceil(math.log2(max(len(distinct), 1))) + 4)))
        self.seen_ = [int(x) for x in np.unique(_digest(distinct, self.hash_bits_))]  # plain JSON in the state

    def forget_values(self) -> None:
        """Drop the hashes of the real values and their letter case (a differentially private fit may not keep them).

        Without hashes nothing can be avoided, so emails and names come from spaces no input value is in (see
        ``_private_email`` and ``_pseudonym``), unless the column's ``fake_style`` is ``"realistic"``: then a
        common fake name may equal a real one by coincidence (drawn without the data, it says nothing about it),
        and a warning says so.
        """
        super().forget_values()
        self.seen_ = []
        self.case_ = None
        self.private_ = True
        if self.pii_type_ in _NAME_TYPES and self.options.get("fake_style") == "realistic":
            warnings.warn(
                f"column {self.name_!r}: fake_style='realistic' under differential privacy: fake names are drawn "
                "without looking at the real ones, so a common name may equal a real person's name by coincidence "
                "(string-matching scans will flag it); drop fake_style for tagged pseudonyms that never can",
                UserWarning,
                stacklevel=3,  # the caller of fit
            )

    @property
    def pseudonyms(self) -> bool:
        """Whether names get a pseudonym tag: ``fake_style``, by default only in a DP fit (real names not kept)."""
        if self.pii_type_ not in _NAME_TYPES:
            return False
        style = self.options.get("fake_style")
        return style == "pseudonym" or (style is None and getattr(self, "private_", False))

    def _styled(self, values: list[str]) -> list[str]:
        if self.case_ == "lower":
            return [v.lower() for v in values]
        if self.case_ == "upper":
            return [v.upper() for v in values]
        return values

    def _fresh(self, fake: Any, count: int) -> list[str]:
        """``count`` fakes, none of which hashes like a real value."""
        private_email = self.pii_type_ == "email" and getattr(self, "private_", False)
        pseudonyms = self.pseudonyms

        def draw(k: int) -> list[str]:
            if private_email:
                return self._styled([_private_email(fake) for _ in range(k)])
            if pseudonyms:
                return self._styled([_pseudonym(v, fake) for v in _make_fakes(fake, self.pii_type_, k)])
            return self._styled(_make_fakes(fake, self.pii_type_, k))

        seen = np.asarray(self.seen_, dtype="int64")
        out = draw(count)
        for _ in range(1000):
            clash = np.flatnonzero(np.isin(_digest(out, self.hash_bits_), seen)) if len(seen) else []
            if not len(clash):
                return out
            for i, v in zip(clash, draw(len(clash)), strict=True):
                out[i] = v
        raise RuntimeError(f"column {self.name_!r}: no fake value avoids the real ones")  # pragma: no cover

    def _generate(self, n: int, rng: np.random.Generator, offset: int) -> np.ndarray:
        fake = self._faker
        fake.seed_instance(int(rng.integers(2**31)))
        m = min(n, _POOL)
        arr = np.asarray(self._fresh(fake, m), dtype=object)
        return arr[rng.integers(0, m, size=n)] if m < n else arr

    def generate_per_entity(self, entities: pd.Series, call_key: int) -> pd.Series:
        """One fake per entity value, a function of ``(call_key, entity)``: the same in every chunk of a call."""
        fake = self._faker
        keys = entities.astype(object).where(entities.notna(), None).astype(str).to_numpy()
        uniq, inverse = np.unique(keys, return_inverse=True)
        values = np.empty(len(uniq), dtype=object)
        missing = np.zeros(len(uniq), dtype=bool)
        for i, key in enumerate(uniq):
            h = hashlib.blake2b(f"{call_key}|{self.name_}|{key}".encode(), digest_size=8).digest()
            seed = int.from_bytes(h, "big")
            fake.seed_instance(seed >> 33)
            values[i] = self._fresh(fake, 1)[0]
            missing[i] = (seed & 0xFFFFFFFF) / 2**32 < self.missing_rate_
        out = values[inverse]
        if missing.any():
            out[missing[inverse]] = None if self.dtype_ != "object" else np.nan
        return pd.Series(out, name=self.name_, dtype=object).astype(self.dtype_)
