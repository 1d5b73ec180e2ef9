"""The CUDA path shared by the torch-CUDA and TensorRT backends.

A frame is copied once into a pinned host buffer (`stage`, run ahead on the pipeline's
decode thread), sent to the GPU with a non-blocking copy on the backend's own stream,
resized and normalised there (`preprocess_tensor`), run through the network with the argmax
on the GPU, resized back (nearest) and copied home as a uint8 class map. `submit` only
enqueues that work and records CUDA events; `collect` waits for them, so the pipeline keeps
several frames in flight while decode and encode run on their threads. Stage times come
from the events (h2d, inference, d2h), not host clocks. Nothing on the per-frame path copies
from pageable host memory (that would wait for all queued work): normalisation constants are
made once per backend, and `warmup` (cuDNN autotuning, CUDA-graph capture) runs before the
pipeline starts its threads and its clock.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from dwrseg_rt.errors import UserError
from dwrseg_rt.runtime.preprocess import normalization_tensors, preprocess_tensor, resize_class_map_tensor
from dwrseg_rt.runtime.timing import StageTimer

IN_FLIGHT = 3


def require_cuda() -> torch.device:
    from dwrseg_rt.environment import gpu_problem

    problem = gpu_problem()
    if problem:
        raise UserError(f"this backend needs a CUDA GPU: {problem}; or use --backend onnxruntime (the CPU)")
    return torch.device("cuda")


class PinnedPool:
    """Reusable page-locked host buffers. `acquire` hands out a free buffer of the shape or
    allocates one; `release` takes it back once the GPU is done with it. Buffers are never
    shared while a copy may be pending, and the pipeline's bounded queues bound how many
    exist per shape. Free buffers are kept for the `max_shapes` most recently used shapes
    only, so a folder of images of many sizes does not pin memory without bound.
    Thread-safe: the decode thread acquires, the inference thread releases."""

    def __init__(self, max_shapes: int = 4) -> None:
        self._free: OrderedDict[tuple, list[torch.Tensor]] = OrderedDict()
        self._lock = threading.Lock()
        self.max_shapes = max_shapes
        self.allocated = 0

    def _shelf(self, key: tuple) -> list[torch.Tensor]:
        """The free list of `key`, now the most recent; the least recent beyond the cap are dropped."""
        shelf = self._free.setdefault(key, [])
        self._free.move_to_end(key)
        while len(self._free) > self.max_shapes:
            self._free.popitem(last=False)
        return shelf

    def acquire(self, shape: tuple[int, ...], dtype: torch.dtype = torch.uint8) -> torch.Tensor:
        with self._lock:
            free = self._shelf((tuple(shape), dtype))
            if free:
                return free.pop()
            self.allocated += 1
        return torch.empty(shape, dtype=dtype, pin_memory=torch.cuda.is_available())

    def release(self, buffer: torch.Tensor) -> None:
        with self._lock:
            key = (tuple(buffer.shape), buffer.dtype)
            if key in self._free:  # a shape that fell out of use is let go
                self._free[key].append(buffer)

    @property
    def free(self) -> int:
        with self._lock:
            return sum(len(shelf) for shelf in self._free.values())


def stage_frames(pool: PinnedPool, frames: Sequence[np.ndarray]) -> torch.Tensor:
    """RGB uint8 frames of one size -> one (N, H, W, 3) buffer from `pool`, one copy each."""
    if any(f.shape != frames[0].shape for f in frames):
        raise ValueError("a batch on the GPU needs frames of one size")
    staged = pool.acquire((len(frames), *frames[0].shape))
    host = staged.numpy()
    for index, frame in enumerate(frames):
        host[index] = frame
    return staged


def segment_tensor(images: torch.Tensor, network: Callable[[torch.Tensor], torch.Tensor], size: tuple[int, int],
                   mean: torch.Tensor, std: torch.Tensor, dtype: torch.dtype, channels_last: bool = True) -> torch.Tensor:
    """What runs on the GPU for a batch, as plain tensor ops (so it runs, and is tested, on the
    CPU too): (N, H, W, 3) uint8 frames -> (N, H, W) uint8 class maps at the frames' size.
    `mean`/`std`: `normalization_tensors` on the images' device."""
    height, width = images.shape[1:3]
    class_ids = network(preprocess_tensor(images, size, mean, std, dtype, channels_last))
    return resize_class_map_tensor(class_ids.to(torch.uint8), height, width)


@dataclass
class Pending:
    """Work enqueued on the stream for one batch; `collect` turns it into class maps."""

    staged: torch.Tensor  # pinned input, free again once `done` fires
    output: torch.Tensor  # pinned (N, H, W) uint8 class maps, filled when `done` fires
    events: tuple[torch.cuda.Event, torch.cuda.Event, torch.cuda.Event, torch.cuda.Event]


