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


class VideoJob:
    """Segment `source` into `output`: every check and the model load happen in `__init__`,
    so a bad input fails before any progress is shown or any file is created."""

    def __init__(
        self,
        source: Path,
        output: Path,
        mode: str = "overlay",
        weights: Path | None = None,
        backend: str = "auto",
        size: tuple[int, int] | None = None,
        alpha: float = 0.5,
        masks_dir: Path | None = None,
        force: bool = False,
    ) -> None:
        if output.suffix.lower() != ".mp4":
            raise UserError(f"output {output} must end in .mp4 (H.264 in MP4)")
        check_output_path(output, force, inputs=(source,))
        if masks_dir is not None and masks_dir.exists() and not masks_dir.is_dir():
            raise UserError(f"--masks-dir {masks_dir} is not a folder")
        self.source, self.output, self.mode, self.masks_dir = source, output, mode, masks_dir
        self.reader = VideoReader(source)
        try:
            runner, info, inference_size = load_backend(weights, backend, size)
        except BaseException:
            self.reader.close()
            raise
        self.segmenter = Segmenter(runner, info, inference_size)
        self.renderer = Renderer(info.palette, mode, alpha)

    @property
    def total_frames(self) -> int | None:
        return self.reader.frame_count

    def run(self, on_frame: Callable[[int, float], None] | None = None) -> dict:
        """Returns frames, fps and per-stage timings. Nothing is left under the final name on
        an error; on Ctrl+C the frames so far are finalized into a playable file."""
        reader, masks_dir = self.reader, self.masks_dir
        if masks_dir is not None:
            masks_dir.mkdir(parents=True, exist_ok=True)
        writer = VideoWriter(self.output, reader.fps, reader.width, reader.height)
        written = 0
        started = time.perf_counter()

        def sink(frame: np.ndarray, class_map: np.ndarray) -> None:
            nonlocal written
            writer.write(self.renderer(frame, class_map))
            if masks_dir is not None:
                cv2.imwrite(str(masks_dir / f"{self.source.stem}_{written:06d}.png"), class_map)
            written += 1

        def progress() -> None:
            if on_frame:
                on_frame(written, written / (time.perf_counter() - started))

        with reader:
            try:
                stats = run_pipeline(reader, self.segmenter, sink, on_frame=progress)
            except BaseException:
                writer.close(commit=False)
                raise
            writer.close(commit=stats.frames > 0)
        if stats.frames == 0 and not stats.interrupted:
            raise UserError(f"{self.source} has no decodable video frames")
        return {
            "input": str(self.source), "output": str(self.output), "mode": self.mode, "backend": self.segmenter.backend.name,
            "size": list(self.segmenter.size), "fps_in": float(reader.fps), "width": reader.width, "height": reader.height,
            "corrupt_packets": reader.corrupt_packets, **stats.to_dict(),
        }
