"""Task types; importing this package registers them all."""
from hmtl.tasks import crf_tagger  # noqa: F401
