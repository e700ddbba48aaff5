"""Export frames of movie layers to .npy, .tif/.tiff, .mp4 or .gif (core: no napari/Qt).

A *panel* is one layer's frames, already cut to the chosen frame range, plus how
napari displays it: contrast limits and a colormap lookup table (LUT). The GUI
turns napari colormaps into LUTs; this module only applies them.

What each format holds:

* ``.npy`` / ``.tif`` / ``.tiff`` with ONE panel: the raw values as float32,
  shape (T, H*scale, W*scale), in the layer's own units (they read back equal to
  the layer's frames when ``scale == 1``).
* ``.npy`` / ``.tif`` / ``.tiff`` with SEVERAL panels: raw values of different
  layers side by side would mix units, so these hold the *displayed* colours
  instead: uint8 RGB, shape (T, H', W', 3), panels side by side (see below).
* ``.mp4`` (H.264, yuv420p, near lossless) and ``.gif``: always the displayed
  colours, panels side by side.

Displayed frames: each value ``v`` becomes ``x = clip((v - lo) / (hi - lo), 0, 1)``,
the LUT row ``round(x * (N - 1))`` (N LUT rows) and its colour ``round(255 * c)``.
Panels are placed left to right with ``GAP_PX`` black columns between them, and
the whole frame is enlarged ``scale`` times by pixel repetition (nearest
neighbour), gap included: H' = H*scale, W' = (sum of W + GAP_PX*(n-1))*scale.
With ``labels``, a ``LABEL_PX`` tall black strip with each panel's name above it
is added on top (H' += LABEL_PX). An mp4 adds one black row/column at the
bottom/right where H'/W' is odd. Panels of different trials never go side by side.

An optional JSON sidecar ``<file>.json`` (e.g. ``movie.mp4.json``) records the
frame range, panels, limits, fps, scale and whatever the caller passes.

Writes go through ``io.atomic.staged_files``: all-or-nothing, the media file and
its sidecar committed as one set (the old pair or the new pair after a crash);
existing files are never replaced silently.
"""

from __future__ import annotations

import errno
import json
import math
import operator
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

import imageio_ffmpeg
import numpy as np
import tifffile

from napari_movierecon.errors import MovieReconError
from napari_movierecon.io.atomic import check_target, fill, staged_files
from napari_movierecon.io.npy import load_npy, regular_file

SUPPORTED_SUFFIXES = (".npy", ".tif", ".tiff", ".mp4", ".gif")
# Black columns between side-by-side panels (before scaling).
GAP_PX = 4
# x264 constant rate factor: 0 is lossless, ~17 is "visually lossless"; 10 keeps
# smooth 8-bit movies within about one grey level while staying playable everywhere.
MP4_CRF = 10
# Height in output pixels of the strip of panel names drawn above labelled exports.
LABEL_PX = 16


@dataclass(frozen=True)
class Panel:
    """One layer to export.

    frames: (T, H, W) real array, the layer's frames already cut to the frame range
        (any real dtype; NaN/inf are refused by ``export_frames``).
    limits: contrast limits (lo, hi) in the units of ``frames``, lo < hi.
    colormap: (N, 3) or (N, 4) float LUT with values in 0..1 (N >= 2, napari uses
        256), row 0 for ``lo`` and row N-1 for ``hi``; an alpha column is composited
        over black, as on napari's black canvas. None means grey.
    name: the layer's name, for the sidecar, error messages and burned-in labels.
    trial: (recording name or None, trial index) the frames belong to, or None when
        they belong to no trial; panels of different trials are never put side by side.
    """

    frames: Any
    limits: tuple[float, float]
    colormap: Any = None
    name: str = ""
    trial: tuple[str | None, int] | None = None


class _Ready(NamedTuple):
    """A validated panel: float32 (T, H, W) frames, float limits, (N, 3) uint8 LUT."""

    frames: np.ndarray
    lo: float
    hi: float
    lut: np.ndarray
    name: str
    grey: bool
    trial: tuple[str | None, int] | None


# ---------------------------------------------------------------- display


