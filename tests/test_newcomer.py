"""A new user's first hour: help, info, an export fed by its sidecar alone, output names, terminal output."""

from __future__ import annotations

import json
import re

import cv2
import numpy as np
import onnxruntime as ort
import pytest

from conftest import SMALL, run_cli
from dwrseg_rt.checkpoint import load_checkpoint
from dwrseg_rt.data.synth import Street
from dwrseg_rt.export.onnx import export_onnx
from dwrseg_rt.io.render import Renderer
from dwrseg_rt.runtime.backends import TorchBackend
from dwrseg_rt.runtime.segmenter import Segmenter
from media import make_video

COMMANDS = ["video", "synth", "train", "eval", "export", "bench", "ros-dds", "bag", "info"]


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_every_help_has_an_example_and_flags_take_no_value(command):
    result = run_cli(*([command] if command else []), "--help")
    assert result.returncode == 0, result.stderr
    assert "Example" in result.stdout
    assert "<bool>" not in result.stdout and "1024x512 as in the paper" not in result.stdout


def test_info_shows_classes_colours_and_the_input_at_80_columns_without_cutting_anything():
    result = run_cli("info", "--weights", "camvid", columns=80)
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert "…" not in text
    assert "RGB float32 NCHW" in text and "mean 123.675, 116.28, 103.53" in text
    for index, name in enumerate(["sky", "building", "pole", "road"]):
        assert f"│ {index:<2} │ {name}" in text
    assert "128, 64, 128" in text  # road's colour
    synth = run_cli("info", "--weights", "synth", columns=80).stdout
    assert "an earlier dwrseg_b_synth.pt" in synth  # not "started from" itself


def test_an_export_fed_by_its_sidecar_alone_segments_like_dwrseg_rt(checkpoint, tmp_path):
    """What a C++ user does: read the sidecar's input spec, build the tensor by hand, run the ONNX."""
    model, info = load_checkpoint(checkpoint)
    path = tmp_path / "m.onnx"
    export_onnx(model, info, path, SMALL, check=False)
    spec = json.loads((tmp_path / "m.onnx.json").read_text())["input"]
    assert (spec["layout"], spec["dtype"], spec["colour_order"]) == ("NCHW", "float32", "RGB")
    rgb = Street(seed=5, width=SMALL[0], height=SMALL[1]).render(0.3)[0]
    tensor = ((rgb.astype(np.float32) - np.float32(spec["mean"])) / np.float32(spec["std"])).transpose(2, 0, 1)[None]
    by_hand = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {spec["name"]: tensor})[0][0]
    reference = Segmenter(TorchBackend(model), info, SMALL).segment(rgb)
    assert (by_hand == reference).mean() > 0.999
    swapped = tensor[:, ::-1].copy()  # the wrong colour order gives another answer: the spec matters
    assert (ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"image": swapped})[0][0] != reference).any()


def test_a_legend_rendering_does_not_collide_with_the_plain_one(checkpoint, tmp_path):
    clip = make_video(tmp_path / "clip.mp4", frames=2)
    plain = run_cli("video", clip, "--weights", checkpoint)
    legend = run_cli("video", clip, "--legend", "--weights", checkpoint)
    assert plain.returncode == 0 and legend.returncode == 0, legend.stderr
    assert (tmp_path / "clip_overlay.mp4").is_file() and (tmp_path / "clip_overlay_legend.mp4").is_file()


def test_the_legend_names_classes_not_stray_pixels():
    palette = [[0, 0, 0], [255, 0, 0], [0, 255, 0]]
    renderer = Renderer(palette, ["road", "stray", "big"], "mask", legend=True)
    class_map = np.zeros((360, 480), np.uint8)
    class_map[300:, :] = 2  # a sixth of the frame
    class_map[200, 200] = 1  # one stray pixel
    strip = renderer(np.zeros((360, 480, 3), np.uint8), class_map)[:40]
    assert (strip == [0, 255, 0]).all(axis=2).any()  # the big class's swatch
    assert not (strip == [255, 0, 0]).all(axis=2).any()  # no swatch for one pixel


def test_summaries_wrap_between_figures_never_inside_one(checkpoint, synth_root, tmp_path):
    clip = make_video(tmp_path / "clip.mp4", frames=2)
    video = run_cli("video", clip, "--weights", checkpoint, "-o", tmp_path / "o.mp4", columns=80)
    assert video.returncode == 0, video.stderr
    for figure in (r"pipeline \d+\.\d fps", r"model \d+\.\d fps", r"on onnxruntime @ 256x128"):
        assert re.search(figure, video.stdout), video.stdout  # each on one line
    scores = run_cli("eval", "--dataset", "synth", "--data", synth_root, "--weights", checkpoint, "--split", "val", columns=80)
    assert scores.returncode == 0, scores.stderr
    assert any("pixel accuracy" in line and "%" in line for line in scores.stdout.splitlines())
    assert all(len(line) <= 80 for line in scores.stdout.splitlines())


def test_image_outputs_are_named_after_the_rendering_too(checkpoint, tmp_path):
    image = tmp_path / "street.png"
    cv2.imwrite(str(image), np.full((64, 96, 3), 90, np.uint8))
    assert run_cli("video", image, "--mask", "--legend", "--weights", checkpoint).returncode == 0
    assert (tmp_path / "street_mask_legend.png").is_file()
