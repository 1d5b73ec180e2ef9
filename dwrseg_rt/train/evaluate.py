"""mIoU of a Segmenter over a dataset split, at each label's original resolution."""

from __future__ import annotations

from collections.abc import Callable

from dwrseg_rt.data.datasets import SegmentationFiles
from dwrseg_rt.errors import UserError
from dwrseg_rt.runtime.segmenter import Segmenter
from dwrseg_rt.train.metrics import ConfusionMatrix


def evaluate(segmenter: Segmenter, files: SegmentationFiles, on_image: Callable[[], None] | None = None) -> dict:
    """Predict every image at the segmenter's size, resize back, accumulate one confusion matrix."""
    if files.labels.num_classes != segmenter.info.num_classes:
        raise UserError(f"the model predicts {segmenter.info.num_classes} classes but the dataset has {files.labels.num_classes}")
    confusion = ConfusionMatrix(files.labels.num_classes)
    for index in range(len(files)):
        image, label = files.load(index)
        confusion.update(segmenter.segment(image), label)
        if on_image:
            on_image()
    iou = confusion.iou()
    present = confusion.matrix.sum(1) > 0
    return {
        "miou": confusion.miou(),
        "pixel_acc": confusion.pixel_accuracy(),
        "per_class": {name: (float(v) if p else None) for name, v, p in zip(files.labels.classes, iou, present)},
        "images": len(files),
        "size": list(segmenter.size),
    }
