"""The one place where frames become network input (resize + normalise).

Training, evaluation and every backend call these functions with the mean/std stored in
the checkpoint, so preprocessing cannot drift between them.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch


def resize_frame(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """RGB uint8 frame -> (height, width) of `size` = (width, height), bilinear."""
    if (frame.shape[1], frame.shape[0]) == size:
        return frame
    return cv2.resize(frame, size, interpolation=cv2.INTER_LINEAR)


def normalize(images: np.ndarray, mean, std) -> np.ndarray:
    """(N, H, W, 3) uint8 RGB -> (N, 3, H, W) float32 (x - mean) / std."""
    scale = (1.0 / np.asarray(std, np.float32)).reshape(1, 3, 1, 1)
    shift = (np.asarray(mean, np.float32)).reshape(1, 3, 1, 1)
    chw = images.transpose(0, 3, 1, 2).astype(np.float32)
    return (chw - shift) * scale


def preprocess_tensor(images: torch.Tensor, size: tuple[int, int], mean, std, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The device twin of resize_frame + normalize: (N, H, W, 3) uint8 on any device ->
    (N, 3, h, w) normalised, bilinear like cv2.INTER_LINEAR (no antialias, half-pixel centres)."""
    width, height = size
    x = images.permute(0, 3, 1, 2).float()
    if x.shape[-2:] != (height, width):
        x = torch.nn.functional.interpolate(x, size=(height, width), mode="bilinear", align_corners=False)
        x = x.round_()  # the CPU path resizes in uint8 (bilinear weights are convex: no clamp needed)
    mean_t = torch.as_tensor(mean, dtype=torch.float32, device=x.device).view(1, 3, 1, 1)
    std_t = torch.as_tensor(std, dtype=torch.float32, device=x.device).view(1, 3, 1, 1)
    return ((x - mean_t) / std_t).to(dtype).contiguous(memory_format=torch.channels_last)


def resize_class_map_tensor(class_map: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """The device twin of resize_class_map: (N, h, w) integer -> (N, height, width), nearest."""
    if class_map.shape[-2:] == (height, width):
        return class_map
    resized = torch.nn.functional.interpolate(class_map[:, None].float(), size=(height, width), mode="nearest")
    return resized[:, 0].to(class_map.dtype)


def resize_class_map(class_map: np.ndarray, height: int, width: int) -> np.ndarray:
    """Back to the frame's resolution; nearest keeps class ids intact."""
    if class_map.shape == (height, width):
        return class_map
    return cv2.resize(class_map, (width, height), interpolation=cv2.INTER_NEAREST)
