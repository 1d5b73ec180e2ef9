"""Video files through PyAV: RGB frames in, H.264 mp4 out, never a half-written file."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from dwrseg_rt.errors import UserError
from dwrseg_rt.io.outputs import publish, temp_file_for

PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")  # x264's, fastest first
VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v", ".ts", ".mpg", ".mpeg", ".flv", ".wmv"}


BT709 = 1  # a BT.709 frame's colorspace tag (FFmpeg's AVCOL_SPC_BT709) and swscale's SWS_CS_ITU709
SWS_BT601 = 5  # swscale's SWS_CS_ITU601, its default
FULL_RANGE = 2  # FFmpeg's AVCOL_RANGE_JPEG: Y' spans 0-255, not 16-235


def to_rgb(frame: av.VideoFrame) -> np.ndarray:
    """The frame in RGB by its own colour matrix and range. PyAV 12 (the lowest declared)
    ignores both tags unless told: HD cameras and phones tag BT.709 (a pure red came out with
    23 levels of green missing), and VP9/AV1 streams may tag full range (a grey of 200 came out
    214); newer PyAV reads the tags itself and gives the same bytes. Untagged frames take
    swscale's defaults, BT.601 limited range (H.264 and HEVC decode full range as yuvj420p,
    which needs no tag)."""
    options = {}
    if frame.colorspace == BT709:
        options.update(src_colorspace=BT709, dst_colorspace=SWS_BT601)
    if frame.color_range == FULL_RANGE:
        options["src_color_range"] = FULL_RANGE
    return frame.to_ndarray(format="rgb24", **options)


@dataclass(frozen=True)
class Orientation:
    """How a player turns a file's coded frames upright: swap the axes (`transpose`), then
    mirror them (`flip`, a cv2.flip code). Any quarter turn, mirrored or not, is one of these
    eight; a phone held upright records a quarter turn, one held upside down a half turn."""

    transpose: bool = False
    flip: int | None = None

    @classmethod
    def from_display_matrix(cls, matrix: np.ndarray) -> Orientation:
        """FFmpeg's display matrix maps a coded pixel (x, y) to (m0 x + m3 y, m1 x + m4 y) on
        screen; the larger pair of terms decides whether the axes swap (to the nearest quarter
        turn), their signs the mirroring. The same choice as FFmpeg's own autorotation."""
        m = [float(v) for v in matrix[:5]]
        transpose = abs(m[1]) + abs(m[3]) > abs(m[0]) + abs(m[4])
        flip_x, flip_y = (m[3] < 0, m[1] < 0) if transpose else (m[0] < 0, m[4] < 0)
        return cls(transpose, {(True, True): -1, (True, False): 1, (False, True): 0}.get((flip_x, flip_y)))

    def apply(self, image: np.ndarray) -> np.ndarray:
        if self.transpose:
            image = cv2.transpose(image)
        return image if self.flip is None else cv2.flip(image, self.flip)


def display_orientation(path: Path) -> Orientation:
    """How players show this file's frames: its first frame's display matrix. Upright as coded
    when there is none, or when the file does not decode (the reader then says why)."""
    try:
        with av.open(str(path)) as container:
            frame = next(container.decode(video=0), None)
    except (av.FFmpegError, OSError, IndexError):
        return Orientation()
    # by name: from PyAV 18.1.1 side data iterates as a Mapping of types, before as a list
    data = frame.side_data.get("DISPLAYMATRIX") if frame is not None else None
    return Orientation() if data is None else Orientation.from_display_matrix(np.frombuffer(bytes(data), "<i4"))


