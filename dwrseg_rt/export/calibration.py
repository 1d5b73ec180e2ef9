"""INT8 calibration sets, shared by TensorRT engines and onnxruntime INT8 models.

A calibration set is the user's own camera images (`--calibration DIR`), preprocessed by the
same function as inference; without one, synthetic streets from the shipped generator.
The folder is listed once (`calibration_images`); digest and batches take that list. The
digest goes into cache keys, so new images mean a new INT8 model.
"""

from __future__ import annotations

import hashlib
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
    candidates = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
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


def calibration_batches(images: list[Path] | None, info: ModelInfo, size: tuple[int, int]) -> list[np.ndarray]:
    """The images (from `calibration_images`; None: synthetic streets) as (1, 3, h, w) network
    inputs; an unreadable image is a one-line error naming it, before any calibration work."""
    from dwrseg_rt.data.datasets import read_rgb
    from dwrseg_rt.runtime.preprocess import normalize, resize_frame

    if images is None:
        from dwrseg_rt.data.synth import Street

        frames = [Street(seed=1000 + i, width=size[0], height=size[1]).render(0.5)[0] for i in range(DEFAULT_STREETS)]
    else:
        frames = [read_rgb(path) for path in images]
    return [normalize(resize_frame(frame, size)[None], info.mean, info.std) for frame in frames]
