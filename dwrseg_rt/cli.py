"""The `dwrseg-rt` command line: each command parses, calls the library, prints."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from dwrseg_rt.errors import UserError

class _FlagsTakeNoValue:
    """Help lists an on/off flag without a value type (typer >= 0.17 prints `<bool>`, as if it took one)."""

    def get_params(self, ctx):
        params = super().get_params(ctx)
        for param in params:
            if getattr(param, "is_flag", False) and param.metavar is None:
                param.metavar = ""
        return params


class Command(_FlagsTakeNoValue, typer.core.TyperCommand):
    pass


class Group(_FlagsTakeNoValue, typer.core.TyperGroup):
    pass


app = typer.Typer(
    cls=Group,
    help="Real-time semantic segmentation of camera video with DWRSeg.\n\n"
         "Example: [bold]dwrseg-rt video drive.mp4[/bold] writes drive_overlay.mp4 with the shipped CamVid model. "
         "Each command's --help has its own example.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
out = Console()
err = Console(stderr=True)


def parse_size(text: str | None, option: str = "--size") -> tuple[int, int] | None:
    """'1024x512' -> (1024, 512)."""
    if text is None:
        return None
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise UserError(f"{option} must look like 1024x512 (width x height), not {text!r}") from None
    if width < 32 or height < 32 or width > 8192 or height > 8192:
        raise UserError(f"{option} {text}: width and height must be between 32 and 8192")
    return width, height


def parse_mix(items: list[str]) -> tuple[tuple[str, Path], ...]:
    """'synth:DIR' -> ('synth', Path('DIR'))."""
    parsed = []
    for item in items:
        kind, sep, root = item.partition(":")
        if not sep or not root:
            raise UserError(f"--mix takes DATASET:FOLDER, e.g. synth:streets, not {item!r}")
        parsed.append((kind, Path(root)))
    return tuple(parsed)


def parse_range(text: str | None) -> tuple[float, float] | None:
    if text is None:
        return None
    try:
        low, high = (float(v) for v in text.split(","))
    except ValueError:
        raise UserError(f"expected two numbers like 0.5,1.5, not {text!r}") from None
    if not 0 < low <= high:
        raise UserError(f"range {text}: need 0 < low <= high")
    return low, high


def resolve_weights(value: Path | None) -> Path:
    from dwrseg_rt.checkpoint import resolve_weights

    return resolve_weights(value)


# Options shared by several commands, defined once.
Weights = Annotated[Optional[Path], typer.Option("--weights", "-w", help="camvid (default: real streets) | synth (the synthetic world) | a checkpoint (.pt), exported .onnx or TensorRT .engine.")]
Checkpoint = Annotated[Optional[Path], typer.Option("--weights", "-w", help="camvid (default: real streets) | synth (the synthetic world) | a .pt checkpoint.")]
Backend = Annotated[str, typer.Option("--backend", "-b", help="auto | tensorrt | torch | onnxruntime (auto: TensorRT on a GPU if installed, else torch on CUDA, else onnxruntime on CPU).")]
Precision = Annotated[Optional[str], typer.Option("--precision", "-p", help="fp32 | fp16 | int8 (default: fp16 on GPUs, fp32 on CPU; int8: TensorRT, or onnxruntime on the CPU).")]
Calibration = Annotated[Optional[Path], typer.Option("--calibration", help="INT8: a folder of your own camera images (8+; default for onnxruntime: synthetic streets).")]
Size = Annotated[Optional[str], typer.Option("--size", "-s", help="Inference size WxH; default: the model's own (480x360 for the shipped camvid, 1024x512 for synth; `info` shows it).")]
FrameSize = Annotated[Optional[str], typer.Option("--size", "-s", help="Inference size WxH; default: the model's trained pixel count in each source's aspect ratio (480x360 for 4:3 with the shipped camvid, 552x312 for 16:9).")]
Force = Annotated[bool, typer.Option("--force", "-f", help="Overwrite an existing output.")]
Tta = Annotated[str, typer.Option("--tta", help="Test-time augmentation: none | flip (averages each frame with its mirror image: twice the model's work, for offline jobs; a .pt checkpoint).")]
Threads = Annotated[Optional[int], typer.Option("--threads", min=1, help="CPU inference threads (default: the cores this process may use).")]
Streams = Annotated[Optional[int], typer.Option("--streams", min=1, help="Frames onnxruntime segments at once on the CPU, each on its share of --threads (default: 2 for files and images, more frames per second; 1 for live sources, lowest latency).")]
JsonOut = Annotated[Optional[Path], typer.Option("--json", help="Also write the results as JSON to this path.")]


def show_version(value: bool) -> None:
    if value:
        from dwrseg_rt import __version__

        out.print(f"dwrseg-rt {__version__}")
        raise typer.Exit()


@app.callback()
def common(version: Annotated[bool, typer.Option("--version", callback=show_version, is_eager=True, help="Print the version and exit.")] = False) -> None:
    """Real-time semantic segmentation of camera video with DWRSeg."""


def progress_bar() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
                    TimeElapsedColumn(), TimeRemainingColumn(), console=err, transient=False)


class LazyProgress:
    """A progress bar that appears at its first update, so an error before any work prints alone."""

    def __init__(self, description: str = "") -> None:
        self.bar = progress_bar()
        self.task = self.bar.add_task(description, total=None, rate="", visible=False)

    def reset(self, description: str, total: int | None) -> None:
        self.bar.start()
        self.bar.reset(self.task, total=total, description=description, rate="", visible=True)

    def update(self, **fields) -> None:
        self.bar.start()
        self.bar.update(self.task, visible=True, **fields)

    def __enter__(self) -> LazyProgress:
        return self

    def __exit__(self, *exc) -> None:
        if self.bar.live.is_started:
            self.bar.stop()


def check_report_path(path: Path | None, force: bool, inputs: tuple[Path, ...] = ()) -> None:
    """Refuse a --json/--stats-json path before the work rather than after it, and never over an input."""
    from dwrseg_rt.io.outputs import check_output_path

    if path is not None:
        check_output_path(path, force, inputs)


def check_calibration(calibration: Path | None, precisions: list[str | None]) -> None:
    """--calibration belongs to INT8 and is checked before any work (missing, empty or too
    small a folder), not after a model was loaded or a benchmark run."""
    if calibration is None:
        return
    if "int8" not in precisions:
        raise UserError("--calibration is used only with --precision int8; add -p int8 or leave it out")
    from dwrseg_rt.export.calibration import calibration_images
    from dwrseg_rt.runtime.backends import ORT_CALIBRATION_LIMIT

    calibration_images(calibration, ORT_CALIBRATION_LIMIT)


def check_masks_dir(masks_dir: Path | None, inputs: tuple[Path | None, ...]) -> None:
    """Mask PNGs are named after their inputs (<stem>.png): a folder holding input images would
    have them written over, so it is refused, with --force too."""
    from dwrseg_rt.io.outputs import same_file

    if masks_dir is None or not masks_dir.is_dir():
        return
    clash = next((p for p in inputs if p is not None and Path(p).suffix.lower() == ".png" and same_file(Path(p).parent, masks_dir)), None)
    if clash is not None:
        raise UserError(f"--masks-dir {masks_dir} holds the input {clash}; masks would be written over inputs: choose another folder")


def write_json(path: Path, data: dict) -> None:
    """A report, with absolute paths made relative to the working folder (or bare names)."""
    from dwrseg_rt.environment import portable
    from dwrseg_rt.io.outputs import atomic_write

    atomic_write(path, lambda temp: temp.write_text(json.dumps(portable(data), indent=2)))


@app.command(cls=Command)
def video(
    inputs: Annotated[list[str], typer.Argument(help="Video files, images, folders, globs, a camera index (0), /dev/videoN, an rtsp://, http:// URL, a Jetson CSI camera csi://N[?width=W&height=H&fps=F] or gst:PIPELINE (system GStreamer, ending in raw video).", show_default=False)],
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Output .mp4 for one video; a folder for images or several inputs. Default: <stem>_<rendering>.mp4/.png beside each input (overlay, mask, side-by-side; _legend added with --legend).")] = None,
    overlay: Annotated[bool, typer.Option("--overlay", help="Blend the colored classes over the frame (the default).")] = False,
    mask: Annotated[bool, typer.Option("--mask", help="Write the color mask alone.")] = False,
    side_by_side: Annotated[bool, typer.Option("--side-by-side", help="The frame and its overlay next to each other.")] = False,
    legend: Annotated[bool, typer.Option("--legend", help="Draw the names and colors of the classes in view.")] = False,
    ignore_class: Annotated[Optional[list[str]], typer.Option("--ignore-class", help="Class name not to draw; repeat for several.")] = None,
    masks_dir: Annotated[Optional[Path], typer.Option("--masks-dir", help="Also write one uint8 class-id PNG per frame here.")] = None,
    no_output: Annotated[bool, typer.Option("--no-output", help="Write no rendered video or PNGs, only --masks-dir, --stats-json or the --show window (faster: nothing drawn unless shown, nothing encoded).")] = False,
    preset: Annotated[str, typer.Option(help="x264 speed/size trade-off: auto (ultrafast when the model runs on the CPU, veryfast on a GPU), ultrafast ... veryslow.")] = "auto",
    threads: Threads = None,
    streams: Streams = None,
    weights: Weights = None,
    backend: Backend = "auto",
    precision: Precision = None,
    calibration: Calibration = None,
    size: FrameSize = None,
    tta: Tta = "none",
    alpha: Annotated[float, typer.Option(min=0.0, max=1.0, help="Overlay opacity.")] = 0.5,
    show: Annotated[bool, typer.Option("--show", help="Also show the result in a window (needs a display).")] = False,
    stats_json: Annotated[Optional[Path], typer.Option("--stats-json", help="Write frames, fps and per-stage timings as JSON.")] = None,
    force: Force = False,
) -> None:
    """Segment videos, images or a live camera into H.264 mp4s or PNGs.

    Videos keep their frames, fps, size, timestamps and audio. Live sources process the newest
    frame and report how many were dropped. Ctrl+C finalizes a playable file.

    Examples:
      [bold]dwrseg-rt video drive.mp4 -o drive_seg.mp4 --alpha 0.6 --legend[/bold]
      [bold]dwrseg-rt video clips/ -o segmented/[/bold]   (every video in a folder)
      [bold]dwrseg-rt video 'frames/*.png' --mask --masks-dir ids/[/bold]
      [bold]dwrseg-rt video rtsp://camera.local/stream -o live.mp4[/bold]
    """
    from dwrseg_rt.checkpoint import weights_name
    from dwrseg_rt.export.tensorrt import EngineOptions
    from dwrseg_rt.io.render import Renderer, rendering_name
    from dwrseg_rt.io.viewer import Viewer
    from dwrseg_rt.jobs.batch import plan_jobs, run_plans
    from dwrseg_rt.io.video import PRESETS
    from dwrseg_rt.jobs.segment import Outputs, load_segmenter

    if overlay + mask + side_by_side > 1:
        raise UserError("choose one of --overlay, --mask and --side-by-side")
    if preset != "auto" and preset not in PRESETS:
        raise UserError(f"--preset must be auto or one of {', '.join(PRESETS)}, not {preset!r}")
    if no_output and output is not None:
        raise UserError("--no-output writes no video or images: drop -o, or drop --no-output")
    if no_output and not (masks_dir or show or stats_json):
        raise UserError("--no-output leaves nothing to write or show: add --masks-dir, --show or --stats-json")
    mode = "mask" if mask else "side-by-side" if side_by_side else "overlay"
    plans = plan_jobs(inputs, output, rendering_name(mode, legend))
    path = resolve_weights(weights)
    read = (*(p for plan in plans for p in plan.inputs), path, calibration)
    check_report_path(stats_json, force, read)
    check_masks_dir(masks_dir, read)
    check_calibration(calibration, [precision])
    segmenter = load_segmenter(path, backend, parse_size(size), precision, EngineOptions(calibration), threads, tta,
                               streams, live=any(plan.live for plan in plans))
    info, model = segmenter.info, weights_name(path)
    unknown = [name for name in ignore_class or [] if name not in info.classes]
    if unknown:
        raise UserError(f"--ignore-class {unknown[0]!r} is not a class of this model; classes: {', '.join(info.classes)}")
    renderer = Renderer(info.palette, info.classes, mode, alpha, tuple(info.classes.index(n) for n in ignore_class or []), legend, model)
    with LazyProgress() as progress:
        outputs = Outputs(renderer, masks_dir, force, Viewer() if show else None, not no_output, None if preset == "auto" else preset)
        outcomes = run_plans(plans, segmenter, outputs,
                             on_start=lambda job, name: progress.reset(f"segmenting {Path(name).name}", job.total_frames),
                             on_frame=lambda done, fps: progress.update(completed=done, rate=f"{fps:5.1f} fps"))
    results = [o.result for o in outcomes if o.result]
    for result in results:
        print_stats(result, model)
    if len(plans) > 1:
        print_summary(outcomes, model)
    if stats_json:
        write_json(stats_json, results[0] if len(plans) == 1 else {"runs": [o.__dict__ for o in outcomes]})
    if any(r["interrupted"] for r in results):
        err.print(f"interrupted: {results[-1]['frames']} frames written to {results[-1]['output'] or masks_dir or 'the window only'}")
        raise typer.Exit(130)
    for result in results:
        if result["output"]:
            out.print(f"wrote {result['output']}")
    if masks_dir is not None and results:
        out.print(f"wrote {sum(r['frames'] for r in results)} class-id PNGs into {masks_dir}")
    warnings = [line for result in results for line in result["warnings"]]
    for line in warnings:
        err.print(f"warning: {line}", highlight=False, soft_wrap=True)
    if warnings or any(o.error for o in outcomes):
        raise typer.Exit(1)


def print_summary(outcomes, model: str) -> None:
    table = Table(title=f"summary (model {model})")
    for column in ("input", "frames", "fps", "result"):
        table.add_column(column, justify="left" if column in ("input", "result") else "right")
    for o in outcomes:
        if o.result:
            table.add_row(o.name, str(o.result["frames"]), f"{o.result['pipeline_fps']:.1f}", o.result["output"] or "-")
        else:
            table.add_row(o.name, "-", "-", f"[red]failed: {o.error}[/red]")
    out.print(table)


def print_figures(parts: list[str]) -> None:
    """Parts joined by ' | ', wrapped between parts, never inside one ('model / 4.8 fps')."""
    lines = [""]
    for part in parts:
        if lines[-1] and len(lines[-1]) + 3 + len(part) > out.width:
            lines.append("")
        lines[-1] += (" | " if lines[-1] else "") + part
    for line in lines:
        out.print(line, highlight=False, soft_wrap=True)


STAGES = ("decode", "preprocess", "inference", "postprocess", "render", "encode", "output", "starved", "blocked")


def print_stats(result: dict, model: str) -> None:
    """The figures, then one row per pipeline stage: the decoder thread's decode and preprocess;
    inference and postprocess on the calling thread, which was `starved` waiting for the decoder
    or `blocked` waiting for the sink; the sink's render and encode, and all of its `output`."""
    sizes = ", ".join("x".join(map(str, size)) for size in result["sizes"])  # several: a folder of photos of several shapes
    print_figures([f"{result['input']}: {result['frames']} frames", f"pipeline {result['pipeline_fps']:.1f} fps",
                   f"model {result['model_fps']:.1f} fps", f"{model} on {result['backend']} @ {sizes}" if sizes else model]
                  + ([f"{result['dropped']} dropped (live)"] if result.get("dropped") else []))
    table = Table()
    for column in ("stage", "mean ms", "median ms", "p90 ms", "frames"):
        table.add_column(column, justify="right" if column != "stage" else "left")
    for stage in STAGES:
        s = result["stages"].get(stage)
        if s:
            table.add_row(stage, f"{s['mean_ms']:.1f}", f"{s['median_ms']:.1f}", f"{s['p90_ms']:.1f}", str(s["count"]))
    out.print(table)


