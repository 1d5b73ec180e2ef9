"""Shared fixtures: a real tiny clip, a real synthetic dataset and a real (untrained) checkpoint."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from dwrseg_rt.checkpoint import ModelInfo, save_checkpoint
from dwrseg_rt.data.labels import CITYSCAPES
from dwrseg_rt.data.synth import generate
from dwrseg_rt.model import build_model

SMALL = (256, 128)


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory) -> Path:
    """A Cityscapes-layout synthetic set (8 train, 4 val) and a 12-frame clip, at 256x128."""
    root = tmp_path_factory.mktemp("synth")
    generate(root, seed=3, train=8, val=4, clip_frames=12, width=SMALL[0], height=SMALL[1], fps=24)
    return root


@pytest.fixture(scope="session")
def clip(synth_root) -> Path:
    return synth_root / "drive.mp4"


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory) -> Path:
    """DWRSeg-B with fresh weights, meant to run at 256x128."""
    import torch

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "tiny_b.pt"
    save_checkpoint(path, build_model("b", 19).eval(), ModelInfo.for_labels("b", CITYSCAPES, input_size=SMALL))
    return path


def pytest_configure(config) -> None:
    """Exports cached by the runtime go to a folder of this test session, never the user's home:
    set before any fixture runs, session- and module-scoped ones included."""
    os.environ["DWRSEG_RT_CACHE"] = tempfile.mkdtemp(prefix="dwrseg-rt-test-cache-")
    # A run started in the background by a shell (`pytest &`, nohup) inherits SIGINT ignored, and so
    # would every CLI it starts: the Ctrl+C tests would wait for an interrupt that never comes.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_unconfigure(config) -> None:
    shutil.rmtree(os.environ.pop("DWRSEG_RT_CACHE", ""), ignore_errors=True)


@pytest.fixture(autouse=True)
def isolated_cache(monkeypatch):
    """A test that points the cache elsewhere (the ROS node's engine_cache_dir) does not move it for the next."""
    monkeypatch.setenv("DWRSEG_RT_CACHE", os.environ["DWRSEG_RT_CACHE"])


def half_export_runs_here() -> bool:
    """fp16 convolutions run here (the half export traces them): on a GPU, or a CPU with torch >= 2.2."""
    import torch

    if torch.cuda.is_available():
        return True
    try:
        torch.nn.functional.conv2d(torch.zeros(1, 1, 3, 3, dtype=torch.half), torch.zeros(1, 1, 1, 1, dtype=torch.half))
        return True
    except RuntimeError:
        return False


needs_half_conv = pytest.mark.skipif(not half_export_runs_here(), reason="no fp16 convolution on this CPU's torch (< 2.2)")


def run_cli(*args: str, cwd: Path | None = None, columns: int = 200) -> subprocess.CompletedProcess:
    """The real `dwrseg-rt` in a subprocess: exit codes and stderr as a user sees them, in a terminal this wide."""
    env = {**os.environ, "COLUMNS": str(columns)}
    return subprocess.run([sys.executable, "-m", "dwrseg_rt", *map(str, args)], capture_output=True, text=True, cwd=cwd, env=env, timeout=600)


def one_line_failure(result: subprocess.CompletedProcess, phrase: str, code: int | None = None) -> bool:
    """How every bad input must end: a non-zero exit (`code` if given) and one line on stderr naming it."""
    lines = result.stderr.strip().splitlines()
    return (result.returncode != 0 and (code is None or result.returncode == code) and len(lines) == 1
            and phrase in lines[0] and "Traceback" not in result.stderr)
