"""Segmentation jobs: one source through the pipeline into its outputs.

`VideoJob` writes an H.264 mp4 (video files keep their timestamps and audio; live sources
are stamped with wall-clock time); `ImageJob` writes one PNG per image with matching names.
Both check every output path in `__init__`, before anything is shown or written, and leave
nothing under a final name unless it is complete (or finalized after Ctrl+C).
"""

from __future__ import annotations

import glob
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from dwrseg_rt.checkpoint import load_checkpoint
from dwrseg_rt.io.outputs import atomic_write, check_output_path
from dwrseg_rt.errors import UserError
from dwrseg_rt.export.tensorrt import EngineOptions
from dwrseg_rt.io.render import Renderer
from dwrseg_rt.io.sources import Frame, ImageSource, NewestFrameSource, VideoFileSource
from dwrseg_rt.io.video import VideoWriter
from dwrseg_rt.io.viewer import Viewer
from dwrseg_rt.model.tta import check_tta
from dwrseg_rt.runtime.backends import check_backend, cpu_threads, load_backend, runs_on_gpu
from dwrseg_rt.runtime.pipeline import run_pipeline
from dwrseg_rt.runtime.segmenter import Segmenter

LIVE_TIME_BASE = Fraction(1, 1000)


def load_segmenter(weights: Path, backend: str, size: tuple[int, int] | None, precision: str | None = None,
                   engine: EngineOptions | None = None, threads: int | None = None, tta: str = "none",
                   streams: int | None = None, live: bool = False, spinning: bool = False) -> Segmenter:
    """The segmenter of a pipeline: on the CPU its inference threads sleep when idle, leaving
    the cores to the decoder and encoder (`spinning` True: they spin, for work with nothing
    beside it, like evaluation), and onnxruntime segments `streams` frames at once
    (`cpu_threads` picks them; see `CpuThreads`). A checkpoint without `size` runs at
    the size that keeps each frame's aspect ratio (`size_for_frame`), each size opened when first met,
    and so does an ONNX exported with `--dynamic` (one session for every size); other exports
    (.onnx, .engine) run at the size they were built for. `tta`: see model/tta.py."""
    name, _ = check_backend(backend, precision, engine)
    cpu = cpu_threads(name, threads, streams, live, spinning)
    if size is not None or Path(weights).suffix.lower() != ".pt":
        runner, info, inference_size = load_backend(weights, backend, size, cpu, precision=precision, engine=engine, tta=tta)
        if size is None and getattr(runner, "any_size", False):
            return Segmenter(runner, info, None, open_at=lambda at: runner)
        return Segmenter(runner, info, inference_size)
    check_tta(tta, weights)
    _, info = load_checkpoint(weights)  # checked in full now, not at the first frame
    return Segmenter(None, info, None, gpu=runs_on_gpu(name),
                     open_at=lambda at: load_backend(weights, name, at, cpu, precision=precision, engine=engine, tta=tta)[0])


def write_png(path: Path, image: np.ndarray) -> None:
    ok, encoded = cv2.imencode(".png", image)
    if not ok:
        raise UserError(f"cannot encode {path.name} as PNG")
    atomic_write(path, lambda temp: temp.write_bytes(encoded.tobytes()))


@dataclass
class Outputs:
    """What every job of a run writes or shows. `save` False writes no rendered video or PNGs
    (only the masks, the window, the stats): nothing is drawn unless shown, nothing encoded.
    `preset`: x264's speed/size trade-off; None picks by where the model runs (`encoder_settings`)."""

    renderer: Renderer
    masks_dir: Path | None = None
    force: bool = False
    viewer: Viewer | None = None
    save: bool = True
    preset: str | None = None


def encoder_settings(on_device: bool) -> dict:
    """x264's threads and preset for a model on a GPU or on the CPU. On the CPU: one encoder
    thread, leaving the other cores to inference, and the fastest preset (measured on 2 cores,
    960x540: 4 ms a frame against veryfast's 10, for files about 4x larger at the same quality
    setting). On a GPU x264 takes the threads it wants, at veryfast (smaller files)."""
    return {"threads": 0, "preset": "veryfast"} if on_device else {"threads": 1, "preset": "ultrafast"}


