"""`dwrseg-rt bench`: one run, a table across backends, and a JSON a later run can be compared with."""

import json
import os

import pytest

from conftest import run_cli

LATENCY_KEYS = {"mean", "median", "p90", "p95", "p99", "min", "max"}


def test_bench_compares_backends_model_only_and_through_the_pipeline(checkpoint, clip, tmp_path):
    report_path = tmp_path / "bench.json"
    result = run_cli("bench", "-b", "torch", "-b", "onnxruntime", "--weights", checkpoint, "--warmup", "1", "--iterations", "5",
                     "--clip", clip, "--json", report_path)
    assert result.returncode == 0, result.stderr
    assert "torch" in result.stdout and "onnxruntime" in result.stdout and "encode alone" in result.stdout
    report = json.loads(report_path.read_text())
    assert report["machine"]["python"] and report["settings"]["iterations"] == 5 and report["settings"]["batch"] == 1
    assert [entry["backend"] for entry in report["results"]] == ["torch", "onnxruntime"]
    alone = report["stages_alone"]
    for entry in report["results"]:
        model, pipeline = entry["model"], entry["pipeline"]
        latency = model["latency_ms"]
        assert LATENCY_KEYS <= set(latency) and latency["min"] <= latency["median"] <= latency["p99"] <= latency["max"]
        assert model["size"] == [256, 128] and model["iterations"] == 5
        # as many calls in flight as a pipeline on a file runs at once: two onnxruntime streams on 2+ cores
        streams = 1 if entry["backend"] == "torch" else min(2, len(os.sched_getaffinity(0)))
        assert model["in_flight"] == model["streams"] == streams and pipeline["streams"] == streams
        if streams == 1:  # throughput is then the mean call's rate: between the slowest call's and the fastest's
            assert 1000.0 / latency["max"] <= model["throughput_fps"] <= 1000.0 / latency["min"]
        else:  # timed on its own, with calls overlapping: no bound from the one-at-a-time latencies on a loaded machine
            assert model["throughput_fps"] > 0
        assert pipeline["frames"] == 12 and pipeline["pipeline_fps"] > 0
        assert entry["pipeline_over_slowest_stage"] > 0 and alone["decode_only_fps"] > 0 and alone["encode_only_fps"] > 0


def test_bench_puts_fp32_and_int8_side_by_side_in_80_columns(checkpoint, tmp_path):
    import os
    import subprocess
    import sys

    env = {**os.environ, "COLUMNS": "80"}
    result = subprocess.run([sys.executable, "-m", "dwrseg_rt", "bench", "--weights", str(checkpoint), "--warmup", "0",
                             "--iterations", "2", "--json", str(tmp_path / "b.json")], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "b.json").read_text())
    assert [entry["backend"] for entry in report["results"]] == ["torch", "onnxruntime", "onnxruntime-int8"]
    lines = result.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines) and "…" not in result.stdout
    overlapped = [entry["backend"] for entry in report["results"] if entry["model"]["in_flight"] > 1]
    assert ("--streams 1" in result.stdout) == bool(overlapped)  # a latency measured with frames overlapping says so
    rows = {line.split()[0]: line.split() for line in lines if line.strip().startswith(("torch", "onnxruntime"))}
    assert set(rows) == {"torch", "onnxruntime", "onnxruntime-int8"}
    speedup = float(rows["onnxruntime-int8"][2].rstrip("x"))  # model fps over the first row's (torch)
    fps = {entry["backend"]: entry["model"]["throughput_fps"] for entry in report["results"]}
    assert speedup == pytest.approx(fps["onnxruntime-int8"] / fps["torch"], abs=0.006)


def test_bench_with_a_batch_counts_frames_not_calls(checkpoint, tmp_path):
    result = run_cli("bench", "-b", "onnxruntime", "--weights", checkpoint, "--batch", "3", "--warmup", "1", "--iterations", "3",
                     "--streams", "1", "--json", tmp_path / "b.json")
    assert result.returncode == 0, result.stderr
    model = json.loads((tmp_path / "b.json").read_text())["results"][0]["model"]
    assert model["batch"] == 3
    latency = model["latency_ms"]  # per call of 3 frames, one call at a time: the rate counts frames
    assert model["in_flight"] == 1
    assert 3 * 1000.0 / latency["max"] <= model["throughput_fps"] <= 3 * 1000.0 / latency["min"]


def test_bench_rejects_what_it_cannot_measure_or_write_before_measuring(checkpoint, tmp_path):
    unknown = run_cli("bench", "-b", "tpu", "--weights", checkpoint)
    assert unknown.returncode == 2 and "unknown backend 'tpu'" in unknown.stderr and "Traceback" not in unknown.stderr
    precision = run_cli("bench", "-b", "onnxruntime", "-p", "fp16", "--weights", checkpoint)
    assert precision.returncode == 2 and "onnxruntime runs fp32 or int8" in precision.stderr
    tensorrt = run_cli("bench", "-b", "tensorrt", "--weights", checkpoint)
    assert tensorrt.returncode == 2 and len(tensorrt.stderr.strip().splitlines()) == 1
    earlier = tmp_path / "earlier.json"
    earlier.write_text("{}")
    kept = run_cli("bench", "-b", "onnxruntime", "--weights", checkpoint, "--json", earlier)
    assert kept.returncode == 2 and "--force" in kept.stderr and earlier.read_text() == "{}" and "bench" not in kept.stdout
    missing = run_cli("bench", "-b", "onnxruntime", "--weights", checkpoint, "--json", tmp_path / "no" / "b.json")
    assert missing.returncode == 2 and "does not exist" in missing.stderr


def test_reports_name_no_absolute_paths_of_this_machine(tmp_path):
    """Committed results must not carry home folders: paths become relative or bare names."""
    from dwrseg_rt.environment import portable

    report = {"weights": str(tmp_path / "w" / "model.pt"), "mix": [f"synth:{tmp_path}/streets"], "url": "rtsp://cam/1",
              "inside": str(tmp_path / "runs" / "log.csv"), "n": 3, "text": "a: /not a path\nsecond line"}
    assert portable(report, root=tmp_path / "runs") == {**report, "weights": "model.pt", "mix": ["synth:streets"],
                                                        "inside": "log.csv"}
    from pathlib import Path

    for path in (Path(__file__).parent.parent / "benchmarks" / "results").glob("*.json"):
        text = path.read_text()
        assert '"/' not in text and ':/work' not in text and ':/home' not in text, path.name
