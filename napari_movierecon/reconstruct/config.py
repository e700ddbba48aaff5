"""Every knob of a reconstruction in one validated, JSON-serialisable dataclass.

Presets are named starting points; ``bauer2025`` follows the published protocol
(see ``protocol.py`` and shared/reference/bauer2025.md).
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass

from napari_movierecon.errors import MovieReconError

OPTIMIZERS = ("first_moment_reference", "first_moment", "adam")
ENSEMBLE_STRATEGIES = ("separate", "gradient")
INITS = ("gray",)
LOSSES = ("poisson",)


@dataclass(frozen=True)
class ReconstructionConfig:
    """Units: learning rate in gray levels per unit step; windows and sigma in frames/pixels.

    ``window_frames`` None means one pass over the whole clip. ``ensemble``:
    ``separate`` = each member reconstructs alone and the movies are averaged,
    ``gradient`` = one movie driven by the members' averaged gradients.
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
    """

    preset: str = "bauer2025"
    iterations: int = 1000
    learning_rate: float = 1000.0
    optimizer: str = "first_moment_reference"
    beta1: float = 0.9
    warmup_steps: int = 10
    loss: str = "poisson"
    init: str = "gray"
    window_frames: int | None = 32
    window_stride: int = 8
    normalize_window_gradients: bool = True
    normalize_block_frames: int | None = None
    gradient_clip: float | None = 1.0
    use_update_mask: bool = True
    update_mask_threshold: float = 0.5
    eval_mask_threshold: float = 1.0
    ensemble: str = "separate"
    members: int | None = None
    smoothing_sigma: float = 0.5
    snapshot_every: int = 10
    device: str = "cpu"
    seed: int = 0
    pad_fill: float | None = 127.5

    def __post_init__(self) -> None:
        problems = []
        for name in ("iterations", "window_stride", "snapshot_every"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1")
        if self.window_frames is not None and self.window_frames < 1:
            problems.append("window_frames must be >= 1 or None (whole clip)")
        if self.normalize_block_frames is not None and self.normalize_block_frames < 1:
            problems.append("normalize_block_frames must be >= 1 or None (whole window)")
        if self.members is not None and self.members < 1:
            problems.append("members must be >= 1 or None (all)")
        if self.warmup_steps < 0:
            problems.append("warmup_steps must be >= 0")
        if not self.learning_rate > 0:
            problems.append("learning_rate must be > 0")
        if not 0 <= self.beta1 < 1:
            problems.append("beta1 must lie in [0, 1)")
        if self.gradient_clip is not None and not self.gradient_clip > 0:
            problems.append("gradient_clip must be > 0 or None")
        if self.pad_fill is not None and not 0 <= self.pad_fill <= 255:
            problems.append("pad_fill must lie in 0..255 or be None (the encoder's own)")
        if self.smoothing_sigma < 0:
            problems.append("smoothing_sigma must be >= 0")
        if not 0 < self.update_mask_threshold <= 1 or not 0 < self.eval_mask_threshold <= 1:
            problems.append("mask thresholds must lie in (0, 1]")
        for name, allowed in (
            ("optimizer", OPTIMIZERS),
            ("ensemble", ENSEMBLE_STRATEGIES),
            ("init", INITS),
            ("loss", LOSSES),
        ):
            if getattr(self, name) not in allowed:
                problems.append(f"{name} must be one of {', '.join(allowed)}")
        if problems:
            raise MovieReconError("invalid reconstruction config: " + "; ".join(problems))

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


# ``fast``: the whole clip in one pass per member (no overlapping windows), one
# movie driven by the members' averaged normalised gradients, a 10x larger
# step with a 3-step warm-up, 40 iterations. Chosen on two validation-tier
# (``oracle``) clips of the sample mouse with the sample ensemble
# (pixel correlation 0.72 and 0.76 in the RF-covered region, ~35 s each on
# 2 CPU threads); never tuned on test clips. Standard bias correction
# (``first_moment``), not the reference code's step schedule. On the 5 test
# clips with the transparency mask it ends above bauer2025 (0.713 vs 0.649) at
# ~1/129 of its time (docs/reconstruction.md).
PRESETS: dict[str, ReconstructionConfig] = {
    "bauer2025": ReconstructionConfig(),
    "fast": ReconstructionConfig(
        preset="fast",
        iterations=40,
        learning_rate=10000.0,
        warmup_steps=3,
        optimizer="first_moment",
        window_frames=None,
        ensemble="gradient",
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

    members = getattr(encoder, "members", [encoder])
    return "fast_window" if isinstance(members[0], DwiseNeuroEncoder) else "fast"


def preset(name: str, **changes) -> ReconstructionConfig:
    """The named preset, optionally with some knobs changed."""
    if name not in PRESETS:
        raise MovieReconError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}")
    return PRESETS[name].replace(**changes)
