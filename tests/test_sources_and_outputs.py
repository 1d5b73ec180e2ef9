"""`dwrseg-rt video` over every kind of source and output, and the robustness corpus."""

import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import cv2
import numpy as np
import pytest

from conftest import one_line_failure, run_cli
from media import make_video, probe


def test_audio_track_is_copied_without_reencoding(checkpoint, tmp_path):
    source = make_video(tmp_path / "talk.mp4", frames=20, audio=True)
    result = run_cli("video", source, "-o", tmp_path / "out.mp4", "--weights", checkpoint)
    assert result.returncode == 0, result.stderr
    before, after = probe(source), probe(tmp_path / "out.mp4")
    assert after["audio"] == before["audio"] and before["audio"][0][0] == "aac"
    assert after["frames"] == before["frames"]


def test_variable_frame_rate_timestamps_are_kept(checkpoint, tmp_path):
    timing = [0, 40, 80, 200, 240, 400, 440, 480]
    source = make_video(tmp_path / "vfr.mp4", frames=len(timing), pts_ms=timing)
    assert run_cli("video", source, "-o", tmp_path / "out.mp4", "--weights", checkpoint).returncode == 0
    assert probe(tmp_path / "out.mp4")["pts_ms"] == probe(source)["pts_ms"] == timing


