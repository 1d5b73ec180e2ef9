"""Frame sources: video files, images (file, folder, glob), and live cameras or streams.

Every source yields `Frame`s. Files give every frame; live sources (webcam index,
/dev/videoN, rtsp://, http://, a Jetson CSI camera csi://N, any GStreamer pipeline gst:...)
give the newest frame and count the ones dropped, so a slow model never builds up lag.
"""

from __future__ import annotations

import glob
import os
import re
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from dwrseg_rt.data.datasets import IMAGE_SUFFIXES
from dwrseg_rt.errors import UserError
from dwrseg_rt.io.video import VIDEO_SUFFIXES, VideoReader

LIVE_PREFIXES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://")


@dataclass
class Frame:
    image: np.ndarray  # (H, W, 3) uint8 RGB
    index: int
    name: str = ""  # image sources: the file stem, for matching output names
    pts: int | None = None  # presentation time in the source's time base (video files)
    time: float | None = None  # seconds since the start (live sources: wall clock)
    payload: Any = None  # what the caller needs back in the sink (e.g. the ROS message)


def to_rgb(image: np.ndarray) -> np.ndarray:
    """Any 8-bit gray, BGR or BGRA array from OpenCV -> RGB."""
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def is_live(spec: str) -> bool:
    return spec.isdigit() or spec.startswith(("/dev/video", "csi://", "gst:")) or spec.lower().startswith(LIVE_PREFIXES)


def expand_inputs(specs: list[str]) -> tuple[list[str], list[Path], list[Path]]:
    """Split command-line inputs into live specs, video files and image files.

    Folders contribute their videos and images (sorted); globs are expanded; a missing path
    is an error that names it.
    """
    live, videos, images = [], [], []
    for spec in specs:
        if is_live(spec):
            live.append(spec)
            continue
        if any(ch in spec for ch in "*?["):
            matches = [Path(p) for p in sorted(glob.glob(spec))]
            if not matches:
                raise UserError(f"no files match {spec}")
        else:
            path = Path(spec)
            if not path.exists():
                raise UserError(f"input not found: {path}")
            matches = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
            if path.is_dir() and not any(p.suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES for p in matches):
                raise UserError(f"{path} holds no images or videos")
        for match in matches:
            suffix = match.suffix.lower()
            if suffix in IMAGE_SUFFIXES:
                images.append(match)
            elif suffix in VIDEO_SUFFIXES or not Path(spec).is_dir():
                videos.append(match)  # a named file of unknown type is tried as video
    return live, videos, images


class VideoFileSource:
    """Every frame of a video file, with its presentation timestamp."""

    live = False

    def __init__(self, path: Path) -> None:
        self.reader = VideoReader(path)
        self.name = path.stem
        self.fps, self.width, self.height = self.reader.fps, self.reader.width, self.reader.height
        self.frame_count = self.reader.frame_count
        self.dropped = 0

    def __iter__(self) -> Iterator[Frame]:
        for index, (image, pts) in enumerate(self.reader.frames_with_pts()):
            yield Frame(image, index, self.name, pts)

    def close(self) -> None:
        self.reader.close()


class ImageSource:
    """Still images; unreadable ones are skipped and listed in `failed`."""

    live = False
    fps = Fraction(1)

    def __init__(self, paths: list[Path]) -> None:
        self.paths = paths
        self.frame_count = len(paths)
        self.failed: list[str] = []
        self.dropped = 0

    def __iter__(self) -> Iterator[Frame]:
        for index, path in enumerate(self.paths):
            image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
            if image is None or image.ndim not in (2, 3):
                self.failed.append(path.name)
                continue
            if image.dtype != np.uint8:  # 16-bit PNG/TIFF: scale to 8 bits
                image = (image / max(1, np.iinfo(image.dtype).max) * 255).astype(np.uint8)
            yield Frame(to_rgb(image), index, path.stem)

    def close(self) -> None:
        pass


