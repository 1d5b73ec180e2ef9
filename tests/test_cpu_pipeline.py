"""The CPU pipeline's scheduling and its cheap paths: what they change, and what they must not
(class maps, colours, the files a user gets)."""

import json
import os
import subprocess
import sys
import threading
from fractions import Fraction

import av
import cv2
import numpy as np
import pytest

from conftest import one_line_failure, run_cli
from dwrseg_rt.checkpoint import load_checkpoint
from dwrseg_rt.data.labels import CITYSCAPES
from dwrseg_rt.io.render import Renderer
from dwrseg_rt.io.sources import Frame
from dwrseg_rt.io.video import VideoReader, VideoWriter
from dwrseg_rt.runtime.backends import CpuThreads, TorchBackend, cached_onnx
from dwrseg_rt.runtime.pipeline import HELPER_NICENESS, run_pipeline
from dwrseg_rt.runtime.segmenter import Segmenter


def x264_settings(path) -> str:
    """The settings string x264 writes into the stream (an SEI message in the first packet)."""
    data = path.read_bytes()
    start = data.index(b"x264 - core")
    return data[start: data.index(b"\x00", start)].decode("latin-1")


def swscale_round_trip_error(frames, path, preset) -> float:
    """Mean error of frames encoded the way PyAV converts RGB by itself (swscale), then decoded."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        stream.options = {"crf": "20", "preset": preset}
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    with VideoReader(path) as reader:
        return float(np.mean([np.abs(d.astype(int) - f.astype(int)).mean() for d, f in zip(reader, frames)]))


def colourful(height=96, width=160, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return cv2.resize(rng.integers(0, 256, (height // 24 + 1, width // 24 + 1, 3), dtype=np.uint8), (width, height), interpolation=cv2.INTER_LINEAR)


def test_color_mask_is_the_palette_lookup_including_ignored_and_unknown_ids():
    palette = CITYSCAPES.palette_array()
    renderer = Renderer(palette, ignore=(0, 10))
    class_map = np.random.default_rng(1).integers(0, 256, (37, 53), dtype=np.uint8)  # odd sizes, ids past the palette too
    expected = np.zeros((256, 3), np.uint8)
    expected[: len(palette)] = palette
    expected[[0, 10]] = 0
    expected[len(palette):] = 0
    assert np.array_equal(renderer.color_mask(class_map), expected[class_map])
    frame = colourful(37, 53)
    overlay = renderer.overlay(frame, class_map)
    hidden = np.isin(class_map, [0, 10]) | (class_map >= len(palette))
    assert np.array_equal(overlay[hidden], frame[hidden])
    shown = ~hidden
    blend = (frame.astype(float) * 0.5 + expected[class_map].astype(float) * 0.5)
    assert np.abs(overlay[shown] - blend[shown]).max() <= 1


@pytest.mark.parametrize("preset, cabac, live, bframes", [("ultrafast", "cabac=0", False, "bframes=0"),
                                                          ("veryfast", "cabac=1", False, "bframes=3"),
                                                          ("veryfast", "cabac=1", True, "bframes=0")])
def test_writer_encodes_with_the_preset_asked_and_zero_latency_for_live(tmp_path, preset, cabac, live, bframes):
    path = tmp_path / "out.mp4"
    frames = [colourful(seed=i) for i in range(6)]
    writer = VideoWriter(path, Fraction(25), 160, 96, preset=preset, live=live)
    for frame in frames:
        writer.write(frame)
    writer.close()
    settings = x264_settings(path)
    assert cabac in settings and bframes in settings
    assert ("mbtree=0" in settings) == (live or preset == "ultrafast")  # no look-ahead: each frame leaves at once
    with av.open(str(path)) as container:  # the stream says how it was encoded: BT.601 (SMPTE 170M), limited range
        context = container.streams.video[0].codec_context
        assert (context.colorspace, context.color_primaries, context.color_trc, context.color_range) == (6, 6, 6, 1)
    with VideoReader(path) as reader:
        decoded = list(reader)
    assert len(decoded) == len(frames)
    # the colour conversion (OpenCV's BT.601, limited range) loses about what swscale's does on these
    # sharp colour edges (on real overlays a little less: 1.5-1.8 levels against 1.6-1.9)
    error = np.mean([np.abs(d.astype(int) - f.astype(int)).mean() for d, f in zip(decoded, frames)])
    assert error < 1.3 * swscale_round_trip_error(frames, tmp_path / "swscale.mp4", preset)


def test_cpu_video_defaults_to_the_fastest_preset_and_preset_overrides_it(clip, checkpoint, tmp_path):
    default, chosen = tmp_path / "default.mp4", tmp_path / "veryfast.mp4"
    assert run_cli("video", clip, "-o", default, "-w", checkpoint, "-b", "onnxruntime").returncode == 0
    assert run_cli("video", clip, "-o", chosen, "-w", checkpoint, "-b", "onnxruntime", "--preset", "veryfast").returncode == 0
    assert "cabac=0" in x264_settings(default) and "cabac=1" in x264_settings(chosen)
    assert one_line_failure(run_cli("video", clip, "-o", tmp_path / "x.mp4", "-w", checkpoint, "--preset", "quick"), "--preset")
    assert not (tmp_path / "x.mp4").exists()


def test_no_output_writes_the_same_masks_and_nothing_else(clip, checkpoint, tmp_path):
    rendered, only = tmp_path / "rendered", tmp_path / "only"
    local = tmp_path / "in" / "drive.mp4"
    local.parent.mkdir()
    local.write_bytes(clip.read_bytes())
    stats = tmp_path / "stats.json"
    assert run_cli("video", local, "-o", tmp_path / "out.mp4", "--masks-dir", rendered, "-w", checkpoint, "-b", "onnxruntime").returncode == 0
    result = run_cli("video", local, "--no-output", "--masks-dir", only, "-w", checkpoint, "-b", "onnxruntime", "--stats-json", stats)
    assert result.returncode == 0, result.stderr
    assert sorted(local.parent.iterdir()) == [local]  # no video beside the input
    names = sorted(p.name for p in rendered.glob("*.png"))
    assert names and names == sorted(p.name for p in only.glob("*.png"))
    assert all(np.array_equal(cv2.imread(str(rendered / n), cv2.IMREAD_UNCHANGED), cv2.imread(str(only / n), cv2.IMREAD_UNCHANGED))
               for n in names)
    report = json.loads(stats.read_text())
    assert report["output"] is None and "render" not in report["stages"] and "encode" not in report["stages"]
    assert str(only) in result.stdout


def test_no_output_needs_something_to_write_and_no_output_file(clip, checkpoint, tmp_path):
    assert one_line_failure(run_cli("video", clip, "--no-output", "-w", checkpoint), "--no-output")
    assert one_line_failure(run_cli("video", clip, "--no-output", "--masks-dir", tmp_path / "m", "-o", tmp_path / "o.mp4", "-w", checkpoint), "--no-output")
    assert not (tmp_path / "m").exists() and not (tmp_path / "o.mp4").exists()


def test_video_stats_name_every_stage_of_the_profile(clip, checkpoint, tmp_path):
    stats = tmp_path / "stats.json"
    assert run_cli("video", clip, "-o", tmp_path / "o.mp4", "-w", checkpoint, "-b", "onnxruntime", "--threads", "1", "--stats-json", stats).returncode == 0
    stages = json.loads(stats.read_text())["stages"]
    assert set(stages) >= {"decode", "preprocess", "inference", "postprocess", "render", "encode", "output", "starved", "blocked"}
    assert stages["output"]["mean_ms"] >= stages["encode"]["mean_ms"]  # output: all the sink does, encode included


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice values are Linux's")
def test_helper_threads_yield_to_cpu_inference_and_the_caller_keeps_its_priority(checkpoint):
    model, info = load_checkpoint(checkpoint)
    segmenter = Segmenter(TorchBackend(model), info, (64, 32))
    before, opencv_threads = os.getpriority(os.PRIO_PROCESS, threading.get_native_id()), cv2.getNumThreads()
    seen = []
    frames = (Frame(np.zeros((32, 64, 3), np.uint8), i) for i in range(3))
    run_pipeline(frames, segmenter,
                 lambda frame, class_map: seen.append((os.getpriority(os.PRIO_PROCESS, threading.get_native_id()), cv2.getNumThreads())))
    assert seen == [(min(before + HELPER_NICENESS, 19), 1)] * 3  # OpenCV's work stays on the niced helper
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == before and cv2.getNumThreads() == opencv_threads


def test_onnxruntime_threads_and_spinning_are_what_was_asked(checkpoint):
    model, info = load_checkpoint(checkpoint)
    alone = cached_onnx(checkpoint, model, info, (64, 32), CpuThreads(1))
    shared = cached_onnx(checkpoint, model, info, (64, 32), CpuThreads(2, spinning=False))
    assert alone.session.get_session_options().intra_op_num_threads == 1
    options = shared.session.get_session_options()
    assert options.intra_op_num_threads == 2
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    batch = np.random.default_rng(0).standard_normal((1, 3, 32, 64)).astype(np.float32)
    assert np.array_equal(alone.infer(batch), shared.infer(batch))  # scheduling never changes a class map


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2, reason="needs 2+ cores and Linux affinity")
def test_default_threads_follow_the_cores_this_process_may_use():
    code = ("import os; from dwrseg_rt.runtime.backends import default_threads; "
            "full = default_threads(); os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); print(full, default_threads())")
    full, pinned = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert pinned == "1"
    assert full == ("0" if len(os.sched_getaffinity(0)) == os.cpu_count() else str(len(os.sched_getaffinity(0))))


def test_streams_segment_frames_side_by_side_in_order_with_the_same_class_maps(checkpoint):
    """Two frames at once, each on one thread of one onnxruntime session: the class maps, and
    their order, are those of one frame at a time."""
    model, info = load_checkpoint(checkpoint)
    frames = [Frame(colourful(seed=i), i) for i in range(8)]
    alone = Segmenter(cached_onnx(checkpoint, model, info, (64, 32), CpuThreads(1)), info, (64, 32))
    expected = [alone.segment(frame.image) for frame in frames]
    backend = cached_onnx(checkpoint, model, info, (64, 32), CpuThreads(2, spinning=False, streams=2))
    assert backend.session.get_session_options().intra_op_num_threads == 1
    streamed = Segmenter(backend, info, (64, 32))
    infer, ran_on = backend.infer, set()

    def infer_and_note_the_thread(batch):
        ran_on.add(threading.get_ident())
        return infer(batch)

    backend.infer = infer_and_note_the_thread
    seen = []
    stats = run_pipeline(iter(frames), streamed, lambda frame, class_map: seen.append((frame.index, class_map)))
    assert [index for index, _ in seen] == list(range(8))
    assert all(np.array_equal(got, want) for (_, got), want in zip(seen, expected))
    assert streamed.in_flight == 2 and stats.streams == 2
    # on the streams' worker threads (at most two; the caller did only the untimed warm-up)
    assert 1 <= len(ran_on - {threading.get_ident()}) <= 2 and stats.stages["inference"]["count"] == 8


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="Linux affinity")
def test_files_get_two_streams_and_live_sources_and_other_backends_one():
    from dwrseg_rt.errors import UserError
    from dwrseg_rt.runtime.backends import cpu_threads

    cores = len(os.sched_getaffinity(0))
    assert cpu_threads("onnxruntime").streams == min(2, cores)
    assert cpu_threads("onnxruntime", live=True).streams == 1
    assert cpu_threads("torch").streams == 1
    assert cpu_threads("onnxruntime", threads=4, streams=2).per_stream() == 2
    assert cpu_threads("onnxruntime", threads=1, streams=2).per_stream() == 1  # never zero: that means "all cores"
    with pytest.raises(UserError, match="--streams"):
        cpu_threads("torch", streams=2)


def test_streams_on_the_command_line(clip, checkpoint, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    for masks, streams in ((one, "1"), (two, "2")):
        stats = tmp_path / f"stats{streams}.json"
        result = run_cli("video", clip, "--no-output", "--masks-dir", masks, "-w", checkpoint, "-b", "onnxruntime",
                         "--streams", streams, "--stats-json", stats)
        assert result.returncode == 0, result.stderr
        assert json.loads(stats.read_text())["streams"] == int(streams)
    names = sorted(p.name for p in one.glob("*.png"))
    assert names and names == sorted(p.name for p in two.glob("*.png"))
    assert all(np.array_equal(cv2.imread(str(one / n), cv2.IMREAD_UNCHANGED), cv2.imread(str(two / n), cv2.IMREAD_UNCHANGED)) for n in names)
    assert one_line_failure(run_cli("video", clip, "-o", tmp_path / "t.mp4", "-w", checkpoint, "-b", "torch", "--streams", "2"), "--streams")
    assert not (tmp_path / "t.mp4").exists()


def test_decoding_on_one_thread_gives_the_same_frames(clip):
    with VideoReader(clip) as threaded, VideoReader(clip) as single:
        single.decode_on_one_thread()
        assert single.stream.codec_context.thread_count == 1
        pairs = list(zip(threaded, single))
    assert pairs and all(np.array_equal(a, b) for a, b in pairs)
