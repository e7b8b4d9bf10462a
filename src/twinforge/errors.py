"""The exceptions twinforge raises.

Every error a user can cause derives from :class:`TwinforgeError`, so one ``except`` catches them all,
and each also derives from the built-in exception a Python user would expect::

    TwinforgeError
    ├── DataError            (ValueError)    the data itself: empty, unreadable, wrong dtype, all-null column
    ├── MetadataError        (ValueError)    metadata invalid or not matching the data; lists every problem
    ├── ParameterError       (ValueError)    a bad argument: unknown model, rows <= 0, unknown parameter
    ├── NotFittedError       (RuntimeError)  a post-fit method called before ``fit``
    ├── OutputError          (OSError)       an output that exists, or that would overwrite an input
    └── ModelFileError       (OSError)       a model directory that is missing, foreign, corrupted or too new

Messages name what was wrong, where, and how to fix it; the CLI prints them and exits with code 2.
"""

from __future__ import annotations


class TwinforgeError(Exception):
    """Base class of every error twinforge raises on purpose."""


class DataError(TwinforgeError, ValueError):
    """The data cannot be used as given."""


class MetadataError(TwinforgeError, ValueError):
    """Metadata is invalid or does not match the data.

    ``problems`` holds every problem found, so all of them can be fixed in one go.
    """

    def __init__(self, problems: list[str] | str, header: str = "metadata problems"):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{header} ({len(self.problems)}):\n{lines}")


class ParameterError(TwinforgeError, ValueError):
    """An argument has a value that cannot work."""


class NotFittedError(TwinforgeError, RuntimeError):
    """The model has not been fitted yet."""


class OutputError(TwinforgeError, OSError):
    """An output cannot be written where it was asked to go."""


class ModelFileError(TwinforgeError, OSError):
    """A saved model cannot be loaded."""
