"""Parameter and multiply-add counts, the way the paper's Table 1 reports them."""

from __future__ import annotations

import torch
from torch import nn


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def count_conv_macs(model: nn.Module, height: int, width: int) -> int:
    """Multiply-adds of every Conv2d/Linear for one 3 x height x width image."""
    total = 0

    def on_conv(module: nn.Conv2d, _inputs, output: torch.Tensor) -> None:
        nonlocal total
        per_output = module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]
        total += output.numel() * per_output

    def on_linear(module: nn.Linear, _inputs, output: torch.Tensor) -> None:
        nonlocal total
        total += output.numel() * module.in_features

    hooks = []
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            hooks.append(module.register_forward_hook(on_conv))
        elif isinstance(module, nn.Linear):
            hooks.append(module.register_forward_hook(on_linear))
    was_training = model.training
    model.eval()
    try:
        model(torch.zeros(1, 3, height, width))
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    return total
