"""BatchNorm folding for deployment.

The exporter already merges every conv -> BN pair. What it leaves are the BNs that come
*before* a conv: the one between SIR's two convs and the one after DWR's concatenated
branches. Each feeds a 1x1 conv without padding, so it folds into that conv exactly
(y = W(a*x + b) = (W*a) x + W b). Left in the graph they cost a pass over the tensor and
quantize badly (a per-channel scale and shift that INT8 calibration sees as weights).
The decoder's BN is left: it feeds a padded 3x3 conv, where folding would change the
border pixels.
"""

from __future__ import annotations

import torch
from torch import nn


def fold_into(norm: nn.BatchNorm2d, conv: nn.Conv2d) -> None:
    """Make the 1x1 `conv` compute conv(norm(x)) (eval-mode statistics), in place."""
    scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)
    shift = norm.bias - norm.running_mean * scale
    weight = conv.weight.detach()
    bias = weight[:, :, 0, 0] @ shift
    if conv.bias is not None:
        bias = bias + conv.bias.detach()
    conv.weight.data = weight * scale[None, :, None, None]
    conv.bias = nn.Parameter(bias)


def foldable(norm: nn.Module, conv: nn.Module) -> bool:
    return (isinstance(norm, nn.BatchNorm2d) and isinstance(conv, nn.Conv2d) and conv.kernel_size == (1, 1)
            and conv.padding == (0, 0) and conv.groups == 1 and norm.track_running_stats)


@torch.no_grad()
def fold_batchnorms(model: nn.Module) -> int:
    """Fold, in place, every BN that a 1x1 conv directly follows inside one nn.Sequential
    (the model must be in eval mode). Returns how many were folded."""
    folded = 0
    for module in list(model.modules()):
        if not isinstance(module, nn.Sequential):
            continue
        for index in range(len(module) - 1):
            if foldable(module[index], module[index + 1]):
                fold_into(module[index], module[index + 1])
                module[index] = nn.Identity()
                folded += 1
    return folded
