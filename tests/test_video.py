"""`dwrseg-rt video` end to end on a generated clip, and its behaviour on bad input."""

import json

import av
import cv2
import numpy as np
import pytest

from conftest import run_cli
from dwrseg_rt.io.video import VideoReader


def probe(path):
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        return {"frames": frames, "fps": float(stream.average_rate), "width": stream.width, "height": stream.height, "codec": stream.codec_context.name}


def test_overlay_keeps_frames_fps_and_size(clip, checkpoint, tmp_path):
    output = tmp_path / "out.mp4"
    stats = tmp_path / "stats.json"
    result = run_cli("video", clip, "-o", output, "--weights", checkpoint, "--backend", "torch", "--stats-json", stats)
    assert result.returncode == 0, result.stderr
    source, written = probe(clip), probe(output)
    assert written["codec"] == "h264"
    assert (written["frames"], written["fps"], written["width"], written["height"]) == (source["frames"], source["fps"], source["width"], source["height"])
    data = json.loads(stats.read_text())
    assert data["frames"] == source["frames"]
    assert set(data["stages"]) >= {"decode", "preprocess", "inference", "postprocess", "encode"}
    assert data["pipeline_fps"] > 0 and data["model_fps"] > 0
    assert "pipeline" in result.stdout and "inference" in result.stdout


def test_mask_mode_draws_only_palette_colors_and_masks_dir_matches(clip, checkpoint, tmp_path):
    masks = tmp_path / "masks"
    output = tmp_path / "mask.mp4"
    result = run_cli("video", clip, "--mask", "-o", output, "--masks-dir", masks, "--weights", checkpoint, "--backend", "onnxruntime")
    assert result.returncode == 0, result.stderr
    pngs = sorted(masks.glob("*.png"))
    assert len(pngs) == probe(clip)["frames"]
    first = cv2.imread(str(pngs[0]), cv2.IMREAD_UNCHANGED)
    assert first.dtype == np.uint8 and first.shape == (128, 256) and first.max() < 19
    # the color-mask video's first frame shows the palette colors of the first class map
    from dwrseg_rt.data.labels import CITYSCAPES

    with VideoReader(output) as reader:
        frame = next(iter(reader))
    expected = CITYSCAPES.palette_array()[first]
    assert np.abs(frame.astype(int) - expected.astype(int)).mean() < 12  # H.264 is lossy


def test_default_output_name_is_beside_the_input(clip, checkpoint, tmp_path):
    local = tmp_path / "drive.mp4"
    local.write_bytes(clip.read_bytes())
    result = run_cli("video", local, "--weights", checkpoint, "--size", "128x64")
    assert result.returncode == 0, result.stderr
    assert probe(tmp_path / "drive_overlay.mp4")["frames"] == probe(clip)["frames"]


def unknown_codec(folder):
    """An mp4 whose video codec FFmpeg has no decoder for (found by the fuzz test: a mutated fourcc)."""
    from media import make_video

    source = make_video(folder / "source.mp4", frames=3, size=(64, 48))
    odd = folder / "odd_codec.mp4"
    odd.write_bytes(source.read_bytes().replace(b"avc1", b"zzzz"))
    source.unlink()
    return odd


def assert_clean_failure(result, *phrases):
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for phrase in phrases:
        assert phrase in lines[0]


@pytest.mark.parametrize(
    "make_input,phrase",
    [
        (lambda d: d / "missing.mp4", "not found"),
        (lambda d: (d / "notes.mp4").write_text("this is not a video") and d / "notes.mp4", "cannot read"),
        (lambda d: d, "holds no images or videos"),
        (unknown_codec, "no decoder for its video codec"),
    ],
    ids=["missing", "not-media", "empty-folder", "unknown-codec"],
)
def test_bad_input_fails_in_one_line_without_output(make_input, phrase, checkpoint, tmp_path):
    source = make_input(tmp_path)
    output = tmp_path / "out.mp4"
    assert_clean_failure(run_cli("video", source, "-o", output, "--weights", checkpoint), phrase)
    assert not output.exists()
    assert not list(tmp_path.glob(".*partial*"))


def test_existing_output_needs_force(clip, checkpoint, tmp_path):
    output = tmp_path / "out.mp4"
    output.write_bytes(b"precious")
    assert_clean_failure(run_cli("video", clip, "-o", output, "--weights", checkpoint), "--force")
    assert output.read_bytes() == b"precious"
    assert run_cli("video", clip, "-o", output, "--weights", checkpoint, "--force").returncode == 0
    assert probe(output)["frames"] == probe(clip)["frames"]


def test_output_equal_to_input_is_refused(clip, checkpoint, tmp_path):
    local = tmp_path / "in.mp4"
    local.write_bytes(clip.read_bytes())
    assert_clean_failure(run_cli("video", local, "-o", local, "--weights", checkpoint, "--force"), "is the input")
    assert local.read_bytes() == clip.read_bytes()


def test_unwritable_output_folder(clip, checkpoint, tmp_path):
    assert_clean_failure(run_cli("video", clip, "-o", tmp_path / "nowhere" / "out.mp4", "--weights", checkpoint), "does not exist")


@pytest.mark.parametrize("size", ["big", "1024", "10x10", "0x0"])
def test_bad_size(size, clip, checkpoint, tmp_path):
    assert_clean_failure(run_cli("video", clip, "-o", tmp_path / "o.mp4", "--size", size, "--weights", checkpoint), "--size")


def test_broken_weights(clip, tmp_path):
    weights = tmp_path / "broken.pt"
    weights.write_bytes(b"\x00" * 100)
    assert_clean_failure(run_cli("video", clip, "-o", tmp_path / "o.mp4", "--weights", weights), "checkpoint")
    assert not (tmp_path / "o.mp4").exists()


def test_debug_shows_the_traceback(tmp_path):
    result = run_cli("--debug", "video", tmp_path / "missing.mp4")
    assert result.returncode != 0 and "Traceback" in result.stderr
