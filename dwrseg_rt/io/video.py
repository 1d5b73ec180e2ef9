"""Video files through PyAV: RGB frames in, H.264 mp4 out, never a half-written file."""

from __future__ import annotations

import os
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from dwrseg_rt.errors import UserError

VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v", ".ts", ".mpg", ".mpeg", ".flv", ".wmv"}


class VideoReader:
    """Decodes a video file's first video stream into RGB uint8 frames."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise UserError(f"input not found: {self.path}")
        if not self.path.is_file():
            raise UserError(f"input is not a file: {self.path}")
        try:
            self.container = av.open(str(self.path))
        except (av.FFmpegError, PermissionError, OSError) as exc:
            raise UserError(f"cannot read {self.path} as video: {exc.__class__.__name__}: {exc}") from None
        if not self.container.streams.video:
            self.container.close()
            raise UserError(f"{self.path} has no video stream")
        self.stream = self.container.streams.video[0]
        self.stream.thread_type = "AUTO"
        self.width = self.stream.codec_context.width
        self.height = self.stream.codec_context.height
        rate = self.stream.average_rate or self.stream.guessed_rate
        self.fps: Fraction = Fraction(rate) if rate else Fraction(30)
        self.frame_count = self.stream.frames or None  # container header; may be missing
        self.corrupt_packets = 0

    def __iter__(self) -> Iterator[np.ndarray]:
        try:
            for packet in self.container.demux(self.stream):
                try:
                    frames = packet.decode()
                except av.InvalidDataError:
                    self.corrupt_packets += 1
                    continue
                for frame in frames:
                    yield frame.to_ndarray(format="rgb24")
        except av.FFmpegError as exc:
            raise UserError(f"cannot decode {self.path}: {exc}") from None

    def close(self) -> None:
        self.container.close()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def partial_path(path: Path) -> Path:
    """Where an output is written until it is complete (same folder, so rename is atomic)."""
    return path.with_name(f".{path.stem}.partial{path.suffix}")


def check_output_path(path: Path, force: bool, inputs: tuple[Path, ...] = ()) -> None:
    """Refuse to overwrite silently, to clobber an input, or to write where we cannot."""
    for source in inputs:
        if source.exists() and path.exists() and source.resolve() == path.resolve():
            raise UserError(f"output {path} is the input; choose another -o/--output")
    if path.exists() and not force:
        raise UserError(f"output {path} exists; pass --force to overwrite it")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise UserError(f"output folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise UserError(f"output folder {parent} is not writable")


class VideoWriter:
    """H.264 (yuv420p, plays in browsers) into a temporary file, renamed by `close()`.

    `close(commit=False)` discards the file instead, so a failed run leaves nothing behind.
    """

    def __init__(self, path: str | Path, fps: Fraction, width: int, height: int, crf: int = 20) -> None:
        self.path = Path(path)
        self.temp = partial_path(self.path)
        self.container = av.open(str(self.temp), mode="w", format="mp4")
        try:
            self.stream = self.container.add_stream("libx264", rate=fps)
        except (av.FFmpegError, ValueError) as exc:
            self.container.close()
            self.temp.unlink(missing_ok=True)
            raise UserError(f"no H.264 encoder in this PyAV/FFmpeg build ({exc}); install PyAV wheels from PyPI") from None
        # yuv420p needs even sizes; odd inputs are padded by one row/column at the edge
        self.width, self.height = width, height
        self.stream.width = width + width % 2
        self.stream.height = height + height % 2
        self.stream.pix_fmt = "yuv420p"
        self.stream.options = {"crf": str(crf), "preset": "veryfast"}
        self.frames = 0

    def write(self, rgb: np.ndarray) -> None:
        if rgb.shape[0] != self.stream.height or rgb.shape[1] != self.stream.width:
            rgb = np.pad(rgb, ((0, self.stream.height - rgb.shape[0]), (0, self.stream.width - rgb.shape[1]), (0, 0)), mode="edge")
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        for packet in self.stream.encode(frame):
            self.container.mux(packet)
        self.frames += 1

    def close(self, commit: bool = True) -> None:
        try:
            for packet in self.stream.encode():
                self.container.mux(packet)
        finally:
            self.container.close()
        if commit and self.frames:
            os.replace(self.temp, self.path)
        else:
            self.temp.unlink(missing_ok=True)
