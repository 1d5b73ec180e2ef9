"""The CPU fast path: BN folding, single-output exports, and INT8 on onnxruntime calibrated
on real folders, cached, and held to the fp32 model's class maps."""

import json
import os

import cv2
import numpy as np
import onnx
import pytest
import torch

from conftest import SMALL, run_cli
from dwrseg_rt.checkpoint import SHIPPED_WEIGHTS, load_checkpoint, read_sidecar
from dwrseg_rt.errors import UserError
from dwrseg_rt.export.calibration import MIN_IMAGES, calibration_digest, calibration_images
from dwrseg_rt.export.fold import fold_batchnorms
from dwrseg_rt.export.onnx import export_onnx, sample_image
from dwrseg_rt.model import build_model
from dwrseg_rt.runtime.backends import load_backend
from dwrseg_rt.runtime.segmenter import Segmenter


def write_frames(folder, count, junk=0):
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        cv2.imwrite(str(folder / f"{index:03d}.png"), cv2.cvtColor(sample_image(SMALL), cv2.COLOR_RGB2BGR)[:, ::-1] // (1 + index % 3))
    for index in range(junk):
        (folder / f"junk{index}.png").write_text("not an image")
    return folder


def test_folding_the_batchnorms_before_1x1_convs_is_exact():
    torch.manual_seed(0)
    model = build_model("b", 7)
    for module in model.modules():  # trained-looking statistics: folding must use them all
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-1, 1), module.running_var.uniform_(0.5, 2)
            module.weight.data.uniform_(0.5, 1.5), module.bias.data.uniform_(-0.5, 0.5)
    model.eval()
    folded = build_model("b", 7).eval()
    folded.load_state_dict(model.state_dict())
    assert fold_batchnorms(folded) == 7 + 6  # one per SIR block and one per DWR block
    image = torch.randn(1, 3, 128, 256)
    with torch.no_grad():
        expected = model(image)
        # float32 rounding grows with the logits (hundreds here) and differs by CPU kernel (AVX2 vs AVX-512)
        scale = expected.abs().max().item()
        torch.testing.assert_close(folded(image), expected, rtol=1e-4, atol=1e-5 * scale)
    norms = [name for name, m in folded.named_modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert "decoder_norm" in norms  # feeds a padded 3x3 conv: left alone


def test_the_export_has_only_the_class_map_and_one_batchnorm(checkpoint, tmp_path):
    model, info = load_checkpoint(checkpoint)
    export_onnx(model, info, tmp_path / "m.onnx", SMALL, check=False)
    graph = onnx.load(str(tmp_path / "m.onnx"))
    assert [o.name for o in graph.graph.output] == ["class_map"]
    assert [n.op_type for n in graph.graph.node].count("BatchNormalization") == 1


def test_calibration_folders_are_checked_and_digested(tmp_path):
    folder = write_frames(tmp_path / "frames", MIN_IMAGES, junk=2)
    before = calibration_digest(calibration_images(folder, 64))
    assert calibration_digest(calibration_images(folder, 64)) == before and len(calibration_images(folder, 64)) == MIN_IMAGES
    cv2.imwrite(str(folder / "003.png"), np.zeros((9, 8, 3), np.uint8))  # one image replaced
    assert calibration_digest(calibration_images(folder, 64)) != before
    os.remove(folder / "003.png")
    with pytest.raises(UserError, match=f"holds {MIN_IMAGES - 1} readable images"):  # the junk files do not count
        calibration_images(folder, 64)
    with pytest.raises(UserError, match="not a folder"):
        calibration_images(tmp_path / "missing", 64)
    many = write_frames(tmp_path / "many", 40)
    picked = [int(p.stem) for p in calibration_images(many, 10)]
    assert picked == list(range(0, 40, 4))  # spread along the sequence, not its first 10 frames


@pytest.fixture
def synth_int8():
    """The shipped synthetic-world model at 256x128, fp32 and INT8 (default calibration; built
    into the session's cache by the first test that asks)."""
    weights = SHIPPED_WEIGHTS["synth"]
    return [Segmenter(*load_backend(weights, "onnxruntime", SMALL, precision=p)) for p in ("fp32", "int8")]


def test_int8_keeps_the_class_maps_of_fp32(synth_int8, clip):
    fp32, int8 = synth_int8
    assert (fp32.backend.name, int8.backend.name) == ("onnxruntime", "onnxruntime-int8")
    capture = cv2.VideoCapture(str(clip))
    frames = [cv2.cvtColor(capture.read()[1], cv2.COLOR_BGR2RGB) for _ in range(6)]
    agreement = np.mean([(fp32.segment(f) == int8.segment(f)).mean() for f in frames])
    assert agreement >= 0.97, agreement
    graph = onnx.load(int8.backend.path)
    ops = [n.op_type for n in graph.graph.node]
    assert ops.count("QuantizeLinear") > 20  # really quantized
    first = next(n for n in graph.graph.node if n.op_type == "Conv" and n.input[0] == "image")  # kept fp32
    producers = {o: n.op_type for n in graph.graph.node for o in n.output}
    assert producers[next(n for n in graph.graph.node if n.op_type == "ArgMax").input[0]] == "Resize"
    assert first is not None


def test_int8_is_built_once_per_calibration_set_and_rebuilt_when_damaged(synth_int8, tmp_path):
    int8 = synth_int8[1]
    path = int8.backend.path
    stamp = os.stat(path).st_mtime_ns
    again = load_backend(SHIPPED_WEIGHTS["synth"], "onnxruntime", SMALL, precision="int8")[0]
    assert again.path == path and os.stat(path).st_mtime_ns == stamp
    from dwrseg_rt.export.tensorrt import EngineOptions

    frames = write_frames(tmp_path / "frames", MIN_IMAGES)
    own = load_backend(SHIPPED_WEIGHTS["synth"], "onnxruntime", SMALL, precision="int8", engine=EngineOptions(frames))[0]
    assert own.path != path
    with open(path, "r+b") as handle:
        handle.truncate(1000)
    rebuilt = load_backend(SHIPPED_WEIGHTS["synth"], "onnxruntime", SMALL, precision="int8")[0]
    assert rebuilt.path == path and os.path.getsize(path) > 100_000


def test_int8_at_the_command_line(checkpoint, clip, tmp_path):
    few = write_frames(tmp_path / "few", MIN_IMAGES - 1)
    refused = run_cli("video", clip, "-o", tmp_path / "v.mp4", "--weights", checkpoint, "-p", "int8", "--calibration", few)
    assert refused.returncode == 2 and "at least 8" in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "v.mp4").exists()
    torch_int8 = run_cli("video", clip, "-o", tmp_path / "v.mp4", "--weights", checkpoint, "-b", "torch", "-p", "int8")
    assert torch_int8.returncode == 2 and "--backend onnxruntime" in torch_int8.stderr
    frames = write_frames(tmp_path / "frames", MIN_IMAGES)
    exported = run_cli("export", "--weights", checkpoint, "-p", "int8", "--calibration", frames, "-o", tmp_path / "m8.onnx")
    assert exported.returncode == 0, exported.stderr
    assert read_sidecar(tmp_path / "m8.onnx")[1]["precision"] == "int8" and "agreement" in exported.stdout
    assert "int8 at 256x128" in run_cli("info", "--weights", tmp_path / "m8.onnx").stdout
    ran = run_cli("video", clip, "-o", tmp_path / "v.mp4", "--weights", tmp_path / "m8.onnx", "-b", "onnxruntime",
                  "--stats-json", tmp_path / "s.json")
    assert ran.returncode == 0, ran.stderr
    assert json.loads((tmp_path / "s.json").read_text())["backend"] == "onnxruntime-int8"
    mismatch = run_cli("video", clip, "-o", tmp_path / "w.mp4", "--weights", tmp_path / "m8.onnx", "-b", "onnxruntime", "-p", "fp32")
    assert mismatch.returncode == 2 and "is an int8 model" in mismatch.stderr