@app.command(cls=Command)
def synth(
    output: Annotated[Path, typer.Argument(help="Folder to write the dataset and drive.mp4 into.", show_default=False)],
    seed: Annotated[int, typer.Option(help="World seed; the same seed gives the same files.")] = 0,
    train: Annotated[int, typer.Option(min=0, help="Training images.")] = 300,
    val: Annotated[int, typer.Option(min=0, help="Validation images.")] = 60,
    clip_frames: Annotated[int, typer.Option(min=0, help="Frames of the drive clip (0: no clip).")] = 90,
    size: Annotated[str, typer.Option("--size", "-s", help="Image size WxH.")] = "1024x512",
    fps: Annotated[int, typer.Option(min=1, help="Clip frame rate.")] = 30,
    varied: Annotated[bool, typer.Option(help="Domain randomisation: every street draws its own camera (0.6-2.6 m high, 42-96 degree field of view, roll, lens distortion), exposure, white balance and ground colours. Without it: one car-height camera, as the shipped models were trained on.")] = False,
    force: Force = False,
) -> None:
    """Generate synthetic street scenes with Cityscapes labels, and a drive clip.

    Writes leftImg8bit/<split>/synth/*_leftImg8bit.png, gtFine/<split>/synth/*_gtFine_labelTrainIds.png
    and drive.mp4. Example: [bold]dwrseg-rt synth demo --train 0 --val 0 --clip-frames 60[/bold]
    """
    from dwrseg_rt.data.synth import generate

    width, height = parse_size(size)
    if output.exists() and not output.is_dir():
        raise UserError(f"{output} exists and is not a folder")
    if output.is_dir() and any(output.iterdir()) and not force:
        raise UserError(f"{output} is not empty; pass --force to write into it")
    with progress_bar() as progress:
        task = progress.add_task("drawing streets", total=train + val + clip_frames, rate="")
        generate(output, seed, train, val, clip_frames, width, height, fps, on_progress=lambda: progress.advance(task), varied=varied)
    out.print(f"wrote {train} train, {val} val images" + (f" and {output / 'drive.mp4'}" if clip_frames else "") + f" under {output}")


