"""DwiseNeuro's cost on this machine (``make bench``; ~3-5 min on 2 CPU cores; ``--device
cuda`` measures the passes and the estimates on a GPU).

Speed only: the full-size architecture (the published ``true_batch_001`` kwargs, one
readout of mouse 0's 7863 neurons) with random weights. Reports, with ``--threads``
torch threads (2 by default), medians of ``--repeats`` after a warm-up:

- forward of one 16-frame window, and forward + backward to the input;
- one reference window (32 frames = two passes, gradient over the whole input);
- the peak resident memory of a fresh process opening one checkpoint the size of a
  published ``model-*.pth`` (all ten readouts, random weights, ~683 MB, written to a
  temporary folder and deleted afterwards), next to the bytes of the weights it keeps;
- the estimated wall time per 300-frame clip of each preset with the 7-member ensemble
  of the reference, from the same measured pass the CLI uses
  (``reconstruct.cost``), for the full-size model and for the fixture-size one
  (shared/fixtures/dwiseneuro_tiny, when present).
"""

from __future__ import annotations

import argparse
import math
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.timing import device_label, finished
from napari_movierecon.allocator import retain_freed_memory
from napari_movierecon.cli import device_name
from napari_movierecon.encoders.argus_checkpoint import PUBLISHED_READOUTS
from napari_movierecon.encoders.dwiseneuro import DwiseNeuroConfig, DwiseNeuroEncoder
from napari_movierecon.encoders.ensemble import Ensemble
from napari_movierecon.reconstruct.config import PRESETS
from napari_movierecon.reconstruct.cost import estimate_reconstruction_cost, format_duration

MEMBERS = 7  # the reference's ensemble
CLIP_FRAMES = 300
FIXTURE = Path(__file__).parents[2] / "shared" / "fixtures" / "dwiseneuro_tiny"
PUBLISHED_KWARGS = {
    "readout_outputs": list(PUBLISHED_READOUTS),
    "in_channels": 5,
    "core_features": [64, 64, 64, 64, 128, 128, 128, 256, 256],
    "spatial_strides": [2, 1, 1, 1, 2, 1, 1, 2, 1],
    "spatial_kernel": 3,
    "temporal_kernel": 5,
    "expansion_ratio": 7,
    "se_reduce_ratio": 32,
    "cortex_features": [1024, 2048, 4096],
    "groups": 2,
    "softplus_beta": 0.07,
    "drop_rate": 0.4,
    "drop_path_rate": 0.1,
}


def full_size_encoder(mouse: int = 0) -> DwiseNeuroEncoder:
    """The published architecture, one readout, random weights (seeded), eval mode."""
    torch.manual_seed(0)
    kwargs = {k: v for k, v in PUBLISHED_KWARGS.items() if k not in ("drop_rate", "drop_path_rate")}
    readouts = kwargs.pop("readout_outputs")
    config = DwiseNeuroConfig(neurons=readouts[mouse], mouse=mouse, **kwargs)
    encoder = DwiseNeuroEncoder(config, np.arange(readouts[mouse]))
    return encoder.eval().requires_grad_(False)


def median_seconds(run, repeats: int, device: torch.device) -> float:
    """Median seconds of ``run()`` after a warm-up, its work on ``device`` finished."""

    def timed() -> float:
        start = time.perf_counter()
        run()
        finished(device)
        return time.perf_counter() - start

    timed()  # warm-up
    return statistics.median(timed() for _ in range(repeats))


def window_timings(encoder: DwiseNeuroEncoder, repeats: int) -> dict[str, float]:
    """Seconds: forward of one window, forward + backward to the input (on the
    encoder's device)."""
    device = next(encoder.parameters()).device
    window = (torch.rand(1, 5, 16, 64, 64) * 255).to(device)

    def forward():
        with torch.no_grad():
            encoder.net(window)

    def forward_backward():
        x = window.clone().requires_grad_(True)
        torch.autograd.grad(encoder.net(x).sum(), x)

    return {
        "forward_s": median_seconds(forward, repeats, device),
        "forward_backward_s": median_seconds(forward_backward, repeats, device),
    }


def clip_costs(encoder: DwiseNeuroEncoder, device: str) -> dict[str, object]:
    """Cost estimate per preset of a 300-frame clip for a 7-member ensemble on ``device``."""
    rng = np.random.default_rng(0)
    responses = rng.gamma(1.5, 1.0, (encoder.n_neurons, CLIP_FRAMES)).astype(np.float32)
    behavior = rng.normal(0, 1, (4, CLIP_FRAMES)).astype(np.float32)
    ensemble = Ensemble([encoder] * MEMBERS)
    neurons = np.arange(encoder.n_neurons)
    return {
        name: estimate_reconstruction_cost(
            ensemble, responses, neurons, behavior, config.replace(device=device)
        )
        for name, config in PRESETS.items()
        if name in ("bauer2025", "fast_window")
    }


