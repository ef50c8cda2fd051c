"""The exception family of neuroswap.

One root (`NeuroswapError`) so that callers can catch everything neuroswap raises on purpose,
and specific subclasses so that they can catch only what they can handle.
"""

from __future__ import annotations


class NeuroswapError(Exception):
    """Root of every error neuroswap raises on purpose."""


class InvalidArgument(NeuroswapError, ValueError):
    """An argument has a value neuroswap cannot work with; the message names it and the fix."""


class StoreError(NeuroswapError):
    """A trace store cannot be opened, read or written."""


class CorruptStoreError(StoreError):
    """A file is not a neuroswap trace store, or is damaged; it is left untouched."""


class SchemaError(NeuroswapError):
    """The inputs or outputs of a function cannot be described by a schema."""


class OutOfDomainError(NeuroswapError, ValueError):
    """An input lies outside the domain a surrogate was trained on (type, range, category)."""


class NotFittedError(NeuroswapError, RuntimeError):
    """An estimator was used before it learned anything; the message says what to call."""


class SurrogateFileError(NeuroswapError):
    """A saved surrogate is truncated, tampered with, or not a neuroswap surrogate."""


class VerificationError(NeuroswapError):
    """Verification could not run (not: the candidate disagreed, which is a report)."""


class MissingDependencyError(NeuroswapError, ImportError):
    """An optional dependency is absent; the message names the extra to install."""
