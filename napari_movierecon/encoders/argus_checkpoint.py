"""Read the published DwiseNeuro checkpoints (argus ``model-*.pth``) without running code.

A ``model-*.pth`` is a ``torch.save`` zip of a plain dict (``model_name``, ``params``,
``nn_state_dict``). It is read only with ``torch.load(..., weights_only=True,
mmap=True)``: torch's restricted unpickler accepts plain containers and tensors and
refuses any other global before creating it, so a malicious file runs nothing. The
tensors stay memory-mapped; the architecture is built on the ``meta`` device and the
kept tensors are assigned to it, so opening one 683 MB file touches only the core,
the cortex and the chosen mouse's readout (~100 MB), never a second copy.

``params`` is validated (module name, every kwarg's type and a sane range, the
16-frame every-2nd-frame window, the 64x64 plane) before anything is built.
The mouse is ``mouse=k`` (readout k) or found from the recording: a Sensorium folder
named after one of the published mice when the checkpoint has the published ten
readouts, else the unique readout with the recording's neuron count. The neurons'
ids are the recording's ``unit_ids`` (the readout's rows are in that order).

A folder in the published layout ``fold_*/model-*.pth`` (or holding ``model-*.pth``
files) is an Ensemble of one member per file.
"""

from __future__ import annotations

import math
import os
import pickle
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch

from napari_movierecon.encoders.dwiseneuro import (
    FRAME_STEP,
    PLANE,
    WINDOW_FRAMES,
    DwiseNeuroConfig,
    DwiseNeuroEncoder,
)
from napari_movierecon.encoders.ensemble import Ensemble
from napari_movierecon.errors import CheckpointError, MovieReconError

SUFFIX = ".pth"
FILE_PATTERN = "model-*" + SUFFIX
MODULE_NAME = "dwiseneuro"

# Readout k of the published checkpoints (src/constants.py order): folder name prefix,
# neuron count. Folders carry a "-Video-<hash>" suffix.
PUBLISHED_MICE = (
    ("dynamic29515-10-12", 7863),
    ("dynamic29623-4-9", 7908),
    ("dynamic29647-19-8", 8202),
    ("dynamic29712-5-9", 7939),
    ("dynamic29755-2-8", 8122),
    ("dynamic29156-11-10", 7440),
    ("dynamic29228-2-10", 7928),
    ("dynamic29234-6-9", 8285),
    ("dynamic29513-3-5", 7671),
    ("dynamic29514-2-9", 7495),
)
PUBLISHED_READOUTS = tuple(n for _, n in PUBLISHED_MICE)

# kwarg -> (kind, lower, upper, sequence length range or None). Upper limits are
# far above the published values (so variants load) and far below what would
# exhaust memory before the weights are even compared.
_INT_SEQ, _INT, _FLOAT = "int sequence", "int", "float"
KWARG_RULES = {
    "readout_outputs": (_INT_SEQ, 1, 200_000, (1, 64)),
    "in_channels": (_INT, 5, 5, None),
    "core_features": (_INT_SEQ, 1, 4096, (1, 64)),
    "spatial_strides": (_INT_SEQ, 1, 2, (1, 64)),
    "spatial_kernel": (_INT, 1, 15, None),
    "temporal_kernel": (_INT, 1, 15, None),
    "expansion_ratio": (_INT, 1, 32, None),
    "se_reduce_ratio": (_INT, 1, 4096, None),
    "cortex_features": (_INT_SEQ, 2, 65_536, (1, 16)),
    "groups": (_INT, 1, 64, None),
    "softplus_beta": (_FLOAT, 1e-6, 1e3, None),
    "drop_rate": (_FLOAT, 0.0, 1.0, None),
    "drop_path_rate": (_FLOAT, 0.0, 1.0, None),
}
REQUIRED_KWARGS = tuple(k for k in KWARG_RULES if k not in ("drop_rate", "drop_path_rate"))


def is_argus_source(path: str | os.PathLike) -> bool:
    """A ``.pth`` file, or a folder holding ``model-*.pth`` (directly or in ``fold_*``)."""
    path = Path(path)
    if path.is_dir():
        return bool(argus_member_files(path, strict=False))
    return path.suffix == SUFFIX