def lut_to_uint8(colormap: Any = None) -> np.ndarray:
    """The (N, 3) uint8 colour table for a colormap LUT (see ``Panel``); None -> 256 greys.

    Raises MovieReconError for a LUT that is not (N >= 2, 3 or 4) with finite values.
    """
    if colormap is None:
        return np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1)
    lut = np.asarray(colormap, dtype=np.float64)
    if lut.ndim != 2 or lut.shape[0] < 2 or lut.shape[1] not in (3, 4):
        raise MovieReconError(
            f"colormap: expected an (N, 3) or (N, 4) lookup table with N >= 2, "
            f"got shape {lut.shape}"
        )
    if not np.isfinite(lut).all():
        raise MovieReconError("colormap: the lookup table holds NaN or infinite values")
    rgb = lut[:, :3] * lut[:, 3:4] if lut.shape[1] == 4 else lut
    return np.rint(np.clip(rgb, 0.0, 1.0) * 255.0).astype(np.uint8)


def _check_limits(limits: Any) -> tuple[float, float]:
    """``limits`` as two finite floats lo < hi, or MovieReconError."""
    try:
        lo, hi = (float(value) for value in limits)
    except (TypeError, ValueError) as err:
        raise MovieReconError(f"contrast limits: expected (lo, hi), got {limits!r}") from err
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise MovieReconError(f"contrast limits: need finite lo < hi, got ({lo}, {hi})")
    return lo, hi


def _lut_rows(values: np.ndarray, lo: float, hi: float, rows: int) -> np.ndarray:
    """LUT row (intp, same shape as ``values``) of each value; NaN goes to row 0."""
    x = (np.asarray(values, dtype=np.float64) - lo) / (hi - lo)
    x = np.nan_to_num(np.clip(x, 0.0, 1.0), nan=0.0)
    return np.rint(x * (rows - 1)).astype(np.intp)


def display_rgb(values: Any, limits: Any, colormap: Any = None) -> np.ndarray:
    """Displayed colours of ``values`` (any shape S): uint8 array of shape S + (3,).

    ``limits`` = (lo, hi) contrast limits; ``colormap`` a LUT as in ``Panel`` (None
    for grey, where the three channels equal ``round(255 * clip((v-lo)/(hi-lo)))``).
    """
    lo, hi = _check_limits(limits)
    lut = lut_to_uint8(colormap)
    return lut[_lut_rows(values, lo, hi, lut.shape[0])]


# ---------------------------------------------------------------- validation


def _format_of(path: Path) -> str:
    """The export format ("npy", "tiff", "mp4" or "gif") named by the suffix of ``path``."""
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise MovieReconError(
            f"{path}: unknown file type {suffix or '(no suffix)'!r}; "
            f"supported: {', '.join(SUPPORTED_SUFFIXES)}"
        )
    return "tiff" if suffix == ".tif" else suffix[1:]


def _check_int(name: str, value: Any, minimum: int) -> int:
    """``value`` as an int >= ``minimum`` (bools and floats refused)."""
    try:
        if isinstance(value, bool):
            raise TypeError
        number = operator.index(value)
    except TypeError as err:
        raise MovieReconError(f"{name} must be an integer >= {minimum}, got {value!r}") from err
    if number < minimum:
        raise MovieReconError(f"{name} must be an integer >= {minimum}, got {number}")
    return number


def _check_fps(fps: Any) -> float:
    """``fps`` (frames per second) as a finite float > 0."""
    try:
        value = float(fps)
    except (TypeError, ValueError) as err:
        raise MovieReconError(f"fps must be a number > 0, got {fps!r}") from err
    if not (math.isfinite(value) and value > 0):
        raise MovieReconError(f"fps must be a finite number > 0, got {fps!r}")
    return value


def _check_panel(index: int, panel: Panel) -> _Ready:
    """Validate one panel: (T >= 1, H, W) finite real frames, limits, LUT."""
    label = f"panel {index} ({panel.name!r})" if panel.name else f"panel {index}"
    frames = np.asarray(panel.frames)
    if frames.dtype != np.bool_ and (
        not np.issubdtype(frames.dtype, np.number) or np.iscomplexobj(frames)
    ):
        raise MovieReconError(f"{label}: frames must be real numbers, got dtype {frames.dtype}")
    if frames.ndim != 3:
        raise MovieReconError(f"{label}: frames must be (T, H, W), got shape {frames.shape}")
    if 0 in frames.shape:
        raise MovieReconError(f"{label}: no frames to export (shape {frames.shape})")
    frames = frames.astype(np.float32, copy=False)
    if not np.isfinite(frames).all():
        raise MovieReconError(f"{label}: frames hold NaN or infinite values")
    try:
        lo, hi = _check_limits(panel.limits)
        lut = lut_to_uint8(panel.colormap)
    except MovieReconError as err:
        raise MovieReconError(f"{label}: {err}") from err
    return _Ready(frames, lo, hi, lut, str(panel.name), panel.colormap is None, panel.trial)


