"""Every knob of a reconstruction in one validated, JSON-serialisable dataclass.

Presets are named starting points; ``bauer2025`` follows the published protocol
(see ``protocol.py`` and shared/reference/bauer2025.md).
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import asdict, dataclass

import numpy as np

from napari_movierecon.errors import MovieReconError

OPTIMIZERS = ("first_moment_reference", "first_moment", "adam")
ENSEMBLE_STRATEGIES = ("separate", "gradient", "cycle")
INITS = ("gray",)
LOSSES = ("poisson",)


_TYPE_WORDS = {
    "int": "an integer",
    "int | None": "an integer or None",
    "float": "a finite number",
    "float | None": "a finite number or None",
    "bool": "true or false",
    "str": "a string",
}
# Devices torch names; whether one exists on this machine is checked where it is used.
DEVICE = re.compile(r"(cpu|cuda(:\d+)?)")


def _typed(value, kind: str) -> bool:
    """Whether ``value`` has the config field type ``kind`` (bools are not numbers,
    floats must be finite)."""
    if value is None:
        return kind.endswith("| None")
    kind = kind.removesuffix(" | None")
    if kind == "bool" or isinstance(value, bool):
        return kind == "bool" and isinstance(value, bool)
    if kind == "int":
        return isinstance(value, (int, np.integer))
    if kind == "float":
        return isinstance(value, (int, float, np.integer, np.floating)) and math.isfinite(value)
    return isinstance(value, str)


def config_problems(values: dict) -> dict[str, str]:
    """{field: what is wrong} for config ``values`` (field -> value); {} when valid."""
    problems = {}

    def check(name: str, ok, rule: str) -> None:
        try:
            valid = ok(values[name])
        except TypeError:  # e.g. a string where a number belongs
            valid = False
        if not valid:
            problems[name] = rule

    for field in dataclasses.fields(ReconstructionConfig):
        if field.name in values and not _typed(values[field.name], str(field.type)):
            problems[field.name] = f"must be {_TYPE_WORDS[str(field.type)]}"
    if problems:  # the rules below assume the types
        return problems
    for name in ("iterations", "window_stride", "snapshot_every"):
        check(name, lambda v: v >= 1, "must be >= 1")
    for name, none in (
        ("window_frames", "whole clip"),
        ("normalize_block_frames", "whole window"),
        ("members", "all"),
    ):
        check(name, lambda v: v is None or v >= 1, f"must be >= 1 or None ({none})")
    check("warmup_steps", lambda v: v >= 0, "must be >= 0")
    check("learning_rate", lambda v: v > 0, "must be > 0")
    check("beta1", lambda v: 0 <= v < 1, "must lie in [0, 1)")
    check("gradient_clip", lambda v: v is None or v > 0, "must be > 0 or None (off)")
    check("smoothing_sigma", lambda v: v >= 0, "must be >= 0")
    check(
        "holdout_fraction",
        lambda v: v is None or 0 < v < 1,
        "must lie in (0, 1) or be None (no stopping rule)",
    )
    check("holdout_patience", lambda v: v >= 1, "must be >= 1")
    check(
        "pad_fill",
        lambda v: v is None or 0 <= v <= 255,
        "must lie in 0..255 or be None (the encoder's own)",
    )
    for name in ("update_mask_threshold", "eval_mask_threshold"):
        check(name, lambda v: 0 < v <= 1, "must lie in (0, 1]")
    for name, allowed in (
        ("optimizer", OPTIMIZERS),
        ("ensemble", ENSEMBLE_STRATEGIES),
        ("init", INITS),
        ("loss", LOSSES),
    ):
        check(name, lambda v, allowed=allowed: v in allowed, f"must be one of {', '.join(allowed)}")
    check("device", lambda v: DEVICE.fullmatch(v) is not None, "must be cpu, cuda or cuda:N")
    return problems


def knob(default, doc: str, none: str | None = None, choices: tuple[str, ...] | None = None):
    """A config field with its documentation: ``doc`` (units, meaning), ``none`` what
    None stands for (nullable knobs), ``choices`` the allowed strings. Forms read these
    (``dataclasses.fields(ReconstructionConfig)[i].metadata``) for tooltips and widgets."""
    metadata = {"doc": doc}
    if none is not None:
        metadata["none"] = none
    if choices is not None:
        metadata["choices"] = choices
    return dataclasses.field(default=default, metadata=metadata)


@dataclass(frozen=True)
class ReconstructionConfig:
    """Units: learning rate in gray levels per unit step; windows and sigma in frames/pixels.

    ``window_frames`` None means one pass over the whole clip. ``ensemble``:
    ``separate`` = each member reconstructs alone and the movies are averaged,
    ``gradient`` = one movie driven by the members' averaged gradients, ``cycle`` =
    one movie driven by one member per iteration in turn (a member's cost per
    iteration, every member's view over a few iterations).
    ``members`` None uses every member of the ensemble, k the first k.
    ``normalize_block_frames`` k: normalise each window's gradient per block of k
    frames (from the window's end) instead of as a whole.
    ``optimizer``: ``first_moment`` is Adam without the second moment, with standard
    bias correction; ``first_moment_reference`` steps as the reference code does
    (see ``protocol.FirstMomentAdam``); ``adam`` is torch's Adam.
    ``pad_fill`` (DwiseNeuro only): gray level of the 28 rows of its 64x64 input plane
    around the 36x64 movie. The reference code fills them with 127.5 (its gray start,
    never updated) although the model saw 0 (black) there in training; None uses the
    encoder's own training fill (0).
    ``holdout_fraction`` f: the stopping rule (``holdout.py``). A seeded fraction f of the
    chosen neurons is left out of the loss; the run ends with the movie at which their
    prediction loss was lowest, and stops once it has not improved for
    ``holdout_patience`` iterations. It reads no ground truth.

    Every field's own documentation is in its metadata (``knob``).
    """

    preset: str = knob("bauer2025", "the preset these values started from (recorded)")
    iterations: int = knob(1000, "gradient steps on the movie (>= 1)")
    learning_rate: float = knob(
        1000.0, "step size in gray levels per unit of the normalised gradient (> 0)"
    )
    optimizer: str = knob(
        "first_moment_reference",
        "first_moment: Adam without the second moment; first_moment_reference: steps as "
        "the reference code; adam: torch's Adam",
        choices=OPTIMIZERS,
    )
    beta1: float = knob(0.9, "decay of the gradient's running mean, in [0, 1)")
    warmup_steps: int = knob(
        10, "the learning rate ramps linearly from 0 over this many steps (>= 0)"
    )
    loss: str = knob("poisson", "how predicted and recorded activity are compared", choices=LOSSES)
    init: str = knob("gray", "the movie the optimisation starts from", choices=INITS)
    window_frames: int | None = knob(
        32, "frames of each window optimised through the encoder (>= 1)", none="whole clip"
    )
    window_stride: int = knob(8, "frames between the starts of consecutive windows (>= 1)")
    normalize_window_gradients: bool = knob(
        True, "scale each window's gradient to unit size before summing"
    )
    normalize_block_frames: int | None = knob(
        None,
        "normalise each window's gradient per block of this many frames (>= 1), from the "
        "window's end",
        none="whole window",
    )
    gradient_clip: float | None = knob(
        1.0, "clip the summed gradient to +- this value (> 0)", none="off"
    )
    use_update_mask: bool = knob(
        True, "change only the pixels of the mask's update region (when a mask is given)"
    )
    update_mask_threshold: float = knob(0.5, "mask value from which a pixel may change, in (0, 1]")
    eval_mask_threshold: float = knob(1.0, "mask value from which a pixel is scored, in (0, 1]")
    ensemble: str = knob(
        "separate",
        "separate: each member reconstructs alone, movies averaged; gradient: one movie "
        "driven by the members' averaged gradients; cycle: one movie, one member's "
        "gradient per iteration in turn",
        choices=ENSEMBLE_STRATEGIES,
    )
    members: int | None = knob(None, "use the first k ensemble members (>= 1)", none="all")
    smoothing_sigma: float = knob(
        0.5, "Gaussian smoothing of the final movie over (t, y, x), frames/pixels (>= 0)"
    )
    snapshot_every: int = knob(10, "iterations between streamed snapshots (>= 1)")
    device: str = knob("cpu", "where the optimisation runs: cpu or cuda")
    seed: int = knob(0, "random seed of the run")
    pad_fill: float | None = knob(
        127.5,
        "DwiseNeuro only: gray level of the input plane's 28 rows around the movie "
        "(0..255; the reference used 127.5, training saw 0)",
        none="encoder's own (0)",
    )
    holdout_fraction: float | None = knob(
        None,
        "stopping rule: fraction of the chosen neurons left out of the loss, in (0, 1); the "
        "run keeps the movie that predicts them best (no ground truth needed)",
        none="off",
    )
    holdout_patience: int = knob(
        30,
        "stopping rule: stop after this many iterations without a better held-out loss (>= 1)",
    )

    def __post_init__(self) -> None:
        problems = config_problems(dataclasses.asdict(self))
        if problems:
            raise MovieReconError(
                "invalid reconstruction config: "
                + "; ".join(f"{name} {problem}" for name, problem in problems.items())
            )

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> ReconstructionConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise MovieReconError(f"unknown reconstruction config keys: {', '.join(unknown)}")
        return cls(**data)

    def replace(self, **changes) -> ReconstructionConfig:
        """A copy with ``changes`` (validated)."""
        return self.from_json({**self.to_json(), **changes})


# ``fast``: the whole clip in one pass (no overlapping windows), one movie driven
# by one member's normalised gradient per iteration, the members in turn
# (``cycle``), a 10x larger step from the first iteration (no warm-up), 32
# iterations. Standard bias correction (``first_moment``), not the reference
# code's step schedule.
# Chosen on validation-tier (``oracle``) clips only, never on test clips: first
# (2026-11) the step, warm-up and whole-clip window on two clips (0.72 and 0.76 in
# the RF-covered region, then with all members' averaged gradients and 40
# iterations); then (2026-12-02, ``python -m benchmarks.tune_fast --mask
# bench_out/mask.safetensors --clips 2``, validation trials 14 and 20, transparency
# mask) ``cycle`` reached 0.867 at 32 iterations against 0.866 for the averaged
# gradients at 40 (3x the encoder passes per iteration) and 0.828 for one member
# alone at its best (28); a 2x step was ahead early (0.594 vs 0.519 at 4
# iterations) but ended lower (0.861 at 32); then (2026-12-03, validation trials
# 14, 20 and 34, same mask) dropping the 3-step warm-up, whose first step is
# still, reached masked correlation 0.524 at iteration 2 against 0.449 (0.5 only
# at iteration 4), 0.798 against 0.776 at 16 and the same at 32 (0.839 vs 0.838);
# a 1-step warm-up (first step still) was in between, a step of 8000 or 12000
# without warm-up within 0.002 at 32. Re-checked the same way with the sample
# ensemble of 2026-12-03 (3 x 3 block readout): all five within 0.002 at 32
# (0.851-0.853), this one first to 0.5 (iteration 2). On the 5 test clips see
# docs/reconstruction.md.
PRESETS: dict[str, ReconstructionConfig] = {
    "bauer2025": ReconstructionConfig(),
    "fast": ReconstructionConfig(
        preset="fast",
        iterations=32,
        learning_rate=10000.0,
        warmup_steps=0,
        optimizer="first_moment",
        window_frames=None,
        ensemble="cycle",
        snapshot_every=2,
    ),
    # ``fast_window``: ``fast`` for encoders that see fixed windows (DwiseNeuro): the
    # cheapest cover of the clip, 32-frame windows side by side (stride 32, the last
    # aligned to the end), i.e. each frame predicted once per iteration by one 16-frame
    # pass (20 passes for 300 frames against bauer2025's 70), one movie driven by the
    # members' averaged gradients, pad rows as in training (0). Measured in
    # docs/encoders.md.
    "fast_window": ReconstructionConfig(
        preset="fast_window",
        iterations=40,
        learning_rate=10000.0,
        warmup_steps=3,
        optimizer="first_moment",
        window_frames=32,
        window_stride=32,
        ensemble="gradient",
        snapshot_every=2,
        pad_fill=None,
    ),
}


def default_preset(encoder) -> str:
    """``fast_window`` for DwiseNeuro encoders (whose ``fast`` would predict the whole
    clip, T - 30 passes, every iteration), ``fast`` for the others."""
    from napari_movierecon.encoders.dwiseneuro import DwiseNeuroEncoder
    from napari_movierecon.encoders.ensemble import members_of

    return "fast_window" if isinstance(members_of(encoder)[0], DwiseNeuroEncoder) else "fast"


def preset(name: str, **changes) -> ReconstructionConfig:
    """The named preset, optionally with some knobs changed."""
    if name not in PRESETS:
        raise MovieReconError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}")
    return PRESETS[name].replace(**changes)
