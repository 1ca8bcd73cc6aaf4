"""The container code's failures. They cannot be plexus_infra's PlexusError (the container has no plexus_infra);
`plexus` maps ContainerError to one line and exit 1 all the same, and the training entry writes it to SageMaker's
failure file."""

from __future__ import annotations


class ContainerError(Exception):
    """Base of every expected failure of the container code: one line for a person, no traceback."""


class DataError(ContainerError):
    """The training data cannot train a classifier."""


class DamagedModel(ContainerError):
    """The artifacts directory exists but cannot be loaded: `{directory}: damaged model: what` (`damaged`)."""


def damaged(directory: object, what: str) -> DamagedModel:
    """The one shape of a damaged model's error, for the torch form and the ONNX form alike."""
    return DamagedModel(f"{directory}: damaged model: {what}")


def first_line(exc: BaseException) -> str:
    """An exception's message as one line of at most 200 characters (its type's name when it has none): what a
    one-line error quotes of a library's failure."""
    text = " ".join(str(exc).split())
    return (text[:200] + "…" if len(text) > 200 else text) or type(exc).__name__
