"""Task types; importing this package registers them all."""
from hmtl.tasks import coreference, crf_tagger, relation, span_classifier  # noqa: F401
