"""Open a recording or an encoder from what a user types: a path, or the in-silico sample."""

from __future__ import annotations

from collections.abc import Generator
from functools import lru_cache
from pathlib import Path

from napari_movierecon.errors import CheckpointError, MovieReconError, RecordingError
from napari_movierecon.recording import Recording

SAMPLE = "sample"
DEVICES = ("cpu", "cuda")


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


def open_encoder_steps(
    source: str | Path, mouse: int | None = None, recording: Recording | None = None
) -> Generator[str, None, object]:
    """``open_encoder`` as a generator for progress reports: yields one line per step
    (each member of a DwiseNeuro folder) and returns the encoder."""
    from napari_movierecon.encoders.argus_checkpoint import (
        is_argus_source,
        iter_argus_members,
        load_argus_encoder,
    )
    from napari_movierecon.encoders.checkpoint import load_encoder
    from napari_movierecon.encoders.ensemble import Ensemble, members_of

    path = SAMPLE_ENCODER if str(source) == SAMPLE else Path(source)
    unit_ids = None if recording is None else recording.neurons.ids
    name = None if recording is None else recording.name
    if is_argus_source(path) and path.is_dir():
        members = []
        for done, total, member in iter_argus_members(path, mouse, unit_ids, name):
            members.append(member)
            yield f"loaded DwiseNeuro member {done}/{total} (mouse {member.config.mouse})"
        ensemble = Ensemble(members)
        ensemble.source = str(path)
        return ensemble
    yield f"loading the encoder {path.name} …"
    if is_argus_source(path):
        return load_argus_encoder(path, mouse, unit_ids, name)
    encoder = load_encoder(path)
    if mouse is not None:
        chosen = {getattr(getattr(m, "config", None), "mouse", None) for m in members_of(encoder)}
        if chosen != {mouse}:
            raise CheckpointError(
                f"{path}: --mouse {mouse} does not apply: this checkpoint holds "
                + (f"mouse {sorted(chosen)}" if None not in chosen else "no DwiseNeuro readouts")
            )
    return encoder


def open_encoder(
    source: str | Path,
    mouse: int | None = None,
    recording: Recording | None = None,
):
    """``"sample"`` -> the shipped sample ensemble (trained on the sample mouse's training
    tier); a DwiseNeuro ``model-*.pth`` file, or a folder of them (``fold_*/model-*.pth``)
    -> that mouse's encoder or ensemble, the mouse being ``mouse`` or found from
    ``recording`` (whose unit ids name the neurons); anything else -> our checkpoint
    file or ensemble folder at that path."""
    steps = open_encoder_steps(source, mouse, recording)
    while True:
        try:
            next(steps)
        except StopIteration as finished:
            return finished.value


def check_device(device: str) -> str:
    """``device`` if torch can run there: ``cpu``, or ``cuda`` / ``cuda:K`` when CUDA and
    that GPU exist; otherwise MovieReconError saying what is available."""
    import torch

    kind, _, number = str(device).partition(":")
    if kind not in DEVICES or (number and not number.isdigit()):
        raise MovieReconError(f"unknown device {device!r}; use cpu or cuda (cuda:K)")
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise MovieReconError(
                f"device {device!r}: CUDA is not available here (torch {torch.__version__}); "
                "use --device cpu"
            )
        if number and int(number) >= torch.cuda.device_count():
            raise MovieReconError(
                f"device {device!r}: only {torch.cuda.device_count()} CUDA device(s) here"
            )
    return str(device)