def argus_member_files(folder: Path, strict: bool = True) -> list[Path]:
    """The member files of a folder: one ``model-*.pth`` per ``fold_<k>`` (in fold order),
    or the ``model-*.pth`` files of the folder itself. ``strict``: a fold holding none or
    several is an error."""
    folds = sorted(
        (p for p in folder.glob("fold_*") if p.is_dir()),
        key=lambda p: (not p.name[5:].isdigit(), int(p.name[5:]) if p.name[5:].isdigit() else 0),
    )
    if not folds:
        return sorted(folder.glob(FILE_PATTERN))
    files = []
    for fold in folds:
        found = sorted(fold.glob(FILE_PATTERN))
        if len(found) != 1 and strict:
            raise CheckpointError(
                f"{fold}: expected one {FILE_PATTERN} file, found {len(found)}"
                + (f" ({', '.join(p.name for p in found)}); keep one" if found else "")
            )
        files += found[:1]
    return files


def _check_kwargs(path: Path, kwargs: object) -> dict:
    if not isinstance(kwargs, dict):
        raise CheckpointError(f"{path}: params['nn_module'][1] is not a dict of model kwargs")
    unknown = sorted(set(map(str, kwargs)) - set(KWARG_RULES))
    missing = [k for k in REQUIRED_KWARGS if k not in kwargs]
    if unknown or missing:
        raise CheckpointError(
            f"{path}: not DwiseNeuro's model kwargs (unknown: {unknown or 'none'}; "
            f"missing: {missing or 'none'})"
        )
    checked = {}
    for name, value in kwargs.items():
        kind, low, high, length = KWARG_RULES[name]
        values = list(value) if isinstance(value, list | tuple) else [value]
        if kind == _INT_SEQ and not (isinstance(value, list | tuple)):
            raise CheckpointError(f"{path}: model kwarg {name} must be a list, got {value!r}")
        if kind != _INT_SEQ and isinstance(value, list | tuple):
            raise CheckpointError(f"{path}: model kwarg {name} must be a number, got {value!r}")
        numeric = float if kind == _FLOAT else int
        ok = all(
            isinstance(v, int | float) and not isinstance(v, bool) and numeric(v) == v
            for v in values
        )
        if not ok or not all(low <= v <= high for v in values):
            raise CheckpointError(
                f"{path}: model kwarg {name} = {value!r} is not {kind} in [{low}, {high}]"
            )
        if length is not None and not length[0] <= len(values) <= length[1]:
            raise CheckpointError(f"{path}: model kwarg {name} has {len(values)} entries")
        checked[name] = tuple(int(v) for v in values) if kind == _INT_SEQ else numeric(value)
    return checked


def _check_params(path: Path, params: object) -> dict:
    """The validated model kwargs from ``params``; CheckpointError for anything else."""
    if not isinstance(params, dict):
        raise CheckpointError(f"{path}: 'params' is not a dict")
    module = params.get("nn_module")
    if not isinstance(module, list | tuple) or len(module) != 2 or module[0] != MODULE_NAME:
        raise CheckpointError(
            f"{path}: params['nn_module'] is {str(module)[:80]!r}, not ('{MODULE_NAME}', kwargs)"
        )
    stack = params.get("frame_stack", {"size": WINDOW_FRAMES, "step": FRAME_STEP})
    if not isinstance(stack, dict) or (stack.get("size"), stack.get("step")) != (
        WINDOW_FRAMES,
        FRAME_STEP,
    ):
        raise CheckpointError(
            f"{path}: frame_stack {stack!r} is not the {WINDOW_FRAMES}-frame, every-"
            f"{FRAME_STEP}nd-frame window this implementation computes"
        )
    processor = params.get("inputs_processor", ("stack_inputs", {"size": PLANE}))
    size = processor[1].get("size") if isinstance(processor, list | tuple) else None
    if not isinstance(processor[1], dict) or tuple(size or ()) != PLANE:
        raise CheckpointError(f"{path}: inputs_processor {processor!r} is not a 64x64 plane")
    return _check_kwargs(path, module[1])


