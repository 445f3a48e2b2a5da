"""The bundled sample corpus (written for this package): small enough for the quick start and the tests."""
from pathlib import Path

SAMPLE_DIR = Path(__file__).parent
