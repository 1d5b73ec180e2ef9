"""`dwrseg-rt video` end to end on a generated clip, and its behaviour on bad input."""

import json
import struct

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


def ycbcr_to_rgb(yuv, matrix, full_range=False):
    """The RGB of one Y'CbCr colour by the standard's matrix (BT.601 or BT.709) and range."""
    kr, kb = {"bt601": (0.299, 0.114), "bt709": (0.2126, 0.0722)}[matrix]
    (y0, ys), cs = ((0, 1), 1) if full_range else ((16, 255 / 219), 255 / 224)
    y, cb, cr = (yuv[0] - y0) * ys, (yuv[1] - 128) * cs, (yuv[2] - 128) * cs
    r, b = y + 2 * (1 - kr) * cr, y + 2 * (1 - kb) * cb
    g = (y - kr * r - kb * b) / (1 - kr - kb)
    return np.clip(np.round([r, g, b]), 0, 255)


def flat_frame(yuv, width=128, height=96):
    """A yuv420p frame of one Y'CbCr colour."""
    frame = av.VideoFrame(width, height, "yuv420p")
    for plane, value in zip(frame.planes, yuv):
        plane.update(np.full(plane.buffer_size, value, np.uint8))
    return frame


def one_frame_clip(path, frame, codec="libx264", options=None, full_range=False):
    """A clip of one frame, encoded as `codec` with `options` (range tagged as asked)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=25)
        stream.width, stream.height, stream.pix_fmt = frame.width, frame.height, "yuv420p"
        stream.codec_context.color_range = 2 if full_range else 1
        stream.options = options or {}
        for packet in [*stream.encode(frame), *stream.encode()]:
            container.mux(packet)
    return path


@pytest.mark.parametrize("tag, matrix", [("bt709", "bt709"), ("smpte170m", "bt601"), (None, "bt601")])
def test_frames_are_read_by_their_own_colour_matrix(tmp_path, tag, matrix):
    """An HD camera's BT.709 file must reach the model in the colours the camera saw (a red
    read by BT.601's matrix loses 24 levels of green); untagged files are read as BT.601."""
    yuv = (81, 90, 240)
    tags = f"colorprim={tag}:transfer={tag}:colormatrix={tag}:" if tag else ""
    options = {"crf": "0", "preset": "ultrafast", "x264-params": tags + "range=tv"}
    path = one_frame_clip(tmp_path / "tagged.mp4", flat_frame(yuv), options=options)
    with VideoReader(path) as reader:
        (image,) = list(reader)
    assert np.abs(image[48, 64].astype(int) - ycbcr_to_rgb(yuv, matrix)).max() <= 2


@pytest.mark.parametrize("codec, name, options", [
    ("libx264", "h264.mp4", {"crf": "0", "preset": "ultrafast"}),
    ("libvpx-vp9", "vp9.webm", {"lossless": "1", "deadline": "realtime"}),
])
@pytest.mark.parametrize("full_range", [True, False])
def test_frames_are_read_by_their_own_range(tmp_path, codec, name, options, full_range):
    """A full-range stream (a VP9 or AV1 camera's, or H.264 from a phone) must not reach the
    model with its contrast stretched: a grey of 200 read as limited range comes out 214."""
    yuv = (200, 110, 150)
    path = one_frame_clip(tmp_path / name, flat_frame(yuv), codec, options, full_range)
    with VideoReader(path) as reader:
        (image,) = list(reader)
    assert np.abs(image[48, 64].astype(int) - ycbcr_to_rgb(yuv, "bt601", full_range)).max() <= 2


def turned_copy(path, out, matrix):
    """`path` with its track's display matrix set to `matrix` (a, b, c, d: a coded pixel (x, y)
    is shown at (a x + c y, b x + d y)), as a phone or camera writes it: the tkhd box's matrix,
    which FFmpeg reads as the display matrix."""
    identity = struct.pack(">9i", 65536, 0, 0, 0, 65536, 0, 0, 0, 1 << 30)
    a, b, c, d = (v * 65536 for v in matrix)
    data = path.read_bytes()
    at = data.index(identity, data.index(b"tkhd"))
    out.write_bytes(data[:at] + struct.pack(">9i", a, b, 0, c, d, 0, 0, 0, 1 << 30) + data[at + len(identity):])
    return out


def shown_corner(matrix, width, height):
    """(row, column) as 0 or -1: where a player shows the coded frame's top-right pixel, from
    the matrix's own definition (the extremes of the shown coordinates over the frame)."""
    a, b, c, d = matrix
    corners = [(x, y) for x in (0, width - 1) for y in (0, height - 1)]
    shown = [(a * x + c * y, b * x + d * y) for x, y in corners]
    target = shown[corners.index((width - 1, 0))]
    return tuple(0 if target[i] == min(p[i] for p in shown) else -1 for i in (1, 0))


TURNS = {  # display matrices: the four quarter turns a phone records, and the four mirrored ones
    "upright": (1, 0, 0, 1), "90": (0, -1, 1, 0), "180": (-1, 0, 0, -1), "270": (0, 1, -1, 0),
    "mirrored": (-1, 0, 0, 1), "upside-down": (1, 0, 0, -1), "transposed": (0, 1, 1, 0), "anti-transposed": (0, -1, -1, 0),
}


@pytest.mark.parametrize("turn", TURNS)
def test_a_turned_or_mirrored_clip_is_read_as_players_show_it(tmp_path, turn):
    """A clip whose display matrix turns it (a phone held upright) or mirrors it reaches the
    model as a player shows it: the sides swap for a quarter turn, and the coded frame's
    top-right corner goes where the matrix takes it."""
    image = np.zeros((48, 64, 3), np.uint8)
    image[:8, -8:] = (255, 0, 0)  # red top-right corner of the coded frame
    coded = one_frame_clip(tmp_path / "coded.mp4", av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p"))
    with VideoReader(turned_copy(coded, tmp_path / "turned.mp4", TURNS[turn])) as reader:
        (frame,) = list(reader)
        assert (reader.width, reader.height) == frame.shape[1::-1]
    assert frame.shape[:2] == ((64, 48) if TURNS[turn][0] == 0 else (48, 64))
    y, x = (4 if side == 0 else frame.shape[axis] - 5 for axis, side in enumerate(shown_corner(TURNS[turn], 64, 48)))
    assert frame[y, x, 0] > 200 and frame[y, x, 1:].max() < 60
