"""Corpus readers; importing this package registers them all."""
from hmtl.data.readers import conll  # noqa: F401
