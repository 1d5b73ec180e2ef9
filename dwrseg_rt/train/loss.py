"""Online hard example mining cross-entropy, as in BiSeNet/STDC/DWRSeg training."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from dwrseg_rt.data.labels import IGNORE_INDEX


class OhemCrossEntropy(nn.Module):
    """Mean CE over the pixels whose target probability is below `threshold` (0.7), but over
    at least `min_fraction` (1/16) of the batch's labelled pixels, the hardest first.

    `class_weights` (optional) weigh the kept pixels by their target class in the mean; the
    hard pixels are chosen on the unweighted loss, so OHEM's threshold keeps its meaning."""

    def __init__(self, threshold: float = 0.7, min_fraction: float = 1 / 16, ignore_index: int = IGNORE_INDEX,
                 class_weights: torch.Tensor | None = None) -> None:
        super().__init__()
        self.loss_threshold = -math.log(threshold)
        self.min_fraction = min_fraction
        self.ignore_index = ignore_index
        self.class_weights = class_weights

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        losses = F.cross_entropy(logits, target, ignore_index=self.ignore_index, reduction="none")
        labelled = target != self.ignore_index
        losses, classes = losses[labelled], target[labelled]
        if losses.numel() == 0:
            return logits.sum() * 0.0
        min_kept = max(1, int(losses.numel() * self.min_fraction))
        hard = (losses > self.loss_threshold).nonzero()[:, 0]
        if hard.numel() < min_kept:
            hard = losses.topk(min_kept).indices
        if self.class_weights is None:
            return losses[hard].mean()
        weights = self.class_weights.to(losses.device)[classes[hard]]
        return (losses[hard] * weights).sum() / weights.sum()
