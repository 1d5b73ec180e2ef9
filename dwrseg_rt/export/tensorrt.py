"""TensorRT engines: build from ONNX through the Python API, cache, and describe.

One code path for TensorRT 8.5 to 11 (JetPack 6 ships 8.6 or 10.3; JetPack 5, Python 3.8, is
not supported), by feature detection rather than version
tables where possible:
* fp32/fp16/int8 on TensorRT <= 10: a weakly typed network with builder flags; INT8 is
  calibrated (entropy calibrator 2) on the user's own images, preprocessed by the same
  function as inference.
* TensorRT 11 removed those flags and calibrators: fp32 builds from the fp32 ONNX, fp16 from
  an ONNX exported in half precision with fp32 inputs/outputs, as a strongly typed network;
  INT8 would need a Q/DQ ONNX (NVIDIA ModelOpt), which dwrseg-rt does not produce yet.
Engines are not portable: the cache key holds GPU name, compute capability and SM count,
TensorRT version, the ONNX's sha256, precision, input shape and the build revision. The engine file is the plain
serialized engine (trtexec and C++ loaders read it); metadata goes to a JSON sidecar.
"""

from __future__ import annotations

import functools
import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dwrseg_rt.checkpoint import ModelInfo, write_sidecar
from dwrseg_rt.export.calibration import calibration_batches, calibration_images
from dwrseg_rt.io.outputs import atomic_write
from dwrseg_rt.errors import UserError

PRECISIONS = ("fp32", "fp16", "int8")
TRT_CALIBRATION_LIMIT = 500  # images per INT8 calibration
# Bump when what goes into an engine changes (calibration input layout, profiles, flags): it is
# part of the cache key, so engines and .calib files of older builds are never reused.
# 2: calibration fed contiguous NCHW (revision 1 handed TensorRT NHWC-ordered memory), batch-1
#    calibration profile, fp32 without TF32, SM count in the key.
ENGINE_REVISION = 2


def import_tensorrt():
    try:
        import tensorrt as trt
    except ImportError:
        raise UserError("TensorRT is not installed. Desktop/server: pip install 'dwrseg-rt[trt]' (NVIDIA's tensorrt wheels); "
                        "Jetson: it comes with JetPack (python3-libnvinfer): use the system Python or a venv made with "
                        "--system-site-packages") from None
    return trt


@functools.lru_cache(maxsize=None)
def trt_logger(trt):
    """One logger per process: TensorRT 8 warns when builders and runtimes get different ones."""
    return trt.Logger(trt.Logger.WARNING)


def trt_major(version: str) -> int:
    """'10.3.0.26' -> 10 (compare versions as numbers, never as strings)."""
    try:
        return int(version.split(".")[0])
    except ValueError:
        raise UserError(f"cannot parse the TensorRT version {version!r}") from None


@dataclass
class EngineOptions:
    """How to build an engine; precision and input size are chosen by the caller."""

    calibration: Path | None = None  # INT8 (TensorRT <= 10): a folder of the user's own images
    workspace_gb: float = 2.0
    dla_core: int | None = None  # Jetson Orin/Xavier
    batch: int = 1  # the largest batch the engine accepts (its optimisation profile: 1..batch)
    force_rebuild: bool = False


@dataclass(frozen=True)
class BuildPlan:
    precision: str
    strongly_typed: bool  # the network takes its precision from the ONNX
    flags: tuple[str, ...]  # BuilderFlag names to set
    cleared: tuple[str, ...]  # BuilderFlag names to clear (TF32 for true fp32)
    half_onnx: bool  # build from an ONNX exported in half precision (fp32 I/O)
    calibrate: bool  # INT8 entropy calibration on the user's images


def plan_build(trt_version: str, precision: str, calibration: Path | None = None, dla: bool = False) -> BuildPlan:
    """What a build of `precision` needs on this TensorRT version."""
    if precision not in PRECISIONS:
        raise UserError(f"--precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    if dla and precision == "fp32":
        raise UserError("the DLA runs fp16 or int8 only: add --precision fp16 (or int8 with --calibration DIR)")
    major = trt_major(trt_version)
    if major >= 11:
        if precision == "int8":
            raise UserError("INT8 on TensorRT 11 needs an ONNX with Q/DQ nodes (NVIDIA ModelOpt); dwrseg-rt builds fp32 and "
                            "fp16 there. On TensorRT 8.5-10 (all JetPacks) --precision int8 --calibration DIR works")
        return BuildPlan(precision, True, (), (), precision == "fp16", False)
    if precision == "int8":
        if calibration is None:
            raise UserError("INT8 needs calibration images: build the engine with `dwrseg-rt export --format engine --precision int8 "
                            "--calibration DIR` (a few hundred of your own camera images), then run it with --weights FILE.engine")
        return BuildPlan(precision, False, ("INT8", "FP16"), (), False, True)  # FP16 too: layers INT8 cannot take
    if precision == "fp32":  # TF32 is on by default on Ampere and newer: fp32 would be TF32 in disguise
        return BuildPlan(precision, False, (), ("TF32",), False, False)
    return BuildPlan(precision, False, ("FP16",), (), False, False)


def engine_cache_key(gpu_name: str, compute_capability: tuple[int, int], trt_version: str, onnx_sha256: str,
                     precision: str, shape: tuple[int, int, int, int], calibration: str = "", dla_core: int | None = None,
                     sm_count: int = 0) -> str:
    """A file-name-safe key that changes whenever the engine would not be reusable (for INT8,
    also when the calibration images change; for the DLA, per core; `sm_count` tells apart
    boards that share a name and compute capability, as Orin modules do), and with the build
    revision."""
    fields = {"gpu": gpu_name, "sm": f"{compute_capability[0]}.{compute_capability[1]}", "trt": trt_version,
              "onnx": onnx_sha256, "precision": precision, "shape": list(shape), "calibration": calibration, "dla": dla_core,
              "sm_count": sm_count, "revision": ENGINE_REVISION}
    digest = hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]
    return f"dwrseg_{precision}_{shape[0]}x{shape[3]}x{shape[2]}_sm{compute_capability[0]}{compute_capability[1]}_{digest}"


