"""Synthetic schematic faces with known discriminative regions: the embedded default dataset.

The eight expressions of :data:`analysis.labels.LABELS` are drawn as clean schematic faces whose
expression is carried by facial action units (FACS, Ekman & Friesen 1978; TP §3.1, Figure 1) in four
regions: brows, eyes, nose and mouth. Each label differs from the neutral face of the same identity
*only* in the regions listed in :data:`EXPRESSIONS`, so every face comes with a ground-truth mask of the
region(s) a classifier has to look at. This stands in for the corpora of RBDM §4 (no download needed)
and lets saliency maps (RBDM §5.2) be checked against the truth. Its loader,
:class:`analysis.datasets.synthetic.SyntheticLoader`, streams these faces like any other dataset.

Identity nuisance (face shape, skin tone, hair, background, position, size, roll, noise) and the
expression intensity are random, so that a classifier must look at the expression regions.
Faces are rendered with numpy from signed-distance fields with a one-pixel anti-aliasing ramp, so
they are equally clean at 48 px and at the 1200 px of the labeling screen (RBDM §5.3.1).

:func:`simulate_fixations` and :func:`simulate_fixation_durations` are a clearly-named simulator of an
annotator's gaze on these faces (RBDM §5.3.2, Figure 7: eyes, nose and mouth), used where no eye
tracker and no human are available (demo, tests).

Coordinates follow the project convention: points are ``(x, y)`` with x = column and y = row, pixel
``[row, col]`` is the point ``(x=col, y=row)``.

References
----------
.. [1] Schiller et al. (2020), Relevance-Based Data Masking, §4 (datasets, 8 labels), §5.3 (gaze on
   eyes, nose and mouth, Figure 7).
.. [2] Finzel et al. (2021), Temporal Prototypes, §3.1 (facial action units, Figure 1).
.. [3] Ekman & Friesen (1978), Facial Action Coding System; Lucey et al. (2010), CK+ (emotion–AU rules:
   disgust = nose wrinkle AU9 / upper lip raiser AU10).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from analysis._validation import check_positive
from analysis.labels import LABELS, label_index

__all__ = [
    "DEFAULT_NOISE_STD",
    "EXPRESSIONS",
    "INTENSITY_RANGE",
    "REGIONS",
    "Expression",
    "FaceIdentity",
    "SyntheticFace",
    "draw_expression",
    "make_face",
    "make_faces",
    "sample_identity",
    "simulate_fixation_durations",
    "simulate_fixations",
]

#: The facial regions an expression can change, in drawing order from top to bottom.
REGIONS: tuple[str, ...] = ("brows", "eyes", "nose", "mouth")
#: Range of the random expression intensity (1 = the displacements of :data:`EXPRESSIONS`).
INTENSITY_RANGE: tuple[float, float] = (0.7, 1.0)
#: Default standard deviation of the additive Gaussian pixel noise (image values in [0, 1]).
DEFAULT_NOISE_STD = 0.02

_RGB = tuple[float, float, float]
_XY = tuple[float, float]
_FloatArray = NDArray[np.float64]

# Face half-height as a fraction of the image size at identity scale 1.
_FACE_HALF_HEIGHT_PER_SIZE = 0.37
# Ground-truth masks reach this far (× face half-height, at least one pixel) beyond a feature's edge.
_MASK_MARGIN_PER_FACE = 0.1
# Default scatter of simulated fixations around their target, as a fraction of the image size.
_FIXATION_SPREAD_PER_SIZE = 0.03
_LUMA: _RGB = (0.299, 0.587, 0.114)


# --------------------------------------------------------------------------------------------------
# The declarative expression table
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Expression:
    """How far an expression moves each facial feature away from neutral, at intensity 1.

    Displacements are in units of the face half-height (y grows downwards); the nose wrinkle is a
    0–1 strength. A field that is 0 leaves its region exactly as in the neutral face.

    Parameters
    ----------
    brow_raise : float
        Whole brow up (+, AU1+2) or down (−, AU4).
    brow_inner_raise : float
        Inner brow end up (+, AU1) or down (−, AU4), on top of ``brow_raise``.
    brow_together : float
        Inner brow ends pulled towards the midline (AU4).
    lid_open : float
        Relative change of the eye aperture: widen (+, upper lid raiser AU5) or narrow (−, lid
        tightener AU7).
    nose_wrinkle : float
        Wrinkle lines on the nose bridge and a raised, flared nose base (AU9), 0–1.
    upper_lip_raise : float
        Centre of the upper lip raised, opening the mouth below it (AU10).
    mouth_corner_raise : float
        Both lip corners up (+, AU12) or down (−, AU15).
    mouth_corner_raise_right : float
        Only the image-right lip corner up: one-sided raise (unilateral AU12/AU14).
    mouth_stretch : float
        Lip corners pulled outwards (+, AU20) or inwards (−, rounding for AU27).
    mouth_open : float
        Lower lip dropped, opening the mouth (AU25–27).

    References
    ----------
    .. [1] Finzel et al. (2021), Temporal Prototypes, §3.1 and Figure 1 (action units).
    .. [2] Ekman & Friesen (1978), Facial Action Coding System.
    """

    brow_raise: float = 0.0
    brow_inner_raise: float = 0.0
    brow_together: float = 0.0
    lid_open: float = 0.0
    nose_wrinkle: float = 0.0
    upper_lip_raise: float = 0.0
    mouth_corner_raise: float = 0.0
    mouth_corner_raise_right: float = 0.0
    mouth_stretch: float = 0.0
    mouth_open: float = 0.0

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if not math.isfinite(value) or abs(value) > 2.0:
                raise ValueError(
                    f"Expression.{field.name} must be a finite displacement in [-2, 2] face "
                    f"half-heights; got {value!r}."
                )
        if self.nose_wrinkle < 0 or self.upper_lip_raise < 0 or self.mouth_open < 0:
            raise ValueError(
                "nose_wrinkle, upper_lip_raise and mouth_open cannot be negative; got "
                f"{self.nose_wrinkle!r}, {self.upper_lip_raise!r}, {self.mouth_open!r}."
            )

    @property
    def regions(self) -> tuple[str, ...]:
        """The regions this expression changes, in :data:`REGIONS` order."""
        moved = {_FIELD_REGION[f.name] for f in fields(self) if getattr(self, f.name) != 0.0}
        return tuple(region for region in REGIONS if region in moved)

    def scaled(self, intensity: float) -> Expression:
        """The same expression with every displacement multiplied by ``intensity``."""
        return replace(self, **{f.name: getattr(self, f.name) * intensity for f in fields(self)})


_FIELD_REGION: dict[str, str] = {
    "brow_raise": "brows",
    "brow_inner_raise": "brows",
    "brow_together": "brows",
    "lid_open": "eyes",
    "nose_wrinkle": "nose",
    "upper_lip_raise": "mouth",
    "mouth_corner_raise": "mouth",
    "mouth_corner_raise_right": "mouth",
    "mouth_stretch": "mouth",
    "mouth_open": "mouth",
}

#: Label → feature displacements (and so the regions that differ from neutral). ``neutral`` moves
#: nothing; its ground-truth mask is the union of all four regions, since a classifier has to check
#: every one of them to say that none moved.
EXPRESSIONS: dict[str, Expression] = {
    "neutral": Expression(),
    "happy": Expression(mouth_corner_raise=0.16, mouth_stretch=0.05, mouth_open=0.1),
    "sad": Expression(brow_inner_raise=0.14, brow_together=0.02, mouth_corner_raise=-0.11),
    "surprise": Expression(brow_raise=0.11, lid_open=0.6, mouth_open=0.24, mouth_stretch=-0.12),
    "fear": Expression(
        brow_raise=0.07,
        brow_inner_raise=0.06,
        brow_together=0.05,
        lid_open=0.6,
        mouth_stretch=0.09,
        mouth_open=0.06,
        mouth_corner_raise=-0.04,
    ),
    "disgust": Expression(nose_wrinkle=1.0, upper_lip_raise=0.1, mouth_corner_raise=-0.03),
    "anger": Expression(brow_raise=-0.07, brow_inner_raise=-0.08, brow_together=0.05, lid_open=-0.5),
    "contempt": Expression(mouth_corner_raise_right=0.13),
}


# --------------------------------------------------------------------------------------------------
# Identity and the face record
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FaceIdentity:
    """The nuisance of one drawn person: everything except the expression and the pixel noise.

    Sample one with :func:`sample_identity` and pass it to :func:`make_face` to draw several
    expressions of the same person.

    Parameters
    ----------
    centre_dx_frac, centre_dy_frac : float
        Offset of the face centre from the image centre, as a fraction of the image size, in (-0.1, 0.1).
    scale : float
        Face size relative to the default (face half-height 0.37 × image size), in [0.8, 1.2].
    roll_deg : float
        In-plane head rotation in degrees, clockwise on screen, in (-15, 15).
    width_ratio : float
        Face half-width / face half-height, in [0.6, 1.0].
    eye_spacing : float
        Horizontal distance of each eye centre from the midline, in face half-heights, in [0.24, 0.36].
    mouth_half_width : float
        Neutral half-width of the mouth, in face half-heights, in [0.18, 0.32].
    brow_thickness : float
        Half-thickness of the brow strokes, in face half-heights, in [0.02, 0.06].
    hairline : float
        Height of the hairline above the face centre, in face half-heights, in [0.6, 0.95].
    skin_rgb, hair_rgb, iris_rgb, background_rgb : tuple of 3 floats in [0, 1]
        Colours (converted to luminance for grey images).
    """

    centre_dx_frac: float
    centre_dy_frac: float
    scale: float
    roll_deg: float
    width_ratio: float
    eye_spacing: float
    mouth_half_width: float
    brow_thickness: float
    hairline: float
    skin_rgb: _RGB
    hair_rgb: _RGB
    iris_rgb: _RGB
    background_rgb: _RGB

    def __post_init__(self) -> None:
        limits = {
            "centre_dx_frac": (-0.1, 0.1),
            "centre_dy_frac": (-0.1, 0.1),
            "scale": (0.8, 1.2),
            "roll_deg": (-15.0, 15.0),
            "width_ratio": (0.6, 1.0),
            "eye_spacing": (0.24, 0.36),
            "mouth_half_width": (0.18, 0.32),
            "brow_thickness": (0.02, 0.06),
            "hairline": (0.6, 0.95),
        }
        for name, (low, high) in limits.items():
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and low <= value <= high):
                raise ValueError(f"FaceIdentity.{name} must lie in [{low}, {high}]; got {value!r}.")
        for name in ("skin_rgb", "hair_rgb", "iris_rgb", "background_rgb"):
            _check_rgb(name, getattr(self, name))


@dataclass(frozen=True, slots=True, eq=False)
class SyntheticFace:
    """One synthetic face and its ground truth.

    Parameters
    ----------
    image : ndarray of float32, shape (H, W) or (H, W, 3)
        Grey or RGB image in [0, 1] (read-only).
    label : str
        One of :data:`analysis.labels.LABELS`.
    label_index : int
        Position of ``label`` in ``LABELS``.
    region_mask : ndarray of bool, shape (H, W)
        Ground truth of the discriminative region(s): the drawn features of ``regions`` in both
        their neutral and their expressive pose, widened by a margin of 0.1 face half-heights (at
        least 1 px). Pixels outside it are identical to the neutral face of the same identity
        (without noise). For ``neutral`` it is the union of all four regions (read-only).
    regions : tuple of str
        The regions of :data:`REGIONS` that differ from neutral (all four for ``neutral``).
    region_masks : dict of str to ndarray of bool, shape (H, W)
        The ground truth of each region in ``regions`` alone; ``region_mask`` is their union. Lets a
        saliency check say which region a model used (RBDM §6, Figure 13: nose versus mouth).
    landmarks : dict of str to (x, y)
        Centre of each region of :data:`REGIONS` in image pixels; ``"brows"`` and ``"eyes"`` give
        the midpoint of the left and right feature.
    eye_centres_xy_image_px : ((x, y), (x, y))
        Centres of the image-left and image-right eye in image pixels.
    identity : FaceIdentity
        The nuisance used to draw the face.
    intensity : float
        The expression intensity used (displacements of :data:`EXPRESSIONS` times this).
    """

    image: NDArray[np.float32]
    label: str
    label_index: int
    region_mask: NDArray[np.bool_]
    regions: tuple[str, ...]
    region_masks: dict[str, NDArray[np.bool_]]
    landmarks: dict[str, _XY]
    eye_centres_xy_image_px: tuple[_XY, _XY]
    identity: FaceIdentity
    intensity: float

    def __post_init__(self) -> None:
        if self.label_index != label_index(self.label):
            raise ValueError(
                f"label_index {self.label_index!r} does not match label {self.label!r} "
                f"(expected {label_index(self.label)})."
            )
        if self.region_mask.shape != self.image.shape[:2] or self.region_mask.dtype != np.bool_:
            raise ValueError(
                f"region_mask must be a bool array of shape {self.image.shape[:2]!r}; got "
                f"{self.region_mask.dtype} {self.region_mask.shape!r}."
            )
        unknown = set(self.regions) - set(REGIONS)
        if unknown or set(self.landmarks) != set(REGIONS) or set(self.region_masks) != set(self.regions):
            raise ValueError(
                f"regions, region_masks and landmarks must name regions of {REGIONS!r}; got regions "
                f"{self.regions!r}, region_masks {sorted(self.region_masks)!r} and landmarks "
                f"{sorted(self.landmarks)!r}."
            )


def sample_identity(rng: np.random.Generator) -> FaceIdentity:
    """Draw a random person: face shape, position, colours and hair.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of all randomness.

    Returns
    -------
    FaceIdentity
        Ranges: offset ±0.04 of the image size, scale 0.9–1.06, roll ±6°, width ratio 0.70–0.84, skin
        from light to dark with brightness 0.9–1.08, a background whose luminance differs from the
        skin's by about 0.18 or more.
    """
    _check_rng(rng)
    skin = _skin_tone(rng.uniform(), rng.uniform(0.9, 1.08))
    return FaceIdentity(
        centre_dx_frac=float(rng.uniform(-0.04, 0.04)),
        centre_dy_frac=float(rng.uniform(-0.04, 0.04)),
        scale=float(rng.uniform(0.9, 1.06)),
        roll_deg=float(rng.uniform(-6.0, 6.0)),
        width_ratio=float(rng.uniform(0.70, 0.84)),
        eye_spacing=float(rng.uniform(0.28, 0.33)),
        mouth_half_width=float(rng.uniform(0.22, 0.28)),
        brow_thickness=float(rng.uniform(0.032, 0.048)),
        hairline=float(rng.uniform(0.66, 0.86)),
        skin_rgb=skin,
        hair_rgb=_pick(_HAIR_PALETTE, rng),
        iris_rgb=_pick(_IRIS_PALETTE, rng),
        background_rgb=_background(skin, rng),
    )


_SKIN_PALETTE: tuple[_RGB, ...] = (
    (0.97, 0.85, 0.75),
    (0.91, 0.74, 0.60),
    (0.80, 0.60, 0.45),
    (0.62, 0.44, 0.31),
    (0.44, 0.30, 0.21),
)
_HAIR_PALETTE: tuple[_RGB, ...] = (
    (0.10, 0.08, 0.07),
    (0.28, 0.18, 0.11),
    (0.48, 0.32, 0.18),
    (0.78, 0.64, 0.38),
    (0.56, 0.24, 0.12),
    (0.62, 0.62, 0.62),
)
_IRIS_PALETTE: tuple[_RGB, ...] = (
    (0.33, 0.20, 0.11),
    (0.20, 0.13, 0.08),
    (0.24, 0.42, 0.62),
    (0.30, 0.46, 0.32),
)


def _skin_tone(t: float, brightness: float) -> _RGB:
    position = t * (len(_SKIN_PALETTE) - 1)
    low = min(int(position), len(_SKIN_PALETTE) - 2)
    w = position - low
    mixed = (1 - w) * np.asarray(_SKIN_PALETTE[low]) + w * np.asarray(_SKIN_PALETTE[low + 1])
    return _as_rgb(np.clip(mixed * brightness, 0.0, 1.0))


def _pick(palette: tuple[_RGB, ...], rng: np.random.Generator) -> _RGB:
    return palette[int(rng.integers(len(palette)))]


def _background(skin: _RGB, rng: np.random.Generator) -> _RGB:
    """A slightly tinted grey whose luminance differs from the skin's by at least 0.18."""
    skin_luma = float(np.dot(skin, _LUMA))
    low_span = max(skin_luma - 0.18 - 0.05, 0.0)
    high_span = max(0.97 - (skin_luma + 0.18), 0.0)
    u = rng.uniform(0.0, low_span + high_span)
    level = 0.05 + u if u < low_span else skin_luma + 0.18 + (u - low_span)
    tint = rng.uniform(-0.04, 0.04, size=3)
    return _as_rgb(np.clip(level + tint - float(np.dot(tint, _LUMA)), 0.0, 1.0))


