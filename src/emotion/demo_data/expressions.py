"""The expressions the demo generator draws: one prototype per class, in label-index order.

These are the demo dataset's classes (``demo_data.class_proportions`` names exactly them); the
classes a model learns come from ``ingest.classes``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Expression:
    """Action-unit-like expression parameters.

    brow_raise: -1 lowered .. +1 raised; brow_slant: -1 inner ends up (sad/fear) .. +1 inner ends
    down (anger); eye_open: eyelid aperture relative to the identity's rest aperture;
    mouth_curve: -1 frown .. +1 smile; mouth_open: 0 closed .. 1 wide open; mouth_width: corner
    spread relative to rest.
    """

    brow_raise: float
    brow_slant: float
    eye_open: float
    mouth_curve: float
    mouth_open: float
    mouth_width: float


#: Mean expression per class (FACS-inspired: e.g. surprise = AU1+2 brow raise, AU5 wide eyes,
#: AU26 jaw drop; fear adds AU4-like inner-brow pull and AU20 lip stretch).
PROTOTYPES: dict[str, Expression] = {
    "angry": Expression(-0.55, 0.85, 0.80, -0.25, 0.10, 0.85),
    "fearful": Expression(0.60, -0.55, 1.35, -0.35, 0.45, 1.15),
    "happy": Expression(0.10, 0.00, 0.75, 0.85, 0.35, 1.20),
    "neutral": Expression(0.00, 0.00, 1.00, 0.00, 0.00, 1.00),
    "sad": Expression(-0.10, -0.70, 0.80, -0.70, 0.00, 0.95),
    "surprised": Expression(0.90, -0.05, 1.50, 0.00, 0.85, 0.70),
}

#: The classes the generator draws, in label-index order.
DEMO_CLASSES: tuple[str, ...] = tuple(PROTOTYPES)