@app.command(cls=Command)
def train(
    data: Annotated[Path, typer.Option("--data", "-d", help="Dataset root.", show_default=False)],
    output: Annotated[Path, typer.Option("--output", "-o", help="Final checkpoint; the run folder <stem>_run/ beside it holds last.pt, best.pt and log.csv.")] = Path("dwrseg.pt"),
    dataset: Annotated[str, typer.Option(help="cityscapes | camvid | synth | folder (images/ + masks/ + classes.txt).")] = "cityscapes",
    variant: Annotated[str, typer.Option(help="b | l")] = "b",
    train_split: Annotated[str, typer.Option(help="Split(s) to train on; '+' joins them: train+val (the paper's CamVid set; turns validation off).")] = "train",
    mix: Annotated[Optional[list[str]], typer.Option(help="Also train on DATASET:FOLDER (repeatable), its classes mapped by name (built in: Cityscapes/synth -> CamVid), e.g. synth:streets.")] = None,
    epochs: Annotated[Optional[int], typer.Option(min=1, help="Default: the paper's (Cityscapes 1000, CamVid 600, folder 300).")] = None,
    iterations: Annotated[Optional[int], typer.Option(min=1, help="Train this many steps instead of --epochs.")] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Global batch, split across torchrun processes.")] = 16,
    lr: Annotated[float, typer.Option(min=0.0)] = 0.02,
    warmup: Annotated[int, typer.Option(min=0, help="Linear warm-up steps, from 1/100 of --lr up to the poly curve (a run shorter than this stays in warm-up: one smooth rise and fall).")] = 1000,
    crop: Annotated[Optional[str], typer.Option(help="Crop WxH; default per dataset: Cityscapes/synth 1280x640, CamVid 960x720 (480x360 for the 480x360 SegNet release, told from its images), folder 512x512.")] = None,
    scale: Annotated[Optional[str], typer.Option(help="Random rescale range; default per dataset: Cityscapes/synth 0.25,1.5, CamVid and folder 0.5,1.5.")] = None,
    input_size: Annotated[Optional[str], typer.Option(help="Inference size stored in the checkpoint and used for validation; default: Cityscapes/synth/folder 1024x512, CamVid 960x720 (480x360 release: 480x360).")] = None,
    val_every: Annotated[Optional[int], typer.Option(min=0, help="Validate every N steps (default: 10 times per run) when a val split exists; 0: never.")] = None,
    save_every: Annotated[Optional[int], typer.Option(min=1, help="Write the resumable last.pt every N steps (default: 20 times per run), besides at the end and on Ctrl+C.")] = None,
    workers: Annotated[int, typer.Option(min=0, help="Data loading processes.")] = 2,
    seed: Annotated[int, typer.Option()] = 0,
    amp: Annotated[bool, typer.Option(help="Mixed precision (fp16) on CUDA.")] = True,
    cpu_bf16: Annotated[bool, typer.Option("--cpu-bf16", help="bf16 autocast on the CPU: about 2x faster steps on CPUs with AVX-512 BF16 or AMX (the dilated depth-wise convolutions stay fp32).")] = False,
    robust: Annotated[bool, typer.Option(help="Augment for other cameras and streets: aspect jitter, gamma, white balance, hue, low light, blur, noise, JPEG.")] = False,
    focus_rare: Annotated[float, typer.Option(min=0.0, max=1.0, help="Probability of a crop centred on a rare class (< 2.5% of pixels).")] = 0.0,
    class_weights: Annotated[bool, typer.Option(help="Weigh rare classes up in the loss (square root of inverse pixel frequency, capped at 5).")] = False,
    tensorboard: Annotated[bool, typer.Option(help="Also log to TensorBoard in the run folder.")] = False,
    run_dir: Annotated[Optional[Path], typer.Option(help="Run folder (default: <output stem>_run/).")] = None,
    resume: Annotated[Optional[Path], typer.Option(help="Continue from a run folder or its last.pt, exactly where it stopped.")] = None,
    init: Annotated[Optional[Path], typer.Option(help="Start from these weights (fine-tuning); a classifier for another class count starts fresh.")] = None,
    half_weights: Annotated[bool, typer.Option(help="Store fp16 weights in the final checkpoint (half the size).")] = False,
    force: Force = False,
) -> None:
    """Train DWRSeg with the paper's recipe (SGD 0.9, wd 5e-4, lr 0.02, poly 0.9, OHEM).

    Multi-GPU: [bold]torchrun --nproc_per_node=2 -m dwrseg_rt train ...[/bold]
    Example: [bold]dwrseg-rt train --dataset cityscapes --data ~/data/cityscapes -o dwrseg_b.pt[/bold]
    """
    from dwrseg_rt.train.trainer import TrainConfig
    from dwrseg_rt.train.trainer import train as run_training

    mixes = parse_mix(mix or [])
    init = resolve_weights(init) if init is not None else None  # takes the shipped names too: --init camvid
    run_dir = check_run_folders(output, run_dir, resume, force, (data, *(root for _, root in mixes), init))
    config = TrainConfig(dataset=dataset, data=data, output=output, variant=variant, epochs=epochs, iterations=iterations,
                         batch_size=batch_size, train_split=train_split, mix=mixes, lr=lr, warmup=warmup,
                         crop=parse_size(crop, "--crop"), scale=parse_range(scale), input_size=parse_size(input_size, "--input-size"),
                         workers=workers, seed=seed, half_weights=half_weights, val_every=val_every, save_every=save_every, amp=amp,
                         tensorboard=tensorboard, run_dir=run_dir, init=init, robust=robust, focus_rare=focus_rare,
                         class_weights=class_weights, cpu_bf16=cpu_bf16)
    with LazyProgress("training") as progress:
        try:
            summary = run_training(config, lambda step, total, loss, rate: progress.update(
                completed=step, total=total, rate=f"loss {loss:.3f} lr {rate:.4f}"), resume, say=err.print)
        except KeyboardInterrupt:
            progress.bar.stop()
            err.print(f"interrupted; continue with: dwrseg-rt train ... --resume {config.run_dir}")
            raise typer.Exit(130) from None
    best = f", best val mIoU {summary['val_miou'] * 100:.2f}%" if "val_miou" in summary else ""
    out.print(f"wrote {output} ({summary['iterations']} steps, final loss {summary['final_loss']:.3f}{best}, {summary['seconds']:.0f} s); run folder {config.run_dir}")


