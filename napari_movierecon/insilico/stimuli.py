"""Stimulus movies for the in-silico mouse, mixed like the Sensorium 2023 stimuli.

Every generator is ``f(rng, n_frames=300, screen=DEFAULT_SCREEN, **params)`` and returns a
(T, H, W) float32 movie of integer gray levels in 0..255 (rounded, then clipped), at
``FRAME_RATE_HZ``. Quantizing hides last-bit floating-point differences between machines.
All randomness comes from the ``numpy.random.Generator`` argument: the same generator state
gives bit-identical movies. Parameters left at ``None`` are drawn at random; spatial
quantities are in visual degrees, laid out with the screen's per-pixel visual angles.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from itertools import pairwise
from typing import Any

import numpy as np
from scipy.ndimage import gaussian_filter, map_coordinates

from napari_movierecon.errors import SimulationError
from napari_movierecon.insilico.images import image_pool, load_image
from napari_movierecon.insilico.screen import Screen
from napari_movierecon.recording import FRAME_RATE_HZ

STIMULUS_KINDS = ("natural", "grating", "pink_noise", "dots")
DEFAULT_KIND_WEIGHTS = {"natural": 0.55, "grating": 0.15, "pink_noise": 0.15, "dots": 0.15}
DEFAULT_SCREEN = Screen()
GRAY = 128.0
AMPLITUDE = 127.0  # GRAY +- AMPLITUDE stays inside 0..255

NATURAL_CUT_FRAMES = (30, 120)  # natural clips last 1-4 s
NATURAL_FOV = (0.3, 1.0)  # fraction of the largest screen-shaped window that fits the image
NATURAL_MEAN = (100.0, 160.0)
NATURAL_RMS = (30.0, 60.0)
SACCADE_RATE_HZ = 0.7

GRATING_MIN_FRAMES = 30
GRATING_SF_CPD = (0.015, 0.12)  # log-uniform
GRATING_TF_HZ = (0.5, 4.0)
GRATING_CONTRAST = (0.3, 1.0)
GRATING_BLANK_FRAMES = (6, 15)  # 0.2-0.5 s of gray before a new grating
SQUARE_SHARPNESS = 4.0  # tanh(k sin) / tanh(k): a square wave with softened, alias-free edges
WAVEFORMS = ("sine", "square")

DOT_RADIUS_DEG = (3.0, 10.0)
DOT_SPEED_DEG_S = (10.0, 60.0)
DOT_BOUNDARIES = ("bounce", "wrap")


def _check_n_frames(n_frames: int) -> int:
    """``n_frames`` as a positive int, or SimulationError."""
    if isinstance(n_frames, bool) or not isinstance(n_frames, (int, np.integer)) or n_frames < 1:
        raise SimulationError(f"n_frames must be a positive integer, got {n_frames!r}")
    return int(n_frames)


def quantize(movie: np.ndarray) -> np.ndarray:
    """The output convention: rounded to integer gray levels, clipped to 0..255, float32."""
    return np.clip(np.round(movie), 0.0, 255.0).astype(np.float32)


def _reflect01(x: np.ndarray) -> np.ndarray:
    """Fold any real ``x`` into [0, 1] by mirroring at the bounds (a bouncing path)."""
    return 1.0 - np.abs(np.mod(x, 2.0) - 1.0)


def _smoothstep(x: np.ndarray) -> np.ndarray:
    """0 below 0, 1 above 1, a smooth cubic ramp in between."""
    s = np.clip(x, 0.0, 1.0)
    return s * s * (3.0 - 2.0 * s)


def _rounded(x: float) -> float:
    """A float short enough for a readable JSON description."""
    return round(float(x), 4)


# --- natural movies ---------------------------------------------------------------------------


def _natural_cuts(rng: np.random.Generator, n_frames: int) -> list[tuple[int, int]]:
    """(start, stop) frame ranges of consecutive 1-4 s clips covering ``n_frames``."""
    shortest, longest = NATURAL_CUT_FRAMES
    cuts, start = [], 0
    while start < n_frames:
        stop = min(n_frames, start + int(rng.integers(shortest, longest + 1)))
        cuts.append((start, stop))
        start = stop
    return cuts


def _camera_path(rng: np.random.Generator, n: int) -> tuple[np.ndarray, int]:
    """(n, 2) (y, x) view-centre offsets in crop widths, and the number of saccades.

    A slow linear drift (<= 0.15 crop widths/s) plus a gentle sinusoidal wobble, plus
    saccades: Poisson-timed jumps of 0.05-0.3 crop widths completed within 2-5 frames.
    """
    t = np.arange(n) / FRAME_RATE_HZ
    angle = rng.uniform(0.0, 2 * np.pi)
    path = rng.uniform(0.0, 0.15) * t[:, None] * np.array([np.sin(angle), np.cos(angle)])
    freq = rng.uniform(0.1, 0.5, 2)
    amp = rng.uniform(0.0, 0.05, 2)
    phase = rng.uniform(0.0, 2 * np.pi, 2)
    path += amp * (np.sin(2 * np.pi * freq * t[:, None] + phase) - np.sin(phase))
    n_saccades = int(rng.poisson(SACCADE_RATE_HZ * n / FRAME_RATE_HZ))
    frames = np.arange(n)
    for _ in range(n_saccades):
        onset, duration = rng.uniform(0, n), rng.uniform(2.0, 5.0)
        size, direction = rng.uniform(0.05, 0.3), rng.uniform(0.0, 2 * np.pi)
        ramp = _smoothstep((frames - onset) / duration)
        path += size * ramp[:, None] * np.array([np.sin(direction), np.cos(direction)])
    return path, n_saccades


def _antialiased(image: np.ndarray, scale: float) -> tuple[np.ndarray, int]:
    """Low-pass ``image`` for sampling every ``scale`` pixels: (filtered image, block factor k).

    Block-averages by k = floor(scale / 2) first (cheap for large photos), then applies a
    Gaussian of sigma (scale / k - 1) / 2 pixels; index i of the result covers the
    original pixels k*i .. k*i + k - 1.
    """
    k = max(1, int(scale // 2))
    h, w = (image.shape[0] // k) * k, (image.shape[1] // k) * k
    reduced = image[:h, :w].reshape(h // k, k, w // k, k).mean(axis=(1, 3))
    return gaussian_filter(reduced, sigma=max(0.0, (scale / k - 1.0) / 2.0)), k


def _natural_clip(
    rng: np.random.Generator, image: np.ndarray, n: int, screen_shape: tuple[int, int]
) -> tuple[np.ndarray, dict]:
    """(n, H, W) float64 clip panned and zoomed over ``image``, and its parameters.

    The view is a screen-shaped window whose width is a fraction ("fov") of the widest such
    window that fits the image; the fraction changes geometrically within the clip. The window
    centre follows ``_camera_path`` and bounces off the image borders. The clip is then scaled
    to a random mean and RMS contrast (over the whole clip).
    """
    sh, sw = screen_shape
    flip = bool(rng.random() < 0.5)
    if flip:
        image = image[:, ::-1]
    ih, iw = image.shape
    fov0 = rng.uniform(*NATURAL_FOV)
    fov1 = float(np.clip(fov0 * np.exp(rng.uniform(-0.3, 0.3)), *NATURAL_FOV))
    fov = fov0 * (fov1 / fov0) ** np.linspace(0.0, 1.0, n)
    crop_w = fov * min(iw, ih * sw / sh)
    crop = np.stack([crop_w * sh / sw, crop_w], axis=1)  # (n, 2) window (height, width) in px
    dims = np.array([ih, iw], dtype=np.float64)
    path, n_saccades = _camera_path(rng, n)
    u = _reflect01(rng.uniform(0.0, 1.0, 2) + path * crop_w[0] / np.maximum(dims - crop[0], 1.0))
    corner = u * (dims - crop)  # (n, 2) top-left of the window, continuous pixel coordinates
    filtered, k = _antialiased(image, float(crop_w.max()) / sw)
    ys = corner[:, :1] + crop[:, :1] * (np.arange(sh) + 0.5) / sh  # (n, sh)
    xs = corner[:, 1:] + crop[:, 1:] * (np.arange(sw) + 0.5) / sw  # (n, sw)
    coords = np.stack(np.broadcast_arrays(ys[:, :, None], xs[:, None, :]))  # (2, n, sh, sw)
    clip = map_coordinates(filtered, (coords / k - 0.5).reshape(2, -1), order=1, mode="nearest")
    clip = clip.reshape(n, sh, sw)
    mean, rms = rng.uniform(*NATURAL_MEAN), rng.uniform(*NATURAL_RMS)
    spread = clip.std()
    clip = (clip - clip.mean()) * (rms / spread if spread > 1e-6 else 0.0) + mean
    info = {
        "flip": flip,
        "fov": [_rounded(fov0), _rounded(fov1)],
        "mean": _rounded(mean),
        "contrast": _rounded(rms),
        "saccades": n_saccades,
    }
    return clip, info


def _natural_movie(
    rng: np.random.Generator, n_frames: int, screen: Screen, pool: str = "train"
) -> tuple[np.ndarray, dict]:
    """Natural movie and its description; see ``natural_movie``."""
    n_frames = _check_n_frames(n_frames)
    names = image_pool(pool)
    movie = np.empty((n_frames, *screen.shape))
    segments = []
    for start, stop in _natural_cuts(rng, n_frames):
        name = names[int(rng.integers(len(names)))]
        movie[start:stop], info = _natural_clip(rng, load_image(name), stop - start, screen.shape)
        segments.append({"image": name, "start": start, "stop": stop, **info})
    description = {
        "kind": "natural",
        "n_frames": n_frames,
        "pool": pool,
        "images": sorted({segment["image"] for segment in segments}),
        "segments": segments,
    }
    return quantize(movie), description


def natural_movie(
    rng: np.random.Generator, n_frames: int = 300, screen: Screen = DEFAULT_SCREEN, **params
) -> np.ndarray:
    """Natural movie (T, H, W) float32 0..255 cut from the scikit-image photos.

    Consecutive 1-4 s clips; each shows one image from ``params["pool"]`` ("train", default,
    or "test"; the pools never mix), randomly mirrored, seen through a screen-shaped window of
    30-100 % of the largest that fits, slowly zooming, drifting and making brief saccade-like
    jumps, with its own mean (100-160) and RMS contrast (30-60 gray levels).
    """
    return _natural_movie(rng, n_frames, screen, **params)[0]


# --- drifting gratings ------------------------------------------------------------------------


def _grating_segments(
    rng: np.random.Generator, n_frames: int, n_segments: int | None
) -> list[tuple[int, int]]:
    """(start, stop) ranges of the grating segments; random count 2-4 unless given.

    Random segments last at least ``GRATING_MIN_FRAMES`` where the movie is long enough; the
    change times are otherwise uniform.
    """
    if n_segments is None:
        n_segments = min(1 + int(rng.integers(1, 4)), max(1, n_frames // GRATING_MIN_FRAMES))
    elif isinstance(n_segments, bool) or not 1 <= int(n_segments) <= n_frames:
        raise SimulationError(f"n_segments must be in 1..{n_frames}, got {n_segments!r}")
    n_segments = int(n_segments)
    min_len = min(GRATING_MIN_FRAMES, n_frames // n_segments)
    spare = n_frames - n_segments * min_len
    extra = np.diff(
        np.concatenate([[0], np.sort(rng.integers(0, spare + 1, n_segments - 1)), [spare]])
    )
    bounds = np.concatenate([[0], np.cumsum(min_len + extra)]).tolist()
    return list(pairwise(bounds))


def _pick(rng: np.random.Generator, fixed: Any, draw: Callable[[np.random.Generator], Any]) -> Any:
    """``fixed`` when given, else ``draw(rng)`` (the draw is skipped, not wasted, when fixed)."""
    return draw(rng) if fixed is None else fixed


def _drifting_grating(
    rng: np.random.Generator,
    n_frames: int,
    screen: Screen,
    *,
    n_segments: int | None = None,
    direction_deg: float | None = None,
    spatial_freq_cpd: float | None = None,
    temporal_freq_hz: float | None = None,
    contrast: float | None = None,
    waveform: str | None = None,
    blank_probability: float = 0.5,
) -> tuple[np.ndarray, dict]:
    """Drifting grating and its description; see ``drifting_grating``."""
    n_frames = _check_n_frames(n_frames)
    if direction_deg is not None and not np.isfinite(direction_deg):
        raise SimulationError(f"direction_deg must be finite, got {direction_deg!r}")
    if spatial_freq_cpd is not None and not spatial_freq_cpd > 0:
        raise SimulationError(f"spatial_freq_cpd must be > 0, got {spatial_freq_cpd!r}")
    if temporal_freq_hz is not None and not temporal_freq_hz >= 0:
        raise SimulationError(f"temporal_freq_hz must be >= 0, got {temporal_freq_hz!r}")
    if contrast is not None and not 0 <= contrast <= 1:
        raise SimulationError(f"contrast must be in 0..1, got {contrast!r}")
    if waveform is not None and waveform not in WAVEFORMS:
        raise SimulationError(f"waveform must be one of {WAVEFORMS}, got {waveform!r}")
    if not 0 <= blank_probability <= 1:
        raise SimulationError(f"blank_probability must be in 0..1, got {blank_probability!r}")
    elevation, azimuth = screen.visual_angles
    log_sf = np.log(GRATING_SF_CPD)
    movie = np.full((n_frames, *screen.shape), GRAY)
    segments = []
    for index, (start, stop) in enumerate(_grating_segments(rng, n_frames, n_segments)):
        theta = float(_pick(rng, direction_deg, lambda r: r.uniform(0.0, 360.0)))
        sf = float(_pick(rng, spatial_freq_cpd, lambda r: np.exp(r.uniform(*log_sf))))
        tf = float(_pick(rng, temporal_freq_hz, lambda r: r.uniform(*GRATING_TF_HZ)))
        c = float(_pick(rng, contrast, lambda r: r.uniform(*GRATING_CONTRAST)))
        wave = _pick(rng, waveform, lambda r: "square" if r.random() < 0.2 else "sine")
        phase0 = rng.uniform(0.0, 2 * np.pi)
        blank = 0
        if index > 0 and rng.random() < blank_probability:
            blank = min(
                int(rng.integers(GRATING_BLANK_FRAMES[0], GRATING_BLANK_FRAMES[1] + 1)),
                (stop - start) // 2,
            )
        position = azimuth * np.cos(np.deg2rad(theta)) + elevation * np.sin(np.deg2rad(theta))
        t = (np.arange(stop - start - blank) / FRAME_RATE_HZ)[:, None, None]
        carrier = np.sin(2 * np.pi * (sf * position - tf * t) + phase0)
        if wave == "square":
            carrier = np.tanh(SQUARE_SHARPNESS * carrier) / np.tanh(SQUARE_SHARPNESS)
        movie[start + blank : stop] = GRAY + AMPLITUDE * c * carrier
        segments.append(
            {
                "start": start,
                "stop": stop,
                "blank_frames": blank,
                "direction_deg": _rounded(theta),
                "spatial_freq_cpd": _rounded(sf),
                "temporal_freq_hz": _rounded(tf),
                "contrast": _rounded(c),
                "waveform": wave,
            }
        )
    return quantize(movie), {"kind": "grating", "n_frames": n_frames, "segments": segments}


def drifting_grating(
    rng: np.random.Generator, n_frames: int = 300, screen: Screen = DEFAULT_SCREEN, **params
) -> np.ndarray:
    """Full-field drifting grating (T, H, W) float32 0..255 defined in visual degrees.

    Keyword ``params`` (each drawn per segment when None): ``n_segments`` (default 2-4, i.e.
    1-3 changes at random times), ``direction_deg`` (drift direction, 0 = towards +azimuth,
    90 = upwards; default 0-360), ``spatial_freq_cpd`` (cycles/deg, default log-uniform
    0.015-0.12), ``temporal_freq_hz`` (default 0.5-4), ``contrast`` (Michelson, default 0.3-1),
    ``waveform`` ("sine", or "square" with softened edges; default 20 % square) and
    ``blank_probability`` (chance of a 0.2-0.5 s gray blank before each new segment, 0.5).
    """
    return _drifting_grating(rng, n_frames, screen, **params)[0]


# --- pink noise -------------------------------------------------------------------------------


def _pink_noise(
    rng: np.random.Generator,
    n_frames: int,
    screen: Screen,
    *,
    spatial_exponent: float | None = None,
    temporal_corner_hz: float | None = None,
    temporal_exponent: float | None = None,
    contrast: float | None = None,
) -> tuple[np.ndarray, dict]:
    """Pink noise and its description; see ``pink_noise``."""
    n_frames = _check_n_frames(n_frames)
    alpha = float(_pick(rng, spatial_exponent, lambda r: r.uniform(0.8, 1.2)))
    corner = float(_pick(rng, temporal_corner_hz, lambda r: r.uniform(0.5, 3.0)))
    beta = float(_pick(rng, temporal_exponent, lambda r: r.uniform(1.0, 2.0)))
    rms = float(_pick(rng, contrast, lambda r: r.uniform(20.0, 50.0)))
    if not (corner > 0 and rms >= 0 and np.isfinite([alpha, beta]).all()):
        raise SimulationError(
            f"pink noise needs temporal_corner_hz > 0, contrast >= 0 and finite exponents, got "
            f"{corner!r}, {rms!r}, {alpha!r}, {beta!r}"
        )
    h, w = screen.shape
    deg_per_px = screen.degrees_per_pixel_at_centre
    ft = np.abs(np.fft.fftfreq(n_frames, d=1.0 / FRAME_RATE_HZ))[:, None, None]
    fy = np.fft.fftfreq(h, d=deg_per_px)[None, :, None]
    fx = np.fft.rfftfreq(w, d=deg_per_px)[None, None, :]
    fs = np.maximum(np.hypot(fy, fx), 1.0 / (max(h, w) * deg_per_px))  # no infinite DC gain
    gain = fs**-alpha / (1.0 + (ft / corner) ** beta)
    gain[0, 0, 0] = 0.0  # zero mean
    noise = np.fft.irfftn(
        np.fft.rfftn(rng.standard_normal((n_frames, h, w))) * gain,
        s=(n_frames, h, w),
        axes=(0, 1, 2),
    )
    noise -= noise.mean()
    spread = noise.std()
    movie = GRAY + noise * (rms / spread if spread > 1e-12 else 0.0)
    description = {
        "kind": "pink_noise",
        "n_frames": n_frames,
        "spatial_exponent": _rounded(alpha),
        "temporal_corner_hz": _rounded(corner),
        "temporal_exponent": _rounded(beta),
        "contrast": _rounded(rms),
    }
    return quantize(movie), description


def pink_noise(
    rng: np.random.Generator, n_frames: int = 300, screen: Screen = DEFAULT_SCREEN, **params
) -> np.ndarray:
    """Spatio-temporal 1/f noise (T, H, W) float32 0..255 around mean gray 128.

    Gaussian white noise shaped in the Fourier domain (periodic in space and time) by the
    amplitude gain ``f_s**-spatial_exponent / (1 + (f_t / temporal_corner_hz)**temporal_exponent)``
    with f_s in cycles/deg and f_t in Hz, then scaled to ``contrast`` gray levels RMS. Keyword
    ``params`` default to random draws: exponent 0.8-1.2, corner 0.5-3 Hz, temporal exponent
    1-2, contrast 20-50.
    """
    return _pink_noise(rng, n_frames, screen, **params)[0]


# --- moving dots ------------------------------------------------------------------------------


def _unit_vectors(elevation: np.ndarray, azimuth: np.ndarray) -> np.ndarray:
    """(..., 3) unit viewing directions for angles in degrees (x right, y up, z ahead)."""
    el, az = np.deg2rad(elevation), np.deg2rad(azimuth)
    return np.stack([np.cos(el) * np.sin(az), np.sin(el), np.cos(el) * np.cos(az)], axis=-1)


def _pixel_size_deg(screen: Screen) -> np.ndarray:
    """(H, W) visual angle spanned by each pixel (deg), geometric mean of its two sides."""
    elevation, azimuth = screen.visual_angles
    return np.sqrt(np.abs(np.gradient(azimuth, axis=1)) * np.abs(np.gradient(elevation, axis=0)))


def _dot_track(
    p0: float, velocity: float, t: np.ndarray, half: float, radius: float, wrap: bool
) -> np.ndarray:
    """Dot-centre coordinate (deg) over time ``t`` (s) on a screen axis spanning +-``half``.

    Bouncing keeps the whole disk on screen; wrapping lets it leave fully, then re-enter on
    the opposite side.
    """
    if wrap:
        low, span = -half - radius, 2 * (half + radius)
        return low + np.mod(p0 + velocity * t - low, span)
    low, span = -half + radius, 2 * (half - radius)
    return low + span * _reflect01((p0 + velocity * t - low) / span)


def _moving_dots(
    rng: np.random.Generator,
    n_frames: int,
    screen: Screen,
    *,
    n_dots: int | None = None,
    boundary: str | None = None,
) -> tuple[np.ndarray, dict]:
    """Moving dots and their description; see ``moving_dots``."""
    n_frames = _check_n_frames(n_frames)
    if n_dots is not None and (isinstance(n_dots, bool) or not 1 <= int(n_dots) <= 64):
        raise SimulationError(f"n_dots must be in 1..64, got {n_dots!r}")
    if boundary is not None and boundary not in DOT_BOUNDARIES:
        raise SimulationError(f"boundary must be one of {DOT_BOUNDARIES}, got {boundary!r}")
    n_dots = int(_pick(rng, n_dots, lambda r: r.integers(1, 9)))
    boundary = _pick(rng, boundary, lambda r: DOT_BOUNDARIES[int(r.integers(2))])
    half_az, half_el = screen.azimuth_span_deg / 2, screen.elevation_span_deg / 2
    pixels = _unit_vectors(*screen.visual_angles)  # (H, W, 3)
    pixel_deg = _pixel_size_deg(screen)
    t = np.arange(n_frames) / FRAME_RATE_HZ
    wrap = boundary == "wrap"
    movie = np.full((n_frames, *screen.shape), GRAY)
    dots = []
    for _ in range(n_dots):
        radius = rng.uniform(*DOT_RADIUS_DEG)
        polarity = 1.0 if rng.random() < 0.5 else -1.0
        c = rng.uniform(0.5, 1.0)
        start = (
            rng.uniform(-half_az + radius, half_az - radius),
            rng.uniform(-half_el + radius, half_el - radius),
        )
        speed, heading = rng.uniform(*DOT_SPEED_DEG_S), rng.uniform(0.0, 2 * np.pi)
        velocity = (speed * np.cos(heading), speed * np.sin(heading))
        az = _dot_track(start[0], velocity[0], t, half_az, radius, wrap)
        el = _dot_track(start[1], velocity[1], t, half_el, radius, wrap)
        cosine = np.einsum("tk,hwk->thw", _unit_vectors(el, az), pixels)
        distance = np.rad2deg(np.arccos(np.clip(cosine, -1.0, 1.0)))
        cover = np.clip(0.5 - (distance - radius) / pixel_deg, 0.0, 1.0)  # anti-aliased edge
        movie += cover * (GRAY + polarity * AMPLITUDE * c - movie)
        dots.append(
            {
                "radius_deg": _rounded(radius),
                "polarity": "bright" if polarity > 0 else "dark",
                "contrast": _rounded(c),
                "start_deg": [_rounded(start[0]), _rounded(start[1])],
                "velocity_deg_s": [_rounded(velocity[0]), _rounded(velocity[1])],
            }
        )
    description = {"kind": "dots", "n_frames": n_frames, "boundary": boundary, "dots": dots}
    return quantize(movie), description


def moving_dots(
    rng: np.random.Generator, n_frames: int = 300, screen: Screen = DEFAULT_SCREEN, **params
) -> np.ndarray:
    """Dark or bright disks gliding over mid-gray (T, H, W) float32 0..255.

    Keyword ``params``: ``n_dots`` (default 1-8) and ``boundary`` ("bounce" or "wrap", default
    random). Each disk has a radius of 3-10 deg (measured as visual angle from its centre),
    contrast 0.5-1 and a constant velocity of 10-60 deg/s in (azimuth, elevation); edges are
    anti-aliased over one pixel and later disks occlude earlier ones.
    """
    return _moving_dots(rng, n_frames, screen, **params)[0]


# --- the mix ----------------------------------------------------------------------------------

_DESCRIBED = {
    "natural": _natural_movie,
    "grating": _drifting_grating,
    "pink_noise": _pink_noise,
    "dots": _moving_dots,
}


def make_stimulus(
    rng: np.random.Generator,
    kind: str,
    n_frames: int = 300,
    pool: str = "train",
    *,
    screen: Screen = DEFAULT_SCREEN,
) -> tuple[np.ndarray, dict]:
    """A movie of ``kind`` with random parameters and its JSON-serializable description.

    Returns ((T, H, W) float32 0..255 movie, dict with "kind", "n_frames" and the chosen
    parameters; natural movies also list their "pool" and the "images" used). ``pool``
    ("train" or "test") selects the images of natural movies and is validated for every kind.
    """
    if kind not in STIMULUS_KINDS:
        raise SimulationError(f"unknown stimulus kind {kind!r} (expected one of {STIMULUS_KINDS})")
    image_pool(pool)
    params = {"pool": pool} if kind == "natural" else {}
    return _DESCRIBED[kind](rng, n_frames, screen, **params)


def sample_stimulus_kind(
    rng: np.random.Generator, weights: Mapping[str, float] | None = None
) -> str:
    """Draw a stimulus kind; ``weights`` (kind -> relative weight, missing = 0) default to
    ``DEFAULT_KIND_WEIGHTS``, a Sensorium-like mix that is mostly natural movies."""
    weights = DEFAULT_KIND_WEIGHTS if weights is None else weights
    unknown = set(weights) - set(STIMULUS_KINDS)
    if unknown:
        raise SimulationError(f"unknown stimulus kinds in weights: {sorted(unknown)}")
    p = np.array([float(weights.get(kind, 0.0)) for kind in STIMULUS_KINDS])
    if not (np.isfinite(p).all() and (p >= 0).all() and p.sum() > 0):
        raise SimulationError(f"stimulus weights must be finite, >= 0 and not all 0, got {weights}")
    return STIMULUS_KINDS[int(rng.choice(len(p), p=p / p.sum()))]
