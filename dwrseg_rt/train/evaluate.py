"""mIoU of a Segmenter over a dataset split, at each label's original resolution; a model
with other classes than the dataset is scored through a class map."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from dwrseg_rt.checkpoint import ModelInfo
from dwrseg_rt.data.datasets import SegmentationFiles
from dwrseg_rt.data.labels import BUILTIN_CLASS_MAPS, LabelSet, class_lut
from dwrseg_rt.errors import UserError
from dwrseg_rt.runtime.segmenter import Segmenter
from dwrseg_rt.train.metrics import ConfusionMatrix


def read_class_map(path: Path) -> dict[str, str]:
    """A JSON object {"class name": "class name", ...}."""
    try:
        mapping = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"cannot read class map {path}: {exc}") from None
    if not isinstance(mapping, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()):
        raise UserError(f"class map {path} must be a JSON object of class names, e.g. {{\"truck\": \"car\"}}")
    return mapping


def describe_map(source: tuple[str, ...], target: tuple[str, ...], mapping: dict[str, str], drop: bool) -> str:
    """'a -> b, c -> d; dropped: e' for the classes of `source`; a class that maps nowhere is
    refused unless `drop` (a user's map that forgot one would silently score without it)."""
    moves = [(name, mapping.get(name, name)) for name in source]
    dropped = [name for name, to in moves if to not in target]
    if dropped and not drop:
        raise UserError(f"the class map leaves {', '.join(dropped[:5])}{' ...' if len(dropped) > 5 else ''} unmapped; "
                        "map every class, or pass --drop-unmapped to score without them")
    mapped = ", ".join(f"{name} -> {to}" for name, to in moves if to in target and to != name)
    return (mapped or "names kept") + (f"; dropped: {', '.join(dropped)}" if dropped else "")


def align_classes(info: ModelInfo, files: SegmentationFiles, mapping: dict[str, str] | None = None,
                  drop_unmapped: bool = False) -> tuple[SegmentationFiles, np.ndarray | None, str | None]:
    """Bring model and dataset onto one set of scored classes, the coarser side's.

    Returns the files (labels mapped when the dataset's classes are the finer ones), a lookup
    for predictions (when the model's are) and a line saying what maps where. `mapping` runs
    from one side's class names to the other's; without it a built-in map is used (whose
    dropped classes are by design). A user's map must place every class of its side unless
    `drop_unmapped`.
    """
    model = LabelSet(info.label_set, tuple(info.classes), tuple(tuple(c) for c in info.palette))
    if mapping is None and model.classes == files.labels.classes:
        return files, None, None
    data = files.labels
    if mapping is None:
        mapping = BUILTIN_CLASS_MAPS.get((model.name, data.name)) or BUILTIN_CLASS_MAPS.get((data.name, model.name))
        drop_unmapped = True
        if mapping is None:
            raise UserError(f"the model predicts {model.num_classes} classes ({model.name}) but the dataset has "
                            f"{data.num_classes} ({data.name}); pass --class-map FILE to map them by name")
    if not mapping:
        raise UserError("the class map is empty; give pairs of class names, e.g. {\"truck\": \"car\"}")
    if set(mapping) <= set(model.classes) and set(mapping.values()) <= set(data.classes):
        moves = describe_map(model.classes, data.classes, mapping, drop_unmapped)
        return files, class_lut(model.classes, data.classes, mapping), f"model classes onto {data.name}'s {data.num_classes}: {moves}"
    if set(mapping) <= set(data.classes) and set(mapping.values()) <= set(model.classes):
        moves = describe_map(data.classes, model.classes, mapping, drop_unmapped)
        return files.mapped_to(model, mapping), None, f"dataset labels onto the model's {model.num_classes} {model.name} classes: {moves}"
    unknown = sorted(name for name in {*mapping, *mapping.values()} if name not in model.classes and name not in data.classes)
    if unknown:
        raise UserError(f"class map names {unknown[:3]} are classes of neither the model ({model.name}) nor the dataset ({data.name})")
    raise UserError("the class map's names must run from the model's classes to the dataset's, or the other way")


def scores(confusion: ConfusionMatrix, classes: tuple[str, ...]) -> dict:
    iou = confusion.iou()
    present = confusion.truth_counts() > 0
    return {
        "miou": confusion.miou(),
        "pixel_acc": confusion.pixel_accuracy(),
        "per_class": {name: (float(v) if p else None) for name, v, p in zip(classes, iou, present)},
    }


def evaluate(segmenter: Segmenter, files: SegmentationFiles, on_image: Callable[[], None] | None = None,
             prediction_lut: np.ndarray | None = None, reference: Segmenter | None = None) -> dict:
    """Predict every image at the segmenter's size (for a segmenter whose size follows the
    images: each at its own aspect ratio), resize back, accumulate one confusion matrix
    (over the dataset's classes, after `prediction_lut` maps the model's ids onto them).

    With a `reference` (the same model at fp32, say), it is scored on the same images too and
    the result adds its scores, the mIoU drift in points and the class-map agreement."""
    if prediction_lut is None and files.labels.num_classes != segmenter.info.num_classes:
        raise UserError(f"the model predicts {segmenter.info.num_classes} classes but the dataset has {files.labels.num_classes}")
    confusion, baseline = ConfusionMatrix(files.labels.num_classes), ConfusionMatrix(files.labels.num_classes)
    mapped = (lambda ids: ids) if prediction_lut is None else (lambda ids: prediction_lut[ids])
    agreeing = pixels = 0
    for index in range(len(files)):
        image, label = files.load(index)
        prediction = segmenter.segment(image)
        confusion.update(mapped(prediction), label)
        if reference is not None:
            expected = reference.segment(image)
            baseline.update(mapped(expected), label)
            agreeing, pixels = agreeing + int((prediction == expected).sum()), pixels + prediction.size
        if on_image:
            on_image()
    sizes = [list(size) for size in segmenter.opened] or [list(segmenter.size)]  # every size the images ran at
    result = {**scores(confusion, files.labels.classes), "images": len(files), "size": sizes[0], "sizes": sizes}
    if reference is not None:
        result["reference"] = {"backend": reference.backend.name, **scores(baseline, files.labels.classes)}
        result["miou_drift_points"] = (result["miou"] - result["reference"]["miou"]) * 100
        result["agreement"] = agreeing / pixels if pixels else None
    return result
