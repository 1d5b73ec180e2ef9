"""GStreamer and CSI sources against the system's real GStreamer (Debian's videotestsrc stands in for a camera)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import one_line_failure, run_cli
from dwrseg_rt.errors import UserError
from dwrseg_rt.io.gstreamer import csi_pipeline
from dwrseg_rt.io.sources import is_live, live_name, open_live
from media import probe

gstreamer = pytest.mark.skipif(shutil.which("gst-launch-1.0") is None,
                               reason="needs GStreamer's gst-launch-1.0 (apt install gstreamer1.0-tools gstreamer1.0-plugins-base)")
RED = "pattern=solid-color foreground-color=0xffff0000"


@gstreamer
def test_frames_arrive_in_order_with_the_pipelines_size_and_rgb_colours():
    # 98 pixels wide: GStreamer pads each RGB row to 100 bytes' multiple of 4, which must not shear the image
    source = open_live(f"gst:videotestsrc num-buffers=12 {RED} ! video/x-raw,width=98,height=50,framerate=25/1")
    try:
        assert (source.width, source.height, source.fps, source.live) == (98, 50, 25, True)
        frames = list(source)
    finally:
        source.close()
    assert frames and all(f.image.shape == (50, 98, 3) for f in frames)
    assert all((f.image == [255, 0, 0]).all() for f in frames)  # red stays red: RGB, rows aligned
    indices = [f.index for f in frames]
    assert indices == sorted(set(indices)) and indices[-1] == 11 and len(frames) + source.dropped == 12


@gstreamer
def test_a_pipeline_that_fails_to_start_is_one_line(tmp_path):
    with pytest.raises(UserError, match='no element "nosuchelement"'):
        open_live("gst:nosuchelement ! fakesink")
    result = run_cli("video", "gst:filesrc location=/nonexistent.mp4 ! decodebin", "-o", tmp_path / "never.mp4")
    assert one_line_failure(result, "Resource not found"), result.stderr
    assert list(tmp_path.iterdir()) == []


@gstreamer
def test_a_csi_camera_is_nvarguscamerasrc_and_says_so_where_there_is_none(tmp_path):
    assert csi_pipeline("csi://1?width=1920&height=1080&fps=60").startswith(
        "nvarguscamerasrc sensor-id=1 ! video/x-raw(memory:NVMM),width=1920,height=1080,framerate=60/1")
    assert "width=1280,height=720,framerate=30/1" in csi_pipeline("csi://0")
    assert is_live("csi://0") and is_live("gst:videotestsrc") and live_name("csi://0?fps=60") == "csi0"
    for bad in ("csi://front", "csi://0?width=wide", "csi://0?zoom=2", "csi://0?fps=0"):
        with pytest.raises(UserError, match="csi://"):
            csi_pipeline(bad)
    result = run_cli("video", "csi://0", "-o", tmp_path / "never.mp4")  # no Jetson camera stack here: one clear line
    assert one_line_failure(result, 'no element "nvarguscamerasrc"'), result.stderr


@gstreamer
def test_video_segments_a_gstreamer_source_into_a_playable_mp4(checkpoint, tmp_path):
    output = tmp_path / "gst.mp4"
    result = run_cli("video", "gst:videotestsrc num-buffers=15 pattern=ball ! video/x-raw,width=160,height=96,framerate=15/1",
                     "-o", output, "--weights", checkpoint)
    assert result.returncode == 0, result.stderr
    info = probe(output)
    assert info["frames"] >= 1 and (info["width"], info["height"]) == (160, 96)


def gst_children(marker: str) -> list[str]:
    """Running processes whose command line holds `marker`."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and marker in (entry / "cmdline").read_bytes().decode(errors="replace"):
                found.append(entry.name)
        except OSError:
            continue
    return found


@gstreamer
def test_ctrl_c_ends_the_gstreamer_child_and_leaves_a_playable_file(checkpoint, tmp_path):
    marker = f"dwrsegtest{os.getpid()}"
    output = tmp_path / "live.mp4"
    process = subprocess.Popen([sys.executable, "-m", "dwrseg_rt", "video", f"gst:videotestsrc is-live=true name={marker} "
                                "! video/x-raw,width=128,height=64,framerate=20/1", "-o", str(output), "--weights", str(checkpoint)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONFAULTHANDLER": "1"})
    try:
        deadline = time.monotonic() + 120
        while not any(p.name.startswith(".") for p in tmp_path.iterdir()) and time.monotonic() < deadline:
            time.sleep(0.2)  # until frames are being written (the hidden temporary output exists)
        time.sleep(1.0)
        assert gst_children(marker), "gst-launch-1.0 is not running"
        process.send_signal(signal.SIGINT)
        try:
            _, stderr = process.communicate(timeout=60)
        except subprocess.TimeoutExpired:  # seen once in CI, not reproduced: keep every thread's stack for the next person
            process.send_signal(signal.SIGABRT)  # faulthandler prints all threads' tracebacks
            _, stderr = process.communicate(timeout=30)
            pytest.fail(f"no exit 60 s after SIGINT; threads:\n{stderr[-6000:]}")
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, stderr
    deadline = time.monotonic() + 10
    while gst_children(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not gst_children(marker)
    assert probe(output)["frames"] >= 1
