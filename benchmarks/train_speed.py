"""How fast does one training step of DWRSeg-B run on this CPU, per numeric setting?

One step = forward, OHEM loss, backward and SGD update on a batch of 8 random 480x360 images (the
shipped CamVid model's recipe). Settings: fp32 NCHW, fp32 channels_last (the trainer's default),
bf16 autocast + channels_last (`train --cpu-bf16`), and torch.compile on fp32 channels_last. They
run round-robin in one process, so drift of a shared machine hits them alike; the median of each is
reported with its ratio to fp32 NCHW. Also records which of the CPU's instruction sets matter (AVX-512
BF16 and AMX make bf16 fast; without them autocast emulates it).

Usage: python benchmarks/train_speed.py [--steps 6] [--rounds 2] [--no-compile] [--json PATH]
Writes benchmarks/results/train-speed.json (or PATH: one file per machine) and prints a table.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from dwrseg_rt.environment import environment_report, portable
from dwrseg_rt.model import build_model
from dwrseg_rt.train.loss import OhemCrossEntropy
from dwrseg_rt.train.trainer import dilated_depthwise_in_fp32

FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_tile")


def cpu_flags() -> dict[str, bool]:
    try:
        words = next(line for line in open("/proc/cpuinfo") if line.startswith("flags")).split()
    except (OSError, StopIteration):
        words = []
    return {flag: flag in words for flag in FLAGS}


def make_step(setting: str, batch: int, size: tuple[int, int]):
    """A closure that runs one training step in `setting` and returns its loss."""
    torch.manual_seed(0)
    model = build_model("b", 11).train()
    channels_last = setting != "fp32"
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    if setting == "bf16":
        dilated_depthwise_in_fp32(model)  # as `train --cpu-bf16` does
    forward = torch.compile(model) if setting == "compile" else model
    optimizer = torch.optim.SGD(model.parameters(), lr=0.001, momentum=0.9, weight_decay=5e-4)
    loss_fn = OhemCrossEntropy()
    images = torch.randn(batch, 3, size[1], size[0])
    if channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    labels = torch.randint(0, 11, (batch, size[1], size[0]))

    def step() -> float:
        context = torch.autocast("cpu", dtype=torch.bfloat16) if setting == "bf16" else contextlib.nullcontext()
        with context:
            loss = loss_fn(forward(images), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.detach().item()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6, help="timed steps per setting and round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument("--json", type=Path, default=Path(__file__).resolve().parent / "results" / "train-speed.json")
    args = parser.parse_args()
    size = (480, 360)
    settings = ["fp32", "fp32-channels-last", "bf16", *([] if args.no_compile else ["compile"])]
    steps, times, warmup_s, errors = {}, {s: [] for s in settings}, {}, {}
    for setting in settings:
        start = time.perf_counter()
        try:
            steps[setting] = make_step(setting, args.batch, size)
            for _ in range(2):  # warm-up (and compilation)
                steps[setting]()
        except Exception as exc:  # a setting this torch or CPU cannot run is recorded, not fatal
            errors[setting] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
            steps.pop(setting, None)
        warmup_s[setting] = round(time.perf_counter() - start, 1)
    for _ in range(args.rounds):
        for setting, step in steps.items():
            for _ in range(args.steps):
                start = time.perf_counter()
                step()
                times[setting].append(time.perf_counter() - start)
    base = statistics.median(times["fp32"])
    rows = {s: {"median_s": round(statistics.median(t), 3), "speedup_vs_fp32": round(base / statistics.median(t), 2),
                "steps_timed": len(t), "warmup_s": warmup_s[s]} for s, t in times.items() if t}
    table = Table("setting", "s/step (median)", "vs fp32", "warm-up s", title=f"DWRSeg-B training step, batch {args.batch}, {size[0]}x{size[1]}")
    for setting, row in rows.items():
        table.add_row(setting, f"{row['median_s']:.3f}", f"{row['speedup_vs_fp32']:.2f}x", f"{row['warmup_s']:.1f}")
    for setting, error in errors.items():
        table.add_row(setting, "failed", error[:40], "")
    Console().print(table)
    report = {"benchmark": "train-speed", "date": time.strftime("%Y-%m-%d"), "machine": environment_report(),
              "cpu_flags": cpu_flags(), "torch_threads": torch.get_num_threads(),
              "settings": {"model": "DWRSeg-B, 11 classes", "batch": args.batch, "size": list(size), "loss": "OHEM",
                           "optimizer": "SGD momentum 0.9", "rounds": args.rounds, "steps_per_round": args.steps},
              "results": rows, "errors": errors}
    args.json.write_text(json.dumps(portable(report), indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