def _as_rgb(values: NDArray[np.float64]) -> _RGB:
    return (float(values[0]), float(values[1]), float(values[2]))


# --------------------------------------------------------------------------------------------------
# Signed-distance primitives (pixels; negative inside)
# --------------------------------------------------------------------------------------------------


class _Shape(Protocol):
    def bbox(self) -> tuple[float, float, float, float]: ...  # x0, y0, x1, y1 in px

    def sdf(self, x: _FloatArray, y: _FloatArray) -> _FloatArray: ...  # x (1, w), y (h, 1)


def _polyline_distance(x: _FloatArray, y: _FloatArray, points: _FloatArray) -> _FloatArray:
    """Exact Euclidean distance from each pixel to an open polyline (all segments at once)."""
    start, step = points[:-1], np.diff(points, axis=0)
    length2 = np.maximum(np.einsum("ij,ij->i", step, step), 1e-24)
    dx, dy = x[..., None] - start[:, 0], y[..., None] - start[:, 1]
    t = np.clip((dx * step[:, 0] + dy * step[:, 1]) / length2, 0.0, 1.0)
    squared = (dx - t * step[:, 0]) ** 2 + (dy - t * step[:, 1]) ** 2
    return np.asarray(np.sqrt(squared.min(axis=-1)), dtype=np.float64)