def check_run_folders(output: Path, run_dir: Path | None, resume: Path | None, force: bool,
                      inputs: tuple[Path | None, ...]) -> Path:
    """The training outputs, checked before any work; returns the run folder. A resumed run
    writes into the folder it resumes (not one derived from -o), and -o follows the output
    rule as always. A new run refuses a folder that holds another run (its last.pt, best.pt
    or log.csv), unless --force; nothing is ever written over an input (data, --mix, --init,
    the resumed state)."""
    from dwrseg_rt.io.outputs import check_output_path, overwrites

    if output.suffix.lower() != ".pt":
        raise UserError(f"-o {output} must end in .pt: training writes a checkpoint (export it afterwards)")
    if resume is not None:
        resumed = resume if resume.is_dir() else resume.parent
        if run_dir is not None and not (run_dir.exists() and os.path.samefile(run_dir, resumed)):
            raise UserError(f"--run-dir {run_dir} is not the folder being resumed ({resumed}); a resumed run writes into its own folder")
        run_dir = resumed
    run_dir = run_dir or output.with_name(f"{output.stem}_run")
    check_output_path(output, force, (*inputs, resume))
    clash = next((source for source in inputs if source is not None and overwrites(run_dir, Path(source))), None)
    if clash is not None:
        raise UserError(f"run folder {run_dir} is in the input {clash}; choose another --run-dir or -o")
    held = [name for name in ("last.pt", "best.pt", "log.csv") if (run_dir / name).exists()]
    if resume is None and held and not force:
        raise UserError(f"run folder {run_dir} holds another run ({', '.join(held)}); continue it with --resume {run_dir}, "
                        "choose another --run-dir or -o, or pass --force to start over there")
    if run_dir.exists() and not run_dir.is_dir():
        raise UserError(f"run folder {run_dir} is a file")
    return run_dir


