"""Corpus readers; importing this package registers them all."""
from hmtl.data.readers import conll, conll04, conllu, gum, litbank  # noqa: F401
