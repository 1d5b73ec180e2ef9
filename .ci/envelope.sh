#!/usr/bin/env bash
# The Jetson software envelopes, each in a venv of its own running the tests listed below:
#   floors  JetPack 6: Python 3.10 with the lowest versions pyproject.toml declares (torch 2.1.0
#           stands in for NVIDIA's JetPack 6.0 build); `pip install -e .` must keep them all.
#   newest  JetPack 7: Python 3.12 with what a fresh install gets today. Some releases ship for
#           newer Pythons only (PyAV 19 has no 3.11 wheels), so CI's own Python never sees them.
# Usage: .ci/envelope.sh [floors|newest]... (default: both). Needs pyenv's Pythons (or python3.X).
set -euo pipefail
cd "$(dirname "$0")/.."

works=()
trap 'rm -rf "${works[@]}"' EXIT

envelope() {
    local mode=$1 version=$2 py work
    py=$(ls "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$version".*/bin/python 2>/dev/null | head -1 || true)
    [ -n "$py" ] || py=$(command -v "python$version" || true)
    if [ -z "$py" ]; then echo "envelope $mode: no Python $version on this machine; skipped"; return 0; fi
    work=$(mktemp -d)
    works+=("$work")
    "$py" -m venv "$work/venv"
    local pip=("$work/venv/bin/python" -m pip install -q --disable-pip-version-check)
    if [ "$mode" = floors ]; then
        "${pip[@]}" $(python3 scripts/floors.py rosbags) pytest "hypothesis>=6.100"
        local before after
        before=$("$work/venv/bin/python" -m pip freeze)
        # as on a Jetson: the project's own install must keep the torch (and everything else) already there
        "${pip[@]}" -e .
        after=$("$work/venv/bin/python" -m pip freeze | grep -v '^-e \|dwrseg')
        if [ "$(echo "$before" | grep -v dwrseg)" != "$after" ]; then
            echo "envelope: pip install -e . changed installed packages:"; diff <(echo "$before") <(echo "$after"); return 1
        fi
    else
        "${pip[@]}" -e . rosbags pytest "hypothesis>=6.100"
    fi
    echo "envelope $mode: $("$work/venv/bin/python" -c 'import sys, torch, numpy, onnxruntime, cv2, av, typer; print(sys.version.split()[0], "torch", torch.__version__, "numpy", numpy.__version__, "onnxruntime", onnxruntime.__version__, "opencv", cv2.__version__, "av", av.__version__)')"
    "$work/venv/bin/python" -m pytest -q -p no:cacheprovider tests/test_export.py tests/test_video.py tests/test_preprocess.py \
        tests/test_gpu_path.py tests/test_int8.py tests/test_ros.py tests/test_gstreamer.py tests/test_newcomer.py -k "not dds and not colcon" \
        tests/test_train.py::test_train_and_eval_commands_on_a_plain_folder \
        tests/test_train.py::test_eval_scores_a_model_trained_on_other_classes_through_the_class_map
}

modes=("$@")
[ ${#modes[@]} -gt 0 ] || modes=(floors newest)
for mode in "${modes[@]}"; do
    case $mode in
        floors) envelope floors 3.10 ;;
        newest) envelope newest 3.12 ;;
        *) echo "envelope: unknown '$mode' (floors or newest)"; exit 2 ;;
    esac
done