class VideoReader:
    """Decodes a video file's first video stream into RGB uint8 frames, upright: a phone's
    rotated (or a camera's mirrored) clip is turned the way a player shows it (`orientation`),
    so the model sees the road the right way up and outputs play upright everywhere."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise UserError(f"input not found: {self.path}")
        if not self.path.is_file():
            raise UserError(f"input is not a file: {self.path}")
        try:
            self.container = av.open(str(self.path))
        except PermissionError:
            raise UserError(f"cannot read {self.path}: permission denied") from None
        except (av.FFmpegError, OSError) as exc:
            reason = getattr(exc, "strerror", None) or exc.__class__.__name__
            raise UserError(f"cannot read {self.path} as video ({reason}): not a media file, or truncated/corrupt") from None
        if not self.container.streams.video:
            self.container.close()
            raise UserError(f"{self.path} has no video stream")
        self.stream = self.container.streams.video[0]
        if self.stream.codec_context is None:  # a codec FFmpeg has no decoder for (or a damaged header)
            self.container.close()
            raise UserError(f"cannot decode {self.path}: no decoder for its video codec, or the file is corrupt")
        self.stream.thread_type = "AUTO"
        self.orientation = display_orientation(self.path)
        self.width, self.height = self.stream.codec_context.width, self.stream.codec_context.height
        if self.orientation.transpose:
            self.width, self.height = self.height, self.width
        rate = self.stream.average_rate or self.stream.guessed_rate
        self.fps: Fraction = Fraction(rate) if rate else Fraction(30)
        self.frame_count = self.stream.frames or None  # container header; may be missing
        self.corrupt_packets = 0

    def decode_on_one_thread(self) -> None:
        """Before the first frame: no FFmpeg decoding threads, for a pipeline whose model has the
        CPU's cores (decoding a 960x540 frame takes 2 ms; FFmpeg's threads for it took cores from
        inference: measured on 2 cores, fp32 video 0.81 -> 0.84x model-only)."""
        self.stream.codec_context.thread_count = 1

    def __iter__(self) -> Iterator[np.ndarray]:
        for image, _pts in self.frames_with_pts():
            yield image

    def frames_with_pts(self) -> Iterator[tuple[np.ndarray, int | None]]:
        """RGB frames with their presentation timestamps (in `time_base`); corrupt packets
        are skipped and counted in `corrupt_packets`."""
        try:
            for packet in self.container.demux(self.stream):
                try:
                    frames = packet.decode()
                except av.InvalidDataError:
                    self.corrupt_packets += 1
                    continue
                for frame in frames:
                    yield self.orientation.apply(to_rgb(frame)), frame.pts
        except av.FFmpegError as exc:
            raise UserError(f"cannot decode {self.path}: {exc}") from None

    @property
    def time_base(self) -> Fraction | None:
        """None when unknown (PyAV < 19 gives None, later versions a zero rational)."""
        base = self.stream.time_base
        return Fraction(base.numerator, base.denominator) if base else None

    @property
    def has_audio(self) -> bool:
        return bool(self.container.streams.audio)

    def close(self) -> None:
        self.container.close()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def copy_stream(container, stream):
    """An output stream with `stream`'s codec and parameters, for copying packets unchanged:
    `add_stream_from_template` on PyAV >= 13, `add_stream(template=...)` on 12."""
    if hasattr(container, "add_stream_from_template"):
        return container.add_stream_from_template(stream)
    return container.add_stream(template=stream)


class AudioCopy:
    """Copies an input's first audio track into an output container, packet for packet
    (no re-encoding), interleaved with the video as it is written."""

    def __init__(self, source: Path, container) -> None:
        self.input = av.open(str(source))
        self.in_stream = self.input.streams.audio[0]
        self.out_stream = copy_stream(container, self.in_stream)
        self.container = container
        self.packets = self.input.demux(self.in_stream)
        self.pending = None

    def mux_until(self, seconds: float | None) -> None:
        """Mux the audio packets that start before `seconds` (all of them for None)."""
        while True:
            packet = self.pending or next(self.packets, None)
            self.pending = None
            if packet is None:
                return
            if packet.dts is None or packet.size == 0:
                continue
            if seconds is not None and packet.pts is not None and float(packet.pts * self.in_stream.time_base) > seconds:
                self.pending = packet
                return
            packet.stream = self.out_stream
            self.container.mux(packet)

    def close(self) -> None:
        self.input.close()


# What `write` encodes (OpenCV's BT.601, limited range), said in the stream: untagged, players
# guess BT.709 for HD sizes and would shift an HD overlay's colours.
BT601_TAGS = "colorprim=smpte170m:transfer=smpte170m:colormatrix=smpte170m:range=tv"


class VideoWriter:
    """H.264 (yuv420p, plays in browsers) into a temporary file, renamed by `close()`.

    Frames keep their source timestamps when given `pts` (variable frame rate survives);
    `audio_from` copies that file's audio track; `threads` caps the encoder's threads; `preset`
    is x264's speed/size trade-off (PRESETS); `live` tunes for zero latency (each frame leaves the
    encoder at once: no look-ahead, no B-frames). `close(commit=False)` discards the file,
    so a failed run leaves nothing behind.
    """

    def __init__(self, path: str | Path, fps: Fraction, width: int, height: int, crf: int = 20,
                 time_base: Fraction | None = None, audio_from: Path | None = None, threads: int = 0,
                 preset: str = "veryfast", live: bool = False) -> None:
        self.path = Path(path)
        self.temp = temp_file_for(self.path)
        self.container = av.open(str(self.temp), mode="w", format="mp4")
        try:
            self.stream = self.container.add_stream("libx264", rate=fps)
        except (av.FFmpegError, ValueError) as exc:
            self.container.close()
            self.temp.unlink(missing_ok=True)
            raise UserError(f"no H.264 encoder in this PyAV/FFmpeg build ({exc}); install PyAV wheels from PyPI") from None
        # yuv420p needs even sizes; odd inputs are padded by one row/column at the edge
        self.stream.width = width + width % 2
        self.stream.height = height + height % 2
        self.stream.pix_fmt = "yuv420p"
        options = {"crf": str(crf), "preset": preset, "threads": str(threads),  # threads 0: x264 decides
                   "x264-params": BT601_TAGS}
        self.stream.options = {**options, "tune": "zerolatency"} if live else options
        self.time_base = time_base
        if time_base is not None:
            self.stream.codec_context.time_base = time_base
        self.audio = AudioCopy(Path(audio_from), self.container) if audio_from is not None else None
        self.frames = 0
        self.last_time = 0.0
        self.last_pts = -1

    def write(self, rgb: np.ndarray, pts: int | None = None) -> None:
        if rgb.shape[0] != self.stream.height or rgb.shape[1] != self.stream.width:
            rgb = np.pad(rgb, ((0, self.stream.height - rgb.shape[0]), (0, self.stream.width - rgb.shape[1]), (0, 0)), mode="edge")
        # OpenCV's BT.601 limited-range conversion, as swscale's (within 1 level), several times faster
        frame = av.VideoFrame.from_ndarray(cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420), format="yuv420p")
        if pts is not None and self.time_base is not None:
            pts = max(pts, self.last_pts + 1)  # the muxer needs strictly increasing timestamps
            frame.pts, frame.time_base = pts, self.time_base
            self.last_pts = pts
            self.last_time = float(pts * self.time_base)
        else:
            self.last_time = self.frames / float(self.stream.codec_context.framerate or 30)
        for packet in self.stream.encode(frame):
            self.container.mux(packet)
        self.frames += 1
        if self.audio is not None:
            self.audio.mux_until(self.last_time)

    def close(self, commit: bool = True, complete: bool = True) -> None:
        """Flush and rename into place (commit), or delete. An incomplete (interrupted) file
        gets audio only up to its last video frame."""
        try:
            try:
                if commit:
                    for packet in self.stream.encode():
                        self.container.mux(packet)
                    if self.audio is not None:
                        self.audio.mux_until(None if complete else self.last_time)
            finally:
                if self.audio is not None:
                    self.audio.close()
                try:
                    self.container.close()
                except (av.FFmpegError, OSError):
                    if commit:
                        raise
            if commit and self.frames:
                publish(self.temp, self.path)
        finally:  # published, or failed anywhere above (a full disk): no temporary stays behind
            self.temp.unlink(missing_ok=True)
