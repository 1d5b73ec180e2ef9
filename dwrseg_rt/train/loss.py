"""Online hard example mining cross-entropy, as in BiSeNet/STDC/DWRSeg training."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from dwrseg_rt.data.labels import IGNORE_INDEX


class OhemCrossEntropy(nn.Module):
    """Mean CE over the pixels whose target probability is below `threshold` (0.7), but over
    at least `min_fraction` (1/16) of the batch's labelled pixels, the hardest first."""

    def __init__(self, threshold: float = 0.7, min_fraction: float = 1 / 16, ignore_index: int = IGNORE_INDEX) -> None:
        super().__init__()
        self.loss_threshold = -math.log(threshold)
        self.min_fraction = min_fraction
        self.ignore_index = ignore_index

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        losses = F.cross_entropy(logits, target, ignore_index=self.ignore_index, reduction="none")
        losses = losses[target != self.ignore_index]
        if losses.numel() == 0:
            return logits.sum() * 0.0
        min_kept = max(1, int(losses.numel() * self.min_fraction))
        hard = losses[losses > self.loss_threshold]
        if hard.numel() < min_kept:
            hard = losses.topk(min_kept).values
        return hard.mean()
