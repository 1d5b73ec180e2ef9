"""Test-time augmentation: a network wrapped so that it averages several views of each image.

The wrapper is an ordinary module, so every backend runs it unchanged: torch directly, and
onnxruntime, INT8 and TensorRT through its own ONNX export (cached apart from the plain one).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from dwrseg_rt.errors import UserError

TTA_MODES = ("none", "flip")


class FlipAveraged(nn.Module):
    """Logits averaged over each image and its mirror image (streets are left-right symmetric
    in distribution): one batch of 2N through the network, so twice the work of the plain model,
    for offline jobs where accuracy matters more than frames per second."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        count = image.shape[0]
        logits = self.model(torch.cat([image, image.flip(3)]))
        return (logits[:count] + logits[count:].flip(3)) / 2


def check_tta(mode: str, weights: Path) -> None:
    """Refuse an unknown mode, and augmentation of an export (its graph is fixed) before any work."""
    if mode not in TTA_MODES:
        raise UserError(f"--tta must be one of {', '.join(TTA_MODES)}, not {mode!r}")
    if mode != "none" and Path(weights).suffix.lower() != ".pt":
        raise UserError(f"--tta {mode} needs a .pt checkpoint (the graph of {Path(weights).name} is fixed): pass the checkpoint it came from")


def with_tta(model: nn.Module, mode: str) -> nn.Module:
    """`model` under the test-time augmentation `mode` (checked by `check_tta`)."""
    return FlipAveraged(model) if mode == "flip" else model