@app.command(name="eval", cls=Command)
def evaluate(
    data: Annotated[Path, typer.Option("--data", "-d", help="Dataset root.", show_default=False)],
    dataset: Annotated[str, typer.Option(help="cityscapes | camvid | synth | folder")] = "cityscapes",
    split: Annotated[str, typer.Option(help="Split to evaluate.")] = "val",
    weights: Weights = None,
    backend: Backend = "auto",
    precision: Precision = None,
    calibration: Calibration = None,
    size: FrameSize = None,
    tta: Tta = "none",
    class_map: Annotated[Optional[Path], typer.Option(help="JSON {\"model class\": \"dataset class\"} (or the other way) for a model trained on other classes; Cityscapes/synth <-> CamVid is built in.")] = None,
    drop_unmapped: Annotated[bool, typer.Option("--drop-unmapped", help="Score without the classes a --class-map leaves unmapped (otherwise refused).")] = False,
    json_path: JsonOut = None,
    force: Force = False,
) -> None:
    """mIoU over a split from one confusion matrix, at the labels' own resolution.

    A model with other classes than the dataset is scored on the coarser side's classes through a class map (Cityscapes -> CamVid built in).

    With --precision int8 the fp32 model is scored on the same images too: the drift and the class-map agreement are reported.
    Example: [bold]dwrseg-rt eval --dataset camvid --data CamVid --split test --weights synth[/bold]
    """
    from dwrseg_rt.data.datasets import check_files, open_dataset
    from dwrseg_rt.environment import environment_report
    from dwrseg_rt.export.tensorrt import EngineOptions
    from dwrseg_rt.jobs.segment import load_segmenter
    from dwrseg_rt.runtime.cache import file_digest
    from dwrseg_rt.train.evaluate import align_classes, read_class_map
    from dwrseg_rt.train.evaluate import evaluate as run_eval

    path = resolve_weights(weights)
    check_report_path(json_path, force, (data, path, class_map, calibration))
    mapping = read_class_map(class_map) if class_map else None
    files = open_dataset(dataset, data, split)
    check_files(files)  # labels outside the classes are refused, as train does, not silently not scored
    check_calibration(calibration, [precision])
    def scorer(precision: str | None):  # one image at a time, nothing beside it: all threads on it, spinning
        return load_segmenter(path, backend, parse_size(size), precision, EngineOptions(calibration), tta=tta, streams=1, spinning=True)

    segmenter = scorer(precision)
    info = segmenter.info
    files, prediction_lut, mapped = align_classes(info, files, mapping, drop_unmapped)
    if mapped:
        err.print(f"scoring through a class map: {mapped}")
    reference = scorer("fp32") if precision == "int8" else None
    with progress_bar() as progress:
        task = progress.add_task(f"evaluating {split}", total=len(files), rate="")
        result = run_eval(segmenter, files, on_image=lambda: progress.advance(task), prediction_lut=prediction_lut,
                          reference=reference)
    print_figures([f"mIoU {result['miou'] * 100:.2f}%", f"pixel accuracy {result['pixel_acc'] * 100:.2f}%",
                   f"{len(files)} images @ {', '.join(f'{w}x{h}' for w, h in result['sizes'])}"])
    table = Table()
    table.add_column("class")
    table.add_column("IoU %", justify="right")
    for name, iou in result["per_class"].items():
        table.add_row(name, "-" if iou is None else f"{iou * 100:.2f}")
    out.print(table)
    if reference is not None:
        out.print(f"{segmenter.backend.name} vs {reference.backend.name} on the same images: mIoU {result['miou'] * 100:.2f}% vs "
                  f"{result['reference']['miou'] * 100:.2f}% (drift {result['miou_drift_points']:+.2f} points), "
                  f"class-map agreement {result['agreement'] * 100:.2f}%")
    if json_path:
        trained = info.training
        write_json(json_path, {**result, "weights": str(path), "weights_sha256": file_digest(path),
                               "class_map": mapped, "backend": segmenter.backend.name, "precision": precision, "tta": tta, "dataset": dataset, "split": split,
                               "trained": {k: trained.get(k) for k in ("dataset", "train_split", "mix", "iterations", "seconds", "init", "date")},
                               "machine": environment_report()})


