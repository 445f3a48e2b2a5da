"""Corpus readers; importing this package registers them all."""
from hmtl.data.readers import char_spans, conll, conll04, conllu, gum, litbank, standoff, transition  # noqa: F401