def write_published_size_checkpoint(path: Path) -> int:
    """A ``model-*.pth`` shaped like a published one (ten readouts, random weights);
    its size in bytes."""
    kwargs = {k: v for k, v in PUBLISHED_KWARGS.items() if k not in ("drop_rate", "drop_path_rate")}
    readouts = kwargs.pop("readout_outputs")
    with torch.device("meta"):
        net = DwiseNeuroEncoder(
            DwiseNeuroConfig(neurons=readouts[0], **kwargs), np.arange(readouts[0])
        ).net
    generator = torch.Generator().manual_seed(1)
    state = {}
    for key, value in net.state_dict().items():
        if key.startswith("readout."):
            continue
        if key.endswith("num_batches_tracked"):
            state[key] = torch.zeros((), dtype=torch.int64)
        elif key.endswith("running_var"):
            state[key] = torch.ones(value.shape)
        else:
            state[key] = torch.randn(value.shape, generator=generator) * 0.02
    for k, n in enumerate(readouts):
        rows = math.ceil(n / 2) * 2
        state[f"readouts.{k}.layer.1.weight"] = torch.randn((rows, 2048, 1), generator=generator)
        state[f"readouts.{k}.layer.1.bias"] = torch.zeros(rows)
    params = {
        "nn_module": ("dwiseneuro", PUBLISHED_KWARGS),
        "frame_stack": {"size": 16, "step": 2, "position": "last"},
        "inputs_processor": ("stack_inputs", {"size": (64, 64), "pad_fill_value": 0.0}),
        "device": "cuda:0",
    }
    torch.save({"model_name": "MouseModel", "params": params, "nn_state_dict": state}, path)
    return path.stat().st_size


def _memory_mb() -> tuple[float, float]:
    """(current, peak) resident memory of this process in MB, from /proc/self/status
    (VmRSS, VmHWM: unlike ru_maxrss, the peak does not carry over the parent's)."""
    values = {}
    with open("/proc/self/status") as handle:
        for line in handle:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0]) / 1e3
    return values["VmRSS"], values["VmHWM"]


def open_and_report(path: str) -> None:
    """(Run in a fresh process.) Open ``path`` for mouse 0; print the memory before,
    the peak and the memory after, the kept weights (MB) and the seconds. The code
    that building on the meta device loads once per process (torch's meta kernels)
    is loaded first, by building the architecture once, so the figures are data."""
    from napari_movierecon.encoders.argus_checkpoint import load_argus_encoder

    with torch.device("meta"):
        full_size_encoder()
    before, _ = _memory_mb()
    start = time.perf_counter()
    encoder = load_argus_encoder(path, mouse=0)
    seconds = time.perf_counter() - start
    after, peak = _memory_mb()
    kept = sum(t.numel() * t.element_size() for t in encoder.state_dict().values()) / 1e6
    print(f"{before:.1f} {peak:.1f} {after:.1f} {kept:.1f} {seconds:.2f}")


def opening_memory() -> dict[str, float]:
    """Write a published-size checkpoint, open it in a fresh process, delete it."""
    folder = Path(tempfile.mkdtemp(prefix="dwiseneuro-bench-"))
    try:
        path = folder / "model-017-0.290000.pth"
        size = write_published_size_checkpoint(path)
        output = subprocess.run(
            [sys.executable, "-m", "benchmarks.dwiseneuro_bench", "--open", str(path)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    before, peak, after, kept, seconds = map(float, output[-5:])
    return {
        "file_mb": size / 1e6,
        "rss_before_mb": before,
        "peak_rss_mb": peak,
        "rss_after_mb": after,
        "kept_weights_mb": kept,
        "open_s": seconds,
    }


def report_costs(label: str, costs: dict) -> None:
    for name, cost in costs.items():
        print(
            f"  {label} {name:12s}: {format_duration(cost.total_seconds):>10s} per clip "
            f"({cost.iterations} it x {cost.members} members x {cost.windows} windows x "
            f"{cost.seconds_per_window:.3g} s)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", type=device_name, default="cpu", help="cpu or cuda")
    parser.add_argument("--open", default=None, help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.open:
        open_and_report(args.open)
        return
    retain_freed_memory()  # as the engine does for a run
    where = device_label(args.device)
    print(f"DwiseNeuro cost, torch {torch.__version__}, {args.threads} threads, {where}")
    encoder = full_size_encoder().to(args.device)
    parameters = sum(p.numel() for p in encoder.parameters())
    timings = window_timings(encoder, args.repeats)
    print(
        f"full size, one readout ({encoder.n_neurons} neurons, {parameters / 1e6:.1f} M "
        f"parameters), median of {args.repeats}: forward {timings['forward_s']:.3g} s, "
        f"forward+backward {timings['forward_backward_s']:.3g} s per 16-frame window"
    )
    memory = opening_memory()
    print(
        f"opening a {memory['file_mb']:.0f} MB checkpoint (10 readouts) for one mouse: "
        f"peak RSS {memory['peak_rss_mb']:.0f} MB (process at {memory['rss_before_mb']:.0f} MB "
        f"before, {memory['rss_after_mb']:.0f} MB after), growth "
        f"{memory['peak_rss_mb'] - memory['rss_before_mb']:.0f} MB "
        f"({(memory['peak_rss_mb'] - memory['rss_before_mb']) / memory['kept_weights_mb']:.2f}x) "
        f"for {memory['kept_weights_mb']:.0f} MB of kept weights, {memory['open_s']:.1f} s"
    )
    print(f"estimated time per {CLIP_FRAMES}-frame clip, {MEMBERS} members (one pass measured):")
    report_costs("full size", clip_costs(encoder, args.device))
    if FIXTURE.is_dir():
        from napari_movierecon.encoders.argus_checkpoint import load_argus_encoder

        tiny = load_argus_encoder(FIXTURE / "model-017-0.290000.pth", mouse=0)
        report_costs("fixture  ", clip_costs(tiny, args.device))


if __name__ == "__main__":
    main()