@app.command(cls=Command)
def export(
    format: Annotated[str, typer.Option("--format", help="onnx | engine (TensorRT)")] = "onnx",
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Output path (default: <weights stem>_<W>x<H>[_int8].onnx / _<precision>.engine).")] = None,
    weights: Checkpoint = None,
    size: Size = None,
    precision: Annotated[Optional[str], typer.Option("--precision", "-p", help="onnx: fp32 (default) | int8 (onnxruntime, CPU); engine: fp16 (default) | fp32 | int8.")] = None,
    calibration: Annotated[Optional[Path], typer.Option(help="INT8: a folder of your own camera images (8+, a few hundred for TensorRT).")] = None,
    workspace: Annotated[float, typer.Option(min=0.1, help="Engine builder workspace, GiB.")] = 2.0,
    dla_core: Annotated[Optional[int], typer.Option(min=0, help="Jetson: build for this DLA core (GPU fallback on).")] = None,
    batch: Annotated[int, typer.Option(min=1, help="Engine: the largest batch it accepts.")] = 1,
    build_only: Annotated[bool, typer.Option("--build-only", help="Build the engine into the cache that --backend tensorrt uses, then exit.")] = False,
    rebuild: Annotated[bool, typer.Option("--rebuild", help="Engine: build it again even if the cache holds one.")] = False,
    dynamic: Annotated[bool, typer.Option("--dynamic", help="ONNX: height and width left free, one file for every camera shape; it then runs, like a checkpoint, at each frame's aspect (--size: where it is checked and calibrated).")] = False,
    force: Force = False,
) -> None:
    """Export to ONNX (opset 17, argmax folded in, JSON sidecar, parity check) or a TensorRT engine.

    Examples:
      [bold]dwrseg-rt export --format onnx --size 1024x512 -o dwrseg_b.onnx[/bold]
      [bold]dwrseg-rt export --format onnx --dynamic -o dwrseg_b_dynamic.onnx[/bold]
      [bold]dwrseg-rt export --format onnx --precision int8 --calibration frames/ -o dwrseg_b_int8.onnx[/bold]
      [bold]dwrseg-rt export --format engine --precision int8 --calibration frames/ -o dwrseg_b_int8.engine[/bold]
    """
    from dwrseg_rt.checkpoint import load_checkpoint

    if format not in ("onnx", "engine"):
        raise UserError(f"unknown export format {format!r}; supported: onnx, engine")
    weights = resolve_weights(weights)
    if weights.suffix.lower() in (".onnx", ".engine"):
        raise UserError(f"{weights.name} is already an export; export starts from a .pt checkpoint")
    model, info = load_checkpoint(weights)
    width, height = parse_size(size) or info.input_size
    check_calibration(calibration, [precision])
    if format == "engine":
        from dwrseg_rt.export.tensorrt import EngineOptions

        if dynamic:
            raise UserError("a TensorRT engine is built for one size (--backend tensorrt builds and caches one per size); --dynamic is for --format onnx")

        precision = precision or "fp16"
        options = EngineOptions(calibration, workspace, dla_core, batch, force_rebuild=rebuild)
        output = None if build_only else output or Path(f"{weights.stem}_{width}x{height}_{precision}.engine")
        if output is not None:
            check_export_path(output, ".engine", force, (weights, calibration))
        export_engine(weights, model, info, (width, height), precision, options, output)
        return
    from dwrseg_rt.export.onnx import check_parity, export_onnx

    if precision not in (None, "fp32", "int8"):
        raise UserError(f"an ONNX export is fp32 or int8 (for onnxruntime on the CPU), not {precision!r}; fp16 is an engine: --format engine")
    output = output or Path(f"{weights.stem}_{'dynamic' if dynamic else f'{width}x{height}'}{'_int8' if precision == 'int8' else ''}.onnx")
    check_export_path(output, ".onnx", force, (weights, calibration))
    if precision == "int8":
        export_int8(weights, model, info, (width, height), calibration, output, dynamic)
        return
    with err.status(f"exporting {weights.name} at {export_size((width, height), dynamic)}"):
        report = export_onnx(model, info, output, (width, height), dynamic=dynamic)
    out.print(f"wrote {output} and {output.name}.json")
    out.print(f"parity vs torch: max |Δlogit| {report['max_abs_logit_diff']:.2e}, argmax agreement {report['argmax_agreement'] * 100:.3f}%")
    check_parity(report)  # the files stay for inspection; the exit says they are wrong


def export_size(size: tuple[int, int], dynamic: bool) -> str:
    """What an export's progress line says about its size (a dynamic one is only checked at it)."""
    return f"{'any size, checked at ' if dynamic else ''}{size[0]}x{size[1]}"


def copy_export(source: Path, output: Path) -> None:
    """Copy a cached export and its sidecar to `output`, each atomically."""
    import shutil

    from dwrseg_rt.io.outputs import atomic_write

    for origin, target in ((source, output), (source.with_name(source.name + ".json"), output.with_name(output.name + ".json"))):
        atomic_write(target, lambda temp, origin=origin: shutil.copyfile(origin, temp))
    out.print(f"wrote {output} and {output.name}.json")


def export_int8(weights, model, info, size, calibration: Path | None, output: Path, dynamic: bool = False) -> None:
    """Quantize (or reuse) the cached INT8 model, report its agreement with fp32, copy it out."""
    from dwrseg_rt.export.calibration import calibration_images
    from dwrseg_rt.export.onnx import sample_image
    from dwrseg_rt.runtime.backends import ORT_CALIBRATION_LIMIT, cached_int8, cached_onnx
    from dwrseg_rt.runtime.preprocess import normalize

    images = calibration_images(calibration, ORT_CALIBRATION_LIMIT) if calibration else None
    with err.status(f"exporting {weights.name} at {export_size(size, dynamic)}"):
        fp32 = cached_onnx(weights, model, info, size, dynamic=dynamic)
    int8 = cached_int8(fp32.path, info, size, images)
    batch = normalize(sample_image(size)[None], info.mean, info.std)
    agreement = (fp32.infer(batch) == int8.infer(batch)).mean()
    copy_export(int8.path, output)
    out.print(f"class-map agreement with fp32 on a synthetic street: {agreement * 100:.2f}% (measure yours: dwrseg-rt eval --precision int8)")


def check_export_path(output: Path, suffix: str, force: bool, inputs: tuple[Path | None, ...]) -> None:
    """An export's file and its sidecar follow the output rule, and the name says what it holds
    (`video -w x.engine` would take an ONNX named so for a TensorRT engine)."""
    from dwrseg_rt.io.outputs import check_output_path

    if output.suffix.lower() != suffix:
        raise UserError(f"output {output} must end in {suffix}: that is what this export writes")
    check_output_path(output, force, inputs)
    check_output_path(output.with_name(output.name + ".json"), force, inputs)


def export_engine(weights, model, info, size, precision, options, output) -> None:
    """Build (or reuse) the cached engine, then copy it and its sidecar to `output` (None: --build-only)."""
    from dwrseg_rt.runtime.tensorrt import cached_engine

    with err.status("building the TensorRT engine (minutes on first use)"):
        engine = cached_engine(weights, model, info, size, precision, options, log=err.print)
    if output is None:
        out.print(f"engine cached at {engine}")
        return
    copy_export(engine, output)


