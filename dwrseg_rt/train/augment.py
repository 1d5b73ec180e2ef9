"""Training augmentation from the paper: color jitter, flip, random rescale and crop."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from dwrseg_rt.data.labels import IGNORE_INDEX


@dataclass(frozen=True)
class AugmentConfig:
    crop: tuple[int, int] = (1280, 640)  # (width, height)
    scale: tuple[float, float] = (0.25, 1.5)
    flip: bool = True
    jitter: float = 0.4  # brightness/contrast/saturation amplitude


def augment(image: np.ndarray, label: np.ndarray, config: AugmentConfig, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Random scale -> pad (label 255) -> random crop -> flip -> color jitter."""
    scale = rng.uniform(*config.scale)
    height, width = label.shape
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    image = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
    label = cv2.resize(label, size, interpolation=cv2.INTER_NEAREST)
    crop_w, crop_h = config.crop
    pad_h, pad_w = max(0, crop_h - size[1]), max(0, crop_w - size[0])
    if pad_h or pad_w:
        image = cv2.copyMakeBorder(image, 0, pad_h, 0, pad_w, cv2.BORDER_CONSTANT, value=(0, 0, 0))
        label = cv2.copyMakeBorder(label, 0, pad_h, 0, pad_w, cv2.BORDER_CONSTANT, value=IGNORE_INDEX)
    top = int(rng.integers(0, label.shape[0] - crop_h + 1))
    left = int(rng.integers(0, label.shape[1] - crop_w + 1))
    image = image[top : top + crop_h, left : left + crop_w]
    label = label[top : top + crop_h, left : left + crop_w]
    if config.flip and rng.random() < 0.5:
        image, label = image[:, ::-1], label[:, ::-1]
    if config.jitter:
        image = color_jitter(image, config.jitter, rng)
    return np.ascontiguousarray(image), np.ascontiguousarray(label)


def color_jitter(image: np.ndarray, amount: float, rng: np.random.Generator) -> np.ndarray:
    brightness, contrast, saturation = 1 + rng.uniform(-amount, amount, 3)
    out = image.astype(np.float32) * brightness
    out = (out - out.mean()) * contrast + out.mean()
    gray = out.mean(axis=2, keepdims=True)
    out = (out - gray) * saturation + gray
    return np.clip(out, 0, 255).astype(np.uint8)
