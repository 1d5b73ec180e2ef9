"""Contracts checked against an independent reference, with the trained synthetic-world model on
synthetic streets (an untrained model's masks would hide channel swaps and similar bugs):
what `video` writes equals `Segmenter.segment` on the correctly decoded RGB frame."""

import math

import av
import cv2
import numpy as np
import pytest
import torch

from conftest import run_cli
from dwrseg_rt.checkpoint import SHIPPED_WEIGHTS, load_checkpoint
from dwrseg_rt.data.synth import Street
from dwrseg_rt.runtime.backends import TorchBackend
from dwrseg_rt.runtime.segmenter import Segmenter
from dwrseg_rt.train.loss import OhemCrossEntropy
from media import make_video

SYNTH = SHIPPED_WEIGHTS["synth"]
SIZE = (256, 128)


@pytest.fixture(scope="module")
def reference():
    model, info = load_checkpoint(SYNTH)
    return Segmenter(TorchBackend(model), info, SIZE)


def decoded_frames(path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def test_video_masks_equal_the_segmenter_on_the_rgb_frames_and_not_on_bgr(reference, tmp_path):
    clip = make_video(tmp_path / "street.mp4", frames=4, size=SIZE)
    result = run_cli("video", clip, "-o", tmp_path / "out.mp4", "--masks-dir", tmp_path / "ids", "--weights", SYNTH,
                     "--backend", "torch", "--size", f"{SIZE[0]}x{SIZE[1]}")
    assert result.returncode == 0, result.stderr
    for index, rgb in enumerate(decoded_frames(clip)):
        written = cv2.imread(str(tmp_path / "ids" / f"street_{index:06d}.png"), cv2.IMREAD_UNCHANGED)
        assert np.array_equal(written, reference.segment(rgb))
        assert (written == reference.segment(np.ascontiguousarray(rgb[..., ::-1]))).mean() < 0.97  # a BGR swap would show


def test_image_masks_equal_the_segmenter_for_color_gray_and_rgba_inputs(reference, tmp_path):
    rgb = Street(3, *SIZE).render(0.4)[0]
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    folder = tmp_path / "frames"
    folder.mkdir()
    cv2.imwrite(str(folder / "color.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(folder / "gray.png"), gray)
    cv2.imwrite(str(folder / "alpha.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGRA))
    result = run_cli("video", folder, "-o", tmp_path / "out", "--masks-dir", tmp_path / "ids", "--weights", SYNTH,
                     "--backend", "torch", "--size", f"{SIZE[0]}x{SIZE[1]}")
    assert result.returncode == 0, result.stderr
    expected = {"color": reference.segment(rgb), "alpha": reference.segment(rgb),
                "gray": reference.segment(cv2.cvtColor(gray, cv2.COLOR_GRAY2RGB))}
    for name, mask in expected.items():
        assert np.array_equal(cv2.imread(str(tmp_path / "ids" / f"{name}.png"), cv2.IMREAD_UNCHANGED), mask), name
    assert (expected["color"] == reference.segment(np.ascontiguousarray(rgb[..., ::-1]))).mean() < 0.97


def test_ignore_class_leaves_the_frame_and_legend_draws_only_a_thin_top_strip(reference, tmp_path):
    from dwrseg_rt.io.render import Renderer

    rgb = Street(3, *SIZE).render(0.4)[0]
    class_map = reference.segment(rgb)
    road = reference.info.classes.index("road")
    assert (class_map == road).mean() > 0.1  # the check below has pixels to look at
    info = reference.info
    overlay = Renderer(info.palette, info.classes, "overlay", 0.5, ignore=(road,))(rgb, class_map)
    on_road = class_map == road
    assert np.array_equal(overlay[on_road], rgb[on_road]) and not np.array_equal(overlay[~on_road], rgb[~on_road])
    frame = Street(3, 960, 540).render(0.4)[0]  # the size at which the old legend hid a car
    class_map = reference.segment(frame)
    plain = Renderer(info.palette, info.classes, "overlay", 0.5)(frame, class_map)
    legend = Renderer(info.palette, info.classes, "overlay", 0.5, legend=True, title="synth")(frame, class_map)
    changed_rows = np.flatnonzero((legend != plain).any(axis=(1, 2)))
    assert changed_rows.size and changed_rows.max() < 540 * 0.08  # a strip along the top edge, the scene below untouched
    present = {info.classes[c] for c in np.unique(class_map)}
    assert len(present) < len(info.classes)  # so "only the classes in view" is a real restriction


def ohem_case(losses: list[float]) -> tuple[torch.Tensor, torch.Tensor]:
    """Two-class logits whose per-pixel cross-entropy is exactly `losses` (target class 0)."""
    p = torch.tensor([math.exp(-v) for v in losses])  # probability of the target
    logits = torch.stack([torch.log(p), torch.log1p(-p)]).view(1, 2, 1, -1)
    return logits, torch.zeros(1, 1, len(losses), dtype=torch.long)


def test_ohem_averages_exactly_the_pixels_below_the_probability_threshold():
    threshold = -math.log(0.7)  # loss of a pixel whose target probability is 0.7
    losses = [threshold - 0.05, threshold - 0.01, threshold + 0.01, threshold + 0.3, 2.0] + [0.01] * 11  # 16 pixels
    logits, target = ohem_case(losses)
    loss = OhemCrossEntropy(threshold=0.7, min_fraction=1 / 16)(logits, target)
    assert float(loss) == pytest.approx(np.mean([threshold + 0.01, threshold + 0.3, 2.0]), rel=1e-4)


def test_ohem_keeps_at_least_the_floor_of_hardest_pixels_when_few_are_hard():
    losses = [0.01 * i for i in range(1, 33)] + [1.5]  # 33 pixels, one hard
    logits, target = ohem_case(losses)
    loss = OhemCrossEntropy(threshold=0.7, min_fraction=1 / 8)(logits, target)  # floor: 4 pixels
    assert float(loss) == pytest.approx(np.mean([1.5, 0.32, 0.31, 0.30]), rel=1e-4)


def test_each_frame_is_preprocessed_once_and_every_stage_is_timed(reference):
    from dwrseg_rt.runtime.timing import StageTimer

    segmenter = Segmenter(reference.backend, reference.info, SIZE, StageTimer())
    frames = [Street(seed=4, width=320, height=160).render(t)[0] for t in (0.1, 0.2)]
    prepared = segmenter.prepare(frames)  # the decoder thread's share
    assert [m.shape for m in segmenter.collect(segmenter.submit(frames, prepared))] == [(160, 320)] * 2
    segmenter.segment(frames[0])
    counts = {name: stage["count"] for name, stage in segmenter.timer.summary().items()}
    assert counts == {"preprocess": 2, "inference": 2, "postprocess": 2}  # a prepared batch is not preprocessed again