class NewestFrameSource:
    """A live source read on its own thread; iteration yields the newest frame.

    Frames that arrive while the consumer is busy are replaced, not queued, and counted in
    `dropped`. Iteration ends when the stream ends or `close()` is called. Subclasses set
    `name`, `fps`, `width`, `height` and implement `read()` (the next RGB frame, or None at the end).
    """

    live = True
    frame_count = None

    def start(self) -> None:
        self.grabbed = 0
        self.dropped = 0
        self._latest: Frame | None = None
        self._ended = False
        self._closed = threading.Event()
        self._fresh = threading.Condition()
        self._started = time.perf_counter()
        self._thread = threading.Thread(target=self._grab, name="live-grab", daemon=True)
        self._thread.start()

    def read(self) -> np.ndarray | None:
        raise NotImplementedError

    def _grab(self) -> None:
        while not self._closed.is_set():
            image = self.read()
            with self._fresh:
                if image is None:
                    self._ended = True
                    self._fresh.notify_all()
                    return
                if self._latest is not None:
                    self.dropped += 1
                self._latest = Frame(image, self.grabbed, self.name, time=time.perf_counter() - self._started)
                self.grabbed += 1
                self._fresh.notify_all()

    def __iter__(self) -> Iterator[Frame]:
        while True:
            with self._fresh:
                while self._latest is None and not self._ended and not self._closed.is_set():
                    self._fresh.wait(0.1)
                frame, self._latest = self._latest, None
            if frame is None:
                return
            yield frame

    def close(self) -> None:
        self._closed.set()
        self._thread.join(timeout=2)


class LiveSource(NewestFrameSource):
    """A webcam (index, /dev/videoN) or a network stream, through OpenCV."""

    def __init__(self, spec: str) -> None:
        target: int | str = int(spec) if spec.isdigit() else spec
        device = f"/dev/video{spec}" if spec.isdigit() else spec
        if sys.platform == "linux" and device.startswith("/dev/") and not os.path.exists(device):
            raise UserError(f"cannot open live source {spec}: there is no {device} (list cameras with: ls /dev/video*)")
        with native_log() as log:
            self.capture = cv2.VideoCapture(target)
        if not self.capture.isOpened():
            reason = next((NATIVE_PREFIX.sub("", line) for line in log if line.strip()),
                          "not a camera index, /dev/videoN or a stream URL that OpenCV can open")
            raise UserError(f"cannot open live source {spec}: {reason}")
        sys.stderr.write("".join(line + "\n" for line in log))
        self.name = live_name(spec)
        fps = self.capture.get(cv2.CAP_PROP_FPS)
        self.fps = Fraction(fps).limit_denominator(1001) if 1 <= fps <= 240 else Fraction(30)
        self.width = int(self.capture.get(cv2.CAP_PROP_FRAME_WIDTH))
        self.height = int(self.capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
        self.start()

    def read(self) -> np.ndarray | None:
        ok, image = self.capture.read()
        return to_rgb(image) if ok else None

    def close(self) -> None:
        super().close()
        self.capture.release()


NATIVE_PREFIX = re.compile(r"^\[[^\]]*\]\s*(global \S+:\d+\s+)?")  # "[tcp @ 0x..] ", "[ WARN:0@0.3] global cap.cpp:9 "


@contextmanager
def native_log() -> Iterator[list[str]]:
    """What OpenCV and its FFmpeg print on fd 2 while a camera or stream opens, held back as lines:
    a failure then reads as one error that names their reason, not their log followed by ours."""
    lines: list[str] = []
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield lines
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            lines.extend(sink.read().decode(errors="replace").splitlines())


def live_name(spec: str) -> str:
    """camera0, csi0, gst, or the stream's last path element: what its output is named after."""
    if spec.isdigit():
        return f"camera{spec}"
    if spec.startswith("csi://"):
        return "csi" + spec.removeprefix("csi://").split("?")[0]
    if spec.startswith("gst:"):
        return "gst"
    return Path(spec.split("?")[0]).stem or "stream"


def open_live(spec: str) -> NewestFrameSource:
    from dwrseg_rt.io.gstreamer import GstSource, csi_pipeline

    if spec.startswith("csi://"):
        return GstSource(csi_pipeline(spec), live_name(spec))
    if spec.startswith("gst:"):
        return GstSource(spec.removeprefix("gst:"), live_name(spec))
    return LiveSource(spec)