def _inside_polygon(x: _FloatArray, y: _FloatArray, closed: _FloatArray) -> NDArray[np.bool_]:
    """Even–odd rule: a rightward ray from the pixel crosses the closed polygon an odd number of times."""
    (xi, yi), (xj, yj) = closed[:-1].T, closed[1:].T
    yy = y[..., None]
    crosses = (yi > yy) != (yj > yy)
    with np.errstate(divide="ignore", invalid="ignore"):
        x_cross = xi + (xj - xi) * (yy - yi) / (yj - yi)
    return np.asarray(np.count_nonzero(crosses & (x[..., None] < x_cross), axis=-1) % 2 == 1)


@dataclass(frozen=True, slots=True)
class _Stroke:
    points_px: _FloatArray
    half_width_px: float

    def bbox(self) -> tuple[float, float, float, float]:
        (x0, y0), (x1, y1) = self.points_px.min(axis=0), self.points_px.max(axis=0)
        hw = self.half_width_px
        return (x0 - hw, y0 - hw, x1 + hw, y1 + hw)

    def sdf(self, x: _FloatArray, y: _FloatArray) -> _FloatArray:
        return _polyline_distance(x, y, self.points_px) - self.half_width_px


@dataclass(frozen=True, slots=True)
class _Polygon:
    points_px: _FloatArray

    def bbox(self) -> tuple[float, float, float, float]:
        (x0, y0), (x1, y1) = self.points_px.min(axis=0), self.points_px.max(axis=0)
        return (x0, y0, x1, y1)

    def sdf(self, x: _FloatArray, y: _FloatArray) -> _FloatArray:
        closed = np.vstack([self.points_px, self.points_px[:1]])
        x, y = np.broadcast_arrays(x, y)
        distance = _polyline_distance(x, y, closed)
        return np.where(_inside_polygon(x, y, closed), -distance, distance)


