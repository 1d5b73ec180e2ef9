"""The frame pipeline: decode, segment and sink run side by side, order preserved.

A decoder thread reads (and, for CPU backends, preprocesses) frames ahead into a bounded
queue, the calling thread runs the model, and a sink thread renders/encodes/writes results,
so decode, preprocessing and encode overlap with inference. Bounded queues give back-pressure: memory stays flat on long videos.
"""

from __future__ import annotations

import itertools
import os
import queue
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from dwrseg_rt.io.sources import Frame
from dwrseg_rt.runtime.segmenter import Segmenter

_DONE = object()


@dataclass
class PipelineStats:
    frames: int = 0
    seconds: float = 0.0
    interrupted: bool = False
    stages: dict = field(default_factory=dict)
    streams: int = 1  # CPU frames segmented at once: each one's inference time is shared

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0

    def model_fps_by(self, statistic: str = "mean_ms") -> float:
        inference = self.stages.get("inference")
        return 1000.0 * self.streams / inference[statistic] if inference else 0.0

    @property
    def model_fps(self) -> float:
        return self.model_fps_by("mean_ms")

    def to_dict(self) -> dict:
        return {"frames": self.frames, "seconds": self.seconds, "pipeline_fps": self.fps, "model_fps": self.model_fps,
                "model_fps_median": self.model_fps_by("median_ms"), "streams": self.streams, "interrupted": self.interrupted,
                "stages": self.stages}


HELPER_NICENESS = 10  # decode/encode threads beside CPU inference: about a tenth of a core's share when both want it


def lower_priority(niceness: int, thread: int | None = None) -> None:
    """Make a thread (default: the calling one) yield the CPU to the process's other threads
    (`niceness` above its own). Linux keeps a nice value per thread, so only that one is
    affected; elsewhere this does nothing."""
    if sys.platform.startswith("linux"):
        try:
            thread = thread or threading.get_native_id()
            os.setpriority(os.PRIO_PROCESS, thread, min(os.getpriority(os.PRIO_PROCESS, thread) + niceness, 19))
        except OSError:  # a sandbox that forbids it, or the thread has ended: leave it be
            pass


CODEC_THREAD_PREFIX = "av:"  # how PyAV's FFmpeg names its frame/slice decoding threads


def lower_codec_threads(niceness: int) -> None:
    """Lower FFmpeg's decoding threads too: the thread that opened the file (the main one, to
    read the first frame) started them at its own priority, and they do the decoding, not the
    decode helper that waits on them (measured on 2 cores: fp32 video 0.80 -> 0.83x model-only)."""
    tasks = Path("/proc/self/task")
    if not tasks.is_dir():
        return
    for task in tasks.iterdir():
        try:
            name = (task / "comm").read_text()
        except OSError:  # ended meanwhile
            continue
        if name.startswith(CODEC_THREAD_PREFIX):
            lower_priority(niceness, int(task.name))


class _Worker(threading.Thread):
    """A daemon thread that records the exception it died of, for the caller to re-raise.
    `niceness` > 0 lowers its priority (`lower_priority`)."""

    def __init__(self, target: Callable[[], None], name: str, niceness: int = 0) -> None:
        super().__init__(name=name, daemon=True)
        self._target_fn = target
        self.niceness = niceness
        self.error: BaseException | None = None

    def run(self) -> None:
        if self.niceness:
            lower_priority(self.niceness)
        try:
            self._target_fn()
        except BaseException as exc:  # handed to the main thread
            self.error = exc


