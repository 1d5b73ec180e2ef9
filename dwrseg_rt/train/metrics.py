"""mIoU from one confusion matrix over a whole split (the Cityscapes protocol)."""

from __future__ import annotations

import numpy as np

from dwrseg_rt.data.labels import IGNORE_INDEX


class ConfusionMatrix:
    """Rows: truth, columns: prediction. A prediction outside the scored classes (a model class
    that a class map sends nowhere) is counted in `missed`: wrong for its true class, and no
    class's false positive."""

    def __init__(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.matrix = np.zeros((num_classes, num_classes), np.int64)
        self.missed = np.zeros(num_classes, np.int64)

    def update(self, prediction: np.ndarray, truth: np.ndarray) -> None:
        n = self.num_classes
        valid = (truth != IGNORE_INDEX) & (truth < n)
        predicted = np.minimum(prediction[valid].astype(np.int64), n)
        index = truth[valid].astype(np.int64) * (n + 1) + predicted
        counts = np.bincount(index, minlength=n * (n + 1)).reshape(n, n + 1)
        self.matrix += counts[:, :n]
        self.missed += counts[:, n]

    def iou(self) -> np.ndarray:
        """Per-class IoU; NaN for a class absent from both truth and prediction."""
        tp = np.diag(self.matrix).astype(np.float64)
        union = self.matrix.sum(0) + self.truth_counts() - tp
        with np.errstate(invalid="ignore"):  # 0 / 0 for a class never seen: NaN (tp <= union, so no x / 0)
            return tp / union

    def truth_counts(self) -> np.ndarray:
        return self.matrix.sum(1) + self.missed

    def miou(self) -> float:
        """Mean over classes that occur in the ground truth (absent classes are not averaged)."""
        present = self.truth_counts() > 0
        return float(np.nanmean(self.iou()[present])) if present.any() else float("nan")

    def pixel_accuracy(self) -> float:
        total = self.truth_counts().sum()
        return float(np.diag(self.matrix).sum() / total) if total else float("nan")
