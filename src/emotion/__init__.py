"""Emotion Pipeline: a DVC-versioned, reproducible facial emotion recognition pipeline."""

__version__ = "0.1.0"

#: The product's six expression classes, in label-index order.
CLASSES: tuple[str, ...] = ("angry", "fearful", "happy", "neutral", "sad", "surprised")
