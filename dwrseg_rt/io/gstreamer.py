"""GStreamer sources without OpenCV's GStreamer support (PyPI's OpenCV has none): the system's
gst-launch-1.0 runs the pipeline in a child process and hands raw RGB frames over a pipe, so a
Jetson's CSI camera (nvarguscamerasrc) or any pipeline ending in raw video works with the
GStreamer that JetPack (or the distribution) installed."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import threading
import urllib.parse
from collections import deque
from fractions import Fraction

import numpy as np

from dwrseg_rt.errors import UserError
from dwrseg_rt.io.sources import NewestFrameSource

CSI_DEFAULTS = {"width": 1280, "height": 720, "fps": 30}
# gst-launch -v prints the caps each pad settles on; the sink's tell the frame geometry
SINK_CAPS = re.compile(r"GstFdSink:.*:sink: caps = video/x-raw.*?width=\(int\)(\d+), height=\(int\)(\d+)"
                       r"(?:.*?framerate=\(fraction\)(\d+)/(\d+))?")
FAILURE = re.compile(r"^(ERROR|WARNING: erroneous pipeline)")


def csi_pipeline(spec: str) -> str:
    """csi://N[?width=W&height=H&fps=F] -> the nvarguscamerasrc pipeline of a Jetson CSI camera
    (jetson-inference's spelling; 1280x720 at 30 fps unless asked otherwise)."""
    usage = f"{spec}: a CSI camera is csi://N with N its sensor id, e.g. csi://0?width=1920&height=1080&fps=30"
    parsed = urllib.parse.urlsplit(spec)
    query = urllib.parse.parse_qs(parsed.query)
    if not parsed.netloc.isdigit() or parsed.path not in ("", "/") or set(query) - set(CSI_DEFAULTS):
        raise UserError(usage)
    try:
        values = {**CSI_DEFAULTS, **{key: int(value[-1]) for key, value in query.items()}}
    except ValueError:
        raise UserError(usage) from None
    if not (16 <= values["width"] <= 8192 and 16 <= values["height"] <= 8192 and 1 <= values["fps"] <= 240):
        raise UserError(f"{spec}: width and height 16-8192, fps 1-240")
    return (f"nvarguscamerasrc sensor-id={parsed.netloc} ! video/x-raw(memory:NVMM),width={values['width']},"
            f"height={values['height']},framerate={values['fps']}/1,format=NV12 ! nvvidconv ! video/x-raw,format=BGRx")


class GstSource(NewestFrameSource):
    """The newest RGB frame of `pipeline` (gst-launch syntax, ending in raw video)."""

    def __init__(self, pipeline: str, name: str, open_timeout: float = 20.0) -> None:
        launcher = shutil.which("gst-launch-1.0")
        if launcher is None:
            raise UserError("GStreamer sources need the system's gst-launch-1.0 (JetPack has it; Debian/Ubuntu: "
                            "apt install gstreamer1.0-tools gstreamer1.0-plugins-base)")
        self.name = name
        read_end, write_end = os.pipe()
        try:
            self.process = subprocess.Popen(
                [launcher, "-v", *shlex.split(f"{pipeline} ! videoconvert ! video/x-raw,format=RGB ! fdsink fd={write_end} sync=false")],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True, pass_fds=(write_end,))
        finally:
            os.close(write_end)  # the child holds it now: its exit is our end of stream
        self.frames = os.fdopen(read_end, "rb", buffering=0)
        self.messages: deque[str] = deque(maxlen=20)
        self._caps: re.Match | None = None
        self._settled = threading.Event()
        reader = threading.Thread(target=self._read_messages, name="gst-messages", daemon=True)
        reader.start()
        if not self._settled.wait(open_timeout) or self._caps is None:
            try:
                self.process.wait(timeout=3)  # a failed pipeline exits by itself, its messages complete
            except subprocess.TimeoutExpired:
                pass
            self._end_child()
            self.frames.close()
            reader.join(timeout=3)
            raise UserError(f"GStreamer pipeline did not start ({self.failure()}): {pipeline}")
        width, height, num, den = self._caps.groups()
        self.width, self.height = int(width), int(height)
        self.fps = Fraction(int(num), int(den)) if num and int(num) and int(den) else Fraction(30)
        self.stride = (self.width * 3 + 3) // 4 * 4  # GStreamer pads RGB rows to 4 bytes
        self.start()

    def failure(self) -> str:
        """The message that says why: an element's own error first, then gst-launch's, then its last words."""
        lines = [m.strip() for m in self.messages]
        # stdout and stderr interleave at random: an element's specific reason wins over the generic one
        elements = sorted((m for m in lines if m.startswith("ERROR: from element")), key=lambda m: "failed to post" in m)
        return elements[0].replace("/GstPipeline:pipeline0/", "") if elements else \
            next((m for m in lines if FAILURE.match(m)), lines[-1] if lines else "no output")

    def _read_messages(self) -> None:
        """Drains gst-launch's messages (it would block on a full pipe), noting the sink's caps."""
        for line in self.process.stdout:
            self.messages.append(line)
            if self._caps is None and (found := SINK_CAPS.search(line)):
                self._caps = found
                self._settled.set()
            elif FAILURE.match(line):
                self._settled.set()
        self._settled.set()

    def read(self) -> np.ndarray | None:
        size = self.stride * self.height
        buffer = bytearray(size)
        view, filled = memoryview(buffer), 0
        while filled < size:
            try:
                count = self.frames.readinto(view[filled:])
            except (OSError, ValueError):  # closed under us by close()
                return None
            if not count:
                return None
            filled += count
        rows = np.frombuffer(buffer, np.uint8).reshape(self.height, self.stride)
        return rows[:, : self.width * 3].reshape(self.height, self.width, 3)

    def _end_child(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def close(self) -> None:
        """Ends the child first, so a reader blocked on the pipe sees its end; then the thread, then the pipe."""
        self._end_child()
        super().close()
        self.frames.close()
