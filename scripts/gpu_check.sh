#!/usr/bin/env bash
# On a CUDA machine: run the GPU tests and the GPU benchmarks, and write
# benchmarks/results/gpu-<gpu>.json (copied to $OUT too when that is set, as on the lent device
# machine). It always finishes with its JSON: a failing test or benchmark is recorded in the
# JSON ("checks": each step's exit status and last lines), never a reason to stop early.
# Commit what it writes. Without a GPU it says so in one line and exits 1.
# Usage, from the repository root: scripts/gpu_check.sh
# Offline machines: run scripts/device_wheels.sh where there is a network and carry .device-wheels.
set -uo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-python3}
if ! $py -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
    echo "gpu_check: no CUDA GPU visible to torch on this machine; nothing to check" >&2
    exit 1
fi
if ! $py -c "import dwrseg_rt, av" 2>/dev/null; then
    if [ -d .device-wheels ]; then $py -m pip install -q --no-index --find-links .device-wheels av; fi
    $py -m pip install -q --no-deps --no-build-isolation -e .
fi
gpu=$($py -c "import torch; print(torch.cuda.get_device_name().replace(' ', '-').replace('/', '-'))")
results=benchmarks/results
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$results" "$work/checks"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,temperature.gpu --format=csv > "$work/nvidia-smi.txt" 2>&1 || true
cat "$work/nvidia-smi.txt"

check() {  # check NAME COMMAND...: run it, keep its exit status and output for the JSON, go on
    local name=$1; shift
    echo "== $name: $*"
    "$@" > "$work/checks/$name.log" 2>&1
    echo $? > "$work/checks/$name.rc"
    tail -n 5 "$work/checks/$name.log"
}
# The GPU tests see the GPU; the tests written for the CPU path (backend names, CPU-only
# messages) run with it hidden, as on a CPU machine.
check gpu_tests $py -m pytest -q -p no:cacheprovider tests/test_gpu_path.py tests/test_preprocess.py tests/test_pipeline.py
check cpu_tests env CUDA_VISIBLE_DEVICES= $py -m pytest -q -p no:cacheprovider tests/test_bench.py tests/test_reference.py
check synth $py -m dwrseg_rt synth "$work/clip" --seed 7 --train 0 --val 0 --clip-frames 300 --size 1024x512
backends=(-b torch)
$py -c "import tensorrt" 2>/dev/null && backends+=(-b tensorrt)
for size in 1024x512 2048x1024; do
    for batch in 1 8; do  # model-only on camera-size frames (resize in, class map out), fp32 (no TF32) and fp16
        check "bench_${size}_b$batch" $py -m dwrseg_rt bench "${backends[@]}" -p fp32 -p fp16 --size $size --batch $batch \
            --camera 1920x1080 --warmup 50 --iterations 300 --json "$work/bench_${size}_b$batch.json" --force
    done
done
check bench_pipeline $py -m dwrseg_rt bench "${backends[@]}" -p fp16 --size 1024x512 --warmup 50 --iterations 300 \
    --clip "$work/clip/drive.mp4" --json "$work/bench_pipeline.json" --force
check video $py -m dwrseg_rt video "$work/clip/drive.mp4" -o "$work/overlay.mp4" --size 1024x512 --backend torch \
    --stats-json "$work/video.json" --force
$py -c "import av, cv2, sys; frames = av.open(sys.argv[1]).decode(video=0)
[cv2.imwrite(sys.argv[2], f.to_ndarray(format='bgr24')) for i, f in zip(range(150), frames) if i == 149]" \
    "$work/overlay.mp4" "$results/gpu-$gpu-overlay.png" 2>/dev/null || true
# one JSON: the machine, every step's status, and every report that was written
$py - "$work" "$results/gpu-$gpu.json" <<'PY'
import json, pathlib, sys
work, target = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
from dwrseg_rt.environment import environment_report
report = {"machine": environment_report(), "nvidia_smi": (work / "nvidia-smi.txt").read_text().strip(), "checks": {}, "reports": {}}
for rc in sorted((work / "checks").glob("*.rc")):
    log = rc.with_suffix(".log").read_text(errors="replace").strip().splitlines()
    report["checks"][rc.stem] = {"exit": int(rc.read_text()), "tail": log[-5:]}
for path in sorted(work.glob("*.json")):
    report["reports"][path.stem] = json.loads(path.read_text())
target.write_text(json.dumps(report, indent=2) + "\n")
failed = [name for name, check in report["checks"].items() if check["exit"]]
print(f"wrote {target}" + (f"; failed: {', '.join(failed)}" if failed else "; every check passed"))
PY
if [ -n "${OUT:-}" ]; then cp "$results/gpu-$gpu.json" "$results/gpu-$gpu-overlay.png" "$OUT/" 2>/dev/null; fi