def read_argus(path: str | os.PathLike) -> tuple[dict, dict[str, torch.Tensor], float]:
    """(validated model kwargs, memory-mapped state_dict, pad fill) of a ``model-*.pth``.

    Only ``torch.load(weights_only=True, mmap=True)`` touches the file; a pickle that
    names anything but plain containers and tensors is refused before it runs.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        content = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except pickle.UnpicklingError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise CheckpointError(
            f"{path}: refused: the pickle asks for code or objects a weights-only load does not "
            f"allow, so it was not unpickled ({first[:200]})"
        ) from err
    except (RuntimeError, OSError, ValueError, EOFError, KeyError, TypeError) as err:
        raise CheckpointError(
            f"{path}: not a readable torch checkpoint (corrupt, truncated or another format: "
            f"{str(err).strip()[:200]})"
        ) from err
    if not isinstance(content, dict) or not {"params", "nn_state_dict"} <= set(content):
        raise CheckpointError(
            f"{path}: not an argus checkpoint (expected a dict with 'params' and 'nn_state_dict')"
        )
    kwargs = _check_params(path, content["params"])
    state = content["nn_state_dict"]
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise CheckpointError(f"{path}: 'nn_state_dict' is not a dict of named tensors")
    processor = content["params"].get("inputs_processor", ("", {}))
    fill = processor[1].get("pad_fill_value", 0.0) if isinstance(processor[1], dict) else 0.0
    if not isinstance(fill, int | float) or not math.isfinite(fill):
        raise CheckpointError(f"{path}: pad_fill_value {fill!r} is not a number")
    return kwargs, state, float(fill)


def choose_mouse(
    path: Path,
    readouts: tuple[int, ...],
    mouse: int | None,
    recording_name: str | None,
    n_neurons: int | None,
) -> int:
    """Readout index: ``mouse`` if given, else from the recording's name (published ten
    readouts only), else the unique readout with ``n_neurons`` neurons."""
    if mouse is not None:
        if not 0 <= mouse < len(readouts):
            raise CheckpointError(
                f"{path}: mouse {mouse} does not exist; the checkpoint has readouts "
                f"0..{len(readouts) - 1}"
            )
        return mouse
    if recording_name is not None and tuple(readouts) == PUBLISHED_READOUTS:
        for k, (prefix, _) in enumerate(PUBLISHED_MICE):
            if recording_name == prefix or recording_name.startswith(prefix + "-"):
                return k
    if n_neurons is None:
        raise CheckpointError(
            f"{path}: which mouse? give mouse=K / --mouse K (readouts: "
            f"{', '.join(f'{k}: {n} neurons' for k, n in enumerate(readouts))})"
        )
    matching = [k for k, n in enumerate(readouts) if n == n_neurons]
    if len(matching) != 1:
        raise CheckpointError(
            f"{path}: {recording_name or 'the recording'} has {n_neurons} neurons; "
            + (
                f"readouts {matching} all have that many: give --mouse K"
                if matching
                else f"no readout has that many ({', '.join(map(str, readouts))}): "
                "the checkpoint was trained on other mice"
            )
        )
    return matching[0]


def _kept_state(path: Path, state: dict[str, torch.Tensor], mouse: int) -> dict:
    """The state_dict with readout ``mouse`` renamed to ``net.readout.*`` and the other
    readouts dropped; every other key prefixed with ``net.``."""
    prefix = f"readouts.{mouse}.layer.1."
    kept = {}
    for key, value in state.items():
        if key.startswith("readouts."):
            if key.startswith(prefix):
                kept["net.readout." + key[len(prefix) :]] = value
        else:
            kept["net." + key] = value
    return kept


def load_argus_encoder(
    path: str | os.PathLike,
    mouse: int | None = None,
    unit_ids: np.ndarray | None = None,
    recording_name: str | None = None,
) -> DwiseNeuroEncoder:
    """One mouse of a DwiseNeuro ``model-*.pth`` as an eval-mode DwiseNeuroEncoder.

    ``unit_ids`` (N,) are the recording's neuron ids in its order (they must number the
    chosen readout's neurons); without them (a checkpoint opened on its own) the
    neurons are numbered 0..N-1 and ``mouse`` is required.
    """
    path = Path(path)
    kwargs, state, fill = read_argus(path)
    readouts = kwargs.pop("readout_outputs")
    kwargs.pop("drop_rate", None)
    kwargs.pop("drop_path_rate", None)
    n_neurons = None if unit_ids is None else len(unit_ids)
    k = choose_mouse(path, readouts, mouse, recording_name, n_neurons)
    if unit_ids is None:
        unit_ids = np.arange(readouts[k], dtype=np.int64)
    elif len(unit_ids) != readouts[k]:
        raise CheckpointError(
            f"{path}: mouse {k} has {readouts[k]} neurons but "
            f"{recording_name or 'the recording'} has {len(unit_ids)}: wrong mouse or recording"
        )
    try:
        config = DwiseNeuroConfig(neurons=readouts[k], mouse=k, pad_fill=fill, **kwargs)
        with torch.device("meta"):
            encoder = DwiseNeuroEncoder(config, unit_ids)
        encoder.load_state_dict(_kept_state(path, state, k), strict=True, assign=True)
    except (MovieReconError, RuntimeError, ValueError, TypeError) as err:
        raise CheckpointError(
            f"{path}: weights do not match the DwiseNeuro architecture of its params "
            f"({str(err).strip()[:300]})"
        ) from err
    floats = [t for t in encoder.state_dict().values() if t.is_floating_point()]
    if not all(bool(torch.isfinite(t.sum())) for t in floats):  # no copy: NaN/inf propagate
        raise CheckpointError(f"{path}: holds NaN or infinite weights")
    encoder.record = {"origin": "argus checkpoint", "file": path.name, "mouse": k}
    encoder.source = str(path)
    return encoder.eval().requires_grad_(False)


def iter_argus_members(
    folder: str | os.PathLike,
    mouse: int | None = None,
    unit_ids: np.ndarray | None = None,
    recording_name: str | None = None,
) -> Iterator[tuple[int, int, DwiseNeuroEncoder]]:
    """(done, total, member) for each member file of ``folder`` (``argus_member_files``),
    loaded as ``load_argus_encoder`` does; for callers that report progress."""
    folder = Path(folder)
    files = argus_member_files(folder)
    if not files:
        raise CheckpointError(f"{folder}: no fold_*/{FILE_PATTERN} or {FILE_PATTERN} files")
    for done, file in enumerate(files, start=1):
        yield done, len(files), load_argus_encoder(file, mouse, unit_ids, recording_name)


def load_argus_ensemble(
    folder: str | os.PathLike,
    mouse: int | None = None,
    unit_ids: np.ndarray | None = None,
    recording_name: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Ensemble:
    """Every member file of ``folder`` (see ``argus_member_files``) for one mouse.
    ``progress(done, total)`` after each member."""
    members = []
    for done, total, member in iter_argus_members(folder, mouse, unit_ids, recording_name):
        members.append(member)
        if progress is not None:
            progress(done, total)
    ensemble = Ensemble(members)
    ensemble.source = str(folder)
    return ensemble


def convert_argus(
    source: str | os.PathLike,
    out: str | os.PathLike,
    mouse: int | None = None,
    unit_ids: np.ndarray | None = None,
    recording_name: str | None = None,
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Write one mouse of a ``model-*.pth`` as an encoder checkpoint (.safetensors), or of
    a folder of them as an ensemble folder of ``member_<k>.safetensors``; from then on
    nothing is unpickled. Arguments as ``load_argus_encoder``."""
    from napari_movierecon.encoders.checkpoint import save_encoder, save_ensemble

    source = Path(source)
    if source.is_dir():
        ensemble = load_argus_ensemble(source, mouse, unit_ids, recording_name, progress)
        members = list(ensemble.members)
        return save_ensemble(members, [m.record for m in members], out, overwrite=overwrite)
    encoder = load_argus_encoder(source, mouse, unit_ids, recording_name)
    return save_encoder(encoder, out, encoder.record, overwrite=overwrite)
