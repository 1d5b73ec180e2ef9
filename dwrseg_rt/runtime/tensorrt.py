"""The TensorRT backend: the named-tensor API (TensorRT 8.5 to 11) on the backend's own
CUDA stream, torch CUDA tensors as I/O buffers (no pycuda), class maps out."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from dwrseg_rt.checkpoint import ModelInfo, read_sidecar
from dwrseg_rt.errors import UserError
from dwrseg_rt.export.tensorrt import build_engine, engine_cache_key, import_tensorrt, plan_build
from dwrseg_rt.runtime.cuda import CudaExecution, Pending, require_cuda
from dwrseg_rt.runtime.timing import StageTimer


def torch_dtype(trt, dtype) -> torch.dtype:
    table = {trt.DataType.FLOAT: torch.float32, trt.DataType.HALF: torch.float16, trt.DataType.INT32: torch.int32,
             trt.DataType.INT8: torch.int8}
    for name, value in (("UINT8", torch.uint8), ("INT64", torch.int64), ("BOOL", torch.bool)):
        if hasattr(trt.DataType, name):
            table[getattr(trt.DataType, name)] = value
    return table[dtype]


class TensorRTBackend:
    def __init__(self, engine_path: Path) -> None:
        trt = import_tensorrt()
        require_cuda()
        self.info, sidecar = read_sidecar(engine_path)
        runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self.engine = runtime.deserialize_cuda_engine(engine_path.read_bytes())
        if self.engine is None:
            raise UserError(f"{engine_path.name} does not load here: engines only run on the GPU model and TensorRT version "
                            "that built them; rebuild it (--force-rebuild)")
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.input_name = next(n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT)
        self.output_dtype = torch_dtype(trt, self.engine.get_tensor_dtype("class_map"))
        self.size = tuple(sidecar["inference_size"])
        self.name = f"tensorrt-{sidecar.get('precision', 'fp32')}"
        self.execution = CudaExecution(self._run, torch.float32)

    def _run(self, batch: torch.Tensor) -> torch.Tensor:
        batch = batch.contiguous()  # engines take linear NCHW
        self.context.set_input_shape(self.input_name, tuple(batch.shape))
        output = torch.empty(tuple(self.context.get_tensor_shape("class_map")), dtype=self.output_dtype, device=batch.device)
        self.context.set_tensor_address(self.input_name, batch.data_ptr())
        self.context.set_tensor_address("class_map", output.data_ptr())
        if not self.context.execute_async_v3(torch.cuda.current_stream().cuda_stream):
            raise RuntimeError("TensorRT execute_async_v3 failed")
        return output

    def infer(self, batch: np.ndarray) -> np.ndarray:
        with torch.cuda.stream(self.execution.stream):
            result = self._run(torch.from_numpy(batch).to(self.execution.device)).to(torch.uint8).cpu()
        return result.numpy()

    def submit(self, frames, size, mean, std) -> Pending:
        return self.execution.submit(frames, size, mean, std)

    def collect(self, pending: Pending, timer: StageTimer) -> list[np.ndarray]:
        return self.execution.collect(pending, timer)


def cached_engine(weights: Path, model: torch.nn.Module, info: ModelInfo, size: tuple[int, int], precision: str,
                  calibration: Path | None = None, workspace_gb: float = 2.0, dla_core: int | None = None,
                  force_rebuild: bool = False, log=print) -> Path:
    """The engine for these weights on this GPU/TensorRT/precision/shape: built once, then reused."""
    from dwrseg_rt.export.onnx import export_onnx
    from dwrseg_rt.runtime.backends import cache_dir, file_digest

    trt = import_tensorrt()
    require_cuda()
    plan = plan_build(trt.__version__, precision, calibration)
    onnx_dir = cache_dir() / "onnx"
    stem = f"{file_digest(weights)[:16]}_{size[0]}x{size[1]}_int32"
    onnx_path = onnx_dir / f"{stem}{'_half' if plan.half_onnx else ''}.onnx"
    if not onnx_path.is_file():
        export_onnx(model, info, onnx_path, size, check=False, class_dtype=torch.int32, half=plan.half_onnx)
    key = engine_cache_key(torch.cuda.get_device_name(), torch.cuda.get_device_capability(), trt.__version__,
                           file_digest(onnx_path), precision, (1, 3, size[1], size[0]))
    engine = cache_dir() / "engines" / f"{key}.engine"
    if force_rebuild or not engine.is_file():
        log(f"building a TensorRT {trt.__version__} {precision} engine for {torch.cuda.get_device_name()} "
            f"(first use: this takes minutes; cached as {engine})")
        build_engine(onnx_path, engine, info, size, precision, workspace_gb=workspace_gb, dla_core=dla_core,
                     calibration=calibration, half_onnx_path=onnx_path if plan.half_onnx else None, log=log)
    return engine
