"""Draw grayscale cartoon faces whose expression parameters define the six emotion classes.

A face is drawn in a unit frame at ``SUPERSAMPLE`` times the output size, transformed (rotation,
scale, shift), downsampled, then degraded (blur, occlusion, lighting gradient, noise). The same
geometry is drawn into a label mask of the regions that carry the expression (brows, eyes,
mouth), so explanation maps can be scored against ground truth.

Class prototypes overlap on purpose (fearful vs surprised, sad vs angry vs fearful brows), so
the task is learnable but not trivial: see :data:`PROTOTYPES` and :data:`SPREAD`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from emotion.demo_data.expressions import PROTOTYPES, Expression
from emotion.demo_data.params import DemoDataParams

SUPERSAMPLE = 4

#: Mask label values (0 is background / non-expressive face).
MASK_BROWS, MASK_EYES, MASK_MOUTH = 1, 2, 3
MASK_REGIONS = {"brows": MASK_BROWS, "eyes": MASK_EYES, "mouth": MASK_MOUTH}


#: Per-parameter standard deviation at ``expression_spread == 1``.
SPREAD = Expression(0.25, 0.25, 0.18, 0.25, 0.18, 0.10)
_LIMITS = Expression((-1.2, 1.2), (-1.2, 1.2), (0.15, 1.9), (-1.2, 1.2), (0.0, 1.1), (0.55, 1.45))


@dataclass(frozen=True)
class Identity:
    """Who the face is: shape, tones and feature layout (fractions of the canvas)."""

    head_w: float
    head_h: float
    skin: float
    background: float
    hair: float | None
    eye_y: float
    eye_dx: float
    eye_rx: float
    eye_ry: float
    iris: float
    brow_gap: float
    brow_len: float
    brow_thick: float
    brow_tone: float
    nose_len: float
    mouth_y: float
    mouth_hw: float
    lip_tone: float


@dataclass(frozen=True)
class Nuisance:
    """Capture conditions that do not change the label."""

    rotation_deg: float
    scale: float
    shift_x: float
    shift_y: float
    blur: float
    noise_std: float
    light_gain: float
    light_angle: float
    contrast: float
    occluder: tuple[float, float, float, float, float] | None  # cx, cy, w, h, tone


def sample_expression(rng: np.random.Generator, label: str, spread: float) -> Expression:
    """Draw an expression around the class prototype (Gaussian, clipped to plausible limits)."""
    proto, sd, lim = asdict(PROTOTYPES[label]), asdict(SPREAD), asdict(_LIMITS)
    values = {k: float(np.clip(rng.normal(proto[k], sd[k] * spread), *lim[k])) for k in proto}
    return Expression(**values)


def sample_identity(rng: np.random.Generator) -> Identity:
    """Draw a random identity (face shape, skin/background tone, feature spacing and sizes)."""
    head_w = rng.uniform(0.29, 0.36)
    skin = rng.uniform(105, 205)
    background = rng.uniform(20, 235)
    while abs(background - skin) < 30:
        background = rng.uniform(20, 235)
    hair = rng.uniform(15, 90) if rng.random() < 0.75 else None
    eye_rx = rng.uniform(0.045, 0.060)
    return Identity(
        head_w=head_w,
        head_h=head_w * rng.uniform(1.15, 1.32),
        skin=skin,
        background=background,
        hair=hair,
        eye_y=0.45 + rng.uniform(-0.025, 0.025),
        eye_dx=rng.uniform(0.11, 0.145),
        eye_rx=eye_rx,
        eye_ry=eye_rx * rng.uniform(0.55, 0.72),
        iris=rng.uniform(15, 70),
        brow_gap=rng.uniform(0.055, 0.075),
        brow_len=rng.uniform(0.085, 0.115),
        brow_thick=rng.uniform(0.018, 0.030),
        brow_tone=rng.uniform(15, 80),
        nose_len=rng.uniform(0.08, 0.12),
        mouth_y=0.71 + rng.uniform(-0.025, 0.025),
        mouth_hw=rng.uniform(0.085, 0.115),
        lip_tone=skin - rng.uniform(35, 75),
    )


def sample_nuisance(rng: np.random.Generator, ranges: DemoDataParams) -> Nuisance:
    """Draw capture conditions within the ``demo_data`` section's nuisance ranges."""
    occluder = None
    if rng.random() < ranges.occlusion_prob:
        occluder = (
            float(rng.uniform(0.25, 0.75)),
            float(rng.uniform(0.3, 0.85)),
            float(rng.uniform(0.15, 0.45)),
            float(rng.uniform(0.12, 0.30)),
            float(rng.uniform(0, 255)),
        )
    return Nuisance(
        rotation_deg=rng.uniform(-1, 1) * ranges.max_rotation_deg,
        scale=rng.uniform(*ranges.scale_range),
        shift_x=rng.uniform(-1, 1) * ranges.max_shift,
        shift_y=rng.uniform(-1, 1) * ranges.max_shift,
        blur=rng.uniform(0, ranges.blur_max),
        noise_std=rng.uniform(0, ranges.noise_std_max),
        light_gain=rng.uniform(-50, 50),
        light_angle=rng.uniform(0, 2 * np.pi),
        contrast=rng.uniform(0.8, 1.2),
        occluder=occluder,
    )