def compact(value: float) -> str:
    """At most five characters for any speed or latency a machine gives (0.7 fps to 99999 ms):
    the bench table stays within 80 columns on a slow board as on a fast GPU."""
    if value >= 1e5:
        return f"{value:.0e}".replace("e+0", "e")
    return f"{value:.0f}" if value >= 100 else f"{value:.3g}" if value >= 1 else f"{value:.2f}"


def bench_table(report: dict) -> Table:
    """One row per backend and precision, narrow enough for an 80-column terminal (the other
    latency percentiles are in the JSON). Speed-up: model fps over the first row's; pipe ÷
    slowest: pipeline fps over the slowest of model, decode alone and encode alone."""
    from rich import box

    settings = report["settings"]
    first = report["results"][0]["model"]
    table = Table(title=f"dwrseg-rt bench  {'x'.join(map(str, first['size']))}  batch {settings['batch']}  "
                        f"{settings['iterations']} runs after {settings['warmup']} warm-up", box=box.SIMPLE_HEAD)
    for column in ("backend", "model\nfps", "speed-\nup", "p50\nms", "p95\nms", "pipe\nfps", "pipe ÷\nmodel", "pipe ÷\nslowest"):
        table.add_column(column, justify="left" if column == "backend" else "right", no_wrap=True)
    for entry in report["results"]:
        model, pipeline = entry["model"], entry.get("pipeline")
        latency = [compact(model['latency_ms'][k]) for k in ("median", "p95")]
        ratios = [compact(pipeline['pipeline_fps']), f"{entry['pipeline_over_model']:.2f}", f"{entry['pipeline_over_slowest_stage']:.2f}"] \
            if pipeline else ["-"] * 3
        table.add_row(entry["backend"], compact(model['throughput_fps']), f"{model['throughput_fps'] / first['throughput_fps']:.2f}x",
                      *latency, *ratios)
    return table


@app.command(cls=Command)
def bench(
    backend: Annotated[Optional[list[str]], typer.Option("--backend", "-b", help="Backend to measure; repeat to compare several in one table.")] = None,
    precision: Annotated[Optional[list[str]], typer.Option("--precision", "-p", help="Precision to measure; repeat to compare (default: each backend's).")] = None,
    calibration: Calibration = None,
    weights: Weights = None,
    size: Size = None,
    batch: Annotated[int, typer.Option(min=1, help="Frames per inference call (model-only).")] = 1,
    warmup: Annotated[int, typer.Option(min=0)] = 3,
    iterations: Annotated[int, typer.Option(min=1)] = 20,
    clip: Annotated[Optional[Path], typer.Option(help="Also run the full video pipeline on this clip.")] = None,
    camera: Annotated[Optional[str], typer.Option(help="Feed frames of this size WxH (e.g. 1920x1080): model-only then includes resizing in and the class map back out.")] = None,
    threads: Threads = None,
    streams: Streams = None,
    json_path: JsonOut = None,
    force: Force = False,
) -> None:
    """Model-only throughput and latency (trtexec-style), and pipeline fps on a clip.

    Every --backend runs at every --precision. Without either: torch, onnxruntime fp32 and onnxruntime int8 side by side.
    Example: [bold]dwrseg-rt bench -b onnxruntime -p fp32 -p int8 --clip drive.mp4 --json bench.json[/bold]
    """
    from dwrseg_rt.jobs.benchmark import DEFAULT_RUNS, run_benchmarks

    check_report_path(json_path, force, (clip, resolve_weights(weights), calibration))
    runs = [(b, p) for b in backend or ["torch", "onnxruntime"] for p in precision or [None]] if backend or precision else DEFAULT_RUNS
    check_calibration(calibration, [p for _, p in runs])
    with err.status("benchmarking"):
        report = run_benchmarks(resolve_weights(weights), runs, parse_size(size), clip, batch, warmup, iterations, calibration,
                                parse_size(camera, "--camera"), threads, streams)
    out.print(bench_table(report))
    overlapped = [f"{e['backend']} ({e['model']['in_flight']})" for e in report["results"] if e["model"]["in_flight"] > 1]
    if overlapped:
        out.print(f"p50/p95 of {', '.join(overlapped)}: one frame among that many in flight, as in the pipeline; "
                  "--streams 1 gives a live camera's latency")
    for entry in report["results"]:
        model = entry["model"]
        if "device_ms" in model:
            err.print(f"{entry['backend']}: " + ", ".join(f"{k} {v:.2f} ms" for k, v in model["device_ms"].items()) + " (CUDA events)")
        if model["high_variance"]:
            err.print(f"warning: {entry['backend']} latency varies a lot (cv {model['latency_ms']['cv']:.2f}); the machine may be busy")
    if "stages_alone" in report:
        alone = report["stages_alone"]
        out.print(f"decode alone {alone['decode_only_fps']:.1f} fps, encode alone {alone['encode_only_fps']:.1f} fps")
    if json_path:
        write_json(json_path, report)


@app.command(name="ros-dds", cls=Command)
def ros_dds(
    input_topic: Annotated[str, typer.Option("--input-topic", "-t", help="ROS 2 image topic to segment.")] = "/camera/image_raw",
    compressed: Annotated[bool, typer.Option("--compressed", help="Subscribe to <topic>/compressed (CompressedImage).")] = False,
    domain: Annotated[int, typer.Option(min=0, max=232, help="DDS domain (ROS_DOMAIN_ID).")] = 0,
    reliability: Annotated[str, typer.Option(help="reliable | best_effort (QoS of input and outputs; best_effort loses large images on stock FastDDS peers).")] = "reliable",
    namespace: Annotated[str, typer.Option(help="Namespace of the output topics.")] = "",
    weights: Weights = None,
    backend: Backend = "auto",
    precision: Precision = None,
    calibration: Calibration = None,
    size: FrameSize = None,
    alpha: Annotated[float, typer.Option(min=0.0, max=1.0)] = 0.5,
    count: Annotated[Optional[int], typer.Option(min=1, help="Exit after this many frames.")] = None,
) -> None:
    """Run the segmentation node over CycloneDDS with ROS 2 wire types (no ROS install needed).

    Publishes /segment_node/{class_mask,color_mask,overlay} (+ processing_ms, latency_ms) that a
    ROS 2 graph using rmw_cyclonedds_cpp on the same domain sees as ordinary topics.
    Example: [bold]dwrseg-rt ros-dds --input-topic /front_camera/image_raw --domain 7[/bold]
    """
    from dwrseg_rt.export.tensorrt import EngineOptions
    from dwrseg_rt.jobs.segment import load_segmenter
    from dwrseg_rt.ros.dds import check_bridge_arguments, run_bridge

    check_bridge_arguments(input_topic, namespace, reliability)  # before the model: a typo costs nothing
    check_calibration(calibration, [precision])
    segmenter = load_segmenter(resolve_weights(weights), backend, parse_size(size), precision, EngineOptions(calibration), live=True)
    stats = run_bridge(segmenter, input_topic, compressed, domain, reliability, namespace, alpha, count, log=err.print)
    out.print(f"processed {stats.frames} frames ({stats.errors} unusable)")


