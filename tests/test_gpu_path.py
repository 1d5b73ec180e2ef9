"""The GPU path: everything that does not need a GPU runs here; GPU tests skip without CUDA."""

import queue
import threading

import numpy as np
import pytest
import torch

from conftest import needs_half_conv, run_cli
from dwrseg_rt.checkpoint import SHIPPED_WEIGHTS, load_checkpoint
from dwrseg_rt.errors import UserError
from dwrseg_rt.export.tensorrt import engine_cache_key, plan_build, trt_major
from dwrseg_rt.runtime.backends import load_backend, resolve_backend
from dwrseg_rt.runtime.cuda import PinnedPool, segment_tensor, stage_frames
from dwrseg_rt.runtime.preprocess import normalization_tensors

SYNTH_WEIGHTS = SHIPPED_WEIGHTS["synth"]  # the street frames below are from the synthetic world

CUDA = torch.cuda.is_available()
gpu = pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")


@pytest.mark.parametrize("version,major", [("8.5.2.2", 8), ("8.6.2", 8), ("10.3.0.26", 10), ("11.1.0", 11)])
def test_tensorrt_versions_compare_as_numbers(version, major):
    assert trt_major(version) == major


@pytest.mark.parametrize("version", ["8.5.2", "8.6.2", "10.3.0"])
def test_build_plan_on_tensorrt_up_to_10_uses_builder_flags(version, tmp_path):
    assert plan_build(version, "fp32").flags == () and not plan_build(version, "fp32").strongly_typed
    assert plan_build(version, "fp16").flags == ("FP16",)
    int8 = plan_build(version, "int8", calibration=tmp_path)
    assert int8.calibrate and "INT8" in int8.flags
    with pytest.raises(UserError, match="--calibration DIR"):
        plan_build(version, "int8")
    with pytest.raises(UserError, match="DLA runs fp16 or int8"):
        plan_build(version, "fp32", dla=True)
    assert plan_build(version, "fp16", dla=True).flags == ("FP16",)


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
                         ("onnx_sha256", "b" * 64), ("precision", "int8"), ("shape", (1, 3, 768, 1536)),
                         ("calibration", "c" * 64), ("dla_core", 1)]:
        assert engine_cache_key(**{**base, field: other}) != key, field


def test_pinned_pool_never_shares_a_buffer_until_it_is_released():
    pool = PinnedPool()
    held = [pool.acquire((2, 3)) for _ in range(3)]
    assert len({b.data_ptr() for b in held}) == 3 and pool.allocated == 3
    pool.release(held[1])
    assert pool.acquire((2, 3)) is held[1] and pool.allocated == 3  # reused, not reallocated
    assert pool.acquire((5,)).shape == (5,) and pool.allocated == 4  # other shapes get their own buffers


def test_pinned_pool_stays_bounded_between_a_decoder_and_an_inference_thread():
    """The pipeline's use: one thread stages frames into a bounded queue, the other releases
    them; the pool grows only to what can be outstanding at once, however long the video."""
    pool, handoff, depth = PinnedPool(), queue.Queue(maxsize=4), 4
    frames = [np.full((6, 10, 3), i, np.uint8) for i in range(200)]

    def decode():
        for frame in frames:
            handoff.put(stage_frames(pool, [frame]))
        handoff.put(None)

    thread = threading.Thread(target=decode)
    thread.start()
    seen = []
    while (staged := handoff.get()) is not None:
        seen.append(int(staged[0, 0, 0, 0]))
        pool.release(staged)
    thread.join()
    assert seen == list(range(200))  # every frame arrived intact, in order, though buffers were reused
    assert pool.allocated <= depth + 2


