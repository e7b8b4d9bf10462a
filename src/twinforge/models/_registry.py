"""An explicit registry: model name -> class, filled by ``@register(name)`` in each model's module.

Modules with heavy imports (torch) are registered lazily by import path, so that listing the models
never imports torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from twinforge.errors import ParameterError

if TYPE_CHECKING:
    from twinforge.models.base import Synthesizer

_CLASSES: dict[str, type[Synthesizer]] = {}
# name -> "module:Class", imported on first use
_LAZY: dict[str, str] = {
    "auto": "twinforge.models.autoregressive:Autoregressive",
    "copula": "twinforge.models.copula:GaussianCopula",
    "ctgan": "twinforge.models.gan:CTGAN",
    "ddpm": "twinforge.models.diffusion:TabDDPM",
    "mst": "twinforge.models.marginal:MST",
    "sequence": "twinforge.sequences.model:SequenceModel",
    "tvae": "twinforge.models.vae:TVAE",
}


def register(name: str):
    """Class decorator: make a synthesizer available as ``twinforge.create(name)``."""

    def wrap(cls: type[Synthesizer]) -> type[Synthesizer]:
        cls.name = name
        _CLASSES[name] = cls
        return cls

    return wrap


def get_class(name: str) -> type[Synthesizer]:
    if name not in _CLASSES:
        if name not in _LAZY:
            raise ParameterError(f"unknown model {name!r}; available models: {', '.join(available_models())}")
        module, _, _attr = _LAZY[name].partition(":")
        importlib.import_module(module)
    return _CLASSES[name]


# What each model learns from: "table" (one row per record, the default) or "sequence" (per-entity time series)
_KIND: dict[str, str] = {"sequence": "sequence"}


def available_models(kind: str | None = None) -> list[str]:
    """Names accepted by :func:`twinforge.create`, sorted; ``kind`` ("table" or "sequence") filters them."""
    names = sorted(set(_CLASSES) | set(_LAZY))
    if kind is None:
        return names
    if kind not in ("table", "sequence"):
        raise ParameterError(f"kind must be 'table' or 'sequence', got {kind!r}")
    return [n for n in names if _KIND.get(n, "table") == kind]