def _check_panels(panels: Sequence[Panel]) -> list[_Ready]:
    """Validate all panels and that they share T and H."""
    panels = list(panels)
    if not panels:
        raise MovieReconError("nothing to export: the list of panels is empty")
    ready = [_check_panel(index, panel) for index, panel in enumerate(panels)]
    first = ready[0].frames.shape
    for index, panel in enumerate(ready[1:], start=1):
        t, h, _ = panel.frames.shape
        if (t, h) != first[:2]:
            raise MovieReconError(
                f"panel {index} ({panel.name!r}): {t} frames of height {h}, but panel 0 "
                f"has {first[0]} frames of height {first[1]}; panels side by side need "
                "the same number of frames and the same height"
            )
    _check_same_trial(ready)
    return ready


def _same_trial(a: tuple[str | None, int], b: tuple[str | None, int]) -> bool:
    """Whether two (recording, trial) tags can be the same trial (an unknown recording
    matches any)."""
    return a[1] == b[1] and (a[0] is None or b[0] is None or a[0] == b[0])


def _trial_text(tag: tuple[str | None, int]) -> str:
    return f"trial {tag[1]}" + (f" of {tag[0]}" if tag[0] is not None else "")


def _check_same_trial(ready: Sequence[_Ready]) -> None:
    """Refuse panels of different trials side by side: a figure would pair a
    reconstruction with another trial's movie."""
    tagged = [panel for panel in ready if panel.trial is not None]
    for panel in tagged[1:]:
        if not _same_trial(tagged[0].trial, panel.trial):
            raise MovieReconError(
                f"{tagged[0].name!r} shows {_trial_text(tagged[0].trial)} but {panel.name!r} "
                f"shows {_trial_text(panel.trial)}: panels of different trials cannot go "
                "side by side (export them one file per layer)"
            )


def _sidecar_path(path: Path) -> Path:
    """``movie.mp4`` -> ``movie.mp4.json``."""
    return path.with_name(path.name + ".json")


# ---------------------------------------------------------------- frames


def _upscale(array: np.ndarray, scale: int, axes: tuple[int, int]) -> np.ndarray:
    """``array`` enlarged ``scale`` times along ``axes`` by pixel repetition."""
    if scale == 1:
        return array
    return np.repeat(np.repeat(array, scale, axis=axes[0]), scale, axis=axes[1])


class _Layout(NamedTuple):
    """How panels become displayed frames: ``scale`` (integer enlargement) and the
    optional ``strip`` (S, W', 3) uint8 of panel names drawn above them."""

    scale: int
    strip: np.ndarray | None


def _label_strip(ready: Sequence[_Ready], scale: int) -> np.ndarray:
    """(LABEL_PX, W', 3) uint8: each panel's name in white on black above its panel,
    cut to the panel's width."""
    from PIL import Image, ImageDraw, ImageFont

    width = _displayed_size(ready, _Layout(scale, None))[1]
    image = Image.new("RGB", (width, LABEL_PX))
    draw = ImageDraw.Draw(image)
    try:
        font = ImageFont.load_default(size=LABEL_PX - 4)
    except (TypeError, OSError):  # Pillow without FreeType: the small bitmap font
        font = ImageFont.load_default()
    left = 0
    for panel in ready:
        panel_width = panel.frames.shape[2] * scale
        text = panel.name
        while text and draw.textlength(text, font=font) > panel_width - 4:
            text = text[:-1]
        draw.text((left + 2, 1), text, fill=(255, 255, 255), font=font)
        left += panel_width + GAP_PX * scale
    return np.asarray(image)


