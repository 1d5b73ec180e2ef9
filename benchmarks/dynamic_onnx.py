"""What a dynamic-size ONNX (`dwrseg-rt export --dynamic`) costs on onnxruntime: one session for
every camera shape against one fixed-size export per shape, fp32 and int8, at the sizes the
shipped model runs for 4:3, 16:9 and 2:1 cameras. Calls alternate between the two sessions, so
both see the same machine; the ratio is what counts. Writes benchmarks/results/dynamic-onnx.json.

    python benchmarks/dynamic_onnx.py [--weights camvid] [--iterations 40]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from dwrseg_rt.checkpoint import load_checkpoint, resolve_weights
from dwrseg_rt.environment import environment_report
from dwrseg_rt.export.onnx import export_onnx, sample_image
from dwrseg_rt.export.quantize import quantize_int8
from dwrseg_rt.runtime.backends import CpuThreads, OnnxRuntimeBackend
from dwrseg_rt.runtime.cache import file_digest
from dwrseg_rt.runtime.preprocess import normalize
from dwrseg_rt.runtime.segmenter import size_for_frame

CAMERAS = {"4:3": (640, 480), "16:9": (1280, 720), "2:1": (1024, 512)}


def time_one(backend: OnnxRuntimeBackend, batch, times: list[float]) -> None:
    started = time.perf_counter()
    backend.infer(batch)
    times.append((time.perf_counter() - started) * 1000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default="camvid")
    parser.add_argument("--iterations", type=int, default=40)
    args = parser.parse_args()
    weights = resolve_weights(args.weights)
    model, info = load_checkpoint(weights)
    cpu = CpuThreads(spinning=True)
    results = []
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)

        def exported(name: str, size: tuple[int, int], dynamic: bool, calibration: list) -> dict[str, OnnxRuntimeBackend]:
            fp32 = work / f"{name}.onnx"
            export_onnx(model, info, fp32, size, check=False, dynamic=dynamic)
            quantize_int8(fp32, work / f"{name}_int8.onnx", calibration)
            return {"fp32": OnnxRuntimeBackend(fp32, cpu=cpu), "int8": OnnxRuntimeBackend(work / f"{name}_int8.onnx", "int8", cpu)}

        def batch_at(size: tuple[int, int]):
            return normalize(sample_image(size)[None], info.mean, info.std)

        dynamic = exported("dynamic", info.input_size, True, [batch_at(info.input_size)])
        for camera, (width, height) in CAMERAS.items():
            size = size_for_frame(info.input_size, width, height)
            batch = batch_at(size)
            fixed = exported(f"fixed_{size[0]}x{size[1]}", size, False, [batch])
            for precision in ("fp32", "int8"):
                same = float((fixed[precision].infer(batch) == dynamic[precision].infer(batch)).mean())
                times: dict[str, list[float]] = {"fixed": [], "dynamic": []}
                for _ in range(args.iterations):
                    time_one(fixed[precision], batch, times["fixed"])
                    time_one(dynamic[precision], batch, times["dynamic"])
                row = {"camera": camera, "size": list(size), "precision": precision, "class_map_agreement": same,
                       "fixed_ms": statistics.median(times["fixed"]), "dynamic_ms": statistics.median(times["dynamic"])}
                row["dynamic_over_fixed"] = row["dynamic_ms"] / row["fixed_ms"]
                results.append(row)
                print(f"{camera:5s} {size[0]}x{size[1]}  {precision}  fixed {row['fixed_ms']:6.1f} ms  dynamic {row['dynamic_ms']:6.1f} ms"
                      f"  ratio {row['dynamic_over_fixed']:.3f}  same class map {same * 100:.3f}%")
    report = {"machine": environment_report(), "weights": weights.name, "weights_sha256": file_digest(weights),
              "backend": "onnxruntime, CPU, batch 1, inference threads spinning", "iterations": args.iterations,
              "int8_calibration": "one synthetic frame (speed only: the int8 rows compare graphs, not accuracy)",
              "results": results}
    Path("benchmarks/results/dynamic-onnx.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
