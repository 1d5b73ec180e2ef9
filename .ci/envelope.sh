#!/usr/bin/env bash
# The Jetson software envelope: JetPack 6's Python (3.10) with the lowest versions pyproject.toml
# declares (torch 2.1.0 stands in for NVIDIA's JetPack 6.0 build), running
# export, video, eval, INT8 and the ROS message tests. Needs a python3.10 (pyenv here).
set -euo pipefail
cd "$(dirname "$0")/.."
py=$(ls "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.10*/bin/python 2>/dev/null | head -1 || true)
[ -n "$py" ] || py=$(command -v python3.10 || true)
if [ -z "$py" ]; then echo "envelope: no Python 3.10 on this machine; skipped"; exit 0; fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$py" -m venv "$work/venv"
pip=("$work/venv/bin/python" -m pip install -q --disable-pip-version-check)
"${pip[@]}" $(python3 scripts/floors.py rosbags) pytest "hypothesis>=6.100"
before=$("$work/venv/bin/python" -m pip freeze)
# as on a Jetson: the project's own install must keep the torch (and everything else) already there
"${pip[@]}" -e .
after=$("$work/venv/bin/python" -m pip freeze | grep -v '^-e \|dwrseg')
if [ "$(echo "$before" | grep -v dwrseg)" != "$after" ]; then
    echo "envelope: pip install -e . changed installed packages:"; diff <(echo "$before") <(echo "$after"); exit 1
fi
echo "envelope: $("$work/venv/bin/python" -c 'import sys, torch, numpy, onnxruntime, cv2, av, typer; print(sys.version.split()[0], "torch", torch.__version__, "numpy", numpy.__version__, "onnxruntime", onnxruntime.__version__, "opencv", cv2.__version__, "av", av.__version__)')"
"$work/venv/bin/python" -m pytest -q -p no:cacheprovider tests/test_export.py tests/test_video.py tests/test_preprocess.py \
    tests/test_gpu_path.py tests/test_int8.py tests/test_ros.py tests/test_gstreamer.py tests/test_newcomer.py -k "not dds and not colcon" \
    tests/test_train.py::test_train_and_eval_commands_on_a_plain_folder \
    tests/test_train.py::test_eval_scores_a_model_trained_on_other_classes_through_the_class_map
