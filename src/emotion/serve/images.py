"""Untrusted image bytes -> one upright RGB frame of bounded size, or an ``ImageError``.

This module is the one place that bounds what an image may cost before any decoder or detector
sees its pixels. Per-mode policy (each case is deliberate and tested):

* ``RGB``, ``L``, ``1``, ``CMYK``, ``YCbCr``, ``LAB``, ``HSV`` and palette (``P``) images are
  converted to RGB (CMYK without colour management, which is plenty for a grayscale model).
* Transparency (``RGBA``, ``LA``, ``PA``, palette with a transparent index) is flattened onto white.
* High bit depth (``I;16*``, ``I``, ``F``) is rejected (415): its display range is ambiguous.
* Animated images and multi-page files (more than one frame) are rejected (415); an MPO JPEG
  (a still photo plus previews or a second view, as some phones write) is read as its first frame.
* Only JPEG, PNG, WebP, GIF, BMP and TIFF are parsed; anything else is rejected (415) without
  reaching Pillow's other plugins (EPS, for one, would run Ghostscript).
* More than ``max_pixels`` pixels, or a side longer than ``max_side``, is rejected (413) from the
  header, before decoding.
* The decoded frame is at most ``WORK_SIDE`` px on its longer side: JPEGs are decoded at a
  reduced scale by the codec itself (``Image.draft``), other formats are resized after decoding.
  ``Decoded.scale`` maps its pixels back to the uploaded image's. Images of more than
  ``LARGE_PIXELS`` are decoded at most ``large_slots`` at a time (:class:`DecodeGate`), so
  concurrent requests never hold more than that many full-size decodes.
* EXIF orientation is applied, so boxes refer to the image as a viewer shows it.
* Anything else a decoder raises on these bytes (corrupt headers, EXIF, chunks) is a 422.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from emotion.core.errors import DataError

FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")
HIGH_DEPTH_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I", "F"})
ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})
#: Longer side of the frame the server works on (a face in it still has hundreds of pixels).
WORK_SIDE = 2048
#: An image over this many pixels (4 MP) is "large": its full-size decode passes a DecodeGate.
LARGE_PIXELS = 4_194_304
#: Formats whose extra frames are not an animation: the first frame is the photo.
STILL_MULTIFRAME = frozenset({"MPO"})


class ImageError(DataError):
    """An upload that is not a usable image: HTTP ``status`` and a message saying what to do."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclass(frozen=True)
class ImageLimits:
    """What an upload may cost: pixel count and longest side, both checked from the header."""

    max_pixels: int
    max_side: int

    def check(self, width: int, height: int) -> None:
        """Raise 413 naming the limit an image of ``width`` x ``height`` exceeds."""
        if width * height > self.max_pixels:
            raise ImageError(
                413,
                f"image is {width}x{height} = {width * height:,} pixels, over the limit of "
                f"{self.max_pixels:,}; downscale it (a face needs only a few hundred pixels)",
            )
        if max(width, height) > self.max_side:
            raise ImageError(
                413,
                f"image is {width}x{height}, a side over the limit of {self.max_side:,} px; "
                "crop or downscale it",
            )


class DecodeGate:
    """At most ``slots`` large images decode at once; other threads wait their turn."""

    def __init__(self, slots: int) -> None:
        self._slots = threading.BoundedSemaphore(slots)
        self.large_decodes = 0  #: how many large images have passed (read by the server)

    @contextmanager
    def admit(self, pixels: int) -> Iterator[None]:
        """Hold a slot while decoding an image of ``pixels`` if it is large."""
        if pixels <= LARGE_PIXELS:
            yield
            return
        with self._slots:
            self.large_decodes += 1
            yield


@dataclass(frozen=True)
class Decoded:
    """An upright RGB frame and the factor from its pixels to the uploaded image's (>= 1)."""

    image: Image.Image
    scale: float


def _flatten(image: Image.Image) -> Image.Image:
    has_alpha = image.mode in ALPHA_MODES or (image.mode == "P" and "transparency" in image.info)
    if not has_alpha:
        return image.convert("RGB")
    white = Image.new("RGBA", image.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, image.convert("RGBA")).convert("RGB")


def _bounded(image: Image.Image) -> Image.Image:
    """``image`` with its longer side at most ``WORK_SIDE`` (aspect kept, each side >= 1)."""
    width, height = image.size
    if max(width, height) <= WORK_SIDE:
        return image
    factor = WORK_SIDE / max(width, height)
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    return image.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)


def _open(data: bytes, limits: ImageLimits) -> Image.Image:
    if not data:
        raise ImageError(422, "the image is empty (0 bytes); send a JPEG or PNG photo")
    try:
        return Image.open(io.BytesIO(data), formats=FORMATS)
    except UnidentifiedImageError:
        raise ImageError(415, f"not a supported image; send one of {', '.join(FORMATS)}") from None
    except Image.DecompressionBombError:
        raise ImageError(413, f"image has too many pixels (limit {limits.max_pixels:,})") from None
    except Exception as exc:  # any decoder failure on untrusted bytes is the bytes' problem
        raise ImageError(422, f"unreadable image header ({exc}); re-save or re-upload it") from None


def _check_frames(image: Image.Image) -> None:
    if image.format in STILL_MULTIFRAME or not getattr(image, "is_animated", False):
        return
    frames = getattr(image, "n_frames", "several")
    raise ImageError(
        415,
        f"animated or multi-page {image.format} ({frames} frames) is not supported; "
        "send a single still frame",
    )


def decode_image(data: bytes, limits: ImageLimits, gate: DecodeGate | None = None) -> Decoded:
    """Decode ``data`` into an upright RGB frame of bounded size, enforcing the policy above;
    a large image waits for a slot of ``gate`` before its pixels are decoded."""
    image = _open(data, limits)
    with image:
        try:
            original = image.size
            limits.check(*original)
            _check_frames(image)
            if image.mode in HIGH_DEPTH_MODES:
                raise ImageError(
                    415,
                    f"{image.format} in mode {image.mode} (high bit depth) is not supported; "
                    "save it as an 8-bit grayscale or RGB image",
                )
            if image.format in ("JPEG", "MPO") and max(original) > WORK_SIDE:
                factor = WORK_SIDE / max(original)
                image.draft("RGB", (round(original[0] * factor), round(original[1] * factor)))
            with gate.admit(original[0] * original[1]) if gate else nullcontext():
                image.load()
                upright = _bounded(_flatten(ImageOps.exif_transpose(image)))
        except ImageError:
            raise
        except Exception as exc:  # corrupt data, EXIF or chunks: never a server error
            raise ImageError(
                422,
                f"{image.format} image is truncated or corrupt ({type(exc).__name__}: {exc}); "
                "re-save or re-upload it",
            ) from None
    return Decoded(upright, max(original) / max(upright.size))
