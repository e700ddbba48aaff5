"""Open a recording from what a user types: a Sensorium folder or the in-silico sample."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from napari_movierecon.errors import RecordingError
from napari_movierecon.recording import Recording

SAMPLE = "sample"


def open_recording(source: str | Path) -> Recording:
    """``"sample"`` -> the in-silico sample mouse (trials simulated on demand; the built
    mouse is kept in the user cache, see ``insilico.mouse_cache``); anything else -> the
    Sensorium-layout folder at that path."""
    if str(source) == SAMPLE:
        from napari_movierecon.insilico.simulate import SimulatedRecording

        return SimulatedRecording(_sample_mouse())
    from napari_movierecon.io.sensorium import SensoriumRecording

    path = Path(source)
    if not path.exists():
        raise RecordingError(f"{path}: no such folder (give a Sensorium mouse folder or 'sample')")
    return SensoriumRecording(path)


@lru_cache(maxsize=1)
def _sample_mouse():
    """The sample mouse, read from the disk cache (or built) once per process."""
    from napari_movierecon.insilico.mouse_cache import cached_mouse

    return cached_mouse()


SAMPLE_ENCODER = Path(__file__).parent / "sample_data" / "encoder"


def open_encoder(source: str | Path):
    """``"sample"`` -> the shipped sample ensemble (trained on the sample mouse's training
    tier); anything else -> the checkpoint file or ensemble folder at that path."""
    from napari_movierecon.encoders.checkpoint import load_encoder

    return load_encoder(SAMPLE_ENCODER if str(source) == SAMPLE else source)