@dataclass(frozen=True, slots=True)
class _Ellipse:
    centre_px: _XY
    radii_px: _XY
    angle_rad: float

    def bbox(self) -> tuple[float, float, float, float]:
        r = max(self.radii_px)
        return (self.centre_px[0] - r, self.centre_px[1] - r, self.centre_px[0] + r, self.centre_px[1] + r)

    def sdf(self, x: _FloatArray, y: _FloatArray) -> _FloatArray:
        """First-order distance g/|∇g|: exact at the edge, an underestimate away from it."""
        cos, sin = math.cos(self.angle_rad), math.sin(self.angle_rad)
        dx, dy = x - self.centre_px[0], y - self.centre_px[1]
        u, v = dx * cos + dy * sin, -dx * sin + dy * cos
        a, b = self.radii_px
        g = (u / a) ** 2 + (v / b) ** 2 - 1.0
        gradient = 2.0 * np.sqrt((u / a**2) ** 2 + (v / b**2) ** 2)
        return np.asarray(g / np.maximum(gradient, 1e-12), dtype=np.float64)


@dataclass(frozen=True, slots=True)
class _Outline:
    """A band of width ``2 * half_width_px`` just inside the edge of ``shape``."""

    shape: _Ellipse
    half_width_px: float

    def bbox(self) -> tuple[float, float, float, float]:
        return self.shape.bbox()

    def sdf(self, x: _FloatArray, y: _FloatArray) -> _FloatArray:
        return np.asarray(np.abs(self.shape.sdf(x, y) + self.half_width_px) - self.half_width_px)


@dataclass(frozen=True, slots=True)
class _Above:
    """The half-plane above the parabola v = offset + curvature · u² of a rotated face frame."""

    centre_px: _XY
    unit_px: float
    roll_rad: float
    offset: float
    curvature: float

    def bbox(self) -> tuple[float, float, float, float]:
        return (-math.inf, -math.inf, math.inf, math.inf)

    def sdf(self, x: _FloatArray, y: _FloatArray) -> _FloatArray:
        """Vertical distance over the slope: exact on the curve, first order near it."""
        cos, sin = math.cos(self.roll_rad), math.sin(self.roll_rad)
        dx, dy = x - self.centre_px[0], y - self.centre_px[1]
        u, v = (dx * cos + dy * sin) / self.unit_px, (-dx * sin + dy * cos) / self.unit_px
        below_curve = v - (self.offset + self.curvature * u**2)
        slope = 2.0 * self.curvature * u
        return np.asarray(below_curve * self.unit_px / np.sqrt(1.0 + slope**2), dtype=np.float64)


@dataclass(frozen=True, slots=True)
class _Intersection:
    first: _Shape
    second: _Shape

    def bbox(self) -> tuple[float, float, float, float]:
        a, b = self.first.bbox(), self.second.bbox()
        return (max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3]))

    def sdf(self, x: _FloatArray, y: _FloatArray) -> _FloatArray:
        return np.maximum(self.first.sdf(x, y), self.second.sdf(x, y))


@dataclass(frozen=True, slots=True)
class _Layer:
    shape: _Shape
    rgb: _RGB
    opacity: float = 1.0


# --------------------------------------------------------------------------------------------------
# Face geometry (face units: origin at the face centre, 1 = face half-height, y down)
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Frame:
    """Maps face units to image pixels: rotate by the roll, scale by the half-height, translate."""

    centre_px: _XY
    unit_px: float
    roll_rad: float

    def points(self, uv: Sequence[_XY] | _FloatArray) -> _FloatArray:
        uv = np.asarray(uv, dtype=np.float64)
        cos, sin = math.cos(self.roll_rad), math.sin(self.roll_rad)
        x = self.centre_px[0] + self.unit_px * (uv[:, 0] * cos - uv[:, 1] * sin)
        y = self.centre_px[1] + self.unit_px * (uv[:, 0] * sin + uv[:, 1] * cos)
        return np.stack([x, y], axis=1)

    def point(self, uv: _XY) -> _XY:
        xy = self.points([uv])[0]
        return (float(xy[0]), float(xy[1]))

    @property
    def curve_points(self) -> int:
        """Samples per curve: enough for sub-pixel smoothness at this scale, few at small sizes."""
        return 2 * int(np.clip(self.unit_px / 4.0, 3, 12)) + 1  # odd: one sample at t = 0.5

    def above(self, offset: float, curvature: float = 0.0) -> _Above:
        return _Above(self.centre_px, self.unit_px, self.roll_rad, offset, curvature)

    def ellipse(self, centre: _XY, radii: _XY) -> _Ellipse:
        return _Ellipse(self.point(centre), (radii[0] * self.unit_px, radii[1] * self.unit_px), self.roll_rad)


def _frame(identity: FaceIdentity, size: int) -> _Frame:
    centre = (size - 1) / 2.0
    return _Frame(
        centre_px=(centre + identity.centre_dx_frac * size, centre + identity.centre_dy_frac * size),
        unit_px=_FACE_HALF_HEIGHT_PER_SIZE * size * identity.scale,
        roll_rad=math.radians(identity.roll_deg),
    )


def _bezier(p0: _XY, control: _XY, p2: _XY, *, n: int) -> _FloatArray:
    """Points of the quadratic Bézier curve p0 → p2 pulled towards ``control``."""
    t = np.linspace(0.0, 1.0, n)[:, None]
    curve = (1 - t) ** 2 * np.asarray(p0) + 2 * (1 - t) * t * np.asarray(control) + t**2 * np.asarray(p2)
    return np.asarray(curve, dtype=np.float64)


def _through(p0: _XY, middle: _XY, p2: _XY, *, n: int) -> _FloatArray:
    """Quadratic Bézier from p0 to p2 that passes through ``middle`` at t = 0.5."""
    control = (2 * middle[0] - (p0[0] + p2[0]) / 2, 2 * middle[1] - (p0[1] + p2[1]) / 2)
    return _bezier(p0, control, p2, n=n)


def _shade(rgb: _RGB, factor: float | _RGB) -> _RGB:
    f = np.broadcast_to(np.asarray(factor, dtype=np.float64), (3,))
    return _as_rgb(np.clip(np.asarray(rgb) * f, 0.0, 1.0))


