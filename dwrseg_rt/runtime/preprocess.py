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


def normalize_tensor(images: torch.Tensor, mean, std) -> torch.Tensor:
    """The torch twin of `normalize` for batches already on a device: (N, H, W, 3) uint8 in."""
    mean_t = torch.as_tensor(mean, dtype=torch.float32, device=images.device).view(1, 3, 1, 1)
    std_t = torch.as_tensor(std, dtype=torch.float32, device=images.device).view(1, 3, 1, 1)
    return (images.permute(0, 3, 1, 2).float() - mean_t) / std_t


def resize_class_map(class_map: np.ndarray, height: int, width: int) -> np.ndarray:
    """Back to the frame's resolution; nearest keeps class ids intact."""
    if class_map.shape == (height, width):
        return class_map
    return cv2.resize(class_map, (width, height), interpolation=cv2.INTER_NEAREST)
