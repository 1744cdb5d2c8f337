"""Datasets: verify and label raw images, the manifest, grouped splits, balancing augmentation."""