def test_staging_copies_a_batch_into_one_buffer_and_rejects_mixed_sizes():
    pool = PinnedPool()
    frames = [np.random.default_rng(i).integers(0, 255, (4, 5, 3), dtype=np.uint8) for i in range(2)]
    staged = stage_frames(pool, frames)
    assert staged.dtype == torch.uint8 and staged.shape == (2, 4, 5, 3)
    assert np.array_equal(staged.numpy(), np.stack(frames))
    with pytest.raises(ValueError, match="one size"):
        stage_frames(pool, [frames[0], np.zeros((4, 6, 3), np.uint8)])



def street_frames(width: int = 300, height: int = 170) -> list[np.ndarray]:
    from dwrseg_rt.data.synth import Street

    return [Street(seed, width, height).render(0.3)[0] for seed in (4, 5)]


def agreements(maps, reference) -> list[float]:
    return [float((got == want).mean()) for got, want in zip(maps, reference)]


# The trained demo model: an untrained one flips argmax on one-gray-level differences (the GPU
# resize is float, OpenCV's fixed point), and would not notice a swapped colour order either.
# With it, device and host paths agree on > 99.9% of pixels; BGR instead of RGB gives 74-87%.
AGREEMENT = 0.995


@pytest.mark.parametrize("dtype", [torch.float32, pytest.param(torch.float16, marks=needs_half_conv)])
def test_the_device_step_segments_like_the_host_path(dtype):
    """`segment_tensor` is what the CUDA backends enqueue on the GPU. Run here on the CPU, in
    fp32 and in the torch-CUDA backend's fp16 + channels_last, it must match the host path."""
    import copy

    from dwrseg_rt.runtime.backends import TorchBackend
    from dwrseg_rt.runtime.segmenter import Segmenter

    model, info = load_checkpoint(SYNTH_WEIGHTS)
    frames = street_frames()
    expected = Segmenter(TorchBackend(model.float()), info, (256, 128)).segment_batch(frames)
    network = copy.deepcopy(model).to(dtype=dtype, memory_format=torch.channels_last)
    with torch.inference_mode():
        got = segment_tensor(stage_frames(PinnedPool(), frames), lambda batch: network(batch).argmax(1), (256, 128),
                             *normalization_tensors(info.mean, info.std, torch.device("cpu")), dtype)
    assert got.dtype == torch.uint8 and tuple(got.shape) == (2, 170, 300)
    assert min(agreements(got.numpy(), expected)) > AGREEMENT

@needs_half_conv
def test_the_half_precision_onnx_for_tensorrt_11_keeps_fp32_io_and_agrees(checkpoint, tmp_path):
    """TensorRT 11 builds fp16 only as a strongly typed network from this export: fp16 weights,
    fp32 image in, int32 class map out; it must still segment like the fp32 model."""
    import onnx
    import onnxruntime as ort

    from dwrseg_rt.export.onnx import export_onnx, sample_image
    from dwrseg_rt.runtime.preprocess import normalize

    model, info = load_checkpoint(checkpoint)
    export_onnx(model, info, tmp_path / "half.onnx", (256, 128), check=False, class_dtype=torch.int32, half=True)
    graph = onnx.load(tmp_path / "half.onnx").graph
    assert {t.data_type for t in graph.initializer} == {onnx.TensorProto.FLOAT16}
    assert graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert graph.output[0].name == "class_map" and graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.INT32
    batch = normalize(sample_image((256, 128))[None], info.mean, info.std)
    (class_map,) = ort.InferenceSession(str(tmp_path / "half.onnx"), providers=["CPUExecutionProvider"]).run(["class_map"], {"image": batch})
    with torch.inference_mode():
        reference = model.float()(torch.from_numpy(batch)).argmax(1).numpy()
    assert (class_map == reference).mean() > 0.98


