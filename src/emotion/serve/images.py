"""Untrusted image bytes -> one upright RGB frame, or an ``ImageError`` naming the problem.

Per-mode policy (each case is deliberate and tested):

* ``RGB``, ``L``, ``1``, ``CMYK``, ``YCbCr``, ``LAB``, ``HSV`` and palette (``P``) images are
  converted to RGB (CMYK without colour management, which is plenty for a grayscale model).
* Transparency (``RGBA``, ``LA``, ``PA``, palette with a transparent index) is flattened onto white.
* High bit depth (``I;16*``, ``I``, ``F``) is rejected (415): its display range is ambiguous.
* Animated images and multi-page files (more than one frame) are rejected (415).
* Only JPEG, PNG, WebP, GIF, BMP and TIFF are parsed; anything else is rejected (415) without
  reaching Pillow's other plugins (EPS, for one, would run Ghostscript).
* More than ``max_pixels`` pixels is rejected (413) from the header, before decoding.
* EXIF orientation is applied, so boxes refer to the image as a viewer shows it.
"""

from __future__ import annotations

import io

from PIL import Image, ImageOps, UnidentifiedImageError

from emotion.core.errors import DataError

FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")
HIGH_DEPTH_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I", "F"})
ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})


class ImageError(DataError):
    """An upload that is not a usable image: HTTP ``status`` and a message saying what to do."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def _flatten(image: Image.Image) -> Image.Image:
    has_alpha = image.mode in ALPHA_MODES or (image.mode == "P" and "transparency" in image.info)
    if not has_alpha:
        return image.convert("RGB")
    white = Image.new("RGBA", image.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, image.convert("RGBA")).convert("RGB")


def decode_image(data: bytes, max_pixels: int) -> Image.Image:
    """Decode ``data`` fully into an upright RGB image, enforcing the policy above."""
    if not data:
        raise ImageError(422, "the image is empty (0 bytes); send a JPEG or PNG photo")
    try:
        image = Image.open(io.BytesIO(data), formats=FORMATS)
    except UnidentifiedImageError:
        raise ImageError(415, f"not a supported image; send one of {', '.join(FORMATS)}") from None
    except Image.DecompressionBombError:
        raise ImageError(413, f"image has too many pixels (limit {max_pixels:,})") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(422, f"unreadable image header ({exc}); re-save or re-upload it") from None
    with image:
        width, height = image.size
        if width * height > max_pixels:
            raise ImageError(
                413,
                f"image is {width}x{height} = {width * height:,} pixels, over the limit of "
                f"{max_pixels:,}; downscale it (a face needs only a few hundred pixels)",
            )
        if getattr(image, "is_animated", False):
            frames = getattr(image, "n_frames", "several")
            raise ImageError(
                415,
                f"animated or multi-page {image.format} ({frames} frames) is not supported; "
                "send a single still frame",
            )
        if image.mode in HIGH_DEPTH_MODES:
            raise ImageError(
                415,
                f"{image.format} in mode {image.mode} (high bit depth) is not supported; "
                "save it as an 8-bit grayscale or RGB image",
            )
        try:
            image.load()
            upright = ImageOps.exif_transpose(image)
            return _flatten(upright)
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise ImageError(
                422,
                f"{image.format} image is truncated or corrupt ({exc}); re-save or re-upload it",
            ) from None
