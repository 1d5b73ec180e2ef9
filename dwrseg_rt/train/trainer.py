"""The training loop, top to bottom: data, model, SGD + warm-up + poly, OHEM, checkpoint."""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from dwrseg_rt import __version__
from dwrseg_rt.checkpoint import ModelInfo, save_checkpoint
from dwrseg_rt.data.datasets import SegmentationFiles, check_label_values, open_dataset
from dwrseg_rt.model import build_model
from dwrseg_rt.runtime.preprocess import normalize
from dwrseg_rt.train.augment import AugmentConfig, augment
from dwrseg_rt.train.loss import OhemCrossEntropy

# The paper's per-dataset recipe; anything here can be overridden on the command line.
RECIPES = {
    "cityscapes": {"epochs": 1000, "crop": (1280, 640), "scale": (0.25, 1.5), "input_size": (1024, 512)},
    "camvid": {"epochs": 600, "crop": (960, 720), "scale": (0.5, 1.5), "input_size": (960, 720)},
    "folder": {"epochs": 300, "crop": (512, 512), "scale": (0.5, 1.5), "input_size": (1024, 512)},
}


@dataclass
class TrainConfig:
    dataset: str
    data: Path
    output: Path
    variant: str = "b"
    epochs: int | None = None
    iterations: int | None = None  # overrides epochs when set
    batch_size: int = 16
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
    augment: AugmentConfig = field(init=False)

    def __post_init__(self) -> None:
        recipe = RECIPES["cityscapes" if self.dataset == "synth" else self.dataset]
        self.epochs = self.epochs or recipe["epochs"]
        self.crop = tuple(self.crop or recipe["crop"])
        self.scale = tuple(self.scale or recipe["scale"])
        self.input_size = tuple(self.input_size or recipe["input_size"])
        self.augment = AugmentConfig(crop=self.crop, scale=self.scale)


class AugmentedDataset(Dataset):
    def __init__(self, files: SegmentationFiles, config: AugmentConfig, seed: int) -> None:
        self.files, self.config, self.seed = files, config, seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        image, label = self.files.load(index)
        check_label_values(label, self.files.labels.num_classes, self.files.pairs[index][1].name)
        rng = np.random.default_rng((self.seed, self.epoch, index))
        return augment(image, label, self.config, rng)


def poly_lr(step: int, total: int, base: float, power: float, warmup: int) -> float:
    """Linear warm-up from base/100, then polynomial decay to zero."""
    if step < warmup:
        return base * (0.01 + 0.99 * step / warmup)
    return base * (1 - (step - warmup) / max(1, total - warmup)) ** power


def train(config: TrainConfig, on_step: Callable[[int, int, float, float], None] | None = None) -> dict:
    """Train and write the checkpoint; `on_step(step, total, loss, lr)` reports progress."""
    torch.manual_seed(config.seed)
    files = open_dataset(config.dataset, config.data, "train")
    labels = files.labels
    dataset = AugmentedDataset(files, config.augment, config.seed)
    batch_size = min(config.batch_size, len(dataset))
    steps_per_epoch = max(1, len(dataset) // batch_size)
    total = config.iterations or config.epochs * steps_per_epoch
    warmup = min(config.warmup, total // 10)
    mean, std = ModelInfo.__dataclass_fields__["mean"].default, ModelInfo.__dataclass_fields__["std"].default

    def collate(items):
        images = np.stack([image for image, _ in items])
        targets = np.stack([label for _, label in items])
        return torch.from_numpy(normalize(images, mean, std)), torch.from_numpy(targets.astype(np.int64))

    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, drop_last=True, collate_fn=collate,
                        num_workers=config.workers, persistent_workers=config.workers > 0,
                        generator=torch.Generator().manual_seed(config.seed))
    model = build_model(config.variant, labels.num_classes).to(memory_format=torch.channels_last)
    model.train()
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        (no_decay if param.ndim == 1 else decay).append(param)
    optimizer = torch.optim.SGD([{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
                                lr=config.lr, momentum=config.momentum)
    criterion = OhemCrossEntropy()
    step, started, loss_value = 0, time.time(), float("nan")
    while step < total:
        for images, targets in loader:
            lr = poly_lr(step, total, config.lr, config.power, warmup)
            for group in optimizer.param_groups:
                group["lr"] = lr
            logits = model(images.contiguous(memory_format=torch.channels_last))
            loss = criterion(logits, targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            loss_value = float(loss.detach())
            if on_step:
                on_step(step, total, loss_value, lr)
            if step >= total:
                break
        dataset.epoch += 1
    info = ModelInfo(config.variant, list(labels.classes), [list(c) for c in labels.palette], config.input_size,
                     mean, std, labels.name)
    info.training = {
        "dataset": config.dataset, "data": str(config.data), "iterations": total, "images": len(dataset),
        "batch_size": batch_size, "crop": list(config.crop), "scale": list(config.scale), "lr": config.lr,
        "final_loss": loss_value, "seconds": round(time.time() - started, 1), "seed": config.seed,
        "date": datetime.date.today().isoformat(), "dwrseg_rt": __version__, "torch": str(torch.__version__),
        "recipe": {k: v for k, v in asdict(config).items() if k in ("momentum", "weight_decay", "power", "warmup")},
    }
    save_checkpoint(config.output, model.eval(), info, half=config.half_weights)
    return info.training
