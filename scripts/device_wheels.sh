#!/usr/bin/env bash
# Fetch what the lent GPU machine lacks into .device-wheels/ (git-ignored). That machine has no
# network; its python3 (3.12) already holds torch with CUDA, OpenCV, onnxruntime, Typer and Rich,
# but not PyAV. Carry the folder with the run (device tool: carry [".device-wheels"]) and
# scripts/gpu_check.sh installs from it.
set -euo pipefail
cd "$(dirname "$0")/.."
pip download --only-binary=:all: --no-deps --python-version "${DEVICE_PYTHON:-3.12}" \
    --platform manylinux_2_28_x86_64 -d .device-wheels av
