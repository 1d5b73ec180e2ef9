#!/usr/bin/env bash
# On a CUDA machine: run the GPU tests and the GPU benchmarks, and write JSON under
# benchmarks/results/ named after the GPU (copied to $OUT too when that is set, as on the lent
# device machine). Commit what it writes.
# Usage, from the repository root: scripts/gpu_check.sh
# Offline machines: run scripts/device_wheels.sh where there is a network and carry .device-wheels.
set -euo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-python3}
$py -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA GPU visible to torch')"
if ! $py -c "import dwrseg_rt, av" 2>/dev/null; then
    if [ -d .device-wheels ]; then $py -m pip install -q --no-index --find-links .device-wheels av; fi
    $py -m pip install -q --no-deps --no-build-isolation -e .
fi
gpu=$($py -c "import torch; print(torch.cuda.get_device_name().replace(' ', '-').replace('/', '-'))")
results=benchmarks/results
mkdir -p "$results"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,temperature.gpu --format=csv || true
$py -m pytest -q -p no:cacheprovider tests/test_gpu_path.py tests/test_preprocess.py tests/test_pipeline.py tests/test_bench.py
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
$py -m dwrseg_rt synth "$work" --seed 7 --train 0 --val 0 --clip-frames 300 --size 1024x512
backends=(-b torch)
$py -c "import tensorrt" 2>/dev/null && backends+=(-b tensorrt)
# model-only and pipeline, fp32 and fp16, DWRSeg-B at the paper's 1024x512, batch 1
$py -m dwrseg_rt bench "${backends[@]}" -p fp32 -p fp16 --size 1024x512 --warmup 50 --iterations 500 \
    --clip "$work/drive.mp4" --json "$results/gpu-$gpu.json" --force
# one overlay frame to look at, and the video job's own stage table
$py -m dwrseg_rt video "$work/drive.mp4" -o "$work/overlay.mp4" --size 1024x512 --backend torch --stats-json "$results/gpu-$gpu-video.json" --force
$py -c "import av, cv2, sys; frames = av.open(sys.argv[1]).decode(video=0)
[cv2.imwrite(sys.argv[2], f.to_ndarray(format='bgr24')) for i, f in zip(range(150), frames) if i == 149]" "$work/overlay.mp4" "$work/overlay_frame.png"
if [ -n "${OUT:-}" ]; then cp "$results/gpu-$gpu.json" "$results/gpu-$gpu-video.json" "$work/overlay_frame.png" "$OUT/"; fi
echo "wrote $results/gpu-$gpu.json and $results/gpu-$gpu-video.json"