def test_eval_int8_reports_the_drift_from_fp32(synth_root, tmp_path):
    report = tmp_path / "eval.json"
    result = run_cli("eval", "--dataset", "synth", "--data", synth_root, "--split", "val", "--weights", "synth",
                     "--size", "256x128", "-b", "onnxruntime", "-p", "int8", "--json", report)
    assert result.returncode == 0, result.stderr
    data = json.loads(report.read_text())
    assert data["backend"] == "onnxruntime-int8" and data["reference"]["backend"] == "onnxruntime"
    assert data["miou_drift_points"] == pytest.approx((data["miou"] - data["reference"]["miou"]) * 100)
    assert 0.9 < data["agreement"] <= 1 and "drift" in result.stdout


def test_folding_keeps_a_convs_own_bias_and_skips_what_it_cannot_fold_exactly():
    torch.manual_seed(1)
    norm = torch.nn.BatchNorm2d(4).eval()
    norm.running_mean.uniform_(-1, 1), norm.running_var.uniform_(0.5, 2), norm.bias.data.uniform_(-1, 1)
    pairs = {"1x1 with bias": torch.nn.Conv2d(4, 3, 1, bias=True), "3x3": torch.nn.Conv2d(4, 3, 3, padding=1),
             "grouped": torch.nn.Conv2d(4, 4, 1, groups=2)}
    for name, conv in pairs.items():
        block = torch.nn.Sequential(norm, conv).eval()
        image = torch.randn(2, 4, 8, 8)
        with torch.no_grad():
            before = block(image)
            folded = fold_batchnorms(block)
            torch.testing.assert_close(block(image), before, rtol=1e-5, atol=1e-5)
        assert folded == (1 if name == "1x1 with bias" else 0), name