class Job:
    """Runs `source` through the pipeline; subclasses say where results go."""

    source: VideoFileSource | NewestFrameSource | ImageSource
    output: Path | None  # None when nothing rendered is saved

    def __init__(self, segmenter: Segmenter, outputs: Outputs) -> None:
        masks_dir = outputs.masks_dir
        if masks_dir is not None and masks_dir.exists() and not masks_dir.is_dir():
            raise UserError(f"--masks-dir {masks_dir} is not a folder")
        self.segmenter, self.outputs, self.renderer = segmenter, outputs, outputs.renderer
        self.masks_dir, self.viewer = masks_dir, outputs.viewer
        self.draws = outputs.save or outputs.viewer is not None  # a masks-only run never renders
        self.written = 0

    def check_masks(self, existing: list[Path], force: bool) -> None:
        """Mask PNGs follow the output rule too: none is overwritten without --force."""
        if existing and not force:
            more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
            raise UserError(f"--masks-dir: {existing[0]} exists{more}; pass --force to overwrite")

    @property
    def total_frames(self) -> int | None:
        return self.source.frame_count

    def open(self) -> None: ...

    def write(self, frame: Frame, picture: np.ndarray, class_map: np.ndarray) -> None: ...

    def finish(self, ok: bool, interrupted: bool) -> None: ...

    def mask_name(self, frame: Frame) -> str: ...

    def sink(self, frame: Frame, class_map: np.ndarray) -> None:
        timer = self.segmenter.timer
        picture = None
        if self.draws:
            with timer.stage("render"):
                picture = self.renderer(frame.image, class_map)
        if self.outputs.save:
            with timer.stage("encode"):
                self.write(frame, picture, class_map)
        if self.masks_dir is not None:
            write_png(self.masks_dir / self.mask_name(frame), class_map)
        if self.viewer is not None and not self.viewer.show(picture):
            os.kill(os.getpid(), signal.SIGINT)  # q/Esc in the window ends the run like Ctrl+C
        self.written += 1

    def run(self, on_frame: Callable[[int, float], None] | None = None) -> dict:
        """Returns frames, fps, dropped frames and per-stage timings."""
        if self.masks_dir is not None:
            self.masks_dir.mkdir(parents=True, exist_ok=True)
        self.open()
        started = time.perf_counter()

        def progress() -> None:
            if on_frame:
                on_frame(self.written, self.written / max(time.perf_counter() - started, 1e-9))

        try:
            stats = run_pipeline(self.source, self.segmenter, self.sink, on_frame=progress, live=self.source.live)
        except BaseException:
            self.finish(ok=False, interrupted=False)
            raise
        finally:
            self.source.close()
        self.finish(ok=stats.frames > 0, interrupted=stats.interrupted)
        if stats.frames == 0 and not stats.interrupted:
            raise UserError(f"{self.describe()} has no decodable frames")
        result = {"input": self.describe(), "output": self.output and str(self.output), "mode": self.renderer.mode,
                  "backend": self.segmenter.backend and self.segmenter.backend.name, "size": self.segmenter.size and list(self.segmenter.size),
                  "sizes": [list(size) for size in self.segmenter.opened], "dropped": self.source.dropped, **self.extra_stats(), **stats.to_dict()}
        return {**result, "warnings": [] if stats.interrupted else self.problems(result)}

    def describe(self) -> str: ...

    def extra_stats(self) -> dict:
        return {}

    def problems(self, result: dict) -> list[str]:
        """What went wrong although an output was written (the command then exits 1)."""
        return []


