"""The on-disk cache of exports and engines (`~/.cache/dwrseg-rt` or `$DWRSEG_RT_CACHE`):
where entries live, how they are named, and how a damaged one is made again. Used by the
onnxruntime and TensorRT backends alike, so it depends on neither."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

Opened = TypeVar("Opened")


def cache_dir() -> Path:
    """Where exported ONNX files and TensorRT engines are cached between runs."""
    root = os.environ.get("DWRSEG_RT_CACHE") or Path.home() / ".cache" / "dwrseg-rt"
    return Path(root)


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def export_cache_path(weights: Path, size: tuple[int, int], variant: str = "") -> Path:
    """Where the ONNX export of these weights at this size is cached (`variant`: e.g. TensorRT's
    int32 ids); the graph revision is in the name, so a changed exporter never reuses an old file."""
    from dwrseg_rt.export.onnx import GRAPH_REVISION

    return cache_dir() / "onnx" / f"{file_digest(weights)[:16]}_{size[0]}x{size[1]}_r{GRAPH_REVISION}{variant}.onnx"


def open_cached(path: Path, make: Callable[[Path], None], open_entry: Callable[[Path], Opened],
                complete: Callable[[Path], bool] = lambda path: True) -> Opened:
    """`open_entry(path)` on a cached entry, made first by `make(path)` when it is missing or
    incomplete (`complete`: e.g. its sidecar is there); one that no longer opens (damaged,
    truncated: `open_entry` raises UserError) is made again. Opening it is the check."""
    from dwrseg_rt.errors import UserError

    if path.is_file() and complete(path):
        try:
            return open_entry(path)
        except UserError:
            pass
    path.unlink(missing_ok=True)
    make(path)
    return open_entry(path)
