"""Task types; importing this package registers them all."""
from hmtl.tasks import classifier, coreference, crf_tagger, event, relation, span_classifier  # noqa: F401