def _line_rgb(identity: FaceIdentity) -> _RGB:
    return _shade(identity.skin_rgb, 0.35)


def _brow_curve(identity: FaceIdentity, e: Expression, side: float, *, n: int) -> _FloatArray:
    """One brow from its inner to its outer end; ``side`` is -1 for image-left, +1 for image-right."""
    es = identity.eye_spacing
    inner = (side * (es - 0.14 - e.brow_together), -0.35 - e.brow_raise - e.brow_inner_raise)
    outer = (side * (es + 0.17), -0.33 - e.brow_raise)
    arch = (side * (es + 0.02), -0.44 - 1.4 * e.brow_raise - 0.5 * e.brow_inner_raise)
    return _bezier(inner, arch, outer, n=n)


def _brow_layers(identity: FaceIdentity, e: Expression, frame: _Frame) -> list[_Layer]:
    # Darkened hair blended with darkened skin: light hair on dark skin still gives visible brows.
    brow_rgb = _as_rgb(
        0.5 * np.asarray(_shade(identity.hair_rgb, 0.4)) + 0.5 * np.asarray(_shade(identity.skin_rgb, 0.3))
    )
    half_width_px = identity.brow_thickness * frame.unit_px
    return [
        _Layer(
            _Stroke(frame.points(_brow_curve(identity, e, side, n=frame.curve_points)), half_width_px),
            brow_rgb,
        )
        for side in (-1.0, 1.0)
    ]


def _eye_layers(identity: FaceIdentity, e: Expression, frame: _Frame) -> list[_Layer]:
    n = frame.curve_points
    line = _line_rgb(identity)
    up, down = 0.085 * (1 + e.lid_open), 0.055 * (1 + 0.5 * e.lid_open)
    layers = []
    for cx in (-identity.eye_spacing, identity.eye_spacing):
        cy, half_width = -0.12, 0.16
        upper = _bezier((cx - half_width, cy), (cx, cy - 2 * up), (cx + half_width, cy), n=n)
        lower = _bezier((cx + half_width, cy), (cx, cy + 2 * down), (cx - half_width, cy), n=n)
        almond = _Polygon(frame.points(np.vstack([upper, lower[1:-1]])))
        r = frame.unit_px
        layers += [
            _Layer(almond, (0.96, 0.96, 0.94)),
            _Layer(_Intersection(frame.ellipse((cx, cy + 0.005), (0.062, 0.062)), almond), identity.iris_rgb),
            _Layer(_Intersection(frame.ellipse((cx, cy + 0.005), (0.03, 0.03)), almond), (0.03, 0.03, 0.03)),
            _Layer(_Intersection(frame.ellipse((cx + 0.02, cy - 0.02), (0.014, 0.014)), almond), (1, 1, 1)),
            _Layer(_Stroke(frame.points(np.vstack([upper, lower])), 0.012 * r), line),
            _Layer(_Stroke(frame.points(upper), 0.024 * r), line),
        ]
    return layers


def _nose_layers(identity: FaceIdentity, e: Expression, frame: _Frame) -> list[_Layer]:
    n = frame.curve_points
    line, r = _line_rgb(identity), frame.unit_px
    lift, flare = 0.035 * e.nose_wrinkle, 0.03 * e.nose_wrinkle
    y = 0.24 - lift
    layers = [
        _Layer(
            _Stroke(frame.points(_bezier((0.04, 0.0), (0.08, 0.08), (0.09, 0.16), n=n)), 0.014 * r),
            line,
            0.5,
        ),
        _Layer(_Stroke(frame.points(_bezier((-0.07, y), (0.0, y + 0.06), (0.07, y), n=n)), 0.02 * r), line),
    ]
    for side in (-1.0, 1.0):
        wing = _bezier(
            (side * 0.07, y), (side * (0.14 + flare), y - 0.005), (side * (0.1 + flare), y - 0.07), n=n
        )
        layers.append(_Layer(_Stroke(frame.points(wing), 0.018 * r), line))
    if e.nose_wrinkle > 0:
        for wy in (-0.1, -0.055, -0.01):
            wrinkle = _bezier((-0.075, wy), (0.0, wy - 0.035), (0.075, wy), n=n)
            layers.append(_Layer(_Stroke(frame.points(wrinkle), 0.018 * r), line, min(1.0, e.nose_wrinkle)))
    return layers


def _mouth_curves(identity: FaceIdentity, e: Expression, *, n: int) -> tuple[_FloatArray, _FloatArray]:
    """Upper lip line (left → right) and lower lip line (right → left) in face units."""
    my, mw = 0.47, identity.mouth_half_width
    corner_y = my - e.mouth_corner_raise + 0.35 * e.mouth_open
    left = (-(mw + e.mouth_stretch), corner_y)
    right = (mw + e.mouth_stretch, corner_y)
    upper = _through(left, (0.0, my - e.upper_lip_raise - 0.15 * e.mouth_open), right, n=n)
    lower = _through(right, (0.0, my + e.mouth_open), left, n=n)
    pull = e.mouth_corner_raise_right
    return _pull_right_corner(upper, pull), _pull_right_corner(lower, pull)


def _pull_right_corner(curve: _FloatArray, amount: float) -> _FloatArray:
    """Raise the image-right end of a lip line by ``amount`` (and out by 0.3 · amount), one-sidedly.

    The displacement grows with the square of the distance from the mouth's centre line (0 at the
    centre, full at the corner), so the image-left half keeps every pixel of the neutral mouth. Moving
    the corner point of the whole quadratic lip line instead bent its left half as well: about a quarter
    of a one-sided AU12's pixel change lay on the other side, and a network could detect the unit there
    (issue 12).
    """
    if amount == 0:
        return curve
    reach = float(curve[:, 0].max())
    weight = np.clip(curve[:, 0] / reach, 0.0, 1.0) ** 2 if reach > 0 else np.zeros(len(curve))
    pulled: _FloatArray = curve + weight[:, None] * np.array([0.3 * amount, -amount])
    return pulled


