"""Real media files for tests, written with PyAV and OpenCV."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from dwrseg_rt.data.synth import Street


def make_video(path: Path, frames: int = 10, size: tuple[int, int] = (256, 128), fps: int = 25,
               audio: bool = False, pts_ms: list[int] | None = None, codec: str = "libx264", streamable: bool = False) -> Path:
    """A synthetic drive; `pts_ms` gives variable frame timing; `audio` adds an AAC sine track;
    `streamable` puts the index first, as files served over HTTP have it (a reader then needs no
    range requests: older FFmpeg, PyAV 12's, cannot play a plain file from a server without them)."""
    width, height = size
    street = Street(11, width + width % 2, height + height % 2)
    container = av.open(str(path), "w", options={"movflags": "faststart"} if streamable else {})
    stream = container.add_stream(codec, rate=fps)
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p" if codec == "libx264" else "yuv420p"
    if pts_ms is not None:
        stream.codec_context.time_base = Fraction(1, 1000)
    sound = container.add_stream("aac", rate=16000) if audio else None
    container.start_encoding()  # writes the header even when no frame follows
    for index in range(frames):
        image = np.ascontiguousarray(street.render(index / fps)[0][:height, :width])
        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        if pts_ms is not None:
            frame.pts, frame.time_base = pts_ms[index], Fraction(1, 1000)
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    if sound is not None:
        seconds = frames / fps
        t = np.arange(int(16000 * seconds)) / 16000
        samples = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None]
        chunk = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
        chunk.sample_rate, chunk.pts = 16000, 0
        for packet in sound.encode(chunk):
            container.mux(packet)
        for packet in sound.encode():
            container.mux(packet)
    container.close()
    return path


def probe(path: Path) -> dict:
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        decoded = list(container.decode(video))
        info = {"frames": len(decoded), "fps": float(video.average_rate), "width": video.width, "height": video.height,
                "codec": video.codec_context.name, "pts_ms": [round(float(f.pts * video.time_base) * 1000) for f in decoded]}
    with av.open(str(path)) as container:
        info["audio"] = [(s.codec_context.name, sum(1 for p in container.demux(s) if p.size)) for s in container.streams.audio]
    return info