def to_cuda(batch: np.ndarray):
    import torch

    return torch.from_numpy(batch).cuda()


def make_calibrator(trt, batches: Sequence[np.ndarray], cache: Path, to_device: Callable | None = None):
    """IInt8EntropyCalibrator2 feeding one preprocessed image per batch (its calibration profile
    is batch 1) from device memory, as the contiguous NCHW float32 TensorRT reads at that
    pointer; each image is loaded when TensorRT asks for it."""

    class Calibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self) -> None:
            super().__init__()
            self.batches, self.index, self.device_batch = batches, 0, None

        def get_batch_size(self) -> int:
            return 1

        def get_batch(self, names):
            if self.index >= len(self.batches):
                return None
            self.device_batch = (to_device or to_cuda)(np.ascontiguousarray(self.batches[self.index], dtype=np.float32))
            self.index += 1
            return [int(self.device_batch.data_ptr())]

        def read_calibration_cache(self):
            return cache.read_bytes() if cache.is_file() else None

        def write_calibration_cache(self, data) -> None:
            atomic_write(cache, lambda temp: temp.write_bytes(bytes(data)))

    return Calibrator()


def build_engine(source: Path, engine_path: Path, info: ModelInfo, size: tuple[int, int], precision: str = "fp16",
                 options: EngineOptions | None = None, log: Callable[[str], None] = print) -> dict:
    """Parse the ONNX, configure precision/workspace/DLA, build, write engine + sidecar atomically.

    `source` is the fp32 export, or for a strongly typed fp16 build (TensorRT 11) the
    half-precision one (`plan_build(...).half_onnx`)."""
    trt = import_tensorrt()
    options = options or EngineOptions()
    calibration, dla_core, batch = options.calibration, options.dla_core, options.batch
    plan = plan_build(trt.__version__, precision, calibration, dla=dla_core is not None)
    if dla_core is not None and batch > 1:
        raise UserError("the DLA runs static shapes only: build a DLA engine with --batch 1 (a dynamic batch would "
                        "silently fall back to the GPU)")
    logger = trt_logger(trt)
    builder = trt.Builder(logger)
    flags = 0
    if hasattr(trt.NetworkDefinitionCreationFlag, "EXPLICIT_BATCH") and trt_major(trt.__version__) < 10:
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    if plan.strongly_typed and hasattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED"):
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(source.read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise UserError(f"TensorRT cannot parse {source.name}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(options.workspace_gb * (1 << 30)))
    for flag in plan.flags:
        config.set_flag(getattr(trt.BuilderFlag, flag))
    for flag in plan.cleared:
        if hasattr(trt.BuilderFlag, flag):
            config.clear_flag(getattr(trt.BuilderFlag, flag))
    width, height = size
    single, shape = (1, 3, height, width), (batch, 3, height, width)
    input_name = network.get_input(0).name
    profile = builder.create_optimization_profile()
    profile.set_shape(input_name, single, single, shape)  # tuned for batch 1, what the live pipeline sends
    config.add_optimization_profile(profile)
    calibrator = None  # held here: the config does not keep the Python object alive through the build
    if plan.calibrate:
        batches = calibration_batches(calibration_images(calibration, TRT_CALIBRATION_LIMIT), info, size)
        calibrator = make_calibrator(trt, batches, engine_path.with_suffix(".calib"))
        config.int8_calibrator = calibrator
        calibration_profile = builder.create_optimization_profile()  # the calibrator hands one image at a time
        calibration_profile.set_shape(input_name, single, single, single)
        config.set_calibration_profile(calibration_profile)
    if dla_core is not None:
        if builder.num_DLA_cores == 0:
            raise UserError("--dla-core: this device has no DLA (only Jetson AGX/NX Orin and Xavier do)")
        config.default_device_type = trt.DeviceType.DLA
        config.DLA_core = dla_core
        config.set_flag(trt.BuilderFlag.GPU_FALLBACK)
    started = time.perf_counter()
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise UserError("TensorRT could not build the engine (see its log above); try more --workspace or another precision")
    seconds = time.perf_counter() - started
    atomic_write(engine_path, lambda temp: temp.write_bytes(bytes(serialized)))
    write_sidecar(engine_path, info, inference_size=[width, height], batch=batch, precision=precision,
                  tensorrt=trt.__version__, strongly_typed=plan.strongly_typed, build_seconds=round(seconds, 1),
                  onnx=source.name, dla_core=dla_core)
    log(f"built {engine_path.name} in {seconds:.0f} s")
    return {"engine": str(engine_path), "seconds": seconds, "precision": precision, "tensorrt": trt.__version__}
