"""`--show`: a live window when a display and a GUI-enabled OpenCV exist."""

from __future__ import annotations

import os
import sys

import cv2
import numpy as np


class Viewer:
    """Shows frames in a window; if none can open, says why once and stays out of the way."""

    def __init__(self, title: str = "dwrseg-rt") -> None:
        self.title = title
        self.enabled = False
        if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            print("--show: no display found ($DISPLAY is unset); continuing without a window", file=sys.stderr)
            return
        try:
            cv2.namedWindow(title, cv2.WINDOW_NORMAL)
            self.enabled = True
        except cv2.error:
            print("--show: this OpenCV has no GUI (opencv-python-headless); pip install opencv-python for a window",
                  file=sys.stderr)

    def show(self, rgb: np.ndarray) -> bool:
        """Display a frame; returns False when the user pressed q or Esc."""
        if not self.enabled:
            return True
        cv2.imshow(self.title, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        return cv2.waitKey(1) & 0xFF not in (ord("q"), 27)

    def close(self) -> None:
        if self.enabled:
            cv2.destroyWindow(self.title)
