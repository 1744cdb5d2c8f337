"""The face mesh over a split: landmarks, scores and region label masks per image."""

from __future__ import annotations

import numpy as np

from emotion.regions.masks import region_labels
from emotion.regions.mesh import MESH_POINTS, FaceMesh
from emotion.regions.regionset import RegionSet


def fit_regions(
    mesh: FaceMesh, images: np.ndarray, paths: list[str], min_score: float
) -> RegionSet:
    """Fit the mesh on each image (H, W); unfit faces (score below ``min_score``) keep
    all-zero labels."""
    labels = np.zeros(images.shape, dtype=np.uint8)
    points = np.zeros((len(images), MESH_POINTS, 2), dtype=np.float32)
    scores = np.zeros(len(images), dtype=np.float32)
    fitted = np.zeros(len(images), dtype=bool)
    for i, image in enumerate(images):
        fit = mesh.fit(image)
        points[i], scores[i], fitted[i] = fit.points, fit.score, fit.score >= min_score
        if fitted[i]:
            labels[i] = region_labels(fit.points, image.shape)
    return RegionSet(paths, labels, points, scores, fitted)
