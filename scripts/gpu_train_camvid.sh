#!/usr/bin/env bash
# Continue the shipped CamVid model on a CUDA machine for a fixed time (the lent GPU gives a
# session 15 minutes in all: run scripts/gpu_check.sh first, then this with what is left).
# The schedule is fixed before the run starts, so that its poly learning rate ends on time (a run
# cut off by the device's limit would stop mid-schedule, at a high rate, and leave nothing): a
# short probe run measures this machine's step time and start-up, and the real run gets the steps
# that fit in SECONDS, counted from this script's start.
# Recipe: the CPU runs' (480x360 crops of CamVid train+val, 150 synthetic streets mixed in, class
# weights, a fresh schedule from the shipped weights), at twice their batch and rate (16, 0.01),
# fp16 autocast, 12 loading processes. It writes gpu_camvid.pt (fp16, ~5 MB) and its log.csv to
# $OUT, or gpu_train/ without one; ship it, or not, by the rule in scripts/train_camvid.sh.
# Runs on a CPU too (slowly, fp32): that is how it was tried without a GPU.
# Usage: scripts/gpu_train_camvid.sh PACK SECONDS   (PACK: scripts/pack_camvid.py's folder)
set -euo pipefail
start=$(date +%s)
usage="usage: scripts/gpu_train_camvid.sh PACK SECONDS (PACK from scripts/pack_camvid.py)"
pack=$(realpath "${1:?$usage}")
budget=${2:?$usage}
[ -d "$pack/trainannot" ] || { echo "gpu_train_camvid: $pack holds no CamVid train+val; $usage" >&2; exit 2; }
probe=${PROBE_STEPS:-60}
cd "$(dirname "$0")/.."
py=${PYTHON:-python3}
$py -c "import dwrseg_rt" 2>/dev/null || $py -m pip install -q --no-deps --no-build-isolation -e .
$py -c "import torch; torch.cuda.is_available() or print('gpu_train_camvid: no CUDA GPU, training on the CPU')"
out=${OUT:-gpu_train}
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
$py -m dwrseg_rt synth "$work/synth_mix" --seed 0 --train 150 --val 0 --clip-frames 0 --size 1024x512 > /dev/null
workers=$(( $(nproc) > 13 ? 12 : $(nproc) - 1 ))
common=(--dataset camvid --data "$pack" --train-split train+val --mix "synth:$work/synth_mix" --batch-size 16
        --lr 0.01 --class-weights --workers "$workers" --val-every 0 --seed 100
        --init dwrseg_rt/weights/dwrseg_b_camvid.pt)
probe_start=$(date +%s.%N)
$py -m dwrseg_rt train "${common[@]}" --iterations "$probe" --warmup "$probe" --save-every "$probe" -o "$work/probe.pt" \
    > "$work/probe.log" 2>&1 || { tail -n 20 "$work/probe.log" >&2; exit 1; }
steps=$($py - "$work/probe_run/log.csv" "$probe_start" "$start" "$budget" <<'PY'
import csv, sys, time
rows = list(csv.DictReader(open(sys.argv[1])))
probe_start, start, budget = float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
first = len(rows) // 3  # steps after the first third: cuDNN's autotuning and the loaders are warm
step = (float(rows[-1]["seconds"]) - float(rows[first]["seconds"])) / (len(rows) - 1 - first)
overhead = (time.time() - probe_start) - step * len(rows)  # start-up, the first steps, saving
left = budget - (time.time() - start) - overhead - 10
print(f"probe: {step:.3f} s/step, {overhead:.0f} s start-up; {left:.0f} s left", file=sys.stderr)
print(max(0, int(left / step)))
PY
)
if [ "$steps" -lt 50 ]; then
    echo "gpu_train_camvid: only $steps steps fit in ${budget} s; not worth a run" >&2
    exit 1
fi
warmup=$(( steps / 10 < 200 ? steps / 10 : 200 ))
echo "training $steps steps ($warmup of warm-up)"
$py -m dwrseg_rt train "${common[@]}" --iterations "$steps" --warmup "$warmup" --save-every 1000 --half-weights \
    -o "$work/gpu_camvid.pt"
cp "$work/gpu_camvid.pt" "$work/gpu_camvid_run/log.csv" "$out/"
echo "wrote $out/gpu_camvid.pt and $out/log.csv after $(( $(date +%s) - start )) s of a ${budget} s budget"