@app.command(cls=Command)
def bag(
    source: Annotated[Path, typer.Argument(help="Input rosbag2 folder (sqlite3 or MCAP).", show_default=False)],
    output: Annotated[Path, typer.Argument(help="Output bag folder (same storage format).", show_default=False)],
    topic: Annotated[str, typer.Option("--topic", "-t", help="Image or CompressedImage topic to segment.", show_default=False)],
    weights: Weights = None,
    backend: Backend = "auto",
    precision: Precision = None,
    calibration: Calibration = None,
    size: FrameSize = None,
    tta: Tta = "none",
    alpha: Annotated[float, typer.Option(min=0.0, max=1.0)] = 0.5,
    force: Force = False,
) -> None:
    """Segment a recorded drive: a new bag with every original message plus the node's outputs.

    Output topics /segment_node/{class_mask,color_mask,overlay} carry the input headers and the
    input messages' bag timestamps. Example: [bold]dwrseg-rt bag drive_bag seg_bag -t /camera/image_raw[/bold]
    """
    from dwrseg_rt.export.tensorrt import EngineOptions
    from dwrseg_rt.jobs.segment import load_segmenter
    from dwrseg_rt.ros.bag import check_bag_job, segment_bag

    check_calibration(calibration, [precision])
    check_bag_job(source, output, topic, force)
    segmenter = load_segmenter(resolve_weights(weights), backend, parse_size(size), precision, EngineOptions(calibration), tta=tta)
    with LazyProgress(f"segmenting {topic}") as progress:
        result = segment_bag(source, output, topic, segmenter, alpha, force,
                             on_message=lambda done, total: progress.update(completed=done, total=total))
    skipped = f", {result['skipped']} unusable images copied unsegmented" if result["skipped"] else ""
    out.print(f"wrote {output} ({result['storage']}): {result['images']} images segmented, {result['copied']} messages copied{skipped}")


@app.command(cls=Command)
def info(weights: Weights = None) -> None:
    """Versions and devices for bug reports, and what the weights contain (.pt, or an export's sidecar):
    classes and colours, the input the model takes, what it was trained on and started from.

    Example: [bold]dwrseg-rt info -w dwrseg_b.onnx[/bold]
    """
    from dwrseg_rt.checkpoint import read_model_info
    from dwrseg_rt.environment import environment_report

    table = Table(show_header=False)
    table.add_column(no_wrap=True)
    table.add_column(overflow="fold")  # long paths and hashes wrap; nothing is cut with "…"
    for key, value in environment_report().items():
        table.add_row(key, str(value))
    path = resolve_weights(weights)
    table.add_row("weights", str(path))
    try:
        meta = read_model_info(path)
    except UserError:
        out.print(table)  # the versions are still worth printing; the error follows, exit 2
        raise
    trained = meta.training
    width, height = meta.input_size
    table.add_row("model", f"DWRSeg-{meta.variant.upper()}, {meta.num_classes} classes ({meta.label_set}), input {width}x{height}")
    spec = meta.input_spec()
    table.add_row("input", f"{spec['colour_order']} float32 {spec['layout']}, {spec['value']}; "
                           f"mean {', '.join(f'{v:g}' for v in meta.mean)}; std {', '.join(f'{v:g}' for v in meta.std)}")
    table.add_row("trained", json.dumps({k: round(trained[k], 4) if isinstance(trained[k], float) else trained[k] for k in ("dataset", "train_split", "mix", "iterations", "seconds", "val_miou", "date") if k in trained}))
    if "init" in trained:
        table.add_row("started from", describe_init(trained["init"], path))
    if path.suffix.lower() in (".onnx", ".engine"):
        from dwrseg_rt.checkpoint import read_sidecar

        sidecar = read_sidecar(path)[1]
        width, height = sidecar.get("inference_size", meta.input_size)
        at = f"any size (each frame's aspect; checked at {width}x{height})" if sidecar.get("dynamic_size") else f"{width}x{height}"
        table.add_row("export", f"{sidecar.get('precision', 'fp32')} at {at}")
    out.print(table)
    classes = Table("id", "class", "colour (RGB)", title="classes")
    for index, (name, rgb) in enumerate(zip(meta.classes, meta.palette)):
        classes.add_row(str(index), name, f"[on rgb({rgb[0]},{rgb[1]},{rgb[2]})]    [/] {rgb[0]}, {rgb[1]}, {rgb[2]}")
    out.print(classes)


def describe_init(init: object, weights: Path) -> str:
    """The weights a model was fine-tuned from; a shipped file retrained in place names its own path,
    which is an earlier file, not itself."""
    if isinstance(init, dict):
        return json.dumps(init)
    if Path(str(init)).name == weights.name:
        return f"an earlier {weights.name} (the previous stage, then at {init})"
    return str(init)


def _terminate(signum, frame) -> None:
    """SIGTERM ends a run the way Ctrl+C does: outputs finalized, stats printed, exit 130."""
    raise KeyboardInterrupt


def main() -> None:
    """Entry point: a `UserError` becomes one line on stderr (the traceback only with --debug)."""
    debug = "--debug" in sys.argv
    if debug:
        sys.argv.remove("--debug")
    signal.signal(signal.SIGTERM, _terminate)
    try:
        app()
    except UserError as exc:
        if debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except OSError as exc:  # disk full, permission denied, a path that vanished: the system's words, one line
        if debug:
            raise
        print(f"error: {exc.strerror or exc}" + (f": {exc.filename}" if getattr(exc, "filename", None) else ""), file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
