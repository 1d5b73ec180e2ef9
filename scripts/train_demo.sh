#!/usr/bin/env bash
# Reproduces the shipped demo model, dwrseg_rt/weights/dwrseg_b_synth.pt: DWRSeg-B trained on
# 400 synthetic streets (seed 0), evaluated on 60 streets drawn with another seed (1), and
# stored as fp16 (~5 MB). About 50-70 minutes on a 2-core CPU.
# Usage: scripts/train_demo.sh [OUTPUT.pt]
set -euo pipefail
cd "$(dirname "$0")/.."
output=${1:-dwrseg_rt/weights/dwrseg_b_synth.pt}
work=${WORK:-$(mktemp -d)}
dwrseg-rt synth "$work/train" --seed 0 --train 400 --val 0 --clip-frames 0 --size 1024x512
dwrseg-rt synth "$work/val" --seed 1 --train 0 --val 60 --clip-frames 0 --size 1024x512
dwrseg-rt train --dataset synth --data "$work/train" --iterations 1600 --batch-size 8 --crop 512x256 \
    --scale 0.375,1.0 --warmup 1000 --workers 1 --seed 0 --half-weights --input-size 1024x512 -o "$output" --force
dwrseg-rt eval --dataset synth --data "$work/val" --weights "$output" --backend torch --json "$work/val.json"
python - "$output" "$work/val.json" <<'PY'
import json, sys
from dwrseg_rt.checkpoint import record_training
report = json.load(open(sys.argv[2]))
record_training(sys.argv[1], val_miou=report["miou"], val_pixel_acc=report["pixel_acc"], val_set="synth seed 1, 60 images")
print(f"val mIoU {report['miou'] * 100:.2f}% recorded in {sys.argv[1]}")
PY