@pytest.mark.skipif(CUDA, reason="checks the message on machines without CUDA")
def test_clear_errors_without_a_gpu_or_tensorrt(checkpoint, clip, tmp_path):
    with pytest.raises(UserError, match="fp32"):
        load_backend(checkpoint, "torch", None, precision="fp16")
    with pytest.raises(UserError, match="onnxruntime runs fp32 or int8"):
        load_backend(checkpoint, "onnxruntime", None, precision="fp16")
    assert resolve_backend("auto") == "onnxruntime"
    with pytest.raises(UserError, match="needs a CUDA GPU"):
        from dwrseg_rt.runtime.cuda import TorchCudaBackend

        TorchCudaBackend(load_checkpoint(checkpoint)[0])
    result = run_cli("video", clip, "-o", tmp_path / "o.mp4", "--weights", checkpoint, "--backend", "tensorrt")
    assert result.returncode != 0 and len(result.stderr.strip().splitlines()) == 1
    assert "TensorRT is not installed" in result.stderr and "system-site-packages" in result.stderr
    engine = run_cli("export", "--format", "engine", "--weights", checkpoint, "-o", tmp_path / "m.engine")
    assert engine.returncode != 0 and "TensorRT is not installed" in engine.stderr and not (tmp_path / "m.engine").exists()


@gpu
@pytest.mark.parametrize("precision,graphs", [("fp32", False), ("fp16", True)])
def test_torch_cuda_agrees_with_the_cpu(precision, graphs):
    from dwrseg_rt.runtime.backends import TorchBackend
    from dwrseg_rt.runtime.cuda import TorchCudaBackend
    from dwrseg_rt.runtime.segmenter import Segmenter

    model, info = load_checkpoint(SYNTH_WEIGHTS)
    frames = street_frames()
    cpu = Segmenter(TorchBackend(model.float()), info, (256, 128)).segment_batch(frames)
    model, info = load_checkpoint(SYNTH_WEIGHTS)
    segmenter = Segmenter(TorchCudaBackend(model, precision, graphs), info, (256, 128))
    pendings = [segmenter.submit([frame]) for frame in frames * 2]  # four queued before any collect: more than IN_FLIGHT
    device = [segmenter.collect(pending)[0] for pending in pendings]
    assert all(m.shape == (170, 300) and m.dtype == np.uint8 for m in device)
    assert min(agreements(device, cpu * 2)) > AGREEMENT
    assert {"h2d", "inference", "d2h"} <= set(segmenter.timer.summary())


@gpu
def test_video_on_cuda_keeps_every_frame(checkpoint, clip, tmp_path):
    result = run_cli("video", clip, "-o", tmp_path / "o.mp4", "--weights", checkpoint, "--backend", "torch", "--stats-json", tmp_path / "s.json")
    assert result.returncode == 0, result.stderr
    import json

    stats = json.loads((tmp_path / "s.json").read_text())
    assert stats["backend"].startswith("torch-cuda") and stats["frames"] == 12
    assert np.isfinite(stats["pipeline_fps"])


@gpu
def test_the_pipeline_stages_frames_in_pinned_memory_and_keeps_their_order(checkpoint):
    from dwrseg_rt.io.sources import Frame
    from dwrseg_rt.runtime.cuda import IN_FLIGHT, TorchCudaBackend
    from dwrseg_rt.runtime.pipeline import run_pipeline
    from dwrseg_rt.runtime.segmenter import Segmenter

    model, info = load_checkpoint(checkpoint)
    backend = TorchCudaBackend(model, "fp32")
    segmenter = Segmenter(backend, info, (256, 128))
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (120, 200, 3), dtype=np.uint8) for _ in range(40)]
    expected = [segmenter.segment(image) for image in images]
    received = []
    stats = run_pipeline((Frame(image, i) for i, image in enumerate(images)), segmenter,
                         lambda frame, class_map: received.append((frame.index, class_map)))
    assert stats.frames == 40 and [index for index, _ in received] == list(range(40))
    assert all((got == want).mean() > 0.999 for (_, got), want in zip(received, expected))
    assert backend.execution.pinned.allocated <= 2 * (4 + IN_FLIGHT + 2)  # inputs and outputs, bounded
    assert {"pin", "h2d", "inference", "d2h"} <= set(stats.stages)


