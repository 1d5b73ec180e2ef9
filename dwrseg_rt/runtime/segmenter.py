"""The Segmenter: the one place where frames become class maps.

preprocess (resize to the inference size, normalise with the checkpoint's mean/std) ->
backend (network + argmax) -> postprocess (class map back to the frame's size).
The CLI, evaluation, the benchmark and the ROS node all use this class.

CPU backends do the three steps here, on the host, one frame at a time or, for backends
with several `streams`, that many at once on worker threads. CUDA backends (`CudaBackend`) do
the same steps on the GPU (runtime/cuda.py) and let several frames be in flight at once.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

from dwrseg_rt.checkpoint import ModelInfo
from dwrseg_rt.runtime.backends import Backend
from dwrseg_rt.runtime.cuda import IN_FLIGHT, CudaBackend
from dwrseg_rt.runtime.preprocess import normalize, resize_class_map, resize_frame
from dwrseg_rt.runtime.timing import StageTimer


SIZE_MULTIPLE = 8  # inference sides are multiples of the decoder's 1/8 resolution


def size_for_frame(trained: tuple[int, int], width: int, height: int) -> tuple[int, int]:
    """The inference size for width x height frames: the trained size's pixel count at the
    frame's aspect ratio, sides rounded to SIZE_MULTIPLE, so objects keep the shape the model
    learned (a 16:9 frame squashed into 4:3 makes cars and people a quarter thinner).
    The trained size itself when the aspects agree within 1%."""
    trained_width, trained_height = trained
    aspect = width / height
    if abs(aspect * trained_height / trained_width - 1) < 0.01:
        return trained
    rows = math.sqrt(trained_width * trained_height / aspect)
    return (max(SIZE_MULTIPLE, round(rows * aspect / SIZE_MULTIPLE) * SIZE_MULTIPLE),
            max(SIZE_MULTIPLE, round(rows / SIZE_MULTIPLE) * SIZE_MULTIPLE))


class Segmenter:
    """`size` None: the size follows the frames (`size_for_frame`), chosen for each batch as it
    is submitted (`fit`); `open_at(size)` opens the backend for a size, once
    per size (exports and engines are cached on disk too), and `gpu` says, before any is open,
    whether it will run on a CUDA GPU."""

    def __init__(self, backend: Backend | None, info: ModelInfo, size: tuple[int, int] | None, timer: StageTimer | None = None,
                 open_at: Callable[[tuple[int, int]], Backend] | None = None, gpu: bool = False) -> None:
        self.backend = backend
        self.info = info
        self.size = size  # (width, height) the network runs at
        self.timer = timer or StageTimer()
        self.open_at, self.gpu = open_at, gpu
        self.opened: dict[tuple[int, int], Backend] = {size: backend} if backend is not None and size else {}
        self.workers: ThreadPoolExecutor | None = None  # for CPU streams, made when first needed

    def size_for(self, frame: np.ndarray) -> tuple[int, int]:
        """The size `frame` runs at: the fixed one, or the one of its aspect ratio."""
        return self.size if self.open_at is None else size_for_frame(self.info.input_size, frame.shape[1], frame.shape[0])

    def fit(self, frame: np.ndarray) -> None:
        """Open (once) and switch to the backend for this frame's size, when the size follows the
        frames: a folder of photos from several cameras runs each at its own aspect."""
        size = self.size_for(frame)
        if size != self.size:
            if size not in self.opened:
                self.opened[size] = self.open_at(size)
            self.backend, self.size = self.opened[size], size

    def preprocess(self, frames: Sequence[np.ndarray]) -> np.ndarray:
        """Safe on the decoder thread: the size comes from the frames, not from the backend in use."""
        size = self.size_for(frames[0])
        resized = np.stack([resize_frame(frame, size) for frame in frames])
        return normalize(resized, self.info.mean, self.info.std)

    def postprocess(self, class_maps: np.ndarray, frames: Sequence[np.ndarray]) -> list[np.ndarray]:
        return [resize_class_map(m, f.shape[0], f.shape[1]) for m, f in zip(class_maps, frames)]

    @property
    def on_device(self) -> bool:
        """True for CUDA backends: they preprocess on the GPU and work asynchronously."""
        return isinstance(self.backend, CudaBackend) if self.backend is not None else self.gpu

    @property
    def streams(self) -> int:
        """CPU batches segmented at once (`CpuThreads.streams`); 1 for backends that run one at a time."""
        return 1 if self.on_device else getattr(self.backend, "streams", 1)

    @property
    def in_flight(self) -> int:
        """How many batches the pipeline may submit before collecting the oldest."""
        return IN_FLIGHT if self.on_device else self.streams

    def prepare(self, frames: Sequence[np.ndarray]):
        """The host work that can run ahead on another thread (the pipeline's decoder does it):
        preprocessing for CPU backends, the copy into pinned memory for CUDA ones."""
        if self.on_device:
            return self.backend.stage(frames, self.timer)
        with self.timer.stage("preprocess"):
            return self.preprocess(frames)

    def submit(self, frames: Sequence[np.ndarray], prepared=None):
        """Start segmenting `frames` (`prepared`: their `prepare`, if already done) at their size;
        CPU backends finish here, or with streams hand the batch to a worker thread; CUDA ones
        only enqueue."""
        self.fit(frames[0])
        if self.on_device:
            return self.backend.submit(frames, self.size, self.info.mean, self.info.std, prepared)
        batch = prepared if prepared is not None else self.prepare(frames)
        if self.streams == 1:
            return self.run_on_host(self.backend, batch, frames)
        if self.workers is None:
            self.workers = ThreadPoolExecutor(self.streams, thread_name_prefix="segment")
        return self.workers.submit(self.run_on_host, self.backend, batch, frames)  # the backend of this size, not a later one

    def run_on_host(self, backend: Backend, batch: np.ndarray, frames: Sequence[np.ndarray]) -> list[np.ndarray]:
        with self.timer.stage("inference"):
            class_maps = backend.infer(batch)
        with self.timer.stage("postprocess"):
            return self.postprocess(class_maps, frames)

    def collect(self, pending) -> list[np.ndarray]:
        """The class maps of a `submit`, in the frames' order."""
        if self.on_device:
            return self.backend.collect(pending, self.timer)
        return pending.result() if isinstance(pending, Future) else pending

    def warmup(self, frame: np.ndarray) -> None:
        """One untimed pass on a frame of the coming size, so start-up costs (cuDNN autotuning,
        CUDA-graph capture, onnxruntime's first-run allocations) stay out of the timings; the
        stage timer starts afresh. Picks the size first, for a segmenter whose size follows the frames."""
        self.fit(frame)
        if self.on_device:
            self.backend.warmup([frame], self.size, self.info.mean, self.info.std)
        else:
            self.backend.infer(self.preprocess([frame]))
        self.timer.reset()

    def segment_batch(self, frames: Sequence[np.ndarray]) -> list[np.ndarray]:
        """RGB uint8 frames (any sizes) -> uint8 class maps at each frame's own size. On a GPU a
        batch is one size, so frames are grouped by size there (all groups queued, then collected).
        A segmenter whose size follows the frames runs a CPU batch at the first frame's."""
        if not self.on_device:
            return self.collect(self.submit(frames))
        groups: dict[tuple, list[int]] = {}
        for index, frame in enumerate(frames):
            groups.setdefault(frame.shape, []).append(index)
        pending = [(indices, self.submit([frames[i] for i in indices])) for indices in groups.values()]
        class_maps: list = [None] * len(frames)
        for indices, work in pending:
            for index, class_map in zip(indices, self.collect(work)):
                class_maps[index] = class_map
        return class_maps

    def segment(self, frame: np.ndarray) -> np.ndarray:
        return self.segment_batch([frame])[0]