def _frame(ready: Sequence[_Ready], t: int, layout: _Layout) -> np.ndarray:
    """Displayed frame ``t``: (H', W', 3) uint8, panels side by side, names above."""
    parts = []
    for index, panel in enumerate(ready):
        if index:
            parts.append(np.zeros((panel.frames.shape[1], GAP_PX, 3), dtype=np.uint8))
        rows = _lut_rows(panel.frames[t], panel.lo, panel.hi, panel.lut.shape[0])
        parts.append(panel.lut[rows])
    frame = _upscale(np.concatenate(parts, axis=1), layout.scale, (0, 1))
    return frame if layout.strip is None else np.concatenate([layout.strip, frame])


def _frames(ready: Sequence[_Ready], layout: _Layout) -> Iterator[np.ndarray]:
    """All displayed frames, one (H', W', 3) uint8 array at a time."""
    for t in range(ready[0].frames.shape[0]):
        yield _frame(ready, t, layout)


def _displayed_size(ready: Sequence[_Ready], layout: _Layout) -> tuple[int, int]:
    """(H', W') of the displayed frames in pixels."""
    height = ready[0].frames.shape[1] * layout.scale
    width = sum(panel.frames.shape[2] for panel in ready) + GAP_PX * (len(ready) - 1)
    strip = 0 if layout.strip is None else layout.strip.shape[0]
    return height + strip, width * layout.scale


def _raw(ready: Sequence[_Ready], fmt: str) -> bool:
    """Whether ``fmt`` stores raw values (one panel as npy/tiff), not displayed colours."""
    return fmt in ("npy", "tiff") and len(ready) == 1


def _data_array(ready: Sequence[_Ready], layout: _Layout) -> np.ndarray:
    """What .npy/.tiff hold: raw float32 (T, H', W') for one panel, else RGB uint8."""
    if len(ready) == 1:
        return _upscale(ready[0].frames, layout.scale, (1, 2))
    return np.stack(list(_frames(ready, layout)))


def _pad_even(frame: np.ndarray) -> np.ndarray:
    """``frame`` (H, W, 3) with a black row/column added where H/W is odd."""
    height, width = frame.shape[:2]
    if height % 2 == 0 and width % 2 == 0:
        return frame
    return np.pad(frame, ((0, height % 2), (0, width % 2), (0, 0)))


def _gif_delay_cs(fps: float) -> int:
    """GIF frame delay in hundredths of a second (the format's unit) closest to 1/fps."""
    return max(1, round(100.0 / fps))


# ---------------------------------------------------------------- writers


def _write_npy(path: Path, ready: Sequence[_Ready], layout: _Layout, fps: float) -> None:
    data = _data_array(ready, layout)
    fill(path, lambda handle: np.save(handle, data, allow_pickle=False))


def _write_tiff(path: Path, ready: Sequence[_Ready], layout: _Layout, fps: float) -> None:
    data = _data_array(ready, layout)
    photometric = "minisblack" if data.ndim == 3 else "rgb"
    fill(path, lambda handle: tifffile.imwrite(handle, data, photometric=photometric))


def _palette_image(rgb: np.ndarray):
    """``rgb`` (H, W, 3) uint8 as a Pillow "P" image: exact when it has <= 256 colours,
    otherwise quantised (median cut, no dithering)."""
    from PIL import Image

    height, width = rgb.shape[:2]
    packed = (
        (rgb[..., 0].astype(np.uint32) << 16) | (rgb[..., 1].astype(np.uint32) << 8) | rgb[..., 2]
    )
    colours, index = np.unique(packed.ravel(), return_inverse=True)
    if colours.size > 256:
        return Image.fromarray(rgb).quantize(
            256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE
        )
    palette = np.stack([colours >> 16, (colours >> 8) & 255, colours & 255], axis=1)
    image = Image.frombytes("P", (width, height), index.astype(np.uint8).tobytes())
    image.putpalette(palette.astype(np.uint8).tobytes())
    return image


def _gif_stream(handle: BinaryIO, frames: Iterator[np.ndarray], delay_cs: int) -> None:
    """Write an endlessly looping GIF, one full frame with its own palette per frame.

    Pillow's ``save_all`` merges identical consecutive frames into one longer frame;
    writing frame by frame keeps exactly one GIF frame per movie frame.
    """
    from PIL import GifImagePlugin

    delay_ms = delay_cs * 10
    for index, rgb in enumerate(frames):
        image = _palette_image(rgb)
        if index == 0:
            header, _ = GifImagePlugin.getheader(image, info={"loop": 0, "duration": delay_ms})
            handle.writelines(header)
        handle.writelines(
            GifImagePlugin.getdata(image, duration=delay_ms, include_color_table=True)
        )
    handle.write(b";")