def test_images_of_every_kind_in_a_folder(checkpoint, tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    rng = np.random.default_rng(0)
    cv2.imwrite(str(folder / "color.png"), rng.integers(0, 255, (90, 160, 3), dtype=np.uint8))
    cv2.imwrite(str(folder / "gray.png"), rng.integers(0, 255, (64, 64), dtype=np.uint8))
    cv2.imwrite(str(folder / "alpha.png"), rng.integers(0, 255, (70, 100, 4), dtype=np.uint8))
    cv2.imwrite(str(folder / "photo.jpg"), rng.integers(0, 255, (120, 90, 3), dtype=np.uint8))
    (folder / "notes.txt").write_text("not an image")
    result = run_cli("video", folder, "-o", tmp_path / "out", "--masks-dir", tmp_path / "ids", "--weights", checkpoint)
    assert result.returncode == 0, result.stderr
    for name, shape in {"color": (90, 160), "gray": (64, 64), "alpha": (70, 100), "photo": (120, 90)}.items():
        overlay = cv2.imread(str(tmp_path / "out" / f"{name}_overlay.png"))
        ids = cv2.imread(str(tmp_path / "ids" / f"{name}.png"), cv2.IMREAD_UNCHANGED)
        assert overlay.shape[:2] == shape and ids.shape == shape and ids.dtype == np.uint8


def test_one_image_by_glob_default_output_beside_it(checkpoint, tmp_path):
    cv2.imwrite(str(tmp_path / "street.png"), np.zeros((50, 80, 3), np.uint8))
    result = run_cli("video", str(tmp_path / "*.png"), "--mask", "--weights", checkpoint)
    assert result.returncode == 0, result.stderr
    assert cv2.imread(str(tmp_path / "street_mask.png")).shape == (50, 80, 3)


@pytest.mark.slow
def test_a_very_large_image(checkpoint, tmp_path):
    cv2.imwrite(str(tmp_path / "big.jpg"), np.full((4000, 6000, 3), 90, np.uint8))
    assert run_cli("video", tmp_path / "big.jpg", "--weights", checkpoint).returncode == 0
    assert cv2.imread(str(tmp_path / "big_overlay.png")).shape == (4000, 6000, 3)


def test_odd_frame_size_is_padded_to_even_for_h264(checkpoint, tmp_path):
    source = make_video(tmp_path / "odd.mp4", frames=4, size=(161, 119), codec="mpeg4")
    assert probe(source)["width"] == 161
    assert run_cli("video", source, "-o", tmp_path / "out.mp4", "--weights", checkpoint).returncode == 0
    out = probe(tmp_path / "out.mp4")
    assert (out["width"], out["height"], out["frames"]) == (162, 120, 4)


def test_truncated_file(checkpoint, tmp_path):
    good = make_video(tmp_path / "good.mp4", frames=10)
    (tmp_path / "cut.mp4").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    result = run_cli("video", tmp_path / "cut.mp4", "-o", tmp_path / "out.mp4", "--weights", checkpoint)
    assert one_line_failure(result, "cut.mp4")
    assert not (tmp_path / "out.mp4").exists() and not list(tmp_path.glob(".*"))


def test_zero_frame_file(checkpoint, tmp_path):
    make_video(tmp_path / "empty.mp4", frames=0)
    result = run_cli("video", tmp_path / "empty.mp4", "-o", tmp_path / "out.mp4", "--weights", checkpoint)
    assert one_line_failure(result, "has no video stream")  # muxers drop a track with no frames
    assert not (tmp_path / "out.mp4").exists() and not list(tmp_path.glob(".*"))


def test_corrupt_packets_mid_stream_do_not_stop_the_run(checkpoint, tmp_path):
    source = make_video(tmp_path / "clip.mp4", frames=30)
    data = bytearray(source.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 400] = os.urandom(400)
    (tmp_path / "hurt.mp4").write_bytes(bytes(data))
    stats = tmp_path / "stats.json"
    result = run_cli("video", tmp_path / "hurt.mp4", "-o", tmp_path / "out.mp4", "--weights", checkpoint, "--stats-json", stats)
    frames = json.loads(stats.read_text())["frames"]
    assert 20 <= frames <= 30 and probe(tmp_path / "out.mp4")["frames"] == frames
    if frames < 30:  # the run goes on to the end, then says what it lost and exits 1
        assert result.returncode == 1 and "corrupt packets were skipped" in result.stderr and f"{frames} of the 30" in result.stderr
    else:
        assert result.returncode == 0, result.stderr


def test_batch_writes_one_output_each_and_continues_past_a_bad_file(checkpoint, tmp_path):
    clips = tmp_path / "clips"
    clips.mkdir()
    make_video(clips / "a.mp4", frames=5)
    make_video(clips / "b.mp4", frames=7)
    (clips / "c.mp4").write_text("broken")
    result = run_cli("video", clips, "-o", tmp_path / "out", "--weights", checkpoint)
    assert result.returncode == 1
    assert probe(tmp_path / "out" / "a_overlay.mp4")["frames"] == 5
    assert probe(tmp_path / "out" / "b_overlay.mp4")["frames"] == 7
    assert not (tmp_path / "out" / "c_overlay.mp4").exists()
    assert "summary" in result.stdout and "failed" in result.stdout and "c.mp4" in result.stdout


def test_side_by_side_legend_and_ignored_classes(checkpoint, tmp_path):
    source = make_video(tmp_path / "clip.mp4", frames=3)
    result = run_cli("video", source, "--side-by-side", "--legend", "-o", tmp_path / "sbs.mp4", "--weights", checkpoint)
    assert result.returncode == 0, result.stderr
    assert probe(tmp_path / "sbs.mp4")["width"] == 512
    from dwrseg_rt.checkpoint import SHIPPED_WEIGHTS

    masked = run_cli("video", source, "--mask", "--ignore-class", "road", "--ignore-class", "sky", "-o", tmp_path / "m.mp4",
                     "--masks-dir", tmp_path / "ids", "--weights", SHIPPED_WEIGHTS["synth"], "--size", "256x128")  # trained: real road and sky
    assert masked.returncode == 0, masked.stderr
    import av

    with av.open(str(tmp_path / "m.mp4")) as container:
        frame = next(container.decode(video=0)).to_ndarray(format="rgb24")
    ids = cv2.imread(str(tmp_path / "ids" / "clip_000000.png"), cv2.IMREAD_UNCHANGED)
    hidden = (ids == 0) | (ids == 10)
    assert hidden.sum() > 2000 and (~hidden).sum() > 2000
    assert frame[hidden].mean() < 20 < frame[~hidden].mean()  # ignored classes are black in a mask
    bad = run_cli("video", source, "--ignore-class", "dragon", "-o", tmp_path / "x.mp4", "--weights", checkpoint)
    assert one_line_failure(bad, "dragon") and "road" in bad.stderr


def test_show_without_a_display_says_so_and_carries_on(checkpoint, tmp_path):
    source = make_video(tmp_path / "clip.mp4", frames=3)
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    result = subprocess.run([sys.executable, "-m", "dwrseg_rt", "video", str(source), "--show", "--weights", str(checkpoint)],
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0 and "no display" in result.stderr


def test_sigterm_leaves_a_playable_file_and_exits_130(checkpoint, tmp_path):
    source = make_video(tmp_path / "long.mp4", frames=400, size=(128, 64))
    output = tmp_path / "out.mp4"
    process = subprocess.Popen([sys.executable, "-m", "dwrseg_rt", "video", str(source), "-o", str(output), "--weights", str(checkpoint),
                                "--size", "512x256"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not list(tmp_path.glob(".out.*partial.mp4")) and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    frames = probe(output)["frames"]
    assert 0 < frames < 400
    assert "interrupted" in stderr and "pipeline" in stdout
    assert not list(tmp_path.glob(".*partial*"))


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_live_stream_takes_the_newest_frame_and_counts_drops(checkpoint, tmp_path):
    make_video(tmp_path / "cam.mp4", frames=120, size=(128, 64), streamable=True)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), lambda *a: _QuietHandler(*a, directory=str(tmp_path)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/cam.mp4"
        stats = tmp_path / "stats.json"
        result = run_cli("video", url, "-o", tmp_path / "live.mp4", "--weights", checkpoint, "--size", "1024x512", "--stats-json", stats)
    finally:
        server.shutdown()
    assert result.returncode == 0, result.stderr
    data = json.loads(stats.read_text())
    assert data["dropped"] > 0  # the stream outpaces a 1024x512 model on this CPU
    assert data["frames"] + data["dropped"] == 120
    assert probe(tmp_path / "live.mp4")["frames"] == data["frames"]
    assert "dropped" in result.stdout


def test_a_live_source_that_cannot_open_is_one_line_that_says_why(checkpoint, tmp_path):
    with socket.socket() as vacant:  # a port that nothing listens on once this closes
        vacant.bind(("127.0.0.1", 0))
        port = vacant.getsockname()[1]
    url = f"rtsp://127.0.0.1:{port}/cam"
    stream = run_cli("video", url, "-o", tmp_path / "out.mp4", "--weights", checkpoint, "--size", "96x48")
    assert one_line_failure(stream, f"cannot open live source {url}: ", code=2)  # FFmpeg's own line held back
    if sys.platform == "linux":
        camera = run_cli("video", "97", "-o", tmp_path / "out.mp4", "--weights", checkpoint, "--size", "96x48")
        assert one_line_failure(camera, "there is no /dev/video97", code=2)
    assert not list(tmp_path.iterdir())