@gpu
def test_bench_on_cuda_reports_the_device_split(checkpoint, tmp_path):
    result = run_cli("bench", "-b", "torch", "-p", "fp16", "--weights", checkpoint, "--iterations", "30", "--json", tmp_path / "b.json")
    assert result.returncode == 0, result.stderr
    import json

    (entry,) = json.loads((tmp_path / "b.json").read_text())["results"]
    model = entry["model"]
    assert model["backend"].startswith("torch-cuda-fp16") and model["in_flight"] > 1
    assert set(model["device_ms"]) == {"h2d", "inference", "d2h"} and model["throughput_fps"] > 0


@gpu
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_tensorrt_builds_once_caches_and_agrees_with_the_cpu(precision):
    pytest.importorskip("tensorrt")
    from dwrseg_rt.runtime.backends import TorchBackend
    from dwrseg_rt.runtime.segmenter import Segmenter

    frames = street_frames()
    model, info = load_checkpoint(SYNTH_WEIGHTS)
    cpu = Segmenter(TorchBackend(model.float()), info, (256, 128)).segment_batch(frames)
    runner, info, size = load_backend(SYNTH_WEIGHTS, "tensorrt", (256, 128), precision=precision)
    engines = list((runner.engine_path.parent).glob("*.engine"))
    assert runner.engine_path.with_name(runner.engine_path.name + ".json").is_file()  # metadata beside, not inside
    built = runner.engine_path.stat().st_mtime_ns
    segmenter = Segmenter(runner, info, size)
    assert min(agreements(segmenter.segment_batch(frames), cpu)) > AGREEMENT
    again, _, _ = load_backend(SYNTH_WEIGHTS, "tensorrt", (256, 128), precision=precision)
    assert again.engine_path == runner.engine_path and again.engine_path.stat().st_mtime_ns == built  # reused
    assert list(runner.engine_path.parent.glob("*.engine")) == engines


# --- The first GPU run, reached on the CPU: TensorRT faked at the hardware boundary ---------

class FakeTensorRT:
    """The slice of the `tensorrt` module that `build_engine` uses, recording what it is asked.
    Its builder runs the INT8 calibrator as TensorRT does: it reads `batch x 3 x h x w` floats
    at each pointer `get_batch` returns, with the batch of the calibration profile."""

    class Logger:
        WARNING = 2

        def __init__(self, severity):
            FakeTensorRT.loggers += 1

    class IInt8EntropyCalibrator2:
        def __init__(self):
            pass

    class NetworkDefinitionCreationFlag:
        EXPLICIT_BATCH = 0

    class MemoryPoolType:
        WORKSPACE = "workspace"

    class BuilderFlag:
        FP16, INT8, TF32, GPU_FALLBACK = "FP16", "INT8", "TF32", "GPU_FALLBACK"

    class DeviceType:
        DLA = "DLA"

    loggers = 0

    def __init__(self, version="10.3.0"):
        import ctypes

        self.__version__ = version
        self.calls, self.calibration_bytes = [], []
        fake = self

        class Profile:
            def __init__(self):
                self.shapes = {}

            def set_shape(self, name, low, opt, high):
                self.shapes[name] = (low, opt, high)

        class Config:
            def __init__(self):
                self.profiles, self.calibration_profile, self.int8_calibrator = [], None, None

            def set_memory_pool_limit(self, pool, size):
                pass

            def set_flag(self, flag):
                fake.calls.append(("set", flag))

            def clear_flag(self, flag):
                fake.calls.append(("clear", flag))

            def add_optimization_profile(self, profile):
                self.profiles.append(profile)

            def set_calibration_profile(self, profile):
                self.calibration_profile = profile

        class Input:
            name = "image"

        class Network:
            def get_input(self, index):
                return Input()

        class Builder:
            num_DLA_cores = 2

            def __init__(self, logger):
                pass

            def create_network(self, flags):
                return Network()

            def create_builder_config(self):
                fake.config = Config()
                return fake.config

            def create_optimization_profile(self):
                return Profile()

            def build_serialized_network(self, network, config):
                if config.int8_calibrator is not None:
                    low, opt, high = config.calibration_profile.shapes["image"]
                    assert low == opt == high, "a calibration profile is one static shape"
                    calibrator = config.int8_calibrator
                    while (pointers := calibrator.get_batch(["image"])) is not None:
                        count = int(np.prod(high)) * 4  # float32
                        fake.calibration_bytes.append(ctypes.string_at(pointers[0], count))
                return b"engine"

        class OnnxParser:
            def __init__(self, network, logger):
                pass

            def parse(self, data):
                return True

        self.Builder, self.OnnxParser = Builder, OnnxParser


