"""Segment a video file into an H.264 mp4 (and optional per-frame class-id PNGs)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from dwrseg_rt.errors import UserError
from dwrseg_rt.io.render import Renderer
from dwrseg_rt.io.video import VideoReader, VideoWriter, check_output_path
from dwrseg_rt.runtime.backends import load_backend
from dwrseg_rt.runtime.pipeline import run_pipeline
from dwrseg_rt.runtime.segmenter import Segmenter


def segment_video(
    source: Path,
    output: Path,
    mode: str = "overlay",
    weights: Path | None = None,
    backend: str = "auto",
    size: tuple[int, int] | None = None,
    alpha: float = 0.5,
    masks_dir: Path | None = None,
    force: bool = False,
    on_frame: Callable[[int, int | None, float], None] | None = None,
) -> dict:
    """Run the pipeline over `source`; returns frames, fps and per-stage timings.

    The output appears under its final name only when complete; on an error nothing is
    left; on Ctrl+C the frames so far are finalized into a playable file.
    """
    if output.suffix.lower() != ".mp4":
        raise UserError(f"output {output} must end in .mp4 (H.264 in MP4)")
    check_output_path(output, force, inputs=(source,))
    if masks_dir is not None:
        if masks_dir.exists() and not masks_dir.is_dir():
            raise UserError(f"--masks-dir {masks_dir} is not a folder")
        masks_dir.mkdir(parents=True, exist_ok=True)
    reader = VideoReader(source)
    with reader:
        runner, info, inference_size = load_backend(weights, backend, size)
        segmenter = Segmenter(runner, info, inference_size)
        renderer = Renderer(info.palette, mode, alpha)
        writer = VideoWriter(output, reader.fps, reader.width, reader.height)
        written = 0
        started = time.perf_counter()

        def sink(frame: np.ndarray, class_map: np.ndarray) -> None:
            nonlocal written
            writer.write(renderer(frame, class_map))
            if masks_dir is not None:
                cv2.imwrite(str(masks_dir / f"{source.stem}_{written:06d}.png"), class_map)
            written += 1

        def progress() -> None:
            if on_frame:
                on_frame(written, reader.frame_count, written / (time.perf_counter() - started))

        try:
            stats = run_pipeline(reader, segmenter, sink, on_frame=progress)
        except BaseException:
            writer.close(commit=False)
            raise
        writer.close(commit=stats.frames > 0)
    if stats.frames == 0 and not stats.interrupted:
        raise UserError(f"{source} has no decodable video frames")
    return {
        "input": str(source), "output": str(output), "mode": mode, "backend": runner.name,
        "size": list(inference_size), "fps_in": float(reader.fps), "width": reader.width, "height": reader.height,
        "corrupt_packets": reader.corrupt_packets, **stats.to_dict(),
    }