# --------------------------------------------------------------------------- drawing


class _Canvas:
    """An image and its label mask drawn together in unit coordinates."""

    def __init__(self, px: int, background: float) -> None:
        self.px = px
        self.image = Image.new("L", (px, px), round(background))
        self.mask = Image.new("L", (px, px), 0)
        self.draw = ImageDraw.Draw(self.image)
        self.mask_draw = ImageDraw.Draw(self.mask)

    def xy(self, points: list[tuple[float, float]]) -> list[tuple[float, float]]:
        return [(x * self.px, y * self.px) for x, y in points]

    def box(self, cx: float, cy: float, rx: float, ry: float) -> list[float]:
        s = self.px
        return [(cx - rx) * s, (cy - ry) * s, (cx + rx) * s, (cy + ry) * s]


def _mouth_curves(ident: Identity, expr: Expression) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    hw = ident.mouth_hw * expr.mouth_width
    x = np.linspace(-1.0, 1.0, 25)
    centre = ident.mouth_y - expr.mouth_curve * 0.045 * (x**2 - 0.3)
    gap = expr.mouth_open * 0.05 * (1 - x**2)
    return 0.5 + x * hw, centre - gap * 0.35, centre + gap


def _draw_brows(c: _Canvas, ident: Identity, expr: Expression, features: bool) -> None:
    for side in (-1, 1):
        inner_x = 0.5 + side * (ident.eye_dx - ident.brow_len * 0.45)
        outer_x = 0.5 + side * (ident.eye_dx + ident.brow_len * 0.55)
        base_y = ident.eye_y - ident.eye_ry - ident.brow_gap - expr.brow_raise * 0.035
        inner_y = base_y + expr.brow_slant * 0.028
        outer_y = base_y - expr.brow_slant * 0.012
        pts = c.xy([(inner_x, inner_y), (outer_x, outer_y)])
        width = max(1, round(ident.brow_thick * c.px))
        c.mask_draw.line(pts, fill=MASK_BROWS, width=int(width * 2.2))
        if features:
            c.draw.line(pts, fill=int(ident.brow_tone), width=width)


def _draw_eyes(c: _Canvas, ident: Identity, expr: Expression, features: bool) -> None:
    ry = max(ident.eye_ry * expr.eye_open, 0.006)
    for side in (-1, 1):
        cx = 0.5 + side * ident.eye_dx
        c.mask_draw.ellipse(c.box(cx, ident.eye_y, ident.eye_rx * 1.35, ry + 0.02), fill=MASK_EYES)
        if not features:
            continue
        c.draw.ellipse(
            c.box(cx, ident.eye_y, ident.eye_rx, ry), fill=235, outline=int(ident.iris), width=2
        )
        iris_r = min(ident.eye_rx * 0.45, ry)
        c.draw.ellipse(c.box(cx, ident.eye_y, iris_r, iris_r * 0.98), fill=int(ident.iris))


def _draw_mouth(c: _Canvas, ident: Identity, expr: Expression, features: bool) -> None:
    xs, upper, lower = _mouth_curves(ident, expr)
    outline = c.xy(
        list(zip(xs, upper, strict=True)) + list(zip(xs[::-1], lower[::-1], strict=True))
    )
    pad = round(0.035 * c.px)
    c.mask_draw.line(outline + outline[:1], fill=MASK_MOUTH, width=2 * pad, joint="curve")
    c.mask_draw.polygon(outline, fill=MASK_MOUTH)
    if not features:
        return
    lip_w = max(2, round(0.014 * c.px))
    if expr.mouth_open > 0.08:
        c.draw.polygon(outline, fill=25, outline=int(ident.lip_tone))
    c.draw.line(c.xy(list(zip(xs, upper, strict=True))), fill=int(ident.lip_tone), width=lip_w)
    c.draw.line(c.xy(list(zip(xs, lower, strict=True))), fill=int(ident.lip_tone), width=lip_w)


