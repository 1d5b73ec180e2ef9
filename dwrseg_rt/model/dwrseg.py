"""DWRSeg, rebuilt from the paper's text (no official code exists).

Wei et al., "DWRSeg: Rethinking Efficient Acquisition of Multi-scale Contextual Information
for Real-time Semantic Segmentation" (arXiv 2212.01173). Table 1 fixes the stage layout:

    stem (1/4, 64) -> SIR x7|8 (1/8, 64) -> DWR-2 x3|8 (1/16, 128) -> DWR-3 x3 (1/32, 128)
    decoder: concat(1/8, up(1/16), up(1/32)) = 320 ch -> BN -> 3x3 conv 128 -> 1x1 conv N -> up

Choices the paper leaves open, and ours (verified by tests/test_model.py: params and conv
multiply-adds of B and L within 2% of the paper at 3x512x1024):

* Stem width: BiSeNetV2's stem with width 32 (first conv 3->32, no activation; a
  1x1 32->16 + 3x3 s2 16->32 branch beside a 3x3 max-pool; concat 64; 3x3 fuse 64->64,
  "no channel shrinking").
* DWR channel split: region residualization is a 3x3 conv c->c; its output is split equally
  among the branches and the d=1 branch is a depth-wise conv with channel multiplier 2, so its
  output is twice as wide as each other branch's ("the output channel capacity of the first
  branch is expanded to be twice that of other branches"). When c is not divisible by the
  branch count the last branch takes the remainder (128 -> 43, 43, 42).
* Stage transitions: a stride-2 3x3 conv + BN + ReLU at the start of the SIR and both DWR
  stages.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


class ConvBNAct(nn.Sequential):
    """k x k conv (no bias) -> BN -> optional ReLU; padding keeps the size at stride 1."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        dilation: int = 1,
        groups: int = 1,
        act: bool = True,
    ) -> None:
        padding = dilation * (kernel_size - 1) // 2
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias=False),
            nn.BatchNorm2d(out_channels),
        ]
        if act:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class StemBlock(nn.Module):
    """BiSeNetV2 stem without the first activation and without the final channel shrink."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        self.conv = ConvBNAct(3, width, 3, stride=2, act=False)
        self.left = nn.Sequential(
            ConvBNAct(width, width // 2, 1),
            ConvBNAct(width // 2, width, 3, stride=2),
        )
        self.right = nn.MaxPool2d(3, stride=2, padding=1)
        self.fuse = ConvBNAct(2 * width, 2 * width, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)  # (N, w, H/2, W/2)
        x = torch.cat([self.left(x), self.right(x)], dim=1)  # (N, 2w, H/4, W/4)
        return self.fuse(x)


class SIR(nn.Module):
    """Simple Inverted Residual: 3x3 conv c->3c + BN + ReLU -> BN -> 1x1 conv 3c->c, + input."""

    def __init__(self, channels: int, expansion: int = 3) -> None:
        super().__init__()
        hidden = channels * expansion
        self.residual = nn.Sequential(
            ConvBNAct(channels, hidden, 3),
            nn.BatchNorm2d(hidden),
            nn.Conv2d(hidden, channels, 1, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.residual(x)


def split_channels(channels: int, parts: int) -> list[int]:
    """Split equally; the last part takes the remainder."""
    share = round(channels / parts)
    return [share] * (parts - 1) + [channels - share * (parts - 1)]


class DWR(nn.Module):
    """Dilation-wise Residual module.

    Region residualization (3x3 conv + BN + ReLU) makes concise region features; semantic
    residualization filters each channel group with one depth-wise dilated 3x3 conv + BN (no
    ReLU); the branch outputs are concatenated -> BN -> 1x1 conv, and added to the input.
    """

    def __init__(self, channels: int, dilations: tuple[int, ...]) -> None:
        super().__init__()
        self.region = ConvBNAct(channels, channels, 3)
        self.groups = split_channels(channels, len(dilations))
        self.branches = nn.ModuleList()
        out_total = 0
        for index, (group, dilation) in enumerate(zip(self.groups, dilations)):
            out = group * 2 if index == 0 else group  # the d=1 branch gets a double share
            self.branches.append(ConvBNAct(group, out, 3, dilation=dilation, groups=group, act=False))
            out_total += out
        self.fuse = nn.Sequential(nn.BatchNorm2d(out_total), nn.Conv2d(out_total, channels, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        regions = torch.split(self.region(x), self.groups, dim=1)
        filtered = [branch(r) for branch, r in zip(self.branches, regions)]
        return x + self.fuse(torch.cat(filtered, dim=1))


@dataclass(frozen=True)
class DWRSegConfig:
    """Everything that shapes the network; stored in checkpoints to rebuild it."""

    variant: str
    sir_blocks: int
    dwr2_blocks: int
    dwr3_blocks: int
    stem_width: int = 32
    low_channels: int = 64
    high_channels: int = 128
    head_channels: int = 128


VARIANTS: dict[str, DWRSegConfig] = {
    "b": DWRSegConfig("b", sir_blocks=7, dwr2_blocks=3, dwr3_blocks=3),
    "l": DWRSegConfig("l", sir_blocks=8, dwr2_blocks=8, dwr3_blocks=3),
}


class DWRSeg(nn.Module):
    """Encoder (stem, SIR stage, two DWR stages) and the FCN-like decoder of Table 1."""

    def __init__(self, config: DWRSegConfig, num_classes: int) -> None:
        super().__init__()
        self.config = config
        self.num_classes = num_classes
        low, high = config.low_channels, config.high_channels
        self.stem = StemBlock(config.stem_width)
        stem_out = 2 * config.stem_width
        self.stage2 = nn.Sequential(ConvBNAct(stem_out, low, 3, stride=2), *[SIR(low) for _ in range(config.sir_blocks)])
        self.stage3 = nn.Sequential(
            ConvBNAct(low, high, 3, stride=2), *[DWR(high, (1, 3)) for _ in range(config.dwr2_blocks)]
        )
        self.stage4 = nn.Sequential(
            ConvBNAct(high, high, 3, stride=2), *[DWR(high, (1, 3, 5)) for _ in range(config.dwr3_blocks)]
        )
        concat = low + 2 * high
        self.decoder_norm = nn.BatchNorm2d(concat)
        self.head = nn.Sequential(ConvBNAct(concat, config.head_channels, 3), nn.Conv2d(config.head_channels, num_classes, 1))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        s2 = self.stage2(self.stem(x))  # (N, 64, H/8, W/8)
        s3 = self.stage3(s2)  # (N, 128, H/16, W/16)
        s4 = self.stage4(s3)  # (N, 128, H/32, W/32)
        size = s2.shape[-2:]
        up3 = F.interpolate(s3, size=size, mode="bilinear", align_corners=False)
        up4 = F.interpolate(s4, size=size, mode="bilinear", align_corners=False)
        return self.decoder_norm(torch.cat([s2, up3, up4], dim=1))  # (N, 320, H/8, W/8)

    def forward_head(self, features: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        logits = self.head(features)  # (N, num_classes, H/8, W/8)
        return F.interpolate(logits, size=size, mode="bilinear", align_corners=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x), x.shape[-2:])


def build_model(variant: str = "b", num_classes: int = 19) -> DWRSeg:
    """Build DWRSeg-B ("b") or DWRSeg-L ("l") with freshly initialised weights."""
    key = variant.lower().removeprefix("dwrseg-")
    if key not in VARIANTS:
        raise ValueError(f"unknown DWRSeg variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    model = DWRSeg(VARIANTS[key], num_classes)
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
    return model
