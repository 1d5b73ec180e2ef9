"""The GPU path: everything that does not need a GPU runs here; GPU tests skip without CUDA."""

import numpy as np
import pytest
import torch

from conftest import run_cli
from dwrseg_rt.checkpoint import load_checkpoint
from dwrseg_rt.errors import UserError
from dwrseg_rt.export.tensorrt import engine_cache_key, plan_build, trt_major
from dwrseg_rt.runtime.backends import load_backend, resolve_backend
from dwrseg_rt.runtime.cuda import PinnedRing

CUDA = torch.cuda.is_available()
gpu = pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")


@pytest.mark.parametrize("version,major", [("8.5.2.2", 8), ("8.6.2", 8), ("10.3.0.26", 10), ("11.1.0", 11)])
def test_tensorrt_versions_compare_as_numbers(version, major):
    assert trt_major(version) == major


@pytest.mark.parametrize("version", ["8.5.2", "8.6.2", "10.3.0"])
def test_build_plan_on_tensorrt_up_to_10_uses_builder_flags(version, tmp_path):
    assert plan_build(version, "fp32") == plan_build(version, "fp32")
    assert plan_build(version, "fp32").flags == () and not plan_build(version, "fp32").strongly_typed
    assert plan_build(version, "fp16").flags == ("FP16",)
    int8 = plan_build(version, "int8", calibration=tmp_path)
    assert int8.calibrate and "INT8" in int8.flags
    with pytest.raises(UserError, match="--calibration"):
        plan_build(version, "int8")


def test_build_plan_on_tensorrt_11_is_strongly_typed(tmp_path):
    fp16 = plan_build("11.0.0", "fp16")
    assert fp16.strongly_typed and fp16.half_onnx and fp16.flags == ()
    assert not plan_build("11.0.0", "fp32").half_onnx
    with pytest.raises(UserError, match="Q/DQ"):
        plan_build("11.0.0", "int8", calibration=tmp_path)
    with pytest.raises(UserError, match="--precision"):
        plan_build("10.3.0", "bf16")


def test_engine_cache_key_changes_with_everything_that_makes_an_engine_unportable():
    base = dict(gpu_name="NVIDIA Orin", compute_capability=(8, 7), trt_version="10.3.0", onnx_sha256="a" * 64,
                precision="fp16", shape=(1, 3, 512, 1024))
    key = engine_cache_key(**base)
    assert key == engine_cache_key(**base)
    assert key.startswith("dwrseg_fp16_1x1024x512_sm87_") and all(c.isalnum() or c == "_" for c in key)
    for field, other in [("gpu_name", "NVIDIA H100"), ("compute_capability", (9, 0)), ("trt_version", "8.6.2"),
                         ("onnx_sha256", "b" * 64), ("precision", "int8"), ("shape", (1, 3, 768, 1536))]:
        assert engine_cache_key(**{**base, field: other}) != key, field


def test_pinned_ring_does_not_hand_out_a_buffer_still_in_flight():
    ring = PinnedRing(slots=4)
    first = [ring.take((2, 3)) for _ in range(4)]
    assert len({id(b) for b in first}) == 4
    assert ring.take((2, 3)) is first[0] and ring.take((2, 3)) is first[1]
    assert ring.take((5,)) is not first[0]  # other shapes get their own ring


@pytest.mark.skipif(CUDA, reason="checks the message on machines without CUDA")
def test_clear_errors_without_a_gpu_or_tensorrt(checkpoint, clip, tmp_path):
    with pytest.raises(UserError, match="fp32"):
        load_backend(checkpoint, "torch", None, precision="fp16")
    with pytest.raises(UserError, match="onnxruntime runs fp32"):
        load_backend(checkpoint, "onnxruntime", None, precision="int8")
    assert resolve_backend("auto") == "onnxruntime"
    result = run_cli("video", clip, "-o", tmp_path / "o.mp4", "--weights", checkpoint, "--backend", "tensorrt")
    assert result.returncode != 0 and len(result.stderr.strip().splitlines()) == 1
    assert "TensorRT is not installed" in result.stderr and "system-site-packages" in result.stderr
    engine = run_cli("export", "--format", "engine", "--weights", checkpoint, "-o", tmp_path / "m.engine")
    assert engine.returncode != 0 and "TensorRT is not installed" in engine.stderr and not (tmp_path / "m.engine").exists()


@gpu
@pytest.mark.parametrize("precision,graphs", [("fp32", False), ("fp16", True)])
def test_torch_cuda_agrees_with_the_cpu(checkpoint, precision, graphs):
    from dwrseg_rt.export.onnx import sample_image
    from dwrseg_rt.runtime.backends import TorchBackend
    from dwrseg_rt.runtime.cuda import TorchCudaBackend
    from dwrseg_rt.runtime.segmenter import Segmenter

    model, info = load_checkpoint(checkpoint)
    frame = sample_image((300, 170))
    cpu = Segmenter(TorchBackend(model), info, (256, 128)).segment(frame)
    model, info = load_checkpoint(checkpoint)
    segmenter = Segmenter(TorchCudaBackend(model, precision, graphs), info, (256, 128))
    pendings = [segmenter.submit([frame]) for _ in range(3)]  # three in flight
    for pending in pendings:
        (device,) = segmenter.collect(pending)
        assert device.shape == cpu.shape and (device == cpu).mean() > (0.999 if precision == "fp32" else 0.98)
    assert {"h2d", "inference", "d2h"} <= set(segmenter.timer.summary())


@gpu
def test_video_on_cuda_keeps_every_frame(checkpoint, clip, tmp_path):
    result = run_cli("video", clip, "-o", tmp_path / "o.mp4", "--weights", checkpoint, "--backend", "torch", "--stats-json", tmp_path / "s.json")
    assert result.returncode == 0, result.stderr
    import json

    stats = json.loads((tmp_path / "s.json").read_text())
    assert stats["backend"].startswith("torch-cuda") and stats["frames"] == 12
    assert np.isfinite(stats["pipeline_fps"])
