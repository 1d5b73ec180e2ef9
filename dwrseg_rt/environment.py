"""Versions and devices, for `dwrseg-rt info` and every benchmark's JSON."""

from __future__ import annotations

import importlib
import os
import platform
from pathlib import Path

from dwrseg_rt import __version__


def _version(module: str) -> str:
    try:
        return getattr(importlib.import_module(module), "__version__", "installed")
    except ImportError:
        return "not installed"


def cpu_name() -> str:
    """The CPU model (from /proc/cpuinfo on Linux) and the number of cores Python may use."""
    name = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{name}, {len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()} cores"


def is_jetson() -> bool:
    return Path("/etc/nv_tegra_release").exists()


def gpu_on_machine() -> bool:
    """An NVIDIA GPU is there, whatever torch says: a desktop driver's device node, or a Jetson."""
    return Path("/dev/nvidia0").exists() or is_jetson()


def no_gpu_reason(torch_version: str, cuda_version: str | None, jetson: bool) -> str:
    """Why torch sees no GPU, and what to do, in one phrase."""
    if cuda_version is None:
        if jetson:
            return (f"torch {torch_version} is a CPU-only build (PyPI's aarch64 torch cannot use a Jetson's GPU): "
                    "install NVIDIA's torch for your JetPack (docs/deploy.md)")
        return f"torch {torch_version} is a CPU-only build: install a CUDA build of torch (PyPI's default on x86 Linux)"
    if jetson:
        return (f"torch {torch_version} (CUDA {cuda_version}) sees no GPU: use NVIDIA's torch for your JetPack "
                "(docs/deploy.md), run as a user in the video group")
    return (f"torch {torch_version} (CUDA {cuda_version}) sees no GPU: check the NVIDIA driver (nvidia-smi), "
            "or run the container with --gpus all")


def gpu_problem() -> str | None:
    """None when torch sees a CUDA GPU, else why not (see `no_gpu_reason`)."""
    import torch

    return None if torch.cuda.is_available() else no_gpu_reason(torch.__version__, torch.version.cuda, is_jetson())


def environment_report() -> dict[str, str]:
    import torch

    problem = gpu_problem()
    cuda = f"not available: {problem}" if problem else torch.version.cuda
    devices = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    report = {
        "dwrseg-rt": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu_name(),
        "torch": torch.__version__,
        "cuda": cuda,
        "gpus": ", ".join(devices) or "none",
        "onnxruntime": _version("onnxruntime"),
        "opencv": _version("cv2"),
        "pyav": _version("av"),
        "tensorrt": _version("tensorrt"),
    }
    try:
        import onnxruntime

        report["onnxruntime providers"] = ", ".join(onnxruntime.get_available_providers())
    except ImportError:
        pass
    return report


def portable(value, root: Path | None = None):
    """`value` (a report: dicts, lists, strings) with this machine's absolute paths made
    shareable: relative to `root` (the working folder) when inside it, else the file's name
    ('synth:/data/streets' -> 'synth:streets'), so committed reports name no home folders."""
    root = (root or Path.cwd()).resolve()
    if isinstance(value, dict):
        return {key: portable(item, root) for key, item in value.items()}
    if isinstance(value, list):
        return [portable(item, root) for item in value]
    if isinstance(value, str):
        prefix, _, rest = value.rpartition(":") if ":/" in value and "://" not in value else ("", "", value)
        if rest.startswith("/") and "\n" not in rest:
            path = Path(rest)
            shown = str(path.relative_to(root)) if path.is_relative_to(root) else path.name
            return f"{prefix}:{shown}" if prefix else shown
    return value
