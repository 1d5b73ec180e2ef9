"""Model-only and pipeline benchmarks, shared by `dwrseg-rt bench` and benchmarks/.

Model-only times the backend on one preprocessed batch, trtexec-style (warm-up, then N
timed runs, latency percentiles). Pipeline mode runs the real video job on a clip, so the
ratio pipeline fps / model fps shows what decode, encode and threading cost.
"""

from __future__ import annotations

import tempfile
import time
from collections import deque
from pathlib import Path

import numpy as np

from dwrseg_rt.export.tensorrt import EngineOptions
from dwrseg_rt.runtime.backends import check_backend, cpu_threads, load_backend
from dwrseg_rt.runtime.segmenter import Segmenter
from dwrseg_rt.runtime.timing import StageTimer


def latency_stats(seconds: list[float]) -> dict[str, float]:
    ms = np.asarray(seconds) * 1e3
    return {
        "mean": float(ms.mean()), "median": float(np.median(ms)), "p90": float(np.percentile(ms, 90)),
        "p95": float(np.percentile(ms, 95)), "p99": float(np.percentile(ms, 99)), "min": float(ms.min()),
        "max": float(ms.max()), "cv": float(ms.std() / ms.mean()) if ms.mean() else 0.0,
    }


def bench_model(weights: Path, backend: str, size: tuple[int, int] | None, batch: int = 1, warmup: int = 3,
                iterations: int = 20, precision: str | None = None, calibration: Path | None = None,
                camera: tuple[int, int] | None = None, threads: int | None = None, streams: int | None = None) -> dict:
    """Throughput and latency of the model on a realistic frame at the inference size, or with
    `camera`, on frames of that size (resize in, class map back out: what a camera costs).

    CPU backends: the backend alone on a preprocessed batch (with `camera`: preprocessing and
    postprocessing too), with as many `streams` as a pipeline on a file uses. CUDA backends:
    the device path (pinned H2D, GPU preprocessing, network, argmax, D2H), with H2D / compute /
    D2H from CUDA events. Warm-up runs before the
    clock. Latency is one batch at a time, submit to result; throughput keeps as many batches
    in flight as the pipeline does (trtexec's overlap), so it can exceed 1/latency.
    """
    from dwrseg_rt.export.onnx import sample_image

    engine = EngineOptions(calibration, batch=batch)
    cpu = cpu_threads(check_backend(backend, precision, engine)[0], threads, streams)
    runner, info, inference_size = load_backend(weights, backend, size, cpu, precision=precision, engine=engine)
    segmenter = Segmenter(runner, info, inference_size)
    frames = [sample_image(camera or inference_size)] * batch
    prepared = None if segmenter.on_device or camera is not None else segmenter.preprocess(frames)
    submit, collect = (lambda: segmenter.submit(frames, prepared)), segmenter.collect

    def overlapped(count: int) -> float:
        """Seconds for `count` batches with up to `in_flight` of them queued."""
        start, queued = time.perf_counter(), deque()
        for _ in range(count):
            queued.append(submit())
            if len(queued) >= segmenter.in_flight:
                collect(queued.popleft())
        while queued:
            collect(queued.popleft())
        return time.perf_counter() - start

    overlapped(warmup)
    segmenter.timer = StageTimer()  # keep the warm-up out of the event timings
    latencies = []
    for _ in range(iterations):
        start = time.perf_counter()
        collect(submit())
        latencies.append(time.perf_counter() - start)
    stats = latency_stats(latencies)
    throughput = batch * iterations / overlapped(iterations) if segmenter.in_flight > 1 else batch * 1000.0 / stats["mean"]
    result = {
        "mode": "model", "backend": runner.name, "precision": precision, "size": list(inference_size), "batch": batch,
        "frame_size": list(camera or inference_size),
        "warmup": warmup, "iterations": iterations, "in_flight": segmenter.in_flight, "streams": segmenter.streams,
        "throughput_fps": throughput,
        "latency_ms": stats, "high_variance": stats["cv"] > 0.1,
    }
    if segmenter.on_device:
        timings = segmenter.timer.summary()
        result["device_ms"] = {stage: timings[stage]["mean_ms"] for stage in ("h2d", "inference", "d2h")}
    return result


