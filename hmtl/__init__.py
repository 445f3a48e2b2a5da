"""hmtl: hierarchical multi-task learning for information extraction, with layer-wise probing."""

__version__ = "0.1.0"
