"""Present a user's own movie to the in-silico mouse: convert it to the screen's format.

Any movie becomes (T', 36, 64) float32 integer gray levels in 0..255 at 30 Hz:

1. gray levels: RGB(A) frames become BT.709 luminance (alpha ignored); uint8 is taken as is,
   float movies whose maximum is <= 1 are scaled by 255, everything else is clipped to 0..255;
2. space: the largest centred window with the screen's 64:36 aspect is averaged onto the
   36 x 64 grid by exact area weighting (each output pixel is the mean of the input area it
   covers, fractional pixels weighted by their covered fraction), which needs no separate
   anti-alias filter; movies smaller than the screen come out blocky (pixel replication);
3. time: the movie keeps its duration, T' = round(T * 30 / fps) frames; frame k shows time
   k / 30 s, linearly interpolated between the two nearest input frames (the last one held).

Videos are decoded by the ffmpeg binary bundled with imageio-ffmpeg, frame by frame, so a
long high-resolution video never sits in memory at full size.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import imageio_ffmpeg
import numpy as np

from napari_movierecon.errors import SimulationError
from napari_movierecon.insilico.images import LUMA_WEIGHTS
from napari_movierecon.insilico.stimuli import quantize
from napari_movierecon.io.npy import load_npy
from napari_movierecon.recording import FRAME_RATE_HZ, SCREEN_SHAPE

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".gif", ".webm")
MOVIE_EXTENSIONS = (".npy", *VIDEO_EXTENSIONS)
_CHUNK_FRAMES = 32  # frames converted at once, bounding the float64 working memory


def _area_weights(n_in: int, n_out: int, keep: float) -> np.ndarray:
    """(n_out, n_in) area-averaging matrix from the centred ``keep`` input pixels to ``n_out``.

    Row i holds the fraction of output pixel i covered by each input pixel; rows sum to 1.
    """
    edges = (n_in - keep) / 2 + keep * np.arange(n_out + 1) / n_out
    left, right = edges[:-1, None], edges[1:, None]
    pixel = np.arange(n_in)[None, :]
    overlap = np.clip(np.minimum(right, pixel + 1) - np.maximum(left, pixel), 0.0, None)
    return overlap / overlap.sum(axis=1, keepdims=True)


def _screen_weights(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Row (36, height) and column (64, width) weights of the centred 64:36 crop and resize."""
    out_h, out_w = SCREEN_SHAPE
    keep_w = min(float(width), height * out_w / out_h)
    keep_h = keep_w * out_h / out_w
    return _area_weights(height, out_h, keep_h), _area_weights(width, out_w, keep_w)


def _to_screen(chunks: Iterable[np.ndarray], height: int, width: int) -> np.ndarray:
    """Resize a stream of (t, height, width) float64 gray chunks to one (T, 36, 64) array."""
    rows, cols = _screen_weights(height, width)
    resized = [rows @ chunk @ cols.T for chunk in chunks]
    return np.concatenate(resized) if resized else np.empty((0, *SCREEN_SHAPE))


def _resample_time(movie: np.ndarray, fps: float) -> np.ndarray:
    """(T, H, W) at ``fps`` -> (round(T * 30 / fps), H, W) at 30 Hz by linear interpolation."""
    n_in = movie.shape[0]
    n_out = max(1, round(n_in * FRAME_RATE_HZ / fps))
    position = np.minimum(np.arange(n_out) * fps / FRAME_RATE_HZ, n_in - 1)
    before = np.floor(position).astype(np.int64)
    after = np.minimum(before + 1, n_in - 1)
    weight = (position - before)[:, None, None]
    return (1.0 - weight) * movie[before] + weight * movie[after]


def _check_fps(fps: float | None, name: str) -> float:
    """``fps`` as a positive finite float, or SimulationError naming ``name``."""
    if fps is None:
        raise SimulationError(f"{name}: the frame rate (fps) is required for this movie")
    try:
        value = float(fps)
    except (TypeError, ValueError):
        raise SimulationError(f"{name}: fps must be a number, got {fps!r}") from None
    if not (np.isfinite(value) and value > 0):
        raise SimulationError(f"{name}: fps must be a positive number, got {fps!r}")
    return value