def _mouth_layers(identity: FaceIdentity, e: Expression, frame: _Frame) -> list[_Layer]:
    n = frame.curve_points
    upper, lower = _mouth_curves(identity, e, n=n)
    lip, r = _shade(identity.skin_rgb, (0.62, 0.36, 0.36)), frame.unit_px
    layers = []
    if e.mouth_open > 0 or e.upper_lip_raise > 0:
        cavity = _Polygon(frame.points(np.vstack([upper, lower[1:-1]])))
        teeth = _Polygon(frame.points(np.vstack([upper, (upper + np.array([0.0, 0.05]))[::-1]])))
        layers += [
            _Layer(cavity, (0.22, 0.06, 0.07)),
            _Layer(_Intersection(teeth, cavity), (0.95, 0.94, 0.9)),
        ]
    lower_lip = _bezier((-0.08, 0.0), (0.0, 0.03), (0.08, 0.0), n=n) + np.array(
        [0.0, lower[len(lower) // 2, 1] + 0.08]
    )
    layers += [
        _Layer(_Stroke(frame.points(lower_lip), 0.014 * r), lip, 0.45),
        _Layer(_Stroke(frame.points(upper), 0.024 * r), lip),
        _Layer(_Stroke(frame.points(lower), 0.024 * r), lip),
    ]
    if e.mouth_corner_raise_right > 0:
        x, y = upper[-1]
        dimple = _bezier((x + 0.02, y - 0.035), (x + 0.06, y), (x + 0.02, y + 0.045), n=n)
        layers.append(
            _Layer(_Stroke(frame.points(dimple), 0.014 * r), lip, min(1.0, 8 * e.mouth_corner_raise_right))
        )
    return layers


_REGION_LAYERS = {"brows": _brow_layers, "eyes": _eye_layers, "nose": _nose_layers, "mouth": _mouth_layers}


def _head_layers(identity: FaceIdentity, frame: _Frame) -> list[_Layer]:
    """Neck, hair, ears and face: everything that no expression moves."""
    w, skin, hair = identity.width_ratio, identity.skin_rgb, identity.hair_rgb
    face = frame.ellipse((0.0, 0.0), (w, 1.0))
    hair_back = _Intersection(frame.ellipse((0.0, -0.1), (w + 0.12, 1.03)), frame.above(0.15))
    fringe = frame.above(-identity.hairline, 0.4)
    layers = [
        _Layer(
            _Polygon(frame.points([(-0.34, 0.5), (0.34, 0.5), (0.42, 2.0), (-0.42, 2.0)])), _shade(skin, 0.85)
        ),
        _Layer(hair_back, hair),
    ]
    for side in (-1.0, 1.0):
        ear = frame.ellipse((side * (w - 0.02), 0.02), (0.1, 0.17))
        layers += [_Layer(ear, skin), _Layer(_Outline(ear, 0.012 * frame.unit_px), _line_rgb(identity), 0.5)]
    return [
        *layers,
        _Layer(face, skin),
        _Layer(_Outline(face, 0.012 * frame.unit_px), _line_rgb(identity), 0.5),
        _Layer(_Intersection(frame.ellipse((0.0, 0.0), (w + 0.04, 1.04)), fringe), hair),
    ]


# --------------------------------------------------------------------------------------------------
# Rasterisation
# --------------------------------------------------------------------------------------------------


def _window(shape: _Shape, size: int, pad_px: float) -> tuple[slice, slice] | None:
    """Rows and columns of the pixels within ``pad_px`` of the shape's bounding box, or None."""
    x0, y0, x1, y1 = np.clip(shape.bbox(), -2.0 * size, 3.0 * size)
    c0, c1 = max(math.floor(x0 - pad_px), 0), min(math.ceil(x1 + pad_px) + 1, size)
    r0, r1 = max(math.floor(y0 - pad_px), 0), min(math.ceil(y1 + pad_px) + 1, size)
    if c0 >= c1 or r0 >= r1:
        return None
    return slice(r0, r1), slice(c0, c1)


def _window_sdf(shape: _Shape, window: tuple[slice, slice]) -> _FloatArray:
    rows, cols = window
    x = np.arange(cols.start, cols.stop, dtype=np.float64)[None, :]
    y = np.arange(rows.start, rows.stop, dtype=np.float64)[:, None]
    return np.broadcast_to(shape.sdf(x, y), (rows.stop - rows.start, cols.stop - cols.start))


def _paint(canvas: _FloatArray, layers: Sequence[_Layer]) -> None:
    """Composite layers over the canvas in place; coverage ramps linearly over one pixel."""
    for layer in layers:
        window = _window(layer.shape, canvas.shape[0], 1.0)
        if window is None:
            continue
        alpha = (np.clip(0.5 - _window_sdf(layer.shape, window), 0.0, 1.0) * layer.opacity)[..., None]
        canvas[window] = canvas[window] * (1.0 - alpha) + np.asarray(layer.rgb) * alpha


def _coverage_mask(layers: Sequence[_Layer], size: int, margin_px: float) -> NDArray[np.bool_]:
    """Pixels within ``margin_px`` (≥ the 0.5 px anti-aliasing reach) of any layer's shape."""
    mask = np.zeros((size, size), dtype=bool)
    for layer in layers:
        window = _window(layer.shape, size, margin_px + 1.0)
        if window is not None:
            mask[window] |= _window_sdf(layer.shape, window) <= margin_px
    return mask


def _finish(
    canvas: _FloatArray, *, rgb: bool, noise_std: float, rng: np.random.Generator
) -> NDArray[np.float32]:
    image = canvas if rgb else canvas @ np.asarray(_LUMA)
    if noise_std > 0:
        image = image + rng.normal(0.0, noise_std, size=image.shape)
    return np.clip(image, 0.0, 1.0).astype(np.float32)


# --------------------------------------------------------------------------------------------------
# Public generators
# --------------------------------------------------------------------------------------------------


def make_face(
    label: str,
    *,
    size: int = 48,
    rgb: bool = False,
    rng: np.random.Generator,
    identity: FaceIdentity | None = None,
    intensity: float | None = None,
    noise_std: float = DEFAULT_NOISE_STD,
) -> SyntheticFace:
    """Draw one schematic face showing ``label``, with its ground-truth discriminative region.

    Parameters
    ----------
    label : str
        One of :data:`analysis.labels.LABELS`.
    size : int, optional
        Width and height of the square image in pixels (≥ 16).
    rgb : bool, optional
        Return an (H, W, 3) colour image instead of an (H, W) grey (luminance) one.
    rng : numpy.random.Generator
        Source of the identity (when not given), the intensity (when not given) and the noise, drawn
        in that order; the same generator state gives the same face.
    identity : FaceIdentity, optional
        The person to draw; default a fresh :func:`sample_identity`. Pass the same identity to draw
        several expressions of one person.
    intensity : float, optional
        Expression strength in (0, 1.5]; default uniform in :data:`INTENSITY_RANGE`.
    noise_std : float, optional
        Standard deviation of additive Gaussian pixel noise; 0 turns it off.

    Returns
    -------
    SyntheticFace
        Image in [0, 1] (float32), label, ``region_mask`` and landmarks. Without noise, pixels
        outside ``region_mask`` equal those of the neutral face of the same identity.

    Raises
    ------
    ValueError
        For an unknown label, a size below 16, an intensity outside (0, 1.5] or a negative noise_std.
    TypeError
        When ``rng`` is not a ``numpy.random.Generator``.

    References
    ----------
    .. [1] Schiller et al. (2020), Relevance-Based Data Masking, §4 (the 8 labels).
    .. [2] Finzel et al. (2021), Temporal Prototypes, §3.1 (action units that define the regions).
    """
    index = label_index(label)
    _check_size(size)
    _check_rng(rng)
    if not (math.isfinite(noise_std) and noise_std >= 0):
        raise ValueError(f"noise_std must be a finite number >= 0; got {noise_std!r}. Use 0.0 for no noise.")
    identity = sample_identity(rng) if identity is None else identity
    intensity = float(rng.uniform(*INTENSITY_RANGE)) if intensity is None else _check_intensity(intensity)
    frame = _frame(identity, size)
    expression = EXPRESSIONS[label].scaled(intensity)
    features = {region: _REGION_LAYERS[region](identity, expression, frame) for region in REGIONS}
    canvas = np.empty((size, size, 3), dtype=np.float64)
    canvas[:] = identity.background_rgb
    _paint(canvas, _head_layers(identity, frame) + [layer for r in REGIONS for layer in features[r]])
    regions = EXPRESSIONS[label].regions or REGIONS
    masks = {region: _region_footprint(region, features[region], identity, frame, size) for region in regions}
    mask = np.logical_or.reduce(list(masks.values()))
    image = _finish(canvas, rgb=rgb, noise_std=noise_std, rng=rng)
    for array in (image, mask, *masks.values()):
        array.setflags(write=False)
    landmarks, eyes = _landmarks(identity, expression, frame)
    return SyntheticFace(image, label, index, mask, regions, masks, landmarks, eyes, identity, intensity)


def draw_expression(
    expression: Expression,
    *,
    identity: FaceIdentity,
    size: int = 48,
    rgb: bool = False,
    rng: np.random.Generator,
    noise_std: float = DEFAULT_NOISE_STD,
) -> NDArray[np.float32]:
    """Draw ``identity`` showing any :class:`Expression`: the image only, without ground-truth masks.

    :func:`make_face` draws the expressions of :data:`EXPRESSIONS` by label; this draws a freely
    composed one (e.g. the action units of a sequence frame,
    :mod:`analysis.datasets.synthetic_sequences`) in the same way.

    Parameters
    ----------
    expression : Expression
        Feature displacements to draw (already scaled by any intensity).
    identity : FaceIdentity
        The person to draw.
    size, rgb, noise_std :
        As in :func:`make_face`.
    rng : numpy.random.Generator
        Source of the pixel noise only.

    Returns
    -------
    ndarray of float32, shape (size, size) or (size, size, 3)
        Image in [0, 1].

    References
    ----------
    .. [1] Finzel et al. (2021), Temporal Prototypes, §3.1 (action units, Figure 1).
    """
    if not isinstance(expression, Expression):
        raise TypeError(f"expression must be an Expression; got {type(expression).__name__}.")
    _check_size(size)
    _check_rng(rng)
    if not (math.isfinite(noise_std) and noise_std >= 0):
        raise ValueError(f"noise_std must be a finite number >= 0; got {noise_std!r}. Use 0.0 for no noise.")
    frame = _frame(identity, size)
    canvas = np.empty((size, size, 3), dtype=np.float64)
    canvas[:] = identity.background_rgb
    features = [layer for region in REGIONS for layer in _REGION_LAYERS[region](identity, expression, frame)]
    _paint(canvas, _head_layers(identity, frame) + features)
    return _finish(canvas, rgb=rgb, noise_std=noise_std, rng=rng)


def _region_footprint(
    region: str, layers: list[_Layer], identity: FaceIdentity, frame: _Frame, size: int
) -> NDArray[np.bool_]:
    """Ground truth of one region: its drawn features, expressive and neutral, plus the margin."""
    neutral = _REGION_LAYERS[region](identity, EXPRESSIONS["neutral"], frame)
    return _coverage_mask(layers + neutral, size, max(1.0, _MASK_MARGIN_PER_FACE * frame.unit_px))


def _landmarks(
    identity: FaceIdentity, e: Expression, frame: _Frame
) -> tuple[dict[str, _XY], tuple[_XY, _XY]]:
    """Region centres (midpoints of the left and right brow and eye) and the two eye centres."""
    es = identity.eye_spacing
    upper, lower = _mouth_curves(identity, e, n=3)
    brows = np.mean([_brow_curve(identity, e, side, n=3)[1] for side in (-1.0, 1.0)], axis=0)
    mouth = np.vstack([upper, lower[1:2]]).mean(axis=0)
    landmarks = {
        "brows": frame.point((float(brows[0]), float(brows[1]))),
        "eyes": frame.point((0.0, -0.12)),
        "nose": frame.point((0.03, 0.12)),
        "mouth": frame.point((float(mouth[0]), float(mouth[1]))),
    }
    return landmarks, (frame.point((-es, -0.12)), frame.point((es, -0.12)))


def make_faces(
    n: int,
    *,
    size: int = 48,
    rgb: bool = False,
    rng: np.random.Generator,
    labels: Sequence[str] = LABELS,
) -> tuple[NDArray[np.float32], NDArray[np.int64], NDArray[np.bool_]]:
    """Draw ``n`` faces with balanced labels, each a new random identity, in random order.

    Parameters
    ----------
    n : int
        Number of faces (≥ 0). Labels are assigned round robin (counts differ by at most one), then
        shuffled with ``rng``.
    size, rgb, rng :
        As in :func:`make_face`.
    labels : sequence of str, optional
        The labels to draw, default all of :data:`analysis.labels.LABELS`.

    Returns
    -------
    images : ndarray of float32, shape (N, H, W) or (N, H, W, 3)
    label_indices : ndarray of int64, shape (N,)
        Positions in ``LABELS`` (not in ``labels``).
    region_masks : ndarray of bool, shape (N, H, W)

    Raises
    ------
    ValueError
        For a negative ``n``, an empty ``labels`` or an unknown label.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n must be an integer >= 0; got {n!r}.")
    chosen = [label_index(label) for label in labels]
    if not chosen:
        raise ValueError("labels must name at least one label; got an empty sequence.")
    _check_size(size)
    _check_rng(rng)
    order = rng.permutation(np.resize(np.asarray(chosen, dtype=np.int64), int(n)))
    images = np.zeros((int(n), size, size, 3) if rgb else (int(n), size, size), dtype=np.float32)
    masks = np.zeros((int(n), size, size), dtype=bool)
    for i, index in enumerate(order):
        face = make_face(LABELS[index], size=size, rgb=rgb, rng=rng)
        images[i], masks[i] = face.image, face.region_mask
    return images, order.astype(np.int64), masks


# --------------------------------------------------------------------------------------------------
# Simulated annotator
# --------------------------------------------------------------------------------------------------

#: Share of fixations on each target for a face that shows no expression (RBDM §5.3, Figure 7).
_FIXATION_SHARE: dict[str, float] = {
    "eye_left": 0.22,
    "eye_right": 0.22,
    "nose": 0.18,
    "mouth": 0.28,
    "brow_left": 0.05,
    "brow_right": 0.05,
}
_TARGET_REGION = {
    "eye_left": "eyes",
    "eye_right": "eyes",
    "nose": "nose",
    "mouth": "mouth",
    "brow_left": "brows",
    "brow_right": "brows",
}
#: Targets in a discriminative region are looked at this many times more often.
_DISCRIMINATIVE_BIAS = 2.5
#: Share of free looks anywhere on the face (centred between eyes and mouth, 3× the spread).
_FREE_LOOK_SHARE = 0.08


def simulate_fixations(
    face: SyntheticFace, *, n_fixations: int, rng: np.random.Generator, spread_px: float | None = None
) -> NDArray[np.float64]:
    """Simulated annotator fixations on a synthetic face, in image pixels.

    This is a simulator standing in for a human with an eye tracker (demo, tests). Fixations land on
    the eyes, nose, mouth and brows (RBDM §5.3.2, Figure 7), targets inside the label's
    discriminative regions 2.5× more often, plus 8 % free looks on the face, each with isotropic
    Gaussian scatter, clipped to the image.

    Parameters
    ----------
    face : SyntheticFace
        The face being looked at.
    n_fixations : int
        Number of fixations (≥ 0); 0 gives an empty (0, 2) array.
    rng : numpy.random.Generator
        Source of randomness.
    spread_px : float, optional
        Standard deviation of the scatter around a target in image pixels; default 3 % of the image
        size (free looks use three times this).

    Returns
    -------
    ndarray of float64, shape (n_fixations, 2)
        ``(x, y)`` image pixels inside ``[0, W-1] × [0, H-1]``.

    References
    ----------
    .. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.3.2 and Figure 7.
    """
    if isinstance(n_fixations, bool) or not isinstance(n_fixations, (int, np.integer)) or n_fixations < 0:
        raise ValueError(f"n_fixations must be an integer >= 0; got {n_fixations!r}.")
    _check_rng(rng)
    height, width = face.image.shape[:2]
    spread = _FIXATION_SPREAD_PER_SIZE * max(height, width) if spread_px is None else spread_px
    spread = check_positive(spread_px=spread)
    targets, shares = _fixation_targets(face)
    choice = rng.choice(len(targets), size=int(n_fixations), p=shares)
    scale = np.where(choice == len(targets) - 1, 3.0 * spread, spread)[:, None]
    points = targets[choice] + rng.normal(0.0, 1.0, size=(int(n_fixations), 2)) * scale
    return np.asarray(np.clip(points, 0.0, [width - 1.0, height - 1.0]), dtype=np.float64)


def _fixation_targets(face: SyntheticFace) -> tuple[_FloatArray, _FloatArray]:
    """Target points (the last one is the free-look centre) and their probabilities."""
    eye_left, eye_right = np.asarray(face.eye_centres_xy_image_px)
    brow_offset = np.subtract(face.landmarks["brows"], face.landmarks["eyes"])
    points = {
        "eye_left": eye_left,
        "eye_right": eye_right,
        "nose": np.asarray(face.landmarks["nose"]),
        "mouth": np.asarray(face.landmarks["mouth"]),
        "brow_left": eye_left + brow_offset,
        "brow_right": eye_right + brow_offset,
    }
    biased = set(face.regions) if face.label != "neutral" else set()
    weights = np.array(
        [
            share * (_DISCRIMINATIVE_BIAS if _TARGET_REGION[name] in biased else 1.0)
            for name, share in _FIXATION_SHARE.items()
        ]
    )
    weights = np.append((1.0 - _FREE_LOOK_SHARE) * weights / weights.sum(), _FREE_LOOK_SHARE)
    centre = np.mean([points["eye_left"], points["eye_right"], points["mouth"]], axis=0)
    return np.vstack([*(points[name] for name in _FIXATION_SHARE), centre]), weights


def simulate_fixation_durations(
    n: int, *, rng: np.random.Generator, median_ms: float = 250.0, sigma: float = 0.45
) -> NDArray[np.float64]:
    """Simulated fixation durations: log-normal around ``median_ms``, floored at 100 ms.

    Parameters
    ----------
    n : int
        Number of durations (≥ 0).
    rng : numpy.random.Generator
        Source of randomness.
    median_ms : float, optional
        Median duration in milliseconds (typical fixations on faces last 200–300 ms).
    sigma : float, optional
        Standard deviation of the log duration.

    Returns
    -------
    ndarray of float64, shape (n,)
        Durations in milliseconds, each ≥ 100 ms (the usual minimum of a fixation detector).
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n must be an integer >= 0; got {n!r}.")
    _check_rng(rng)
    median = check_positive(median_ms=median_ms)
    spread = check_positive(sigma=sigma)
    return np.maximum(rng.lognormal(math.log(median), spread, size=int(n)), 100.0)


# --------------------------------------------------------------------------------------------------
# Argument checks
# --------------------------------------------------------------------------------------------------


def _check_rng(rng: object) -> None:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"rng must be a numpy.random.Generator; got {type(rng).__name__}. "
            "Pass np.random.default_rng(seed)."
        )


def _check_size(size: object) -> None:
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 16:
        raise ValueError(f"size must be an integer >= 16 (pixels); got {size!r}.")


def _check_intensity(intensity: float) -> float:
    if isinstance(intensity, bool) or not (
        isinstance(intensity, (int, float, np.integer, np.floating)) and 0.0 < intensity <= 1.5
    ):
        raise ValueError(f"intensity must lie in (0, 1.5]; got {intensity!r}. 1 is the full expression.")
    return float(intensity)


def _check_rgb(name: str, value: object) -> None:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be three numbers in [0, 1]; got {value!r}.") from err
    if arr.shape != (3,) or not (np.isfinite(arr).all() and (arr >= 0).all() and (arr <= 1).all()):
        raise ValueError(f"{name} must be three numbers in [0, 1]; got {value!r}.")
