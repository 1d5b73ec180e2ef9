import json

import numpy as np
import onnx

from conftest import run_cli
from dwrseg_rt.checkpoint import load_checkpoint, read_sidecar
from dwrseg_rt.export.onnx import OPSET, export_onnx, sample_image
from dwrseg_rt.runtime.backends import OnnxRuntimeBackend, TorchBackend
from dwrseg_rt.runtime.segmenter import Segmenter


def test_onnx_export_agrees_with_torch(checkpoint, tmp_path):
    model, info = load_checkpoint(checkpoint)
    path = tmp_path / "m.onnx"
    report = export_onnx(model, info, path, (256, 128))
    assert report["argmax_agreement"] >= 0.999
    assert report["max_abs_logit_diff"] < 1e-2
    graph = onnx.load(str(path))
    assert graph.opset_import[0].version == OPSET
    assert [o.name for o in graph.graph.output] == ["class_map", "logits"]
    sidecar_info, sidecar = read_sidecar(path)
    assert sidecar_info == info and sidecar["inference_size"] == [256, 128]


def test_onnxruntime_and_torch_segmenters_agree_on_a_street(checkpoint, tmp_path):
    model, info = load_checkpoint(checkpoint)
    export_onnx(model, info, tmp_path / "m.onnx", (256, 128), check=False)
    frame = sample_image((300, 170))  # not the inference size: exercises resize both ways
    by_torch = Segmenter(TorchBackend(model), info, (256, 128)).segment(frame)
    by_ort = Segmenter(OnnxRuntimeBackend(tmp_path / "m.onnx"), info, (256, 128)).segment(frame)
    assert by_torch.shape == (170, 300)
    assert (by_torch == by_ort).mean() >= 0.999


def test_export_command_prints_parity_and_refuses_to_overwrite(checkpoint, tmp_path):
    output = tmp_path / "m.onnx"
    result = run_cli("export", "--weights", checkpoint, "--size", "256x128", "-o", output)
    assert result.returncode == 0, result.stderr
    assert "argmax agreement" in result.stdout
    parity = json.loads((tmp_path / "m.onnx.json").read_text())["parity"]
    assert parity["argmax_agreement"] >= 0.999
    again = run_cli("export", "--weights", checkpoint, "--size", "256x128", "-o", output)
    assert again.returncode != 0 and "--force" in again.stderr


def test_video_runs_on_an_exported_onnx(clip, checkpoint, tmp_path):
    model, info = load_checkpoint(checkpoint)
    export_onnx(model, info, tmp_path / "m.onnx", (256, 128), check=False)
    result = run_cli("video", clip, "-o", tmp_path / "o.mp4", "--weights", tmp_path / "m.onnx", "--backend", "onnxruntime")
    assert result.returncode == 0, result.stderr
    wrong = run_cli("video", clip, "-o", tmp_path / "p.mp4", "--weights", tmp_path / "m.onnx", "--size", "512x256", "--backend", "onnxruntime")
    assert wrong.returncode != 0 and "exported for 256x128" in wrong.stderr
    assert np.isfinite(info.mean).all()
