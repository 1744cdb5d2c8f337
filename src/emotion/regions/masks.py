"""Facial regions (brows, eyes, nose, mouth, cheeks) as label masks drawn from face-mesh points.

Region outlines are MediaPipe face-mesh vertex rings (the published topology's eyebrow, eye,
lip and nose contours; the cheeks are the ring from under the eye to the nasolabial fold and the
face edge, mirrored with the mesh's own left-right vertex pairs). Each part is grown about its
centroid by :data:`GROWTH` so a region covers the skin that moves with the feature, as the demo
generator's masks do, then filled at ``SUPERSAMPLE`` times the crop size; a crop pixel belongs
to a region if any sub-pixel does. Where parts overlap the earlier region in :data:`REGIONS` wins.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

#: Regions in priority order; label value = position + 1 (0: none). brows/eyes/mouth use the
#: same values as the demo generator's masks (``emotion.demo_data.faces.MASK_REGIONS``).
REGIONS: tuple[str, ...] = ("brows", "eyes", "mouth", "nose", "cheeks")
REGION_LABELS: dict[str, int] = {name: i + 1 for i, name in enumerate(REGIONS)}
EXPRESSIVE: tuple[str, ...] = ("brows", "eyes", "mouth")  #: what the demo generator masks

_RIGHT_CHEEK = (116, 117, 118, 119, 120, 47, 126, 142, 203, 206, 216, 207, 192, 213, 147, 123)
_LEFT_CHEEK = (345, 346, 347, 348, 349, 277, 355, 371, 423, 426, 436, 427, 416, 433, 376, 352)

#: Vertex rings per region: one ring per part (left and right where there are two).
OUTLINES: dict[str, tuple[tuple[int, ...], ...]] = {
    "brows": (
        (70, 63, 105, 66, 107, 55, 65, 52, 53, 46),
        (300, 293, 334, 296, 336, 285, 295, 282, 283, 276),
    ),
    "eyes": (
        (33, 246, 161, 160, 159, 158, 157, 173, 133, 155, 154, 153, 145, 144, 163, 7),
        (263, 466, 388, 387, 386, 385, 384, 398, 362, 382, 381, 380, 374, 373, 390, 249),
    ),
    "mouth": (
        (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 375, 321, 405, 314, 17, 84, 181, 91, 146),
    ),
    "nose": ((168, 417, 351, 344, 278, 294, 327, 326, 2, 97, 98, 64, 48, 115, 122, 193),),
    "cheeks": (_RIGHT_CHEEK, _LEFT_CHEEK),
}

#: Scale of each part about its centroid (brows and eyes take in the lids and brow skin).
GROWTH: dict[str, float] = {"brows": 1.0, "eyes": 2.0, "mouth": 1.5, "nose": 1.0, "cheeks": 1.0}
SUPERSAMPLE = 4


def region_polygons(points: np.ndarray) -> dict[str, list[np.ndarray]]:
    """Each region's part outlines ``(k, 2)`` in the points' pixel coordinates."""
    out: dict[str, list[np.ndarray]] = {}
    for name, rings in OUTLINES.items():
        parts = []
        for ring in rings:
            xy = np.asarray(points, dtype=np.float64)[list(ring)]
            centre = xy.mean(axis=0)
            parts.append(centre + (xy - centre) * GROWTH[name])
        out[name] = parts
    return out


def region_labels(points: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A uint8 label mask ``(H, W)`` (values of :data:`REGION_LABELS`) for landmarks ``points``."""
    height, width = size
    canvas = Image.new("L", (width * SUPERSAMPLE, height * SUPERSAMPLE), 0)
    draw = ImageDraw.Draw(canvas)
    polygons = region_polygons(points)
    for name in reversed(REGIONS):  # later draws win: draw the lowest priority first
        for part in polygons[name]:
            draw.polygon([tuple(p) for p in part * SUPERSAMPLE], fill=REGION_LABELS[name])
    fine = np.asarray(canvas, dtype=np.uint8).reshape(height, SUPERSAMPLE, width, SUPERSAMPLE)
    # any-coverage downsampling; where regions meet in one pixel the higher priority wins
    coarse = np.zeros((height, width), dtype=np.uint8)
    for name in reversed(REGIONS):
        covered = (fine == REGION_LABELS[name]).any(axis=(1, 3))
        coarse[covered] = REGION_LABELS[name]
    return coarse


def region_mask(labels: np.ndarray, names: tuple[str, ...] | str) -> np.ndarray:
    """Boolean mask of the pixels labelled with any of ``names``."""
    names = (names,) if isinstance(names, str) else names
    return np.isin(labels, [REGION_LABELS[n] for n in names])


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two boolean masks (1.0 when both are empty)."""
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0
