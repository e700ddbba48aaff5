"""Benchmark of the encoder inside the reconstruction loop (``make bench``).

One "pass" is what reconstruction repeats: forward of a full 300-frame 36x64
clip through a frozen encoder for all neurons, Poisson loss, backward to the
movie. Reports medians over repeated runs, the pass's FLOPs and the fraction
of this machine's measured float32 matmul peak the pass reaches.

Also times one training step of the plain module (as ``train_encoder`` takes it:
forward of 4 clips x 150 frames, Poisson loss, backward to every parameter, AdamW
step), the cost that ``movierecon train`` and ``distill`` repeat.

Freed memory is kept for reuse (``napari_movierecon.allocator``), as the
reconstruction engine and training do while they run.

FLOPs: the core (convolutions, forward and backward to the movie) is counted
by torch's FlopCounterMode; the sparse readout by hand (2 x non-zeros x
frames, once forward and once backward), because FlopCounterMode counts a
sparse product as if it were dense. Element-wise ops are not counted. Both paths
are credited with the plain module's FLOPs as written (the work to be done, with the
strided spatial convolution; both paths' space-to-depth convolution does more arithmetic
for it, on zeros).
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.timing import device_label, finished
from napari_movierecon.allocator import retain_freed_memory
from napari_movierecon.cli import device_name
from napari_movierecon.encoders.base import Encoder
from napari_movierecon.encoders.checkpoint import load_encoder
from napari_movierecon.encoders.ensemble import Ensemble
from napari_movierecon.encoders.fast import FastEncoder, FastEncoderConfig, FrozenFastEncoder
from napari_movierecon.encoders.train import poisson_loss


def matmul_peak(device: torch.device, size: int = 2048, repeats: int = 7) -> float:
    """Measured float32 GEMM throughput (FLOP/s) on ``device``, median of ``repeats``
    (torch's default precision there: on CUDA, no TF32 unless the process allowed it)."""
    a, b = torch.randn(size, size, device=device), torch.randn(size, size, device=device)
    a @ b
    times = []
    for _ in range(repeats):
        finished(device)
        start = time.perf_counter()
        a @ b
        finished(device)
        times.append(time.perf_counter() - start)
    return 2 * size**3 / statistics.median(times)


def clip_inputs(frames: int, frame_shape: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    movie = (torch.rand(1, frames, *frame_shape, generator=g) * 255).requires_grad_(True)
    behavior = torch.randn(1, 4, frames, generator=g)
    return movie, behavior


def one_pass(encoder: Encoder, movie, behavior, target) -> float:
    """Forward + loss + backward to the movie; seconds (its device's work finished)."""
    finished(movie.device)
    start = time.perf_counter()
    movie.grad = None
    loss = poisson_loss(encoder(movie, behavior), target)
    loss.backward()
    finished(movie.device)
    return time.perf_counter() - start


def training_step_seconds(encoder: FastEncoder, runs: int, device: torch.device) -> list[float]:
    """Seconds of ``runs`` training steps (after one warm-up) on a copy of ``encoder``:
    4 random clips x 150 frames, as ``TrainConfig``'s defaults."""
    model = copy.deepcopy(encoder).train().requires_grad_(True)
    g = torch.Generator().manual_seed(1)
    movie = (torch.rand(4, 150, *model.frame_shape, generator=g) * 255).to(device)
    behavior = torch.randn(4, 4, 150, generator=g).to(device)
    responses = torch.rand(4, model.n_neurons, 150, generator=g).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    skip = model.context_frames
    times = []
    for _ in range(runs + 1):
        finished(device)
        start = time.perf_counter()
        loss = poisson_loss(model(movie, behavior)[..., skip:], responses[..., skip:])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        finished(device)
        times.append(time.perf_counter() - start)
    return times[1:]


def pass_flops(encoder: Encoder, movie: torch.Tensor) -> tuple[int, int]:
    """(total, readout) FLOPs of one forward+backward pass, summed over ensemble members."""
    total = readout = 0
    for member in getattr(encoder, "members", [encoder]):
        if not isinstance(member, FastEncoder):
            raise SystemExit(f"FLOP counting supports FastEncoder members, not {member}")
        with FlopCounterMode(display=False) as counter:
            member.features(movie, strided=True).sum().backward()
        frames = movie.shape[1]
        member_readout = 2 * 2 * member.readout_matrix()._nnz() * frames
        total += counter.get_total_flops() + member_readout
        readout += member_readout
    movie.grad = None
    return total, readout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--encoder",
        help="checkpoint file or ensemble folder (default: an "
        "untrained FastEncoder with the default config)",
    )
    parser.add_argument(
        "--config",
        default="{}",
        help="FastEncoderConfig changes for the untrained encoder, as JSON",
    )
    parser.add_argument("--neurons", type=int, default=8000)
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", type=device_name, default="cpu", help="cpu or cuda")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    retain_freed_memory()  # as the engine and training do

    if args.encoder:
        encoder = load_encoder(args.encoder)
        label = args.encoder
    else:
        config = FastEncoderConfig(**json.loads(args.config))
        positions = np.random.default_rng(0).uniform(-0.9, 0.9, (args.neurons, 2))
        encoder = FastEncoder(config, np.arange(args.neurons), positions=positions)
        label = f"untrained FastEncoder {config}"
    encoder = encoder.eval().requires_grad_(False).to(device)
    shape = tuple(getattr(encoder, "members", [encoder])[0].config.frame_shape)
    movie, behavior = clip_inputs(args.frames, shape)
    movie = movie.detach().to(device).requires_grad_(True)
    behavior = behavior.to(device)
    target = torch.rand(1, encoder.n_neurons, args.frames).to(device)

    flops, readout = pass_flops(encoder, movie)

    members = getattr(encoder, "members", [encoder])
    frozen = Ensemble([FrozenFastEncoder(m) for m in members])
    paths = {"plain FastEncoder": encoder, "FrozenFastEncoder (reconstruction)": frozen}
    for model in paths.values():
        one_pass(model, movie, behavior, target)  # warm-up
    passes = {name: [] for name in paths}
    forwards = {name: [] for name in paths}
    for _ in range(args.runs):
        for name, model in paths.items():
            passes[name].append(one_pass(model, movie, behavior, target))
            with torch.no_grad():
                start = time.perf_counter()
                model(movie, behavior)
                forwards[name].append(time.perf_counter() - start)
    peak = matmul_peak(device)

    print(f"# encoder benchmark ({device_label(device)}, {args.threads} torch threads): {label}")
    print(f"neurons {encoder.n_neurons}, clip {args.frames} x {shape[0]} x {shape[1]}")
    print(
        f"FLOPs per forward+backward pass: {flops / 1e9:.2f} GFLOP "
        f"(of which sparse readout {readout / 1e9:.2f})"
    )
    print(f"measured float32 matmul peak ({args.device}): {peak / 1e9:.1f} GFLOP/s")
    for name in paths:
        median = statistics.median(passes[name])
        print(f"## {name}")
        print(
            f"forward+backward to the movie (median of {args.runs}): {median:.3g} s "
            f"(all: {', '.join(f'{t:.3g}' for t in passes[name])})"
        )
        print(f"forward only (median of {args.runs}): {statistics.median(forwards[name]):.3g} s")
        print(f"achieved: {flops / median / 1e9:.1f} GFLOP/s = {flops / median / peak:.1%} of peak")
    ratio = statistics.median(plain / fast for plain, fast in zip(*passes.values(), strict=True))
    print(f"speed-up of the reconstruction path (median of per-run ratios): {ratio:.2f}x")
    steps = training_step_seconds(members[0], args.runs, device)
    print(
        f"## training step (one member, 4 clips x 150 frames, AdamW; median of {args.runs}): "
        f"{statistics.median(steps):.3g} s (all: {', '.join(f'{t:.3g}' for t in steps)})"
    )


if __name__ == "__main__":
    main()