@pytest.fixture
def fake_tensorrt(monkeypatch):
    import sys

    import dwrseg_rt.export.tensorrt as trt_export

    fake = FakeTensorRT()
    monkeypatch.setitem(sys.modules, "tensorrt", fake)
    monkeypatch.setattr(trt_export, "to_cuda", torch.from_numpy)  # host memory stands in for the GPU's
    trt_export.trt_logger.cache_clear()
    yield fake
    trt_export.trt_logger.cache_clear()


def calibration_folder(tmp_path, count=8, size=(96, 64)):
    import cv2

    (tmp_path / "m.onnx").write_bytes(b"onnx")  # the fake parser takes any bytes
    folder = tmp_path / "frames"
    folder.mkdir()
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8) for _ in range(count)]
    for index, frame in enumerate(frames):
        cv2.imwrite(str(folder / f"{index:02d}.png"), frame[..., ::-1])  # files hold BGR
    return folder, frames


def test_the_int8_calibrator_hands_tensorrt_contiguous_nchw_one_image_at_a_time(fake_tensorrt, checkpoint, tmp_path):
    """Defect: normalize() returned an NHWC-ordered view and TensorRT read it as NCHW, so every
    INT8 engine was calibrated on channel-scrambled pixels; with --batch 4 the calibration
    profile was the main one (batch 4) while the calibrator gave one image."""
    from dwrseg_rt.export.tensorrt import EngineOptions, build_engine
    from dwrseg_rt.runtime.preprocess import normalize

    _, info = load_checkpoint(checkpoint)
    folder, frames = calibration_folder(tmp_path)
    build_engine(tmp_path / "m.onnx", tmp_path / "m.engine", info, (96, 64), "int8", EngineOptions(folder, batch=4))
    assert len(fake_tensorrt.calibration_bytes) == len(frames)
    for got, frame in zip(fake_tensorrt.calibration_bytes, frames):
        chw = (frame.transpose(2, 0, 1).astype(np.float32) - np.reshape(info.mean, (3, 1, 1))) / np.reshape(info.std, (3, 1, 1))
        assert np.allclose(np.frombuffer(got, np.float32), chw.ravel(), atol=1e-5)
        assert got == normalize(frame[None], info.mean, info.std).tobytes()
    (main,) = fake_tensorrt.config.profiles
    assert main.shapes["image"] == ((1, 3, 64, 96), (1, 3, 64, 96), (4, 3, 64, 96))  # tuned for batch 1, up to 4


def test_an_fp32_engine_is_true_fp32_and_one_logger_serves_the_process(fake_tensorrt, checkpoint, tmp_path):
    from dwrseg_rt.export.tensorrt import build_engine

    _, info = load_checkpoint(checkpoint)
    (tmp_path / "m.onnx").write_bytes(b"onnx")
    before = FakeTensorRT.loggers
    build_engine(tmp_path / "m.onnx", tmp_path / "a.engine", info, (96, 64), "fp32")
    assert ("clear", "TF32") in fake_tensorrt.calls and ("set", "FP16") not in fake_tensorrt.calls
    build_engine(tmp_path / "m.onnx", tmp_path / "b.engine", info, (96, 64), "fp16")
    assert ("set", "FP16") in fake_tensorrt.calls
    assert FakeTensorRT.loggers - before == 1