def _draw_head(c: _Canvas, ident: Identity) -> None:
    cy = 0.52
    neck = round(ident.skin * 0.85)
    c.draw.rectangle(
        c.box(0.5, cy + ident.head_h, ident.head_w * 0.45, ident.head_h * 0.5), fill=neck
    )
    if ident.hair is not None:
        c.draw.ellipse(
            c.box(0.5, cy - 0.04, ident.head_w * 1.08, ident.head_h * 1.02), fill=int(ident.hair)
        )
    c.draw.ellipse(c.box(0.5, cy, ident.head_w, ident.head_h), fill=int(ident.skin))
    shade = round(ident.skin * 0.72)
    nose_top, nose_tip = ident.eye_y + 0.03, ident.eye_y + 0.03 + ident.nose_len
    c.draw.line(c.xy([(0.5, nose_top), (0.512, nose_tip)]), fill=shade, width=max(1, c.px // 60))
    c.draw.line(c.xy([(0.485, nose_tip), (0.525, nose_tip)]), fill=shade, width=max(1, c.px // 60))


def _affine_inverse(n: Nuisance, px: int) -> tuple[float, ...]:
    """PIL affine data (output -> input) for rotate+scale about the centre, then shift."""
    theta = np.deg2rad(n.rotation_deg)
    cos, sin = np.cos(theta) / n.scale, np.sin(theta) / n.scale
    c = px / 2.0
    tx, ty = n.shift_x * px, n.shift_y * px
    # input = R^-1 S^-1 (output - c - t) + c
    a, b = cos, sin
    d, e = -sin, cos
    ox, oy = c + tx, c + ty
    return (a, b, c - a * ox - b * oy, d, e, c - d * ox - e * oy)


def render_face(
    ident: Identity,
    expr: Expression,
    nuis: Nuisance,
    size: int,
    rng: np.random.Generator,
    *,
    features: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Render one face; returns ``(image uint8 HxW, mask uint8 HxW with MASK_* labels)``.

    ``features=False`` draws the same face without brows, eyes and mouth (used by tests to
    check that the mask covers exactly what the expression changes). ``rng`` drives the pixel
    noise only, so the geometry is fully determined by the three parameter records.
    """
    c = _Canvas(size * SUPERSAMPLE, ident.background)
    _draw_head(c, ident)
    _draw_mouth(c, ident, expr, features)
    _draw_eyes(c, ident, expr, features)
    _draw_brows(c, ident, expr, features)

    data = _affine_inverse(nuis, c.px)
    fill = round(ident.background)
    image = c.image.transform(
        c.image.size, Image.Transform.AFFINE, data, Image.Resampling.BICUBIC, fillcolor=fill
    )
    mask = c.mask.transform(
        c.mask.size, Image.Transform.AFFINE, data, Image.Resampling.NEAREST, fillcolor=0
    )
    image = image.resize((size, size), Image.Resampling.BOX)
    if nuis.blur > 0.05:
        image = image.filter(ImageFilter.GaussianBlur(nuis.blur))

    pixels = np.asarray(image, dtype=np.float32)
    # any-coverage downsampling: a pixel belongs to a region if any sub-pixel does
    labels = (
        np.asarray(mask, dtype=np.uint8)
        .reshape(size, SUPERSAMPLE, size, SUPERSAMPLE)
        .max(axis=(1, 3))
    )
    if nuis.occluder is not None:
        ox, oy, ow, oh, tone = nuis.occluder
        yy, xx = np.mgrid[0:size, 0:size] / size
        inside = (np.abs(xx - ox) <= ow / 2) & (np.abs(yy - oy) <= oh / 2)
        pixels[inside] = tone
        labels[inside] = 0  # hidden regions carry no visible expression

    yy, xx = (np.mgrid[0:size, 0:size] / size) - 0.5
    ramp = xx * np.cos(nuis.light_angle) + yy * np.sin(nuis.light_angle)
    mean = pixels.mean()
    pixels = (pixels - mean) * nuis.contrast + mean + nuis.light_gain * ramp
    if nuis.noise_std > 0:
        pixels += rng.normal(0.0, nuis.noise_std, pixels.shape).astype(np.float32)
    return np.clip(np.rint(pixels), 0, 255).astype(np.uint8), labels
