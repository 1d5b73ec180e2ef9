"""INT8 calibration sets, shared by TensorRT engines and onnxruntime INT8 models.

A calibration set is the user's own camera images (`--calibration DIR`), preprocessed by the
same function as inference; without one, synthetic streets from the shipped generator.
The folder is listed once (`calibration_images`); digest and batches take that list. The
digest goes into cache keys, so new images mean a new INT8 model. Images are decoded one at a
time, at a reduced scale where the file is much larger than the inference size, so memory
stays at one frame whatever the folder holds (TensorRT takes up to 500 images).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from dwrseg_rt.checkpoint import ModelInfo
from dwrseg_rt.errors import UserError

MIN_IMAGES = 8
DEFAULT_STREETS = 16  # synthetic frames when no folder is given


def calibration_images(folder: Path, limit: int) -> list[Path]:
    """Up to `limit` images under `folder` that OpenCV can read (judged by their headers, so a
    bad folder fails at once), evenly spaced in name order so that a folder of video frames is
    sampled along its whole length; at least MIN_IMAGES."""
    import cv2

    from dwrseg_rt.data.datasets import IMAGE_SUFFIXES

    if not folder.is_dir():
        raise UserError(f"--calibration {folder} is not a folder of images")
    # regular files only: a FIFO or device named *.png would block the header check forever
    candidates = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    readable = [p for p in candidates if cv2.haveImageReader(str(p))]
    paths = [readable[i * len(readable) // limit] for i in range(limit)] if len(readable) > limit else readable
    if len(paths) < MIN_IMAGES:
        raise UserError(f"--calibration {folder} holds {len(paths)} readable images; INT8 calibration needs at least {MIN_IMAGES} "
                        "(a few hundred of your own camera frames is better)")
    return paths


def calibration_digest(images: list[Path] | None) -> str:
    """Changes when the calibration set does (paths, sizes, modification times), without
    hashing every pixel. None: the synthetic default set."""
    if images is None:
        return f"synthetic-streets-{DEFAULT_STREETS}"
    digest = hashlib.sha256()
    for path in images:
        stat = path.stat()
        digest.update(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def describe_calibration(images: list[Path] | None) -> str:
    """Which calibration an INT8 model came from, for the line printed whenever one is used."""
    if images is None:
        return f"{DEFAULT_STREETS} synthetic streets"
    return f"{len(images)} images from {images[0].parent}" if images else "no images"


REDUCED_READS = ((8, "IMREAD_REDUCED_COLOR_8"), (4, "IMREAD_REDUCED_COLOR_4"), (2, "IMREAD_REDUCED_COLOR_2"))


def read_for_size(path: Path, size: tuple[int, int]) -> np.ndarray:
    """An RGB image decoded at the largest power-of-two reduction that still covers `size`
    (a 12 MP photo for a 480x360 model decodes at 1/4: 16x less memory), then resized.
    An unreadable image (or one past OpenCV's pixel limit) is a one-line error naming it."""
    import cv2

    from dwrseg_rt.data.datasets import image_size
    from dwrseg_rt.errors import UserError
    from dwrseg_rt.runtime.preprocess import resize_frame

    try:
        width, height = image_size(path)
        factor, flag = next(((f, getattr(cv2, name)) for f, name in REDUCED_READS
                             if width // f >= size[0] and height // f >= size[1]), (1, cv2.IMREAD_COLOR))
        image = cv2.imread(str(path), flag)
    except cv2.error as exc:
        raise UserError(f"cannot read calibration image {path}: {str(exc).strip().splitlines()[-1]}") from None
    if image is None:
        raise UserError(f"cannot read calibration image {path}")
    return resize_frame(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), size)


class CalibrationBatches(Sequence):
    """The calibration set as (1, 3, h, w) contiguous NCHW float32 network inputs, each made
    when asked for (nothing is kept), preprocessed exactly as at inference."""

    def __init__(self, images: list[Path] | None, info: ModelInfo, size: tuple[int, int]) -> None:
        self.images, self.info, self.size = images, info, size

    def __len__(self) -> int:
        return DEFAULT_STREETS if self.images is None else len(self.images)

    def __getitem__(self, index: int) -> np.ndarray:
        from dwrseg_rt.runtime.preprocess import normalize

        if not 0 <= index < len(self):
            raise IndexError(index)
        if self.images is None:
            from dwrseg_rt.data.synth import Street

            frame = Street(seed=1000 + index, width=self.size[0], height=self.size[1]).render(0.5)[0]
        else:
            frame = read_for_size(self.images[index], self.size)
        return normalize(frame[None], self.info.mean, self.info.std)


def calibration_batches(images: list[Path] | None, info: ModelInfo, size: tuple[int, int]) -> CalibrationBatches:
    """The images (from `calibration_images`; None: synthetic streets) as network inputs, one at
    a time; every header is read first, so an unreadable image fails before any calibration work."""
    from dwrseg_rt.data.datasets import image_size
    from dwrseg_rt.errors import UserError

    for path in images or ():
        try:
            image_size(path)
        except UserError:
            raise UserError(f"cannot read calibration image {path}") from None
    return CalibrationBatches(images, info, size)
