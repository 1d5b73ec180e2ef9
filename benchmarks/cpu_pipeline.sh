#!/usr/bin/env bash
# Model-only vs pipeline fps for the CPU backends at 1024x512 (the paper's "50" size).
# Writes benchmarks/results/cpu-<cores>core.json and prints the table.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
dwrseg-rt synth "$work" --seed 7 --train 0 --val 0 --clip-frames 60 --size 1024x512
dwrseg-rt bench -b torch -b onnxruntime --size 1024x512 --warmup 3 --iterations 30 \
    --clip "$work/drive.mp4" --json "benchmarks/results/cpu-$(nproc)core.json" --force