def resample_movie(movie: np.ndarray, fps: float, *, name: str = "movie") -> np.ndarray:
    """Convert an in-memory movie to the screen: (T', 36, 64) float32 integer gray levels.

    ``movie`` is (T, H, W) or (T, H, W, 3|4) of any real numeric dtype shown at ``fps`` Hz;
    see the module docstring for the conversion. ``name`` labels error messages.
    """
    fps = _check_fps(fps, name)
    movie = np.asarray(movie)
    if not (np.issubdtype(movie.dtype, np.integer) or np.issubdtype(movie.dtype, np.floating)):
        raise SimulationError(f"{name}: movie dtype must be numeric, got {movie.dtype}")
    if movie.ndim not in (3, 4) or (movie.ndim == 4 and movie.shape[3] not in (3, 4)):
        raise SimulationError(
            f"{name}: movie must be (T, H, W) or (T, H, W, 3|4), got shape {movie.shape}"
        )
    if movie.shape[0] == 0 or movie.shape[1] == 0 or movie.shape[2] == 0:
        raise SimulationError(f"{name}: movie has no frames (shape {movie.shape})")
    if np.issubdtype(movie.dtype, np.floating) and not np.isfinite(movie).all():
        raise SimulationError(f"{name}: movie contains NaN or infinite values")
    scale = 255.0 if np.issubdtype(movie.dtype, np.floating) and movie.max() <= 1.0 else 1.0

    def gray_chunks() -> Iterator[np.ndarray]:
        for start in range(0, movie.shape[0], _CHUNK_FRAMES):
            chunk = movie[start : start + _CHUNK_FRAMES].astype(np.float64)
            if chunk.ndim == 4:
                chunk = chunk[..., :3] @ LUMA_WEIGHTS
            yield np.clip(chunk * scale, 0.0, 255.0)

    screen = _to_screen(gray_chunks(), movie.shape[1], movie.shape[2])
    return quantize(_resample_time(screen, fps))


def _ffmpeg_reason(err: Exception) -> str:
    """First and last line of an imageio-ffmpeg error (the middle is ffmpeg's banner)."""
    lines = [line for line in str(err).splitlines() if line.strip()] or [type(err).__name__]
    return lines[0] if len(lines) == 1 else f"{lines[0]}: {lines[-1]}"


def _read_video(path: Path, fps: float | None) -> np.ndarray:
    """Decode a video file to the screen: (T', 36, 64) float32 integer gray levels at 30 Hz.

    ``fps``, when given, overrides the frame rate the file reports.
    """
    frames = imageio_ffmpeg.read_frames(str(path), pix_fmt="gray", bpp=1)
    try:
        meta = next(frames)
        width, height = meta["size"]
        rate = _check_fps(meta.get("fps") if fps is None else fps, str(path))

        def gray_chunks() -> Iterator[np.ndarray]:
            chunk: list[np.ndarray] = []
            for frame in frames:
                chunk.append(np.frombuffer(frame, np.uint8).reshape(height, width))
                if len(chunk) == _CHUNK_FRAMES:
                    yield np.stack(chunk).astype(np.float64)
                    chunk = []
            if chunk:
                yield np.stack(chunk).astype(np.float64)

        screen = _to_screen(gray_chunks(), height, width)
    except (RuntimeError, OSError, StopIteration, KeyError, ValueError) as err:
        raise SimulationError(f"{path}: cannot read the video ({_ffmpeg_reason(err)})") from err
    finally:
        frames.close()
    if screen.shape[0] == 0:
        raise SimulationError(f"{path}: the video has no frames")
    return quantize(_resample_time(screen, rate))


def load_user_movie(path: str | Path, fps: float | None = None) -> np.ndarray:
    """Load a movie file and convert it to the screen: (T', 36, 64) float32 0..255 at 30 Hz.

    ``.npy`` files hold (T, H, W) or (T, H, W, 3|4) arrays and need ``fps``; video files
    (``VIDEO_EXTENSIONS``) report their own frame rate, which ``fps`` overrides when given.
    Every problem raises SimulationError naming the file.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in MOVIE_EXTENSIONS:
        raise SimulationError(
            f"{path}: unsupported movie format {suffix or '(none)'!r} "
            f"(expected one of {', '.join(MOVIE_EXTENSIONS)})"
        )
    if not path.is_file():
        raise SimulationError(f"{path}: no such movie file")
    if suffix in VIDEO_EXTENSIONS:
        return _read_video(path, fps)
    fps = _check_fps(fps, str(path))
    movie = load_npy(path, "fiub", SimulationError, mmap=True)
    return resample_movie(movie, fps, name=str(path))
