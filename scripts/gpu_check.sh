#!/usr/bin/env bash
# On a CUDA machine: run the GPU tests and the GPU benchmarks, and write JSON under
# benchmarks/results/ named after the GPU. Commit what it writes.
# Usage: scripts/gpu_check.sh            (from the repository root, package installed)
set -euo pipefail
cd "$(dirname "$0")/.."
python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA GPU visible to torch')"
gpu=$(python -c "import torch; print(torch.cuda.get_device_name().replace(' ', '-').replace('/', '-'))")
results=benchmarks/results
mkdir -p "$results"
python -m pytest -q tests/test_gpu_path.py tests/test_preprocess.py tests/test_pipeline.py
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
dwrseg-rt synth "$work" --seed 7 --train 0 --val 0 --clip-frames 300 --size 1024x512
backends=(-b torch)
python -c "import tensorrt" 2>/dev/null && backends+=(-b tensorrt)
# model-only and pipeline, fp32 and fp16, DWRSeg-B at the paper's 1024x512, batch 1
dwrseg-rt bench "${backends[@]}" -p fp32 -p fp16 --size 1024x512 --warmup 50 --iterations 500 \
    --clip "$work/drive.mp4" --json "$results/gpu-$gpu.json"
echo "wrote $results/gpu-$gpu.json"
