import json

import cv2
import numpy as np
import onnx
import pytest
from conftest import half_export_runs_here, one_line_failure, run_cli

from dwrseg_rt.checkpoint import SHIPPED_WEIGHTS, load_checkpoint, read_sidecar
from dwrseg_rt.export.onnx import OPSET, export_onnx, sample_image
from dwrseg_rt.jobs.segment import load_segmenter
from dwrseg_rt.runtime.backends import OnnxRuntimeBackend, TorchBackend
from dwrseg_rt.runtime.segmenter import Segmenter, size_for_frame


def test_onnx_export_agrees_with_torch(checkpoint, tmp_path):
    model, info = load_checkpoint(checkpoint)
    path = tmp_path / "m.onnx"
    report = export_onnx(model, info, path, (256, 128))
    assert report["argmax_agreement"] >= 0.999 and report["backend"].startswith("onnxruntime 1.")
    assert report["max_abs_logit_diff"] < 1e-2
    assert read_sidecar(path)[1]["parity"] == report  # the sidecar carries the check's result
    assert (tmp_path / "m.onnx.json").read_text().startswith('{\n  "format"')  # indented for people to read
    graph = onnx.load(str(path))
    assert graph.opset_import[0].version == OPSET
    assert [o.name for o in graph.graph.output] == ["class_map"]
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
    assert parity["argmax_agreement"] >= 0.999 and parity["backend"].startswith("onnxruntime 1.")
    again = run_cli("export", "--weights", checkpoint, "--size", "256x128", "-o", output)
    assert again.returncode != 0 and "--force" in again.stderr


def test_video_on_an_exported_onnx_gives_the_masks_of_its_checkpoint(clip, tmp_path):
    weights = SHIPPED_WEIGHTS["synth"]  # trained: its masks are stable under float-level differences
    model, info = load_checkpoint(weights)
    export_onnx(model, info, tmp_path / "m.onnx", (256, 128), check=False)
    for name, source, backend in (("onnx", tmp_path / "m.onnx", "onnxruntime"), ("pt", weights, "torch")):
        result = run_cli("video", clip, "-o", tmp_path / f"{name}.mp4", "--weights", source, "--backend", backend,
                         "--size", "256x128", "--masks-dir", tmp_path / name)
        assert result.returncode == 0, result.stderr
    pairs = [(cv2.imread(str(p), cv2.IMREAD_UNCHANGED), cv2.imread(str(tmp_path / "pt" / p.name), cv2.IMREAD_UNCHANGED))
             for p in sorted((tmp_path / "onnx").glob("*.png"))]
    assert len(pairs) == 12 and np.mean([(a == b).mean() for a, b in pairs]) > 0.999
    wrong = run_cli("video", clip, "-o", tmp_path / "p.mp4", "--weights", tmp_path / "m.onnx", "--size", "512x256", "--backend", "onnxruntime")
    assert wrong.returncode != 0 and "exported for 256x128" in wrong.stderr


def test_parity_reports_an_onnx_that_diverges_from_its_checkpoint(checkpoint, tmp_path):
    import torch

    from dwrseg_rt.errors import UserError
    from dwrseg_rt.export.onnx import check_parity, parity_report
    from dwrseg_rt.model import build_model

    model, info = load_checkpoint(checkpoint)
    torch.manual_seed(1)
    other = build_model("b", 19).eval()  # another network's export under this checkpoint's name
    export_onnx(other, info, tmp_path / "other.onnx", (256, 128), check=False)
    report = parity_report(model, info, tmp_path / "other.onnx", (256, 128))
    assert report["argmax_agreement"] < 0.9 and report["max_abs_logit_diff"] > 0.1
    with pytest.raises(UserError, match=rf"argmax agreement {report['argmax_agreement'] * 100:.2f}% "):
        check_parity(report)
    with pytest.raises(UserError, match=r"argmax agreement 99\.80%"):
        check_parity({"argmax_agreement": 0.998, "max_abs_logit_diff": 0.5})
    check_parity({"argmax_agreement": 0.999, "max_abs_logit_diff": 0.01})  # the bar itself passes
    check_parity(parity_report(model, info, export_and_path(model, info, tmp_path / "same.onnx"), (256, 128)))


def export_and_path(model, info, path):
    export_onnx(model, info, path, (256, 128), check=False)
    return path


