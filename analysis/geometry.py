"""Screen geometry: pixels, centimetres and degrees of visual angle (RBDM §5.3.1, §5.3.2).

Coordinates are ``(x, y)`` with x to the right and y downwards. A pixel's centre sits at integer
coordinates: image pixel ``[row, col]`` is the point ``(x=col, y=row)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from analysis._validation import check_points, check_positive, check_shape

__all__ = [
    "FWHM_PER_C",
    "GAUSSIAN_C_PER_SPAN",
    "VISUAL_SPAN_DEG",
    "ScreenGeometry",
    "StimulusRect",
    "inside_stimulus",
    "screen_to_image",
]

#: The visual angle of the visual span in degrees: 5° gives the parafoveal area (RBDM §5.3.2, after
#: Blignaut 2010). The one home of this default: the library, the CLI and the GUI read it from here.
VISUAL_SPAN_DEG = 5.0
#: c = 0.17 × visual span, so that the Gaussian's FWHM is 40 % of the visual span (RBDM §5.3.2).
GAUSSIAN_C_PER_SPAN = 0.17
#: FWHM = 2.358 · c for the Gaussian p(x, y, f_n) (RBDM §5.3.2).
FWHM_PER_C = 2.358


@dataclass(frozen=True, slots=True)
class StimulusRect:
    """Where the stimulus image is drawn on the screen, in screen pixels.

    Parameters
    ----------
    x_px, y_px : float
        Top-left corner of the drawn image on the screen.
    width_px, height_px : float
        Drawn size on the screen (1200 × 1200 in RBDM §5.3.1).
    """

    x_px: float
    y_px: float
    width_px: float
    height_px: float

    def __post_init__(self) -> None:
        check_positive(width_px=self.width_px)
        check_positive(height_px=self.height_px)
        if not (math.isfinite(self.x_px) and math.isfinite(self.y_px)):
            raise ValueError(f"stimulus corner must be finite; got ({self.x_px!r}, {self.y_px!r}).")


@dataclass(frozen=True, slots=True)
class ScreenGeometry:
    """A monitor seen from a fixed viewing distance (RBDM §5.3.1: 27", 2560 × 1440 px, 70 cm).

    Parameters
    ----------
    width_px, height_px : int
        Screen resolution.
    diagonal_in : float
        Visible diagonal in inches; pixels are assumed square.
    distance_cm : float
        Eye-to-screen distance.
    """

    width_px: int = 2560
    height_px: int = 1440
    diagonal_in: float = 27.0
    distance_cm: float = 70.0

    def __post_init__(self) -> None:
        check_shape(resolution=(self.height_px, self.width_px))
        check_positive(diagonal_in=self.diagonal_in)
        check_positive(distance_cm=self.distance_cm)

    @property
    def px_per_cm(self) -> float:
        """Pixels per centimetre on the screen surface (diagonal pixels over diagonal length)."""
        return math.hypot(self.width_px, self.height_px) / (self.diagonal_in * 2.54)

    def visual_span_px(self, angle_deg: float = VISUAL_SPAN_DEG) -> float:
        """Diameter on the screen, in pixels, subtended by ``angle_deg`` at the screen centre.

        The visual span is the largest distance from a fixation at which a viewer may still
        perceive objects; a 5° visual angle gives the parafoveal area (RBDM §5.3.2, after
        Blignaut 2010): ``span = 2 · d · tan(angle / 2)``.

        References
        ----------
        .. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.3.2, visual span.
        """
        check_positive(angle_deg=angle_deg)
        if angle_deg >= 180.0:
            raise ValueError(f"angle_deg must be below 180; got {angle_deg!r}.")
        span_cm = 2.0 * self.distance_cm * math.tan(math.radians(angle_deg) / 2.0)
        return span_cm * self.px_per_cm

    def gaussian_c(self, angle_deg: float = VISUAL_SPAN_DEG) -> float:
        """The heatmap Gaussian's ``c`` in screen pixels: 0.17 × visual span.

        With this choice the FWHM (2.358 · c) is 40 % of the visual span.

        References
        ----------
        .. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.3.2, c = 0.17 · visualspan.
        """
        return GAUSSIAN_C_PER_SPAN * self.visual_span_px(angle_deg)

    def stimulus_rect(self, size_px: float = 1200.0) -> StimulusRect:
        """The square stimulus drawn ``size_px`` wide in the middle of the screen (RBDM §5.3.1).

        On a screen smaller than ``size_px`` the square shrinks to fit; ``rect.width_px / size_px``
        is then the scale to store with the session.
        """
        check_positive(size_px=size_px)
        side = min(float(size_px), float(self.width_px), float(self.height_px))
        return StimulusRect((self.width_px - side) / 2.0, (self.height_px - side) / 2.0, side, side)

    def screen_px_to_deg(self, xy_screen_px: ArrayLike) -> NDArray[np.float64]:
        """Screen positions as degrees of visual angle from the screen centre, shape (N, 2).

        Used by fixation detection (dispersion in degrees, velocity in °/s).
        """
        xy = check_points(xy_screen_px=xy_screen_px)
        centre = np.array([self.width_px / 2.0, self.height_px / 2.0])
        offset_cm = (xy - centre) / self.px_per_cm
        deg: NDArray[np.float64] = np.degrees(np.arctan2(offset_cm, self.distance_cm))
        return deg

    def screen_to_image(
        self, points: ArrayLike, stimulus_rect: StimulusRect, image_shape: tuple[int, int]
    ) -> NDArray[np.float64]:
        """Same as the module function :func:`screen_to_image`."""
        return screen_to_image(points, stimulus_rect, image_shape)


def inside_stimulus(points: ArrayLike, stimulus_rect: StimulusRect) -> NDArray[np.bool_]:
    """Which screen points (N, 2) fall on the drawn stimulus; use it to select matching weights."""
    xy = check_points(points=points)
    r = stimulus_rect
    return (
        (xy[:, 0] >= r.x_px)
        & (xy[:, 0] < r.x_px + r.width_px)
        & (xy[:, 1] >= r.y_px)
        & (xy[:, 1] < r.y_px + r.height_px)
    )


def screen_to_image(
    points: ArrayLike, stimulus_rect: StimulusRect, image_shape: tuple[int, int]
) -> NDArray[np.float64]:
    """Map screen-pixel points onto the pixels of the image drawn in ``stimulus_rect``.

    Pixel centres map onto pixel centres: the screen pixel at the rectangle's top-left corner
    becomes image point (0, 0) when the image is drawn 1:1. Points outside the stimulus are
    dropped, not clipped (:func:`inside_stimulus` tells which were kept).

    Parameters
    ----------
    points : array_like, shape (N, 2)
        ``(x, y)`` in screen pixels.
    stimulus_rect : StimulusRect
        Where the image was drawn (1200 × 1200 px centred in RBDM §5.3.1).
    image_shape : tuple of int
        ``(height, width)`` of the image array.

    Returns
    -------
    ndarray, shape (M, 2)
        ``(x, y)`` in image pixels for the M ≤ N points on the stimulus.

    References
    ----------
    .. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.3.1 (images shown at
       1200 × 1200 px in the centre of the screen).
    """
    height, width = check_shape(image_shape=image_shape)
    xy = check_points(points=points)[inside_stimulus(points, stimulus_rect)]
    scale = np.array([width / stimulus_rect.width_px, height / stimulus_rect.height_px])
    origin = np.array([stimulus_rect.x_px, stimulus_rect.y_px])
    mapped: NDArray[np.float64] = (xy + 0.5 - origin) * scale - 0.5
    return mapped
