"""Test-time augmentation: which views of a stored-size face image are classified and averaged.

Pure Python (no numpy), so params schemas can name the modes; the pixels are cut by
:meth:`emotion.vision.preprocessing.PreprocessingContract.views` (numpy) and
:meth:`emotion.training.tensordata.Preprocess.views` (torch).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from emotion.core.errors import DataError

TTAMode = Literal["none", "flip", "ten_crop"]
TTA_VIEWS = {"none": 1, "flip": 2, "ten_crop": 10}


@dataclass(frozen=True)
class TestTimeAugmentation:
    """Views of one stored-size image whose probabilities are averaged.

    ``none``: the image; ``flip``: it and its mirror; ``ten_crop``: the four corner crops and the
    centre crop of side ``round(crop * source_size)``, each also mirrored. Every view is then
    resized to the model's size like any image (:meth:`PreprocessingContract.batch`).
    """

    __test__ = False  # not a pytest test class

    mode: TTAMode
    crop: float

    AGGREGATE: ClassVar[str] = "mean_probability"  #: softmax(logits / T) per view, then mean

    @property
    def views(self) -> int:
        return TTA_VIEWS[self.mode]

    @property
    def mirrored(self) -> bool:
        return self.mode != "none"

    def boxes(self, source_size: int) -> list[tuple[int, int, int]]:
        """``(top, left, side)`` of each crop before mirroring, in view order."""
        if self.mode != "ten_crop":
            return [(0, 0, source_size)]
        side = max(1, round(self.crop * source_size))
        far, mid = source_size - side, (source_size - side) // 2
        return [(0, 0, side), (0, far, side), (far, 0, side), (far, far, side), (mid, mid, side)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "crop": self.crop,
            "views": self.views,
            "aggregate": self.AGGREGATE,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], origin: str) -> TestTimeAugmentation:
        """Parse :meth:`to_dict` output; ``origin`` names the file in errors."""
        mode, aggregate = data.get("mode"), data.get("aggregate")
        if mode not in TTA_VIEWS or aggregate != cls.AGGREGATE:
            raise DataError(
                f"{origin}: test-time augmentation {dict(data)} is not one this version applies"
                f" (modes {sorted(TTA_VIEWS)}, aggregate {cls.AGGREGATE!r}); re-export"
            )
        return cls(mode=mode, crop=float(data["crop"]))


NO_TTA = TestTimeAugmentation("none", 1.0)
