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


def available_models() -> list[str]:
    """Names accepted by :func:`twinforge.create`, sorted."""
    return sorted(set(_CLASSES) | set(_LAZY))
