"""Drawing class maps: color masks and overlays, with the checkpoint's palette."""

from __future__ import annotations

import cv2
import numpy as np


class Renderer:
    """Turns (frame, class map) into the picture a person looks at."""

    MODES = ("overlay", "mask")

    def __init__(self, palette, mode: str = "overlay", alpha: float = 0.5, ignore: tuple[int, ...] = ()) -> None:
        if mode not in self.MODES:
            raise ValueError(f"unknown render mode {mode!r}")
        self.lut = np.asarray(palette, np.uint8).reshape(-1, 3)
        self.mode, self.alpha = mode, alpha
        self.ignore = np.zeros(256, bool)
        self.ignore[list(ignore)] = True
        self.lut = np.concatenate([self.lut, np.zeros((256 - len(self.lut), 3), np.uint8)])

    def color_mask(self, class_map: np.ndarray) -> np.ndarray:
        return self.lut[class_map]

    def __call__(self, frame: np.ndarray, class_map: np.ndarray) -> np.ndarray:
        colors = self.color_mask(class_map)
        if self.mode == "mask":
            return colors
        blended = cv2.addWeighted(frame, 1.0 - self.alpha, colors, self.alpha, 0.0)
        if self.ignore.any():
            keep = self.ignore[class_map]
            blended[keep] = frame[keep]
        return blended
