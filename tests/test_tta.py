"""--tta flip: each frame averaged with its mirror image, on every backend, for offline jobs."""

import json

import numpy as np
import pytest
import torch

from conftest import SMALL, one_line_failure, run_cli
from dwrseg_rt.checkpoint import load_checkpoint
from dwrseg_rt.model.tta import FlipAveraged
from dwrseg_rt.runtime.backends import load_backend
from dwrseg_rt.runtime.segmenter import Segmenter


def street(seed: int = 0) -> np.ndarray:
    from dwrseg_rt.data.synth import Street

    return Street(seed=seed, width=SMALL[0], height=SMALL[1]).render(0.3)[0]


def test_flip_averaged_logits_are_the_mean_of_both_views(checkpoint):
    model, _ = load_checkpoint(checkpoint)
    image = torch.rand(2, 3, SMALL[1], SMALL[0])
    with torch.inference_mode():
        expected = (model(image) + model(image.flip(3)).flip(3)) / 2
        assert torch.allclose(FlipAveraged(model)(image), expected, atol=1e-5)


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_a_mirrored_frame_gets_the_mirrored_class_map(checkpoint, backend):
    """What flip averaging guarantees (and an untrained plain model does not): left and right
    are treated alike, so a mirrored camera sees a mirrored segmentation."""
    frame = street()
    mirrored = np.ascontiguousarray(frame[:, ::-1])
    plain = Segmenter(*load_backend(checkpoint, backend, SMALL))
    flip = Segmenter(*load_backend(checkpoint, backend, SMALL, tta="flip"))
    assert not np.array_equal(plain.segment(mirrored), plain.segment(frame)[:, ::-1])
    assert (flip.segment(mirrored) == flip.segment(frame)[:, ::-1]).mean() > 0.999


def test_eval_reports_the_tta_it_scored_with(checkpoint, synth_root, tmp_path):
    report = tmp_path / "flip.json"
    result = run_cli("eval", "--dataset", "synth", "--data", synth_root, "--split", "val", "-w", checkpoint,
                     "-b", "onnxruntime", "--size", "256x128", "--tta", "flip", "--json", report)
    assert result.returncode == 0, result.stderr
    assert json.loads(report.read_text())["tta"] == "flip"


def test_tta_on_an_export_or_an_unknown_mode_is_refused_in_one_line(checkpoint, clip, tmp_path):
    onnx = tmp_path / "tiny.onnx"
    assert run_cli("export", "-w", checkpoint, "-o", onnx, "--size", "256x128").returncode == 0
    result = run_cli("video", clip, "-o", tmp_path / "out.mp4", "-w", onnx, "-b", "onnxruntime", "--tta", "flip")
    assert one_line_failure(result, "needs a .pt checkpoint")
    result = run_cli("video", clip, "-o", tmp_path / "out.mp4", "-w", checkpoint, "--tta", "rotate")
    assert one_line_failure(result, "--tta must be one of none, flip")
    assert not (tmp_path / "out.mp4").exists()