@pytest.mark.parametrize("class_dtype,half", [(None, None), ("int32", False), ("uint8", True)])
def test_export_variants_take_any_batch_and_say_what_they_are(checkpoint, tmp_path, class_dtype, half):
    """The default export (uint8 ids, fp32), TensorRT's (int32 ids) and the half-precision one
    (fp16 inside, fp32 in and out): batch size free, sidecar describing the graph."""
    import onnxruntime as ort
    import torch

    from dwrseg_rt.export.onnx import GRAPH_REVISION
    from dwrseg_rt.runtime.preprocess import normalize

    model, info = load_checkpoint(checkpoint)
    reference = {k: v.clone() for k, v in model.state_dict().items()}
    norms = sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    if half and not half_export_runs_here():
        pytest.skip("this torch has no fp16 convolution on the CPU (torch < 2.2); the half export is traced on a GPU")
    options = {} if class_dtype is None else {"class_dtype": getattr(torch, class_dtype), "half": half}
    export_onnx(model, info, tmp_path / "m.onnx", (256, 128), check=False, **options)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in reference.items())  # the caller's model is untouched
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules()) == norms  # (its BNs not folded away)
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    frames = np.stack([sample_image((256, 128)), sample_image((256, 128))[:, ::-1]])
    (class_map,) = session.run(None, {"image": normalize(frames, info.mean, info.std)})
    expected_dtype = class_dtype or "uint8"
    assert class_map.shape == (2, 128, 256) and class_map.dtype == np.dtype(expected_dtype)
    with torch.inference_mode():
        torch_map = model.eval()(torch.from_numpy(normalize(frames, info.mean, info.std))).argmax(1).numpy()
    assert (class_map == torch_map).mean() > (0.97 if half else 0.999)
    weights = [i for i in onnx.load(str(tmp_path / "m.onnx")).graph.initializer if len(i.dims) == 4]
    assert {w.data_type for w in weights} == {onnx.TensorProto.FLOAT16 if half else onnx.TensorProto.FLOAT}
    graph = onnx.load(str(tmp_path / "m.onnx")).graph
    assert [v.type.tensor_type.shape.dim[0].dim_param for v in (graph.input[0], graph.output[0])] == ["batch", "batch"]
    sidecar = read_sidecar(tmp_path / "m.onnx")[1]
    assert sidecar["parity"] == {}  # check=False: no parity run
    assert (sidecar["opset"], sidecar["graph_revision"], sidecar["outputs"]) == (OPSET, GRAPH_REVISION, ["class_map"])
    assert (sidecar["class_dtype"], sidecar["half"]) == (expected_dtype, bool(half))


def test_the_deploy_wrapper_defaults_to_fp32_and_uint8_ids(checkpoint):
    import torch

    from dwrseg_rt.export.onnx import DeployModel

    deploy = DeployModel(load_checkpoint(checkpoint)[0])
    assert {p.dtype for p in deploy.parameters()} == {torch.float32}
    with torch.inference_mode():
        assert deploy(torch.zeros(1, 3, 64, 128)).dtype == torch.uint8


def test_a_dynamic_onnx_runs_each_frame_at_its_own_aspect_with_the_masks_of_fixed_exports(checkpoint, tmp_path):
    model, info = load_checkpoint(checkpoint)
    result = run_cli("export", "--weights", checkpoint, "--dynamic", "-o", tmp_path / "any.onnx")
    assert result.returncode == 0, result.stderr
    assert read_sidecar(tmp_path / "any.onnx")[1]["dynamic_size"] is True
    segmenter = load_segmenter(tmp_path / "any.onnx", "onnxruntime", None)
    for frame_size in ((320, 160), (240, 180), (400, 100)):  # 2:1, 4:3, 4:1: three sizes, one session
        frame = sample_image(frame_size)
        size = size_for_frame(info.input_size, *frame_size)
        export_onnx(model, info, tmp_path / "fixed.onnx", size, check=False)
        fixed = Segmenter(OnnxRuntimeBackend(tmp_path / "fixed.onnx"), info, size).segment(frame)
        assert (segmenter.segment(frame) == fixed).mean() >= 0.999 and segmenter.size == size
    forced = load_segmenter(tmp_path / "any.onnx", "onnxruntime", (160, 120))  # --size picks one, as for a checkpoint
    assert forced.segment(sample_image((320, 160))).shape == (160, 320) and forced.size == (160, 120)


def test_a_dynamic_int8_export_runs_at_any_size_and_an_engine_is_never_dynamic(checkpoint, tmp_path):
    result = run_cli("export", "--weights", checkpoint, "--dynamic", "-p", "int8", "-o", tmp_path / "any_int8.onnx")
    assert result.returncode == 0, result.stderr
    backend = OnnxRuntimeBackend(tmp_path / "any_int8.onnx", "int8")
    assert backend.any_size and read_sidecar(tmp_path / "any_int8.onnx")[1]["dynamic_size"] is True
    for width, height in ((256, 128), (160, 120)):
        assert backend.infer(np.zeros((1, 3, height, width), np.float32)).shape == (1, height, width)
    engine = run_cli("export", "--weights", checkpoint, "--format", "engine", "--dynamic")
    assert one_line_failure(engine, "--dynamic is for --format onnx")
