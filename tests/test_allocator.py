"""Freed memory is reused between encoder passes and given back on request (``allocator``)."""

from __future__ import annotations

import subprocess
import sys

import pytest

# A fresh process: keep freed memory, run 3 frozen encoder passes (forward + backward to
# the movie, 300 frames, 2,000 neurons), count the page faults of 10 more, then release
# the kept memory.
CHILD = """
import resource
import numpy as np
import torch
from napari_movierecon.allocator import release_freed_memory, retain_freed_memory
from napari_movierecon.encoders.fast import FastEncoder, FastEncoderConfig, FrozenFastEncoder

def resident_mb():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096 / 2**20

torch.manual_seed(0)
torch.set_num_threads(2)
positions = np.random.default_rng(0).uniform(-0.9, 0.9, (2000, 2))
encoder = FrozenFastEncoder(FastEncoder(FastEncoderConfig(), np.arange(2000), positions=positions))
movie = torch.full((1, 300, 36, 64), 128.0, requires_grad=True)
behavior = torch.zeros(1, 4, 300)

def one_pass():
    encoder(movie, behavior).sum().backward()

applied = retain_freed_memory()
for _ in range(3):  # the heap settles into its layout
    one_pass()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    one_pass()
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
kept = resident_mb()
release_freed_memory()
print(applied, faults, kept - resident_mb())
"""
# Measured on 2 cores (4 processes each): 1-10,800 faults in the 10 passes with the
# settings, 75,000-196,000 without.
MOST_FAULTS = 30_000


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc settings")
def test_encoder_passes_reuse_freed_memory_until_it_is_released():
    child = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=300
    )
    assert child.returncode == 0, child.stderr
    applied, faults, released_mb = child.stdout.split()
    assert applied == "True"
    assert int(faults) < MOST_FAULTS
    assert float(released_mb) > 50
