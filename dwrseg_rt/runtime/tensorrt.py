"""The TensorRT backend: the named-tensor API (TensorRT 8.5 to 11) on the backend's own
CUDA stream, torch CUDA tensors as I/O buffers (no pycuda), class maps out."""

from __future__ import annotations

from pathlib import Path

import torch

from dwrseg_rt.checkpoint import ModelInfo, read_sidecar
from dwrseg_rt.errors import UserError
from dwrseg_rt.export.calibration import calibration_digest, calibration_images
from dwrseg_rt.export.tensorrt import (
    EngineOptions,
    build_engine,
    TRT_CALIBRATION_LIMIT,
    engine_cache_key,
    import_tensorrt,
    plan_build,
    trt_logger,
)
from dwrseg_rt.runtime.cuda import CudaBackend, CudaExecution, require_cuda


TORCH_DTYPES = {"FLOAT": torch.float32, "HALF": torch.float16, "INT32": torch.int32, "INT64": torch.int64,
                "INT8": torch.int8, "UINT8": torch.uint8, "BOOL": torch.bool}


def torch_dtype(trt, dtype) -> torch.dtype:
    """The torch twin of a TensorRT tensor type (looked up by name: the enum differs by version)."""
    for name, torch_type in TORCH_DTYPES.items():
        if getattr(trt.DataType, name, None) == dtype:
            return torch_type
    raise UserError(f"this engine has a {dtype} input or output, which dwrseg-rt cannot feed; export it again with dwrseg-rt")


class TensorRTBackend(CudaBackend):
    def __init__(self, engine_path: Path) -> None:
        trt = import_tensorrt()
        require_cuda()
        self.engine_path = engine_path
        self.info, sidecar = read_sidecar(engine_path)
        runtime = trt.Runtime(trt_logger(trt))
        if sidecar.get("dla_core") is not None:  # a DLA engine runs on the core it was built for
            if runtime.num_DLA_cores == 0:
                raise UserError(f"{engine_path.name} was built for DLA core {sidecar['dla_core']}, and this device has no DLA")
            runtime.DLA_core = int(sidecar["dla_core"])
        self.engine = runtime.deserialize_cuda_engine(engine_path.read_bytes())
        if self.engine is None:
            raise UserError(f"{engine_path.name} does not load here: an engine runs only on the GPU model and TensorRT version "
                            "that built it; build one on this machine (dwrseg-rt export --format engine), or pass the .pt "
                            "checkpoint with --backend tensorrt, which builds and caches one")
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.input_name = next(n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT)
        self.output_dtype = torch_dtype(trt, self.engine.get_tensor_dtype("class_map"))
        self.size = tuple(sidecar["inference_size"])
        self.max_batch = int(sidecar.get("batch", 1))
        self.name = f"tensorrt-{sidecar.get('precision', 'fp32')}"
        # engines take linear NCHW: preprocessing writes it directly (no channels_last round trip)
        self.execution = CudaExecution(self._run, torch_dtype(trt, self.engine.get_tensor_dtype(self.input_name)),
                                       channels_last=False)

    def _run(self, batch: torch.Tensor) -> torch.Tensor:
        if batch.shape[0] > self.max_batch:  # more frames than the engine's profile takes: in turns
            return torch.cat([self._run(part) for part in batch.split(self.max_batch)])
        batch = batch.contiguous()  # a no-op for what CudaExecution hands over
        if not self.context.set_input_shape(self.input_name, tuple(batch.shape)):
            raise UserError(f"this engine does not accept input {tuple(batch.shape)}: it was built for "
                            f"{self.size[0]}x{self.size[1]}, batch <= {self.max_batch}")
        output = torch.empty(tuple(self.context.get_tensor_shape("class_map")), dtype=self.output_dtype, device=batch.device)
        self.context.set_tensor_address(self.input_name, batch.data_ptr())
        self.context.set_tensor_address("class_map", output.data_ptr())
        if not self.context.execute_async_v3(torch.cuda.current_stream().cuda_stream):
            raise RuntimeError("TensorRT execute_async_v3 failed")
        return output


def cached_engine(weights: Path, model: torch.nn.Module, info: ModelInfo, size: tuple[int, int], precision: str,
                  options: EngineOptions | None = None, log=print, variant: str = "") -> Path:
    """The engine for these weights on this GPU/TensorRT/precision/shape: built once, then reused
    (`variant`: the test-time augmentation in `model`; its ONNX, hence the engine's key, differ)."""
    from dwrseg_rt.export.onnx import export_onnx
    from dwrseg_rt.runtime.cache import cache_dir, export_cache_path, file_digest

    trt = import_tensorrt()
    require_cuda()
    options = options or EngineOptions()
    plan = plan_build(trt.__version__, precision, options.calibration, dla=options.dla_core is not None)
    onnx_path = export_cache_path(weights, size, variant + ("_int32_half" if plan.half_onnx else "_int32"))
    if not onnx_path.is_file():
        export_onnx(model, info, onnx_path, size, check=False, class_dtype=torch.int32, half=plan.half_onnx)
    gpu = torch.cuda.get_device_name()
    calibration = calibration_digest(calibration_images(options.calibration, TRT_CALIBRATION_LIMIT)) if plan.calibrate else ""
    key = engine_cache_key(gpu, torch.cuda.get_device_capability(), trt.__version__, file_digest(onnx_path), precision,
                           (options.batch, 3, size[1], size[0]), calibration, options.dla_core,
                           torch.cuda.get_device_properties(0).multi_processor_count)
    engine = cache_dir() / "engines" / f"{key}.engine"
    if options.force_rebuild or not engine.is_file():
        log(f"building a TensorRT {trt.__version__} {precision} engine for {gpu} (first use: this takes minutes; cached as {engine})")
        build_engine(onnx_path, engine, info, size, precision, options, log=log)
    return engine
