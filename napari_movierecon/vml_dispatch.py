"""Resolve oneMKL VML's kernel choice once, on one thread, before any real work.

On CPU builds with MKL, torch computes contiguous float32/float64 ``sqrt``, ``exp``,
``log``, ``tanh``, ... through MKL VML, each intra-op thread on its own chunk. oneMKL
picks a VML kernel lazily on the first call in the process, and when that first call
runs on several threads at once one thread can use a low-accuracy kernel for its
whole chunk (pytorch/pytorch#188792). Measured here (torch 2.13's oneMKL 2024.0, 2
threads, 2 cores): after a matrix product, the first large ``torch.sqrt`` of a process
differed from the next one in half its values, by up to ~1e-4 relative, in 16 of 50
processes (two scripts: 6 of 30, 10 of 20). The later calls are right, so each
process had one silently wrong op, and which process got it was chance:

- building the in-silico mouse, its first calibration clip's energies, so the drive
  statistics and every later trial came out one of two ways (2 of 5 fresh builds);
- with a built mouse, the first trial a process simulates: 88,968 of a test clip's
  2.4 million responses (3.7 %) changed, by up to 2.4, as the noise draws diverged;
  reconstructions from them then differed from run to run.

Calling every VML-backed function once on a small tensor (one thread: too small to
split) settles the choice before any concurrent call; afterwards results are the
same in every process. Importing the modules that run torch numerics (encoders,
in-silico model) calls ``resolve_vml_dispatch``; it takes ~2 ms once per
process and is harmless on builds without MKL.
"""

from __future__ import annotations

import functools

import torch

# The unary ops ATen sends to MKL VML for float and double (aten/src/ATen/cpu/vml.h).
VML_FUNCTIONS = (
    "acos",
    "asin",
    "atan",
    "cos",
    "erf",
    "erfc",
    "erfinv",
    "exp",
    "log",
    "log10",
    "log2",
    "sin",
    "sqrt",
    "tan",
    "tanh",
    "trunc",
)


@functools.cache
def resolve_vml_dispatch() -> None:
    """Run each VML-backed op once per dtype on this thread (once per process)."""
    for dtype in (torch.float32, torch.float64):
        values = torch.full((64,), 0.5, dtype=dtype)
        for name in VML_FUNCTIONS:
            getattr(torch, name)(values)
