"""Synthetic training images: Stable Diffusion generation, quality control and provenance."""
