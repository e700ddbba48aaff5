"""Timing on any torch device: waiting for queued work, and naming the device in reports."""

from __future__ import annotations

import torch


def finished(device: torch.device | str) -> None:
    """Wait for the work queued on ``device`` (CUDA runs asynchronously; a CPU does not)."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def device_label(device: torch.device | str) -> str:
    """ "CPU", or the GPU's name (e.g. "NVIDIA H200"), for report titles."""
    device = torch.device(device)
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
