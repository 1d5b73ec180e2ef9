"""Would averaging the CamVid runs' weights (a "model soup", stochastic weight averaging) beat the
newest run? Scores the newest checkpoint as it is, the same with its BatchNorm statistics
recomputed, and the average of all the given checkpoints (BatchNorm recomputed the same way: an
average of weights has no statistics of its own), on the 60 synthetic streets of seed 1, the data
the shipping rule uses because CamVid val is part of the model's training. CamVid test is not
looked at. Writes benchmarks/results/weight-average.json.

    python benchmarks/weight_average.py CamVid WORK/synth_mix WORK/synth_val stage13.pt stage14.pt stage15.pt
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import torch

from dwrseg_rt.checkpoint import load_checkpoint, read_checkpoint, read_model_info, save_checkpoint
from dwrseg_rt.data.datasets import open_dataset
from dwrseg_rt.environment import environment_report
from dwrseg_rt.jobs.segment import load_segmenter
from dwrseg_rt.runtime.cache import file_digest
from dwrseg_rt.runtime.preprocess import normalize
from dwrseg_rt.train.evaluate import align_classes, evaluate
from dwrseg_rt.train.trainer import AugmentedDataset, TrainConfig, recipe_name, training_files

RECALIBRATION_CROPS = 400  # training crops (the trainer's augmentation) that BatchNorm's statistics are recomputed on


def averaged(paths: list[Path]) -> dict[str, torch.Tensor]:
    """The mean of the checkpoints' floating-point tensors (integer ones, BN's step counters, from the first)."""
    states = [read_checkpoint(path)["state_dict"] for path in paths]
    return {key: sum(state[key].float() for state in states) / len(states) if value.is_floating_point() else value
            for key, value in states[0].items()}


def recalibrate(model: torch.nn.Module, crops: AugmentedDataset, mean, std, batch: int = 8) -> None:
    """Recompute every BatchNorm's running mean and variance as a plain average over the crops."""
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.reset_running_stats()
            module.momentum = None
    picks = np.random.default_rng(0).permutation(len(crops))[:RECALIBRATION_CROPS]
    model.train()
    with torch.no_grad():
        for start in range(0, len(picks), batch):
            images = np.stack([crops[int(i)][0] for i in picks[start : start + batch]])
            model(torch.from_numpy(normalize(images, mean, std)))
    model.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("camvid", type=Path)
    parser.add_argument("synth_mix", type=Path, help="the synthetic streets mixed into training (seed 0)")
    parser.add_argument("synth_val", type=Path, help="the 60 held-out synthetic streets (seed 1)")
    parser.add_argument("checkpoints", type=Path, nargs="+", help="oldest first; the last is the newest run")
    args = parser.parse_args()
    config = TrainConfig("camvid", args.camvid, Path("unused.pt"), train_split="train+val", mix=(("synth", args.synth_mix),))
    files = training_files(config)
    config.resolve(recipe_name(config.dataset, files))
    crops = AugmentedDataset(files, config.augmentation(), seed=0)
    newest = args.checkpoints[-1]
    val, lut, _ = align_classes(read_model_info(newest), open_dataset("synth", args.synth_val, "val"))
    arms = [("newest run", None), ("newest run, BatchNorm recomputed", [newest]),
            (f"average of {len(args.checkpoints)} runs, BatchNorm recomputed", args.checkpoints)]
    results = []
    with tempfile.TemporaryDirectory() as folder:
        for name, members in arms:
            path = newest
            if members is not None:
                model, info = load_checkpoint(newest)
                model.load_state_dict(averaged(members))
                recalibrate(model, crops, info.mean, info.std)
                path = Path(folder) / f"arm{len(results)}.pt"
                save_checkpoint(path, model, info, half=True)  # as it would ship
            score = evaluate(load_segmenter(path, "torch", None, spinning=True), val, prediction_lut=lut)
            results.append({"arm": name, "miou": score["miou"], "per_class": score["per_class"]})
    base = results[0]
    print(f"{'arm':48s} {'mIoU':>7s} {'points':>7s}  per class (points against the newest run)")
    for row in results:
        row["points"] = (row["miou"] - base["miou"]) * 100
        moved = ", ".join(f"{name} {(row['per_class'][name] - base['per_class'][name]) * 100:+.1f}" for name in row["per_class"])
        print(f"{row['arm']:48s} {row['miou'] * 100:6.2f}% {row['points']:+7.2f}  {moved if row is not base else ''}")
    report = {"machine": environment_report(), "data": f"{len(val)} synthetic streets (seed 1), each at its own aspect, "
              "scored on CamVid's classes through the class map",
              "checkpoints": [{"file": path.name, "sha256": file_digest(path)} for path in args.checkpoints],
              "recalibration": f"{RECALIBRATION_CROPS} training crops (CamVid train+val and the mixed synthetic streets, "
              "the trainer's augmentation), BatchNorm statistics as a plain average", "results": results}
    Path("benchmarks/results/weight-average.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
