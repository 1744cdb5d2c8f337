"""Emotion Pipeline: a DVC-versioned, reproducible facial emotion recognition pipeline."""

__version__ = "0.1.0"
