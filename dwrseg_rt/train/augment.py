"""Training augmentation: the paper's (color jitter, flip, random rescale and crop) and, for
streets the data never showed (`robust`), a camera's variety: aspect-ratio jitter, gamma,
white balance, hue, low light, blur, sensor noise and JPEG artefacts; plus crops centred on
rare classes (`focus`), so thin and rare objects are seen at full resolution more often."""

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
    aspect: tuple[float, float] = (1.0, 1.0)  # width stretch range (log-uniform): other cameras' shapes
    photometric: bool = False  # gamma, white balance, hue, low light, blur, noise, JPEG
    focus: tuple[int, ...] = ()  # rare class ids: crops are centred on one of them ...
    focus_prob: float = 0.0  # ... with this probability, when the label holds one


def augment(image: np.ndarray, label: np.ndarray, config: AugmentConfig, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Random scale and aspect -> pad (label 255) -> crop (random, or around a rare class) ->
    flip -> color jitter -> camera effects."""
    scale = rng.uniform(*config.scale)
    stretch = float(np.exp(rng.uniform(*np.log(config.aspect)))) if config.aspect != (1.0, 1.0) else 1.0
    height, width = label.shape
    size = (max(1, round(width * scale * stretch)), max(1, round(height * scale)))
    image = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
    label = cv2.resize(label, size, interpolation=cv2.INTER_NEAREST)
    crop_w, crop_h = config.crop
    pad_h, pad_w = max(0, crop_h - size[1]), max(0, crop_w - size[0])
    if pad_h or pad_w:
        image = cv2.copyMakeBorder(image, 0, pad_h, 0, pad_w, cv2.BORDER_CONSTANT, value=(0, 0, 0))
        label = cv2.copyMakeBorder(label, 0, pad_h, 0, pad_w, cv2.BORDER_CONSTANT, value=IGNORE_INDEX)
    top, left = crop_origin(label, config, rng)
    image = image[top : top + crop_h, left : left + crop_w]
    label = label[top : top + crop_h, left : left + crop_w]
    if config.flip and rng.random() < 0.5:
        image, label = image[:, ::-1], label[:, ::-1]
    if config.jitter:
        image = color_jitter(image, config.jitter, rng)
    if config.photometric:
        image = camera_effects(np.ascontiguousarray(image), rng)
    return np.ascontiguousarray(image), np.ascontiguousarray(label)


def crop_origin(label: np.ndarray, config: AugmentConfig, rng: np.random.Generator) -> tuple[int, int]:
    """Top-left of the crop: uniform, or (with `focus_prob`) centred on a random pixel of a rare
    class present in the label, clamped inside it."""
    crop_w, crop_h = config.crop
    max_top, max_left = label.shape[0] - crop_h, label.shape[1] - crop_w
    if config.focus and rng.random() < config.focus_prob:
        ys, xs = np.nonzero(np.isin(label, config.focus))
        if ys.size:
            pick = int(rng.integers(ys.size))
            return (int(np.clip(ys[pick] - crop_h // 2, 0, max_top)), int(np.clip(xs[pick] - crop_w // 2, 0, max_left)))
    return int(rng.integers(0, max_top + 1)), int(rng.integers(0, max_left + 1))


def color_jitter(image: np.ndarray, amount: float, rng: np.random.Generator) -> np.ndarray:
    brightness, contrast, saturation = 1 + rng.uniform(-amount, amount, 3)
    out = image.astype(np.float32) * brightness
    out = (out - out.mean()) * contrast + out.mean()
    gray = out.mean(axis=2, keepdims=True)
    out = (out - gray) * saturation + gray
    return np.clip(out, 0, 255).astype(np.uint8)


def camera_effects(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each effect with its own probability, so most crops get one or two, some none."""
    out = image.astype(np.float32) / 255.0
    if rng.random() < 0.5:  # gamma: another sensor's tone curve
        out = out ** rng.uniform(0.6, 1.6)
    if rng.random() < 0.5:  # white balance: per-channel gains
        out = out * rng.uniform(0.8, 1.2, 3).astype(np.float32)
    if rng.random() < 0.2:  # low light: dark, with the noise a high gain brings
        out = out * rng.uniform(0.25, 0.6)
        out = out + rng.normal(0, 0.03, out.shape).astype(np.float32)
    out = np.clip(out * 255.0, 0, 255).astype(np.uint8)
    if rng.random() < 0.3:  # hue rotation (OpenCV hue is 0-179)
        hsv = cv2.cvtColor(out, cv2.COLOR_RGB2HSV)
        hsv[..., 0] = (hsv[..., 0].astype(np.int16) + int(rng.integers(-10, 11))) % 180
        out = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    if rng.random() < 0.25:  # defocus / motion blur
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.5, 1.5))
    if rng.random() < 0.25:  # sensor noise
        noise = rng.normal(0, rng.uniform(2, 8), out.shape)
        out = np.clip(out + noise, 0, 255).astype(np.uint8)
    if rng.random() < 0.3:  # compression artefacts of a streamed camera
        ok, encoded = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(25, 80))])
        out = cv2.imdecode(encoded, cv2.IMREAD_UNCHANGED) if ok else out
    return out