def test_a_dla_engine_with_a_dynamic_batch_is_refused_before_building(fake_tensorrt, checkpoint, tmp_path):
    from dwrseg_rt.export.tensorrt import EngineOptions, build_engine

    _, info = load_checkpoint(checkpoint)
    (tmp_path / "m.onnx").write_bytes(b"onnx")
    with pytest.raises(UserError, match="static shapes"):
        build_engine(tmp_path / "m.onnx", tmp_path / "m.engine", info, (96, 64), "fp16", EngineOptions(dla_core=0, batch=2))
    assert not (tmp_path / "m.engine").exists()


def test_engine_cache_key_holds_the_sm_count_and_the_build_revision(monkeypatch):
    import dwrseg_rt.export.tensorrt as trt_export

    base = dict(gpu_name="Orin", compute_capability=(8, 7), trt_version="10.3.0", onnx_sha256="a" * 64,
                precision="int8", shape=(1, 3, 360, 480), calibration="c" * 64)
    key = engine_cache_key(**base, sm_count=16)
    assert engine_cache_key(**base, sm_count=8) != key  # AGX Orin and Orin Nano share name and SM version
    monkeypatch.setattr(trt_export, "ENGINE_REVISION", trt_export.ENGINE_REVISION - 1)
    assert engine_cache_key(**base, sm_count=16) != key  # engines and .calib files of the old build are not reused


def test_the_onnx_export_runs_on_torch_without_a_dynamo_argument(checkpoint, tmp_path, monkeypatch):
    """torch 2.1-2.4 (NVIDIA's JetPack 6 wheels) have no `dynamo` argument: passing it raised
    TypeError. An exporter with that older signature must be enough."""
    import inspect

    import dwrseg_rt.export.onnx as onnx_export

    real, current = torch.onnx.export, dict(onnx_export.TORCHSCRIPT_EXPORT)
    accepted = [name for name in inspect.signature(real).parameters if name != "dynamo"]

    def old_export(model, args, f, **kwargs):
        unknown = set(kwargs) - set(accepted)
        if unknown:
            raise TypeError(f"export() got an unexpected keyword argument {unknown.pop()!r}")
        return real(model, args, f, **kwargs, **current)  # this torch's own exporter underneath

    old_export.__signature__ = inspect.Signature([inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD) for n in accepted])
    monkeypatch.setattr(torch.onnx, "export", old_export)
    monkeypatch.setattr(onnx_export, "TORCHSCRIPT_EXPORT", {})  # what the module computes on such a torch
    model, info = load_checkpoint(checkpoint)
    onnx_export.export_onnx(model, info, tmp_path / "m.onnx", (96, 64), check=False)
    assert (tmp_path / "m.onnx").stat().st_size > 0


def test_the_pinned_pool_keeps_free_buffers_for_a_few_shapes_only():
    """A folder of images of many sizes used to pin memory for every size ever seen."""
    pool = PinnedPool(max_shapes=2)
    for height in range(10, 20):
        pool.release(pool.acquire((1, height, 8, 3)))
    assert pool.free <= 2
    held = pool.acquire((1, 30, 8, 3))
    for height in range(40, 45):
        pool.release(pool.acquire((1, height, 8, 3)))
    pool.release(held)  # its shape fell out of use meanwhile: let go, not kept
    assert pool.free <= 2


class HostCuda:
    """A CudaBackend whose 'device' is the CPU: the real staging and device step, no GPU."""

    def __init__(self, model):
        from dwrseg_rt.runtime.cuda import CudaBackend

        class Backend(CudaBackend):
            name = "fake-cuda"

            def __init__(self):
                self.pool, self.submitted, self.warmed = PinnedPool(), [], []

            def stage(self, frames, timer):
                return stage_frames(self.pool, frames)

            def submit(self, frames, size, mean, std, staged=None):
                staged = self.stage(frames, None) if staged is None else staged  # one size per batch, as on a GPU
                self.submitted.append(len(frames))
                with torch.inference_mode():
                    return segment_tensor(staged, lambda batch: model(batch).argmax(1), size,
                                          *normalization_tensors(mean, std, torch.device("cpu")), torch.float32)

            def collect(self, pending, timer):
                return list(pending.numpy())

            def warmup(self, frames, size, mean, std):
                self.warmed.append(frames[0].shape)

        self.backend = Backend()