class CudaExecution:
    """Owns the stream, the pinned buffers and the event timing; `network` maps a normalised
    (N, 3, h, w) device tensor to (N, h, w) class ids (any integer dtype)."""

    def __init__(self, network: Callable[[torch.Tensor], torch.Tensor], dtype: torch.dtype, channels_last: bool = True) -> None:
        self.device = require_cuda()
        self.network, self.dtype, self.channels_last = network, dtype, channels_last
        self.stream = torch.cuda.Stream()
        self.pinned = PinnedPool()
        self._constants: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}

    def constants(self, mean, std) -> tuple[torch.Tensor, torch.Tensor]:
        """Device mean/std, copied to the GPU on first use only (then reused every frame)."""
        key = (tuple(mean), tuple(std))
        if key not in self._constants:
            self._constants[key] = normalization_tensors(mean, std, self.device)
        return self._constants[key]

    def stage(self, frames: Sequence[np.ndarray]) -> torch.Tensor:
        return stage_frames(self.pinned, frames)

    def submit(self, frames: Sequence[np.ndarray], size: tuple[int, int], mean, std,
               staged: torch.Tensor | None = None) -> Pending:
        staged = self.stage(frames) if staged is None else staged
        mean_t, std_t = self.constants(mean, std)
        # blocking: collect() sleeps on the event instead of spinning a CPU core the decoder needs
        events = tuple(torch.cuda.Event(enable_timing=True, blocking=True) for _ in range(4))
        with torch.cuda.stream(self.stream):
            events[0].record()
            images = staged.to(self.device, non_blocking=True)
            events[1].record()
            class_map = segment_tensor(images, self.network, size, mean_t, std_t, self.dtype, self.channels_last)
            events[2].record()
            output = self.pinned.acquire(tuple(class_map.shape))
            output.copy_(class_map, non_blocking=True)
            events[3].record()
        return Pending(staged, output, events)

    def collect(self, pending: Pending, timer: StageTimer) -> list[np.ndarray]:
        start, sent, computed, done = pending.events
        done.synchronize()
        timer.add("h2d", start.elapsed_time(sent) / 1e3)
        timer.add("inference", sent.elapsed_time(computed) / 1e3)
        timer.add("d2h", computed.elapsed_time(done) / 1e3)
        class_maps = list(pending.output.numpy().copy())  # the pinned buffers go back to the pool
        self.pinned.release(pending.staged)
        self.pinned.release(pending.output)
        return class_maps


class CudaBackend:
    """What the torch-CUDA and TensorRT backends share: the Segmenter drives them through
    `stage` (host copy, ahead of time), `submit` (enqueue) and `collect` (wait)."""

    name: str
    execution: CudaExecution

    def stage(self, frames: Sequence[np.ndarray], timer: StageTimer) -> torch.Tensor:
        with timer.stage("pin"):
            return self.execution.stage(frames)

    def submit(self, frames: Sequence[np.ndarray], size: tuple[int, int], mean, std,
               staged: torch.Tensor | None = None) -> Pending:
        return self.execution.submit(frames, size, mean, std, staged)

    def collect(self, pending: Pending, timer: StageTimer) -> list[np.ndarray]:
        return self.execution.collect(pending, timer)

    def warmup(self, frames: Sequence[np.ndarray], size: tuple[int, int], mean, std) -> None:
        """Run `frames` through once, untimed: cuDNN picks its algorithms, CUDA graphs are
        captured for this shape, TensorRT allocates its context memory. The pipeline calls it
        with its first frame before its threads and clock start."""
        self.execution.collect(self.execution.submit(frames, size, mean, std), StageTimer())


class TorchCudaBackend(CudaBackend):
    """torch on CUDA: fp16 or fp32, channels_last, cudnn autotuning, and CUDA-graph replay of
    the whole network for each static input shape (removes per-layer launch overhead)."""

    def __init__(self, model: torch.nn.Module, precision: str = "fp16", cuda_graphs: bool = True) -> None:
        if precision not in ("fp16", "fp32"):
            raise UserError(f"the torch backend runs fp16 or fp32, not {precision}; int8 needs --backend tensorrt")
        dtype = torch.float16 if precision == "fp16" else torch.float32
        self.execution = CudaExecution(self._run, dtype)
        torch.backends.cudnn.benchmark = True
        if precision == "fp32":  # Ampere and newer would run "fp32" convolutions as TF32
            torch.backends.cudnn.allow_tf32 = False
            torch.backends.cuda.matmul.allow_tf32 = False
        self.model = model.eval().to(self.execution.device, dtype=dtype, memory_format=torch.channels_last)
        self.name = f"torch-cuda-{precision}" + ("-graph" if cuda_graphs else "")
        self.cuda_graphs = cuda_graphs
        self.graphs: dict[tuple, tuple[torch.cuda.CUDAGraph, torch.Tensor, torch.Tensor]] = {}

    @torch.inference_mode()
    def _run(self, batch: torch.Tensor) -> torch.Tensor:
        if not self.cuda_graphs:
            return self.model(batch).argmax(1)
        key = tuple(batch.shape)
        if key not in self.graphs:
            self.graphs[key] = self._capture(batch)
        graph, static_in, static_out = self.graphs[key]
        static_in.copy_(batch)
        graph.replay()
        return static_out

    def _capture(self, batch: torch.Tensor):
        static_in = batch.clone()
        warmup = torch.cuda.Stream()
        warmup.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(warmup):
            for _ in range(3):  # cudnn picks its algorithms before capture
                self.model(static_in)
        torch.cuda.current_stream().wait_stream(warmup)
        graph = torch.cuda.CUDAGraph()
        # thread-local: the decode thread's pinned allocations cannot invalidate the capture
        with torch.cuda.graph(graph, capture_error_mode="thread_local"):
            static_out = self.model(static_in).argmax(1)
        return graph, static_in, static_out
