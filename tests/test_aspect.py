"""The inference size follows the camera's shape: a 16:9 or 2:1 source is not squashed into the
model's trained aspect, unless --size says so."""

import json
from fractions import Fraction

import cv2
import numpy as np
import pytest

from conftest import one_line_failure, run_cli
from dwrseg_rt.checkpoint import load_checkpoint
from dwrseg_rt.io.video import VideoWriter
from dwrseg_rt.runtime.backends import TorchBackend
from dwrseg_rt.runtime.segmenter import SIZE_MULTIPLE, Segmenter, size_for_frame


@pytest.mark.parametrize("width, height", [(1920, 1080), (2048, 1024), (1280, 1024), (640, 360), (3840, 1080)])
def test_size_keeps_the_frames_aspect_at_the_trained_pixel_count(width, height):
    size = size_for_frame((480, 360), width, height)
    assert size[0] % SIZE_MULTIPLE == 0 and size[1] % SIZE_MULTIPLE == 0
    assert abs(size[0] / size[1] / (width / height) - 1) < 0.03
    assert abs(size[0] * size[1] / (480 * 360) - 1) < 0.05


@pytest.mark.parametrize("width, height", [(480, 360), (960, 720), (640, 480), (1440, 1081)])
def test_the_trained_aspect_runs_at_the_trained_size(width, height):
    assert size_for_frame((480, 360), width, height) == (480, 360)


def test_a_segmenter_that_follows_the_frames_opens_each_size_once(checkpoint):
    model, info = load_checkpoint(checkpoint)  # trained at 256x128 (2:1)
    opened = []

    def open_at(size):
        opened.append(size)
        return TorchBackend(model)

    segmenter = Segmenter(None, info, None, open_at=open_at)
    four_three, two_one = np.zeros((120, 160, 3), np.uint8), np.zeros((64, 128, 3), np.uint8)
    assert segmenter.segment(four_three).shape == (120, 160)
    assert segmenter.size == size_for_frame((256, 128), 160, 120) == (208, 160)
    assert segmenter.segment(two_one).shape == (64, 128) and segmenter.size == (256, 128)
    segmenter.segment(four_three)
    assert opened == [(208, 160), (256, 128)]


@pytest.fixture(scope="module")
def four_three_clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("aspect") / "cam43.mp4"
    writer = VideoWriter(path, Fraction(10), 160, 120)
    for index in range(4):
        writer.write(cv2.resize(np.random.default_rng(index).integers(0, 256, (6, 8, 3), dtype=np.uint8), (160, 120)))
    writer.close()
    return path


def test_video_runs_a_4_3_clip_at_4_3_with_a_2_1_model_and_size_overrides(four_three_clip, checkpoint, tmp_path):
    for args, expected in (((), [208, 160]), (("--size", "256x128"), [256, 128])):
        stats = tmp_path / "stats.json"
        masks = tmp_path / f"masks{len(args)}"
        result = run_cli("video", four_three_clip, "-o", tmp_path / f"o{len(args)}.mp4", "-w", checkpoint, "-b", "onnxruntime",
                         "--masks-dir", masks, "--stats-json", stats, "--force", *args)
        assert result.returncode == 0, result.stderr
        assert json.loads(stats.read_text())["size"] == expected
        assert f"@ {expected[0]}x{expected[1]}" in result.stdout
        assert all(cv2.imread(str(p), cv2.IMREAD_UNCHANGED).shape == (120, 160) for p in masks.glob("*.png"))


def test_options_are_checked_before_the_first_frame_picks_the_size(four_three_clip, checkpoint, tmp_path):
    result = run_cli("video", four_three_clip, "-o", tmp_path / "o.mp4", "-w", checkpoint, "-b", "onnxruntime", "-p", "fp16")
    assert one_line_failure(result, "fp16")
    assert not (tmp_path / "o.mp4").exists()


def test_a_folder_of_photos_of_several_shapes_runs_each_at_its_own_aspect(checkpoint, tmp_path):
    """Photos from several cameras in one folder: none is squashed into the first one's shape."""
    folder = tmp_path / "photos"
    folder.mkdir()
    shapes = {"a_wide": (64, 128), "b_43": (120, 160), "c_wide": (64, 128)}  # the first photo is 2:1, the second 4:3
    photos = {}
    for index, (name, (height, width)) in enumerate(shapes.items()):
        photos[name] = cv2.resize(np.random.default_rng(index).integers(0, 256, (4, 6, 3), dtype=np.uint8), (width, height))
        cv2.imwrite(str(folder / f"{name}.png"), cv2.cvtColor(photos[name], cv2.COLOR_RGB2BGR))
    stats = tmp_path / "stats.json"
    result = run_cli("video", folder, "--masks-dir", tmp_path / "masks", "-w", checkpoint, "-b", "torch", "--stats-json", stats)
    assert result.returncode == 0, result.stderr
    assert sorted(json.loads(stats.read_text())["sizes"]) == [[208, 160], [256, 128]]
    model, info = load_checkpoint(checkpoint)
    for name, photo in photos.items():  # each mask is what the photo gives when segmented alone, at its own aspect
        alone = Segmenter(None, info, None, open_at=lambda size: TorchBackend(model)).segment(photo)
        assert np.array_equal(cv2.imread(str(tmp_path / "masks" / f"{name}.png"), cv2.IMREAD_UNCHANGED), alone), name


def test_eval_scores_each_image_at_its_own_aspect_unless_size_says(checkpoint, tmp_path):
    from dwrseg_rt.data.labels import CITYSCAPES

    root = tmp_path / "data"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    (root / "classes.txt").write_text("\n".join(CITYSCAPES.classes) + "\n")
    rng = np.random.default_rng(0)
    for index in range(3):  # 4:3 photos for a model trained at 2:1
        cv2.imwrite(str(root / "images" / f"img{index}.jpg"), rng.integers(0, 256, (120, 160, 3), dtype=np.uint8))
        cv2.imwrite(str(root / "masks" / f"img{index}.png"), rng.integers(0, 19, (120, 160), dtype=np.uint8))
    sizes = {}
    for name, extra in (("aspect", ()), ("given", ("--size", "256x128"))):
        report = tmp_path / f"{name}.json"
        result = run_cli("eval", "--dataset", "folder", "--data", root, "--weights", checkpoint, "--backend", "onnxruntime",
                         "--json", report, *extra)
        assert result.returncode == 0, result.stderr
        sizes[name] = json.loads(report.read_text())["sizes"]
    assert sizes == {"aspect": [list(size_for_frame((256, 128), 160, 120))], "given": [[256, 128]]}
    assert sizes["aspect"] == [[208, 160]]