class VideoJob(Job):
    """A video file or live source into one mp4."""

    def __init__(self, source: VideoFileSource | NewestFrameSource, output: Path, segmenter: Segmenter, outputs: Outputs,
                 input_path: Path | None = None) -> None:
        try:
            if outputs.save:
                if output.suffix.lower() != ".mp4":
                    raise UserError(f"output {output} must end in .mp4 (H.264 in MP4)")
                check_output_path(output, outputs.force, inputs=(input_path,) if input_path else ())
            super().__init__(segmenter, outputs)
            if self.masks_dir is not None and self.masks_dir.is_dir():
                self.check_masks(sorted(self.masks_dir.glob(f"{glob.escape(source.name)}_[0-9]*.png")), outputs.force)
        except UserError:
            source.close()
            raise
        self.source, self.output, self.input_path = source, output if outputs.save else None, input_path
        if isinstance(source, VideoFileSource) and not segmenter.on_device:
            source.reader.decode_on_one_thread()
        self.writer: VideoWriter | None = None

    def open(self) -> None:
        if not self.outputs.save:
            return
        width = self.source.width * (2 if self.renderer.mode == "side-by-side" else 1)
        if self.source.live:
            time_base, audio = LIVE_TIME_BASE, None
        else:
            reader = self.source.reader
            time_base, audio = reader.time_base, (self.input_path if reader.has_audio else None)
        encoder = encoder_settings(self.segmenter.on_device)
        if self.outputs.preset:
            encoder["preset"] = self.outputs.preset
        self.writer = VideoWriter(self.output, self.source.fps, width, self.source.height, time_base=time_base,
                                  audio_from=audio, live=self.source.live, **encoder)

    def write(self, frame: Frame, picture: np.ndarray, class_map: np.ndarray) -> None:
        pts = round(frame.time / LIVE_TIME_BASE) if frame.time is not None else frame.pts
        self.writer.write(picture, pts)

    def mask_name(self, frame: Frame) -> str:
        return f"{frame.name}_{frame.index:06d}.png"

    def finish(self, ok: bool, interrupted: bool) -> None:
        if self.writer is not None:
            self.writer.close(commit=ok, complete=not interrupted)

    def describe(self) -> str:
        return str(self.input_path or self.source.name)

    def extra_stats(self) -> dict:
        reader = getattr(self.source, "reader", None)
        return {"fps_in": float(self.source.fps), "width": self.source.width, "height": self.source.height,
                "corrupt_packets": reader.corrupt_packets if reader else 0, "frames_in_header": self.source.frame_count}

    def problems(self, result: dict) -> list[str]:
        expected, frames, corrupt = result["frames_in_header"], result["frames"], result["corrupt_packets"]
        if expected and frames < expected:
            why = f"{corrupt} corrupt packets were skipped" if corrupt else "the stream ended early (truncated?)"
            return [f"{self.describe()}: {why}; {result['output']} holds {frames} of the {expected} frames its header announces"]
        return []


class ImageJob(Job):
    """Still images into `<stem>_<mode>.png` each, in `out_dir` or beside the image."""

    def __init__(self, source: ImageSource, out_dir: Path | None, segmenter: Segmenter, outputs: Outputs) -> None:
        super().__init__(segmenter, outputs)
        self.source = source
        force, masks_dir = outputs.force, outputs.masks_dir
        # One image and `-o name.png`: that file. Otherwise -o names a folder for the PNGs.
        self.file = out_dir if out_dir is not None and out_dir.suffix.lower() == ".png" and len(source.paths) == 1 else None
        self.out_dir = None if self.file else out_dir
        self.output = (self.file or out_dir or source.paths[0].parent) if outputs.save else None
        if self.out_dir is not None and outputs.save:
            if self.out_dir.exists() and not self.out_dir.is_dir():
                raise UserError(f"output {self.out_dir} is a file; for images, -o names a folder")
            self.out_dir.mkdir(parents=True, exist_ok=True)
        self.targets = {path.stem: self.target(path) for path in source.paths} if outputs.save else {}
        for path, target in zip(source.paths, self.targets.values()):
            check_output_path(target, force, inputs=(path,))
        if masks_dir is not None and masks_dir.is_dir():
            self.check_masks([p for p in (masks_dir / f"{path.stem}.png" for path in source.paths) if p.exists()], force)

    def target(self, path: Path) -> Path:
        return self.file or (self.out_dir or path.parent) / f"{path.stem}_{self.renderer.name}.png"

    def write(self, frame: Frame, picture: np.ndarray, class_map: np.ndarray) -> None:
        write_png(self.targets[frame.name], cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))

    def mask_name(self, frame: Frame) -> str:
        return f"{frame.name}.png"

    def describe(self) -> str:
        paths = self.source.paths
        return str(paths[0]) if len(paths) == 1 else f"{len(paths)} images"

    def extra_stats(self) -> dict:
        return {"failed_images": self.source.failed}

    def problems(self, result: dict) -> list[str]:
        failed = result["failed_images"]
        if failed:
            more = f" and {len(failed) - 3} more" if len(failed) > 3 else ""
            return [f"could not read {len(failed)} of {len(failed) + result['frames']} images: {', '.join(failed[:3])}{more}"]
        return []
