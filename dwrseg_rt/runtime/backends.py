"""Inference backends: choosing, opening and caching them. The host (CPU) backends live
here: normalised (N, 3, h, w) float32 in, (N, h, w) uint8 class maps out; the CUDA ones are
in cuda.py and tensorrt.py.

Every backend folds the argmax into the model, so only small class maps leave it. Optional
stacks are imported where they are used and a missing one is a one-line `UserError`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from dwrseg_rt.checkpoint import ModelInfo, load_checkpoint, read_sidecar, write_sidecar
from dwrseg_rt.errors import UserError
from dwrseg_rt.export.tensorrt import EngineOptions
from dwrseg_rt.model.tta import check_tta, with_tta
from dwrseg_rt.runtime.cache import cache_dir, export_cache_path, file_digest, open_cached
from dwrseg_rt.runtime.cuda import CudaBackend

BACKENDS = ("auto", "tensorrt", "torch", "onnxruntime")
PRECISIONS = ("fp32", "fp16", "int8")


class HostBackend(Protocol):
    """A backend the Segmenter feeds host-preprocessed batches (the CPU backends)."""

    name: str

    def infer(self, batch: np.ndarray) -> np.ndarray:
        """(N, 3, h, w) float32 normalised -> (N, h, w) uint8 class ids."""
        ...


Backend = HostBackend | CudaBackend


@dataclass(frozen=True)
class CpuThreads:
    """How a CPU backend uses the cores. `count`: inference threads (None: `default_threads()`).
    `spinning` False makes onnxruntime's idle workers sleep instead of spinning: what a pipeline
    needs, whose decoder and encoder share the cores (measured on 2 cores: fp32 video 20 -> 23
    fps), while model-only benchmarks and evaluation keep spinning (about 15% faster alone).
    `streams`: frames segmented at once, each on its share of the threads (onnxruntime only:
    one session runs concurrently). Whole frames in parallel do not wait on each other the way
    one frame's operators wait for their slowest thread, so a decoder or encoder taking a core
    for a moment slows one frame, not all (measured on 2 cores, a 960x540 video at 480x360: int8
    51 -> 58 fps, fp32 28.7 -> 29.9); each frame takes about `streams` times longer, so live
    sources keep one."""

    count: int | None = None
    spinning: bool = True
    streams: int = 1

    def per_stream(self) -> int:
        """Threads of each stream; 0 (onnxruntime's choice) for one stream on every core."""
        if self.streams == 1:
            return self.count or default_threads()
        return max(1, (self.count or len(usable_cores())) // self.streams)


class TorchBackend:
    """Eager torch on CPU or CUDA."""

    def __init__(self, model: torch.nn.Module, device: str = "cpu", threads: int | None = None) -> None:
        if threads:
            torch.set_num_threads(threads)  # process-wide: torch has no per-model setting
        self.name = "torch" if device == "cpu" else f"torch-{device}"
        self.device = torch.device(device)
        self.model = model.eval().to(self.device)

    @torch.inference_mode()
    def infer(self, batch: np.ndarray) -> np.ndarray:
        logits = self.model(torch.from_numpy(batch).to(self.device))
        return logits.argmax(1).to(torch.uint8).cpu().numpy()


class OnnxRuntimeBackend:
    """onnxruntime on an exported model whose `class_map` output already holds the argmax
    (fp32, or its INT8 twin from export/quantize.py)."""

    def __init__(self, onnx_path: Path, precision: str = "fp32", cpu: CpuThreads = CpuThreads()) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise UserError("onnxruntime is not installed: pip install onnxruntime") from None
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = cpu.per_stream()
        if not cpu.spinning:
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types per failure
            raise UserError(f"onnxruntime cannot load {onnx_path}: {str(exc).splitlines()[0]}") from None
        self.name = "onnxruntime" if precision == "fp32" else f"onnxruntime-{precision}"
        self.path = onnx_path
        self.streams = cpu.streams  # concurrent calls to `infer` the Segmenter may make
        image = self.session.get_inputs()[0]
        self.input_name = image.name
        self.any_size = all(isinstance(side, str) for side in image.shape[2:])  # exported with --dynamic
        outputs = [o.name for o in self.session.get_outputs()]
        if "class_map" not in outputs:
            raise UserError(f"{onnx_path} has no class_map output (its outputs: {', '.join(outputs)}): not a dwrseg-rt export")

    def infer(self, batch: np.ndarray) -> np.ndarray:
        (class_map,) = self.session.run(["class_map"], {self.input_name: batch})
        return class_map.astype(np.uint8, copy=False)


def usable_cores() -> set[int]:
    """The cores this process may run on: a container's or taskset's share, not the whole machine's."""
    try:
        return os.sched_getaffinity(0)
    except AttributeError:  # not on Linux
        return set(range(os.cpu_count() or 1))


def default_threads() -> int:
    """Inference threads when none are asked for: `usable_cores()`; 0 (onnxruntime's own
    choice, one per physical core) when that is every core."""
    allowed = len(usable_cores())
    return allowed if allowed < (os.cpu_count() or allowed) else 0


def cpu_threads(backend: str, threads: int | None = None, streams: int | None = None, live: bool = False,
                spinning: bool = True) -> CpuThreads:
    """The `CpuThreads` of a run on `backend` (resolved, not 'auto'). `streams` None: two for
    files and images on onnxruntime with two or more cores, one for live sources, where each
    frame's latency counts, and for the other backends."""
    if streams is not None and streams > 1 and backend != "onnxruntime":
        raise UserError(f"--streams runs several frames at once on onnxruntime (the CPU), not on {backend}")
    if streams is None:
        streams = 1 if live or backend != "onnxruntime" else min(2, len(usable_cores()))
    return CpuThreads(threads, spinning, streams)


def cached_onnx(weights: Path, model: torch.nn.Module, info: ModelInfo, size: tuple[int, int],
                cpu: CpuThreads = CpuThreads(), variant: str = "", dynamic: bool = False) -> OnnxRuntimeBackend:
    """onnxruntime on the ONNX export of these weights at this size, exported once and reused
    (`variant`: the test-time augmentation in `model`, part of the cache name; `dynamic`: any
    size, see `export_onnx`)."""
    from dwrseg_rt.export.onnx import export_onnx

    return open_cached(export_cache_path(weights, size, variant + ("_dynamic" if dynamic else "")),
                       lambda path: export_onnx(model, info, path, size, check=False, dynamic=dynamic),
                       lambda path: OnnxRuntimeBackend(path, cpu=cpu), has_sidecar)


def has_sidecar(path: Path) -> bool:
    """A cache entry is complete only with its sidecar (written after the model file)."""
    return path.with_name(path.name + ".json").is_file()


ORT_CALIBRATION_LIMIT = 64  # frames: ranges settle long before, and calibration holds them all in memory


def cached_int8(source: Path, info: ModelInfo, size: tuple[int, int], images: list[Path] | None,
                cpu: CpuThreads = CpuThreads()) -> OnnxRuntimeBackend:
    """onnxruntime on the INT8 twin of the fp32 export `source`, calibrated on `images` (from
    `calibration_images`; None: synthetic streets), built once with a progress bar; the key holds
    the export's hash, the calibration set's digest, the quantization recipe's revision and the
    onnxruntime version. Says which calibration the model came from every time one is used."""
    import json

    import onnxruntime as ort
    from rich.console import Console

    from dwrseg_rt.export.calibration import calibration_digest, describe_calibration
    from dwrseg_rt.export.quantize import RECIPE_REVISION

    fields = {"onnx": file_digest(source), "calibration": calibration_digest(images), "onnxruntime": ort.__version__,
              "recipe": RECIPE_REVISION}
    key = hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]
    console = Console(stderr=True)
    console.print(f"INT8 calibrated on {describe_calibration(images)}"
                  + ("; your own camera frames are better: --calibration DIR" if images is None else ""))

    def quantize(path: Path) -> None:
        from rich.progress import Progress

        from dwrseg_rt.export.calibration import calibration_batches
        from dwrseg_rt.export.quantize import quantize_int8

        batches = calibration_batches(images, info, size)
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task(f"calibrating INT8 on {len(batches)} frames (once; cached)", total=len(batches))
            quantize_int8(source, path, batches, on_batch=lambda: progress.advance(task))
        write_sidecar(path, info, inference_size=list(size), dynamic_size=read_sidecar(source)[1].get("dynamic_size", False),
                      precision="int8", source=source.name, calibrated_on=describe_calibration(images), **fields)

    return open_cached(cache_dir() / "onnx" / f"{source.stem}_int8_{key}.onnx", quantize,
                       lambda path: OnnxRuntimeBackend(path, "int8", cpu), has_sidecar)


def resolve_backend(name: str) -> str:
    """'auto' -> TensorRT when importable and a GPU is present, else torch on CUDA, else
    onnxruntime on the CPU (with a notice on machines that have a GPU torch cannot use)."""
    if name not in BACKENDS:
        raise UserError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    if name != "auto":
        return name
    if torch.cuda.is_available():
        return "tensorrt" if importlib.util.find_spec("tensorrt") else "torch"
    chosen = "onnxruntime" if importlib.util.find_spec("onnxruntime") else "torch"
    from dwrseg_rt.environment import gpu_on_machine, gpu_problem

    if gpu_on_machine():  # a GPU is there but unused: say so, and why (a CPU-only machine needs no notice)
        print(f"--backend auto: {chosen} on the CPU, because {gpu_problem()}", file=sys.stderr)
    return chosen


def check_backend(backend: str, precision: str | None, engine: EngineOptions | None) -> tuple[str, list[Path] | None]:
    """The backend `auto` stands for, and the INT8 calibration images for onnxruntime, after every
    check that needs no model (so a wrong option fails before any work, even when the model is
    opened later, at the first frame's size)."""
    name = resolve_backend(backend)
    if precision is not None and precision not in PRECISIONS:
        raise UserError(f"--precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    if name == "onnxruntime" and precision == "fp16":
        raise UserError("onnxruntime runs fp32 or int8 here (on the CPU); fp16 needs a CUDA GPU: --backend tensorrt or torch")
    if name == "torch" and not torch.cuda.is_available() and precision not in (None, "fp32"):
        raise UserError(f"torch on the CPU runs fp32; {precision} runs on " +
                        ("--backend onnxruntime (CPU) or tensorrt" if precision == "int8" else "a CUDA GPU"))
    if name == "tensorrt":
        from dwrseg_rt.export.tensorrt import import_tensorrt
        from dwrseg_rt.runtime.cuda import require_cuda

        import_tensorrt()
        require_cuda()
    calibration = (engine or EngineOptions()).calibration
    if name == "onnxruntime" and precision == "int8" and calibration is not None:
        from dwrseg_rt.export.calibration import calibration_images

        return name, calibration_images(calibration, ORT_CALIBRATION_LIMIT)  # listed once: a bad folder fails here
    return name, None


def runs_on_gpu(name: str) -> bool:
    """Whether the backend `name` (resolved, not 'auto') runs on a CUDA GPU (a `CudaBackend`)."""
    return name == "tensorrt" or (name == "torch" and torch.cuda.is_available())


def load_backend(weights: str | Path, backend: str, size: tuple[int, int] | None, cpu: CpuThreads = CpuThreads(),
                 precision: str | None = None, engine: EngineOptions | None = None,
                 tta: str = "none") -> tuple[Backend, ModelInfo, tuple[int, int]]:
    """Open weights (.pt checkpoint, exported .onnx, or .engine) on a backend.

    Returns the backend, the model's info and the inference size. `precision` defaults to
    fp16 on GPUs and fp32 on the CPU; int8 runs on TensorRT and on onnxruntime, calibrated on
    `engine.calibration` (a folder of the user's images). `tta` (checkpoints only): test-time
    augmentation built into the network (model/tta.py).
    """
    weights = Path(weights)
    kind = weights.suffix.lower()  # '.ONNX' is an ONNX model too, never unpickled as a checkpoint
    check_tta(tta, weights)
    name, images = check_backend(backend, precision, engine)
    if kind == ".engine":
        from dwrseg_rt.runtime.tensorrt import TensorRTBackend

        if name != "tensorrt":
            raise UserError(f"{weights.name} is a TensorRT engine: use --backend tensorrt")
        if not weights.is_file():
            raise UserError(f"weights not found: {weights}")
        runner = TensorRTBackend(weights)
        return runner, runner.info, runner.size
    if kind == ".onnx":
        if name != "onnxruntime":
            raise UserError(f"{weights.name} is an ONNX model: use --backend onnxruntime (or a .pt checkpoint)")
        if not weights.is_file():
            raise UserError(f"weights not found: {weights}")
        info, sidecar = read_sidecar(weights)
        exported = tuple(sidecar.get("inference_size", info.input_size))
        stored = sidecar.get("precision", "fp32")
        if precision not in (None, stored) and not (precision == "int8" and stored == "fp32"):
            raise UserError(f"{weights.name} is an {stored} model: run it without --precision, or pass the .pt checkpoint")
        opened = OnnxRuntimeBackend(weights, stored, cpu)  # checked (loads, has a class map) before any quantization
        if size is not None and tuple(size) != exported and not opened.any_size:
            raise UserError(f"{weights.name} was exported for {exported[0]}x{exported[1]}; export again for "
                            f"{size[0]}x{size[1]}, or once for every size with --dynamic")
        at = tuple(size or exported)
        if precision == "int8" and stored == "fp32":
            return cached_int8(weights, info, exported, images, cpu), info, at
        return opened, info, at
    model, info = load_checkpoint(weights)
    model, variant = with_tta(model, tta), "" if tta == "none" else f"_{tta}"
    size = tuple(size or info.input_size)
    if name == "tensorrt":
        from dwrseg_rt.runtime.tensorrt import TensorRTBackend, cached_engine

        return TensorRTBackend(cached_engine(weights, model, info, size, precision or "fp16", engine, variant=variant)), info, size
    if name == "torch":
        if torch.cuda.is_available():
            from dwrseg_rt.runtime.cuda import TorchCudaBackend

            return TorchCudaBackend(model, precision or "fp16"), info, size
        return TorchBackend(model, "cpu", cpu.count), info, size
    fp32 = cached_onnx(weights, model, info, size, cpu, variant)
    if precision == "int8":
        return cached_int8(fp32.path, info, size, images, cpu), info, size
    return fp32, info, size
