"""Turn the inputs of `dwrseg-rt video` into jobs, and run them one after another.

One input keeps the simple contract (its error is the command's error). Several inputs
write into an output folder, continue past a bad file, and report each one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dwrseg_rt.errors import UserError
from dwrseg_rt.io.sources import ImageSource, VideoFileSource, expand_inputs, live_name, open_live
from dwrseg_rt.jobs.segment import ImageJob, Job, Outputs, VideoJob
from dwrseg_rt.runtime.segmenter import Segmenter


@dataclass
class Plan:
    """One job to build when its turn comes (so opening a bad file fails only that job)."""

    name: str
    build: Callable[[Segmenter, Outputs], Job]  # called with the run's segmenter and output settings
    inputs: tuple[Path, ...] = ()  # files it reads: no report may be written over them
    live: bool = False  # a camera or stream: each frame's latency counts


def plan_jobs(specs: list[str], output: Path | None, rendering: str) -> list[Plan]:
    """Check and expand the inputs (before any model is loaded) into one plan per output;
    `rendering` (overlay, mask_legend, ...) names the default outputs."""
    live, videos, images = expand_inputs(specs)
    several = len(live) + len(videos) + (1 if images else 0) > 1
    if several and output is not None and output.suffix:
        raise UserError(f"several inputs write into a folder: -o {output} looks like a file")
    stems = [p.stem for p in images]
    duplicate = next((s for s in stems if stems.count(s) > 1), None)
    if duplicate:
        raise UserError(f"two input images are named {duplicate}; their outputs would collide")
    if len(images) == 1 and output is not None and output.suffix.lower() not in ("", ".png"):
        raise UserError(f"-o {output}: an image's output is a .png file or a folder")

    def video_target(stem: str, beside: Path) -> Path:
        if output is not None and not several:
            return output
        return (output if output is not None else beside) / f"{stem}_{rendering}.mp4"

    targets: dict[Path, str] = {}
    for name, target in [(spec, video_target(live_name(spec), Path.cwd())) for spec in live] + \
                        [(str(path), video_target(path.stem, path.parent)) for path in videos]:
        key = target.resolve()
        if key in targets:
            same = "is given twice" if targets[key] == name else f"and {targets[key]} would both write {target}"
            raise UserError(f"{name} {same}; rename one or write them to separate folders")
        targets[key] = name

    plans = []
    for spec in live:
        def build(segmenter: Segmenter, outputs: Outputs, spec=spec) -> Job:
            source = open_live(spec)
            if several and output is not None:
                output.mkdir(parents=True, exist_ok=True)
            return VideoJob(source, video_target(source.name, Path.cwd()), segmenter, outputs)
        plans.append(Plan(spec, build, live=True))
    for path in videos:
        def build(segmenter: Segmenter, outputs: Outputs, path=path) -> Job:
            target = video_target(path.stem, path.parent)
            if several and outputs.save:
                target.parent.mkdir(parents=True, exist_ok=True)
            return VideoJob(VideoFileSource(path), target, segmenter, outputs, input_path=path)
        plans.append(Plan(str(path), build, (path,)))
    if images:
        plans.append(Plan(f"{len(images)} images" if len(images) > 1 else str(images[0]),
                          lambda segmenter, outputs: ImageJob(ImageSource(images), output, segmenter, outputs), tuple(images)))
    return plans


@dataclass
class Outcome:
    name: str
    result: dict | None = None
    error: str | None = None


def run_plans(plans: list[Plan], segmenter: Segmenter, outputs: Outputs, on_start: Callable[[Job, str], None] | None = None,
              on_frame: Callable[[int, float], None] | None = None) -> list[Outcome]:
    """Run each plan; with several, a failure is recorded and the next one runs.
    Stops after a job that was interrupted (Ctrl+C/SIGTERM)."""
    outcomes = []
    for plan in plans:
        try:
            job = plan.build(segmenter, outputs)
            if on_start:
                on_start(job, plan.name)
            result = job.run(on_frame)
        except UserError as exc:
            if len(plans) == 1:
                raise
            outcomes.append(Outcome(plan.name, error=str(exc)))
            continue
        outcomes.append(Outcome(plan.name, result))
        if result["interrupted"]:
            break
    return outcomes
