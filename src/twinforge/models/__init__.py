"""Model families, one per file, registered by name (see :mod:`twinforge.models._registry`)."""

from twinforge.models._registry import available_models, get_class, register
from twinforge.models.base import CHUNK_ROWS, Synthesizer, load

__all__ = ["CHUNK_ROWS", "Synthesizer", "available_models", "get_class", "load", "register"]
