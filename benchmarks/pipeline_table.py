"""The README's CPU table from `dwrseg-rt bench --json` reports: model-only and pipeline fps,
their ratio, and where a pipeline frame's time goes (mean ms per stage).

    python benchmarks/pipeline_table.py benchmarks/results/cpu-pipeline-*.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

STAGES = ("decode", "preprocess", "inference", "render", "encode")


def rows(report: dict) -> list[list[str]]:
    clip, size = report["settings"]["clip"], "x".join(map(str, report["results"][0]["model"]["size"]))
    table = []
    for entry in report["results"]:
        pipeline, stages = entry["pipeline"], entry["pipeline"]["stages"]
        table.append([clip, size, entry["backend"], f"{entry['model']['throughput_fps']:.1f}", f"{pipeline['pipeline_fps']:.1f}",
                      f"{entry['pipeline_over_model']:.2f}", *(f"{stages[s]['mean_ms']:.1f}" if s in stages else "-" for s in STAGES)])
    return table


def main() -> None:
    reports = [json.loads(Path(path).read_text()) for path in sys.argv[1:]]
    machine = reports[0]["machine"]
    print(f"{machine['cpu']}; onnxruntime {machine['onnxruntime']}, OpenCV {machine['opencv']}, PyAV {machine['pyav']}\n")
    header = ["clip", "model size", "backend", "model fps", "pipeline fps", "pipeline / model", *(f"{s} ms" for s in STAGES)]
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" if i < 3 else "---:" for i in range(len(header))) + "|")
    for report in reports:
        for row in rows(report):
            print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