def _put(q: queue.Queue, item, waiting: Callable[[], bool]) -> bool:
    """Put `item` while `waiting()` says its reader is still there; False once it is not (a
    blocking put into a full queue whose reader has died would never return)."""
    while waiting():
        try:
            q.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def run_pipeline(
    frames: Iterable[Frame],
    segmenter: Segmenter,
    sink: Callable[[Frame, np.ndarray], None],
    on_frame: Callable[[], None] | None = None,
    depth: int = 4,
    live: bool = False,
    on_end: Callable[[], None] | None = None,
) -> PipelineStats:
    """Segment every frame in order and hand (frame, class_map) to `sink`.

    Files are decoded ahead on a thread. A live source (`live=True`) is read by the inference
    loop itself, when it is ready, so the newest frame is the one segmented; the source drops
    the stale ones. The pipeline itself never drops a frame.

    A KeyboardInterrupt stops reading, lets the sink finish the frames already segmented,
    and returns stats with `interrupted=True`; errors in either thread are re-raised here.
    The first frame is segmented once untimed before anything starts (`Segmenter.warmup`).
    `on_end` runs in the sink's thread after its last frame (for outputs bound to a thread).
    """
    frames = iter(frames)
    first = next(frames, None)
    if first is not None:  # start-up work before the threads and the clock start (it is not throughput)
        segmenter.warmup(first.image)
        frames = itertools.chain([first], frames)
    timer = segmenter.timer
    stop = threading.Event()

    def running() -> bool:
        return not stop.is_set()

    decoded: queue.Queue = queue.Queue(maxsize=depth)
    results: queue.Queue = queue.Queue(maxsize=depth)
    stats = PipelineStats(streams=segmenter.streams)

    def decode() -> None:
        if niceness:
            lower_codec_threads(niceness)
        for frame in timed(iter(frames)):  # host preprocessing here too: it overlaps inference
            if stop.is_set() or not _put(decoded, (frame, segmenter.prepare([frame.image])), running):
                return
        _put(decoded, _DONE, running)

    def write() -> None:
        while True:
            item = results.get()
            if item is _DONE:
                if on_end:
                    on_end()
                return
            with timer.stage("output"):  # everything the sink does; video jobs also time render and encode
                sink(*item)
            stats.frames += 1
            if on_frame:
                on_frame()

    def incoming() -> Iterator[tuple[Frame, np.ndarray | None]]:
        """(frame, preprocessed input) read ahead by the decoder thread, or, for a live source,
        straight from the source when the model is ready (a read-ahead queue would hold stale
        frames)."""
        if live:
            for frame in timed(iter(frames)):
                yield frame, None
            return
        started = time.perf_counter()
        while writer.is_alive():
            try:
                item = decoded.get(timeout=0.1)
            except queue.Empty:
                if decoder.error:
                    return
                continue
            if item is _DONE:
                return
            timer.add("starved", time.perf_counter() - started)  # inference waiting for the decoder, all of it
            yield item
            started = time.perf_counter()

    def timed(iterator: Iterator[Frame]) -> Iterator[Frame]:
        while True:
            start = time.perf_counter()
            frame = next(iterator, _DONE)
            if frame is _DONE:
                return
            timer.add("decode", time.perf_counter() - start)
            yield frame

    # With the model on the CPU, inference threads that lose a core to decode or encode for a
    # moment stall all the others (each operator waits for its slowest thread), so the helpers
    # run at a lower priority and fill the gaps (measured on 2 cores: fp32 video 20 -> 23 fps,
    # int8 37 -> 45). Back-pressure keeps them from starving: a full queue stops inference.
    # OpenCV's own worker threads would run at full priority: its resizes, colour conversions
    # and lookups stay on the helper that calls them (measured: int8 video 39 -> 42 fps).
    niceness = 0 if segmenter.on_device else HELPER_NICENESS
    opencv_threads = cv2.getNumThreads()
    if niceness:
        cv2.setNumThreads(1)
    decoder, writer = _Worker(decode, "decode", niceness), _Worker(write, "encode", niceness)
    started = time.perf_counter()
    if not live:
        decoder.start()
    writer.start()
    in_flight: deque = deque()

    def emit_oldest() -> None:
        frame, pending = in_flight.popleft()
        (class_map,) = segmenter.collect(pending)
        started = time.perf_counter()
        if _put(results, (frame, class_map), writer.is_alive):
            timer.add("blocked", time.perf_counter() - started)  # inference waiting for the sink

    try:
        for frame, prepared in incoming():
            in_flight.append((frame, segmenter.submit([frame.image], prepared)))
            if len(in_flight) >= segmenter.in_flight:
                emit_oldest()
            if not writer.is_alive():
                break
        while in_flight and writer.is_alive():
            emit_oldest()
    except KeyboardInterrupt:
        stats.interrupted = True
        while in_flight and writer.is_alive():  # frames already on the GPU still reach the sink
            emit_oldest()
    finally:
        stop.set()
        _put(results, _DONE, writer.is_alive)
        writer.join()
        if decoder.is_alive():
            decoder.join(timeout=5)
        cv2.setNumThreads(opencv_threads)
    stats.seconds = time.perf_counter() - started
    stats.stages = timer.summary()
    for worker in (decoder, writer):
        if worker.error is not None:
            raise worker.error
    return stats
