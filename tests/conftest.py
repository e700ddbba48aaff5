"""Shared test settings: the hypothesis profile that keeps property-based suites small
and reproducible in CI (a fixed example budget, derandomized: the same examples on
every run). ``HYPOTHESIS_PROFILE=thorough`` runs many more for a local hunt. And a
tiny real probe result shared by the core and napari tests."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    max_examples=40,
    derandomize=True,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.register_profile(
    "thorough",
    max_examples=2000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session")
def tiny_probe(tmp_path_factory):
    """A real probe result folder (``movierecon probe --out``): an untrained 40-neuron
    FastEncoder, noise probes of 40 frames at 2 spatial and 2 temporal scales, Poisson
    responses, 2 seeds, 3 iterations each."""
    import numpy as np
    import torch

    from napari_movierecon.cli import main
    from napari_movierecon.encoders.checkpoint import save_encoder
    from napari_movierecon.encoders.fast import FastEncoder, FastEncoderConfig

    folder = tmp_path_factory.mktemp("probe")
    torch.manual_seed(0)
    n = 40
    positions = np.random.default_rng(0).uniform(-0.6, 0.6, (n, 2))
    config = FastEncoderConfig(channels=4, readout_channels=4)
    encoder = FastEncoder(config, np.arange(n), positions=positions)
    save_encoder(encoder.eval(), folder / "tiny.safetensors", {"note": "random"})
    out = folder / "probe"
    args = ["probe", "--encoder", str(folder / "tiny.safetensors"), "--kind", "noise",
            "--out", str(out), "--frames", "40", "--spatial", "1,4", "--temporal", "1,4",
            "--iterations", "3", "--poisson", "--seeds", "2", "--threads", "2"]  # fmt: skip
    assert main(args) == 0
    return out
