"""mIoU from one confusion matrix over a whole split (the Cityscapes protocol)."""

from __future__ import annotations

import numpy as np

from dwrseg_rt.data.labels import IGNORE_INDEX


class ConfusionMatrix:
    def __init__(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.matrix = np.zeros((num_classes, num_classes), np.int64)  # rows: truth, cols: prediction

    def update(self, prediction: np.ndarray, truth: np.ndarray) -> None:
        valid = (truth != IGNORE_INDEX) & (truth < self.num_classes)
        index = truth[valid].astype(np.int64) * self.num_classes + prediction[valid].astype(np.int64)
        self.matrix += np.bincount(index, minlength=self.num_classes**2).reshape(self.num_classes, self.num_classes)

    def iou(self) -> np.ndarray:
        """Per-class IoU; NaN for a class absent from both truth and prediction."""
        tp = np.diag(self.matrix).astype(np.float64)
        union = self.matrix.sum(0) + self.matrix.sum(1) - tp
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(union > 0, tp / union, np.nan)

    def miou(self) -> float:
        """Mean over classes that occur in the ground truth (absent classes are not averaged)."""
        present = self.matrix.sum(1) > 0
        return float(np.nanmean(self.iou()[present])) if present.any() else float("nan")

    def pixel_accuracy(self) -> float:
        total = self.matrix.sum()
        return float(np.diag(self.matrix).sum() / total) if total else float("nan")
