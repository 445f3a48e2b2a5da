"""Corpus readers; importing this package registers them all."""
from hmtl.data.readers import (ade, char_spans, conll, conll04, conll2012, conllu, eeqa, gum, litbank,  # noqa: F401
                               standoff, transition)