def test_segment_batch_on_a_gpu_backend_takes_frames_of_several_sizes(checkpoint):
    from dwrseg_rt.runtime.segmenter import Segmenter

    model, info = load_checkpoint(checkpoint)
    fake = HostCuda(model.eval()).backend
    frames = street_frames(300, 170) + street_frames(200, 100) + street_frames(300, 170)[:1]
    maps = Segmenter(fake, info, (128, 64)).segment_batch(frames)
    assert [m.shape for m in maps] == [f.shape[:2] for f in frames]
    assert sorted(fake.submitted) == [2, 3]  # one batch per size


def test_the_pipeline_warms_up_before_its_clock_and_threads_start(checkpoint):
    """Graph capture and autotuning happen on the first frame before the decode thread runs,
    and are not in the timings: every frame is timed once, the warm-up is not."""
    from dwrseg_rt.io.sources import Frame
    from dwrseg_rt.runtime.pipeline import run_pipeline
    from dwrseg_rt.runtime.segmenter import Segmenter

    model, info = load_checkpoint(checkpoint)
    fake = HostCuda(model.eval()).backend
    images = street_frames(200, 100) * 3
    threads_at_warmup = []
    original = fake.warmup
    fake.warmup = lambda *args: (threads_at_warmup.append(threading.active_count()), original(*args))
    received = []
    before = threading.active_count()
    stats = run_pipeline((Frame(image, i) for i, image in enumerate(images)), Segmenter(fake, info, (128, 64)),
                         lambda frame, class_map: received.append(frame.index))
    assert fake.warmed == [(100, 200, 3)] and threads_at_warmup == [before]
    assert received == list(range(6)) and stats.frames == 6


def test_why_torch_sees_no_gpu_is_said_with_the_fix():
    from dwrseg_rt.environment import no_gpu_reason

    jetson_cpu_build = no_gpu_reason("2.5.1", None, jetson=True)
    assert "CPU-only build" in jetson_cpu_build and "NVIDIA's torch for your JetPack" in jetson_cpu_build
    assert "install a CUDA build" in no_gpu_reason("2.5.1+cpu", None, jetson=False)
    assert "video group" in no_gpu_reason("2.3.0", "12.2", jetson=True)
    assert "nvidia-smi" in no_gpu_reason("2.5.1", "12.4", jetson=False)


@pytest.mark.skipif(CUDA, reason="checks the messages on machines without CUDA")
def test_a_gpu_backend_and_info_say_why_there_is_no_gpu_and_auto_says_what_it_chose(checkpoint, monkeypatch, capsys):
    import dwrseg_rt.environment as environment
    from dwrseg_rt.runtime.cuda import require_cuda

    with pytest.raises(UserError, match=r"needs a CUDA GPU: torch .* (CPU-only build|sees no GPU)"):
        require_cuda()
    info = run_cli("info", "--weights", checkpoint)
    assert "not available: torch" in info.stdout
    assert resolve_backend("auto") == "onnxruntime" and capsys.readouterr().err == ""  # a CPU-only machine: no notice
    monkeypatch.setattr(environment, "gpu_on_machine", lambda: True)  # a GPU torch cannot use (PyPI's torch on a Jetson)
    assert resolve_backend("auto") == "onnxruntime"
    notice = capsys.readouterr().err.strip().splitlines()
    assert len(notice) == 1 and notice[0].startswith("--backend auto: onnxruntime on the CPU, because torch")