def _write_gif(path: Path, ready: Sequence[_Ready], layout: _Layout, fps: float) -> None:
    delay = _gif_delay_cs(fps)
    fill(path, lambda handle: _gif_stream(handle, _frames(ready, layout), delay))


def _write_mp4(path: Path, ready: Sequence[_Ready], layout: _Layout, fps: float) -> None:
    """H.264 (libx264, yuv420p, crf ``MP4_CRF``) written by ffmpeg to the file ``path``."""
    height, width = _displayed_size(ready, layout)
    writer = imageio_ffmpeg.write_frames(
        str(path),
        (width + width % 2, height + height % 2),
        pix_fmt_in="rgb24",
        pix_fmt_out="yuv420p",
        fps=fps,
        codec="libx264",
        quality=None,
        macro_block_size=1,
        ffmpeg_log_level="error",
        # the temporary file's name does not end in .mp4: name the container
        output_params=[
            *("-crf", str(MP4_CRF), "-preset", "medium", "-movflags", "+faststart"),
            *("-f", "mp4"),
        ],
    )
    writer.send(None)
    try:
        for frame in _frames(ready, layout):
            writer.send(np.ascontiguousarray(_pad_even(frame)))
    finally:
        writer.close()


_WRITERS = {"npy": _write_npy, "tiff": _write_tiff, "gif": _write_gif, "mp4": _write_mp4}


# ---------------------------------------------------------------- sidecar


def _plain(value: Any, where: str = "record") -> Any:
    """``value`` as plain JSON data: numpy scalars/arrays, paths and tuples converted,
    NaN/inf as null; anything else unknown raises MovieReconError naming ``where``."""
    if isinstance(value, dict):
        return {str(key): _plain(item, f"{where}[{key!r}]") for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item, f"{where}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist(), where)
    if isinstance(value, np.generic):
        return _plain(value.item(), where)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (str, int)):
        return value
    raise MovieReconError(
        f"{where}: a {type(value).__name__} cannot be written to the JSON sidecar"
    )


def _sidecar_text(
    path: Path,
    fmt: str,
    ready: Sequence[_Ready],
    fps: float,
    layout: _Layout,
    first_frame: int,
    record: dict,
) -> str:
    """The JSON sidecar describing the export of ``ready`` to ``path``."""
    from napari_movierecon import __version__

    count = ready[0].frames.shape[0]
    raw = _raw(ready, fmt)
    height, width = _displayed_size(ready, layout)
    if fmt == "mp4":
        height, width = height + height % 2, width + width % 2
    export = {
        "file": path.name,
        "format": fmt,
        "content": "raw float32 values" if raw else "displayed RGB uint8",
        "frames": {"start": first_frame, "stop": first_frame + count, "count": count},
        "fps": fps,
        "scale": layout.scale,
        "labels": layout.strip is not None,
        "height": height,
        "width": width,
        "gap_px": GAP_PX if len(ready) > 1 else 0,
        "panels": [
            {
                "name": panel.name,
                "contrast_limits": [panel.lo, panel.hi],
                "colormap": "gray" if panel.grey else f"lookup table ({panel.lut.shape[0]})",
                "height": int(panel.frames.shape[1]),
                "width": int(panel.frames.shape[2]),
                "trial": None
                if panel.trial is None
                else {"recording": panel.trial[0], "trial": panel.trial[1]},
            }
            for panel in ready
        ],
        "napari_movierecon_version": __version__,
    }
    if fmt == "gif":
        export["gif_frame_delay_ms"] = _gif_delay_cs(fps) * 10
    if fmt == "mp4":
        export["mp4"] = {"codec": "libx264", "pix_fmt": "yuv420p", "crf": MP4_CRF}
    if not isinstance(record, dict):
        raise MovieReconError(f"record must be a dict, got {type(record).__name__}")
    text = json.dumps({"export": export, "record": _plain(record)}, indent=1, allow_nan=False)
    return text + "\n"


def _encoder_reason(err: BaseException) -> str:
    """Why writing failed, without the ffmpeg command line imageio-ffmpeg appends."""
    text = str(err)
    if "No space left on device" in text or getattr(err, "errno", None) == errno.ENOSPC:
        return "no space left on device"
    if isinstance(err, OSError) and err.strerror:
        return err.strerror
    return text.split("\n")[0].strip() or type(err).__name__