def bench_stages_alone(clip: Path) -> dict[str, float]:
    """fps of decode alone and of encode alone on this clip: the pipeline's other ceilings
    (the encoder as the CPU pipeline runs it: one thread, x264's ultrafast preset)."""
    from dwrseg_rt.io.video import VideoReader, VideoWriter
    from dwrseg_rt.jobs.segment import encoder_settings

    start = time.perf_counter()
    with VideoReader(clip) as reader:
        frames = list(reader)
        fps, width, height = reader.fps, reader.width, reader.height
    decode_fps = len(frames) / (time.perf_counter() - start)
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        writer = VideoWriter(Path(folder) / "encode.mp4", fps, width, height, **encoder_settings(on_device=False))
        for frame in frames:
            writer.write(frame)
        writer.close()
        encode_fps = len(frames) / (time.perf_counter() - start)
    return {"decode_only_fps": decode_fps, "encode_only_fps": encode_fps}


def bench_pipeline(weights: Path, backend: str, size: tuple[int, int] | None, clip: Path, precision: str | None = None,
                   calibration: Path | None = None, threads: int | None = None, streams: int | None = None) -> dict:
    """The real `video` job on `clip` (overlay to a temporary mp4), with per-stage timings."""
    from dwrseg_rt.io.render import Renderer
    from dwrseg_rt.io.sources import VideoFileSource
    from dwrseg_rt.jobs.segment import Outputs, VideoJob, load_segmenter

    segmenter = load_segmenter(weights, backend, size, precision, EngineOptions(calibration), threads, streams=streams)
    outputs = Outputs(Renderer(segmenter.info.palette, segmenter.info.classes))
    with tempfile.TemporaryDirectory() as folder:
        result = VideoJob(VideoFileSource(clip), Path(folder) / "bench.mp4", segmenter, outputs, input_path=clip).run()
    return {"mode": "pipeline", "clip": clip.name, **{k: result[k] for k in ("backend", "size", "frames", "pipeline_fps", "model_fps", "streams", "stages")}}


DEFAULT_RUNS = [("torch", None), ("onnxruntime", "fp32"), ("onnxruntime", "int8")]


def run_benchmarks(weights: Path, runs: list[tuple[str, str | None]], size: tuple[int, int] | None, clip: Path | None,
                   batch: int = 1, warmup: int = 3, iterations: int = 20, calibration: Path | None = None,
                   camera: tuple[int, int] | None = None, threads: int | None = None, streams: int | None = None) -> dict:
    """Each (backend, precision) of `runs` model-only, and on `clip` through the pipeline, one
    after the other in one process (so their ratios compare); one JSON-ready report. Paths are
    recorded by name and hash, not as this machine's absolute paths."""
    from dwrseg_rt.environment import environment_report
    from dwrseg_rt.runtime.cache import file_digest

    report: dict = {"machine": environment_report(), "settings": {
        "weights": weights.name, "weights_sha256": file_digest(weights), "size": size and list(size), "batch": batch,
        "camera": camera and list(camera), "runs": [list(run) for run in runs], "calibration": calibration and calibration.name,
        "warmup": warmup, "iterations": iterations, "clip": clip and clip.name, "threads": threads,
        "streams": streams}, "results": []}
    if clip is not None:
        report["stages_alone"] = bench_stages_alone(clip)
    for backend, precision in runs:
        model = bench_model(weights, backend, size, batch, warmup, iterations, precision, calibration, camera, threads, streams)
        entry = {"backend": model["backend"], "model": model}
        if clip is not None:
            # at model-only's size, so that the ratio compares like with like (not the clip's aspect)
            pipeline = bench_pipeline(weights, backend, tuple(model["size"]), clip, precision, calibration, threads, streams)
            slowest = min(model["throughput_fps"] / batch, *report["stages_alone"].values())
            entry["pipeline"] = pipeline
            entry["pipeline_over_model"] = pipeline["pipeline_fps"] / (model["throughput_fps"] / batch)
            entry["pipeline_over_slowest_stage"] = pipeline["pipeline_fps"] / slowest
        report["results"].append(entry)
    return report
