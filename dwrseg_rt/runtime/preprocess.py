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
    """(N, H, W, 3) uint8 RGB -> (N, 3, H, W) float32 (x - mean) / std, C-contiguous: this
    buffer is handed to runtimes by pointer (TensorRT's calibrator), which read it as NCHW."""
    scale = (1.0 / np.asarray(std, np.float32)).reshape(1, 3, 1, 1)
    shift = (np.asarray(mean, np.float32)).reshape(1, 3, 1, 1)
    chw = np.ascontiguousarray(images.transpose(0, 3, 1, 2), dtype=np.float32)
    chw -= shift
    chw *= scale
    return chw


def normalization_tensors(mean, std, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """mean and std as (1, 3, 1, 1) float32 on `device`: made once per backend, because a copy
    from pageable host memory to the GPU waits for all the work queued on it."""
    return (torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1).to(device),
            torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1).to(device))


def preprocess_tensor(images: torch.Tensor, size: tuple[int, int], mean: torch.Tensor, std: torch.Tensor,
                      dtype: torch.dtype = torch.float32, channels_last: bool = True) -> torch.Tensor:
    """The device twin of resize_frame + normalize: (N, H, W, 3) uint8 on any device ->
    (N, 3, h, w) normalised, bilinear like cv2.INTER_LINEAR (no antialias, half-pixel centres).
    `mean`/`std` come from `normalization_tensors` on the images' device (no per-frame copy);
    `channels_last` for torch's convolutions, linear NCHW for TensorRT engines."""
    width, height = size
    x = images.permute(0, 3, 1, 2).float()
    if x.shape[-2:] != (height, width):
        x = torch.nn.functional.interpolate(x, size=(height, width), mode="bilinear", align_corners=False)
        x = x.round_()  # the CPU path resizes in uint8 (bilinear weights are convex: no clamp needed)
    x = ((x - mean) / std).to(dtype)
    return x.contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)


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