# ---------------------------------------------------------------- public API


def export_frames(
    panels: Sequence[Panel],
    path: str | os.PathLike,
    fps: float = 30.0,
    scale: int = 1,
    record: dict | None = None,
    overwrite: bool = False,
    first_frame: int = 0,
    labels: bool = False,
) -> list[Path]:
    """Write ``panels`` (left to right) to ``path``; the suffix picks the format.

    See the module docstring for what each format holds. ``fps``: frames per second
    of mp4/gif (GIF delays are whole hundredths of a second, so 30 fps plays at
    ~33.3); recorded for npy/tiff. ``scale``: integer enlargement >= 1 by pixel
    repetition. ``record``: when not None, a dict (config, population, metrics...)
    written with the export settings to the JSON sidecar ``<path>.json`` under
    "record" (NaN becomes null). ``first_frame``: index of the panels' first frame
    in the layers, recorded as the frame range [first_frame, first_frame + T).
    ``labels``: draw each panel's name in a ``LABEL_PX`` strip above it (displayed
    colours only; raw values of one panel stay as they are). Panels tagged with
    different trials (``Panel.trial``) are refused.

    Nothing is replaced unless ``overwrite``; the media file and the sidecar are
    written to temporary siblings and renamed into place together at the end.
    Returns the written paths (media first, then the sidecar if any). Raises
    MovieReconError for bad input, existing files, unwritable folders or a failed
    encode, leaving no partial file behind.
    """
    path = Path(path)
    fmt = _format_of(path)
    scale, fps = _check_int("scale", scale, 1), _check_fps(fps)
    first_frame = _check_int("first_frame", first_frame, 0)
    targets = [path] if record is None else [path, _sidecar_path(path)]
    for target in targets:
        check_target(target, overwrite)
    ready = _check_panels(panels)
    strip = _label_strip(ready, scale) if labels and not _raw(ready, fmt) else None
    layout = _Layout(scale, strip)
    sidecar = None
    if record is not None:
        sidecar = _sidecar_text(path, fmt, ready, fps, layout, first_frame, record)

    with staged_files(targets, overwrite) as temps:
        try:
            _WRITERS[fmt](temps[0], ready, layout, fps)
            if sidecar is not None:
                fill(temps[1], lambda handle: handle.write(sidecar.encode("utf-8")))
        except (OSError, RuntimeError, ValueError) as err:
            raise MovieReconError(f"{path}: cannot save ({_encoder_reason(err)})") from err
    return targets


def read_frames(path: str | os.PathLike) -> np.ndarray:
    """Read a file written by ``export_frames``.

    .npy/.tif/.tiff: the stored array as is ((T, H, W) float32 for one panel,
    (T, H, W, 3) uint8 RGB for several). .mp4/.gif: (T, H, W, 3) uint8 RGB.
    Raises MovieReconError naming ``path`` if it is missing or unreadable.
    """
    path = Path(path)
    fmt = _format_of(path)
    regular_file(path, "exported file")
    readers = {"npy": _read_npy, "tiff": tifffile.imread, "gif": _read_gif, "mp4": _read_mp4}
    try:
        return readers[fmt](path)
    except (OSError, RuntimeError, ValueError, EOFError) as err:
        raise MovieReconError(f"{path}: cannot read ({err})") from err


def _read_npy(path: Path) -> np.ndarray:
    return load_npy(path, "fiub")


def _read_gif(path: Path) -> np.ndarray:
    """All frames of a GIF as (T, H, W, 3) uint8 RGB."""
    from PIL import Image, ImageSequence

    with Image.open(path) as image:
        frames = [np.asarray(frame.convert("RGB")) for frame in ImageSequence.Iterator(image)]
    return np.stack(frames)


def _read_mp4(path: Path) -> np.ndarray:
    """All frames of a video as (T, H, W, 3) uint8 RGB, decoded by ffmpeg."""
    reader = imageio_ffmpeg.read_frames(str(path), pix_fmt="rgb24")
    try:
        width, height = next(reader)["size"]
        frames = [np.frombuffer(buffer, np.uint8).reshape(height, width, 3) for buffer in reader]
    finally:
        reader.close()
    return np.stack(frames)
