"""Errors of the probing tools; all are ``HmtlError``s so the command-line scripts print them as one line."""
from hmtl.errors import HmtlError


class ProbingError(HmtlError):
    """A probing run cannot go on: names the task, layer, file or folder at fault."""


class UnknownTaskError(ProbingError, ValueError):
    """A probing task name that is none of the ten (nor one of their aliases)."""


class UnknownLayerError(ProbingError, ValueError):
    """A layer the encoder does not produce."""


class SentEvalNotInstalledError(ProbingError, ImportError):
    """``--backend senteval`` without the ``senteval`` package."""
