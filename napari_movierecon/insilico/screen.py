"""Geometry of the flat monitor in front of the in-silico mouse.

The Sensorium screen spans about 124 deg (azimuth) x 93 deg (elevation) on
36 x 64 pixels. A flat screen close to the eye makes central pixels subtend
more visual angle than peripheral ones: with half-extents of 62 deg and
46.5 deg, a centre pixel covers ~3.37 deg, matching the ~3.4 deg per pixel
quoted for the dataset.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from napari_movierecon.recording import SCREEN_SHAPE


@dataclass(frozen=True)
class Screen:
    """Pixel grid (H, W) of a flat screen spanning ``azimuth_span`` x ``elevation_span`` degrees."""

    shape: tuple[int, int] = SCREEN_SHAPE
    azimuth_span_deg: float = 124.0
    elevation_span_deg: float = 93.0

    @cached_property
    def half_extent(self) -> tuple[float, float]:
        """(half height, half width) of the screen in units of the viewing distance."""
        return (
            float(np.tan(np.deg2rad(self.elevation_span_deg / 2))),
            float(np.tan(np.deg2rad(self.azimuth_span_deg / 2))),
        )

    @cached_property
    def pixel_centres(self) -> tuple[np.ndarray, np.ndarray]:
        """(y, x) pixel-centre positions on the screen plane, (H, W) float64 each, distance = 1.

        Row 0 is the top of the screen (positive elevation).
        """
        h, w = self.shape
        hy, hx = self.half_extent
        ys = hy * (1 - (2 * np.arange(h) + 1) / h)
        xs = hx * ((2 * np.arange(w) + 1) / w - 1)
        return np.meshgrid(ys, xs, indexing="ij")

    @cached_property
    def visual_angles(self) -> tuple[np.ndarray, np.ndarray]:
        """(elevation, azimuth) of every pixel centre in degrees, (H, W) float64 each."""
        y, x = self.pixel_centres
        azimuth = np.rad2deg(np.arctan(x))
        elevation = np.rad2deg(np.arctan2(y, np.sqrt(1 + x**2)))
        return elevation, azimuth

    @cached_property
    def degrees_per_pixel_at_centre(self) -> float:
        """Visual angle subtended by one pixel at the screen centre (deg)."""
        return float(np.rad2deg(2 * np.arctan(self.half_extent[1] / self.shape[1])))
