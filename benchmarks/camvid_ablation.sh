#!/usr/bin/env bash
# Training options one at a time, decided on data that chose nothing else: each option is a short
# fine-tune of the synthetic-world model (dwrseg_b_synth.pt) on CamVid *train* only (367 images,
# plus the 150 synthetic streets the shipped recipe mixes in), scored on CamVid *val* (101 images,
# never trained on here), and on 60 synthetic streets drawn with another seed (1) than the ones
# mixed into training: other scenes, another look, a stand-in for streets the model has never seen;
# and on the same 60 streets seen through other cameras (`synth --varied`: height, field of view,
# roll, lens, exposure, white balance), a stand-in for a robot's camera unlike CamVid's.
# CamVid test is not touched. bf16 on the CPU, same seed for every option, so the options differ
# in one flag only -> benchmarks/results/camvid-val-ablation.json. `synth-varied` changes the data
# instead: the 150 mixed-in streets are drawn with domain randomisation (`synth --varied`: the same
# seed and street layouts, each with its own camera and look).
# An option named `A+B` stacks B on top of A and is compared with A (A must be in the same report):
# the shipped recipe already has `--class-weights`, so a new idea is measured on top of it.
# Usage: benchmarks/camvid_ablation.sh CAMVID_DIR [STEPS] [OPTION...]
#   OPTION: baseline | robust | focus-rare | class-weights | synth-varied   (default: all five)
#           class-weights+focus-rare | class-weights+scale-up (crops rescaled 0.75-1.75, not 0.5-1.5)
#   ABLATION_JSON: where the report goes (default benchmarks/results/camvid-val-ablation.json)
# One option at 800 steps took 11 min on a 2-core Xeon with AMX (2026-12-06).
set -euo pipefail
cd "$(dirname "$0")/.."
camvid=$(realpath "${1:?usage: benchmarks/camvid_ablation.sh CAMVID_DIR [STEPS] [OPTION...]}")
steps=${2:-800}
shift $(( $# > 1 ? 2 : 1 ))
options=("$@")
[ ${#options[@]} -gt 0 ] || options=(baseline robust focus-rare class-weights synth-varied)
work=${ABLATION_WORK:-ablation_work}
mkdir -p "$work"
[ -d "$work/synth_mix" ] || dwrseg-rt synth "$work/synth_mix" --seed 0 --train 150 --val 0 --clip-frames 0 --size 1024x512
[ -d "$work/synth_val" ] || dwrseg-rt synth "$work/synth_val" --seed 1 --train 0 --val 60 --clip-frames 0 --size 1024x512
[ -d "$work/synth_val_varied" ] || dwrseg-rt synth "$work/synth_val_varied" --seed 1 --train 0 --val 60 --clip-frames 0 --size 1024x512 --varied
declare -A flags=([baseline]="" [robust]="--robust" [focus-rare]="--focus-rare 0.5" [class-weights]="--class-weights" [synth-varied]=""
                  [class-weights+focus-rare]="--class-weights --focus-rare 0.5" [class-weights+scale-up]="--class-weights --scale 0.75,1.75")
for option in "${options[@]}"; do
    out="$work/$option.pt"
    mix=$work/synth_mix
    if [ "$option" = synth-varied ]; then
        mix=$work/synth_mix_varied
        [ -d "$mix" ] || dwrseg-rt synth "$mix" --seed 0 --train 150 --val 0 --clip-frames 0 --size 1024x512 --varied
    fi
    if [ ! -f "$out" ]; then
        resume=()
        [ -f "$work/${option}_run/last.pt" ] && resume=(--resume "$work/${option}_run")
        # shellcheck disable=SC2086
        dwrseg-rt train --dataset camvid --data "$camvid" --train-split train --mix "synth:$mix" --batch-size 8 \
            --val-every 0 --init dwrseg_rt/weights/dwrseg_b_synth.pt --iterations "$steps" --lr 0.01 --warmup 100 --seed 0 \
            --cpu-bf16 -o "$out" ${flags[$option]} "${resume[@]}"
    fi
    [ -f "$work/$option.json" ] || dwrseg-rt eval --dataset camvid --data "$camvid" --split val --weights "$out" --backend torch \
        --json "$work/$option.json" --force
    [ -f "$work/$option-synth.json" ] || dwrseg-rt eval --dataset synth --data "$work/synth_val" --split val --weights "$out" \
        --backend torch --json "$work/$option-synth.json" --force
    [ -f "$work/$option-cameras.json" ] || dwrseg-rt eval --dataset synth --data "$work/synth_val_varied" --split val --weights "$out" \
        --backend torch --json "$work/$option-cameras.json" --force
done
python - "$work" "$steps" "${ABLATION_JSON:-benchmarks/results/camvid-val-ablation.json}" "${options[@]}" <<'PY'
import csv, json, sys
from pathlib import Path
work, steps, target, options = Path(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3]), sys.argv[4:]
report = json.loads(target.read_text()) if target.exists() else {"benchmark": "camvid-val-ablation", "options": {}}
report["recipe"] = (f"dwrseg_b_synth.pt fine-tuned {steps} steps of 8 on CamVid train + 150 synthetic streets (synth-varied: the same "
                    "streets drawn with --varied), lr 0.01, warm-up 100, "
                    "seed 0, bf16; scored on CamVid val (101 images, 480x360, torch) and on 60 synthetic streets of seed 1 "
                    "(1024x512 images, each at the model's pixel count in its 2:1 shape, through the Cityscapes -> CamVid class map), "
                    "and on those 60 streets seen through other cameras (synth --varied)")
for option in options:
    scored = json.loads((work / f"{option}.json").read_text())
    log = list(csv.DictReader(open(work / f"{option}_run" / "log.csv")))[-1]
    unseen = json.loads((work / f"{option}-synth.json").read_text())
    cameras = json.loads((work / f"{option}-cameras.json").read_text())
    report["options"][option] = {"miou": round(scored["miou"] * 100, 2), "per_class": {k: round(v * 100, 2) for k, v in scored["per_class"].items()},
                                 "synth_val_miou": round(unseen["miou"] * 100, 2), "synth_val_sizes": unseen["sizes"],
                                 "synth_val_other_cameras_miou": round(cameras["miou"] * 100, 2),
                                 "weights_sha256": scored["weights_sha256"], "steps": int(log["step"]), "seconds": float(log["seconds"]),
                                 "machine": scored["machine"]["cpu"]}
for option, row in report["options"].items():
    reference = option.rpartition("+")[0] or "baseline"
    base = report["options"].get(reference)
    if base and option != reference:
        row["compared_with"] = reference
        row["delta_points"] = {"miou": round(row["miou"] - base["miou"], 2), "synth_val_miou": round(row["synth_val_miou"] - base["synth_val_miou"], 2),
                               "synth_val_other_cameras_miou": round(row["synth_val_other_cameras_miou"] - base["synth_val_other_cameras_miou"], 2),
                               **{k: round(v - base["per_class"][k], 2) for k, v in row["per_class"].items()}}
target.write_text(json.dumps(report, indent=2) + "\n")
for option, row in report["options"].items():
    delta = row.get("delta_points")
    print(f"{option:14s} CamVid val mIoU {row['miou']:6.2f}" + (f" ({delta['miou']:+.2f})" if delta else "")
          + f"   synthetic streets {row['synth_val_miou']:6.2f}" + (f" ({delta['synth_val_miou']:+.2f})" if delta else "")
          + f"   other cameras {row['synth_val_other_cameras_miou']:6.2f}" + (f" ({delta['synth_val_other_cameras_miou']:+.2f})" if delta else ""))
PY
