"""Self-describing checkpoints: weights plus everything needed to use them.

One `ModelInfo` (architecture, classes, palette, input size, normalisation, training notes)
travels inside every checkpoint and in the JSON sidecar of every export, and every
backend, the CLI and evaluation read preprocessing from it: there is no second copy.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from dwrseg_rt.data.labels import LabelSet
from dwrseg_rt.errors import UserError
from dwrseg_rt.model import DWRSeg, build_model

FORMAT = "dwrseg-rt/1"
# The shipped models, by name: CamVid (real streets, the default) and the synthetic world's.
SHIPPED_WEIGHTS = {name: Path(__file__).parent / "weights" / f"dwrseg_b_{name}.pt" for name in ("camvid", "synth")}
DEFAULT_WEIGHTS = SHIPPED_WEIGHTS["camvid"]


def resolve_weights(value: str | Path | None) -> Path:
    """`--weights`: nothing -> the default model, 'camvid' or 'synth' -> that shipped model
    (unless a file of that name exists here), anything else a path."""
    if value is None:
        return DEFAULT_WEIGHTS
    path = Path(value)
    return SHIPPED_WEIGHTS[str(value)] if str(value) in SHIPPED_WEIGHTS and not path.exists() else path


def weights_name(path: Path) -> str:
    """What to call a model on screen: 'camvid' or 'synth' for the shipped ones, else the file's stem."""
    return next((name for name, shipped in SHIPPED_WEIGHTS.items() if Path(path).resolve() == shipped.resolve()), Path(path).stem)

# No ImageNet pretraining in the paper; these are the usual statistics, stored with the weights.
IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)


@dataclass
class ModelInfo:
    variant: str
    classes: list[str]
    palette: list[list[int]]
    input_size: tuple[int, int] = (1024, 512)  # (width, height) the model is meant to run at
    mean: tuple[float, float, float] = IMAGENET_MEAN  # on 0-255 RGB
    std: tuple[float, float, float] = IMAGENET_STD
    label_set: str = "custom"
    training: dict = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @classmethod
    def for_labels(cls, variant: str, labels: LabelSet, **kwargs) -> ModelInfo:
        return cls(variant, list(labels.classes), [list(c) for c in labels.palette], label_set=labels.name, **kwargs)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ModelInfo:
        data = dict(data)
        data["input_size"] = tuple(data["input_size"])
        data["mean"], data["std"] = tuple(data["mean"]), tuple(data["std"])
        return cls(**data)


def atomic_write(path: Path, write) -> None:
    """Call `write(temp_path)` and rename the result into place only when it succeeded."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    os.close(fd)
    try:
        write(Path(temp))
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temp, 0o666 & ~umask)  # mkstemp makes 0600; the result should read like any new file
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def save_checkpoint(path: str | Path, model: DWRSeg, info: ModelInfo, half: bool = False, extra: dict | None = None) -> None:
    """Write weights + info atomically; `half` stores fp16 weights (a demo model of a few MB)."""
    state = {k: (v.half() if half and v.is_floating_point() else v) for k, v in model.state_dict().items()}
    payload = {"format": FORMAT, "info": info.to_dict(), "state_dict": state, **(extra or {})}
    atomic_write(Path(path), lambda temp: torch.save(payload, temp))


def read_checkpoint(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"weights not found: {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a corrupt or foreign file
        raise UserError(f"cannot read {path} as a dwrseg-rt checkpoint ({exc.__class__.__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise UserError(f"{path} is not a dwrseg-rt checkpoint (expected format {FORMAT})")
    return payload


def load_checkpoint(
    path: str | Path, num_classes: int | None = None, variant: str | None = None
) -> tuple[DWRSeg, ModelInfo]:
    """Rebuild the model a checkpoint describes; refuse a mismatch with what the caller expects."""
    payload = read_checkpoint(path)
    info = ModelInfo.from_dict(payload["info"])
    if num_classes is not None and num_classes != info.num_classes:
        raise UserError(f"{path} predicts {info.num_classes} classes, but {num_classes} are needed here")
    if variant is not None and variant.lower() != info.variant:
        raise UserError(f"{path} holds DWRSeg-{info.variant.upper()}, not DWRSeg-{variant.upper()}")
    model = build_model(info.variant, info.num_classes)
    state = {k: v.float() if v.is_floating_point() else v for k, v in payload["state_dict"].items()}
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise UserError(f"{path}: weights do not fit DWRSeg-{info.variant.upper()} ({first})") from None
    model.eval()
    return model, info


def write_sidecar(model_path: Path, info: ModelInfo, **extra) -> Path:
    """The JSON beside an exported model (never inside it: other loaders must still read it)."""
    sidecar = model_path.with_name(model_path.name + ".json")
    text = json.dumps({"format": FORMAT, "info": info.to_dict(), **extra}, indent=2)
    atomic_write(sidecar, lambda temp: temp.write_text(text))
    return sidecar


def read_sidecar(model_path: Path) -> tuple[ModelInfo, dict]:
    sidecar = model_path.with_name(model_path.name + ".json")
    if not sidecar.is_file():
        raise UserError(f"{model_path} has no metadata sidecar {sidecar.name}; re-export it with `dwrseg-rt export`")
    try:
        data = json.loads(sidecar.read_text())
        return ModelInfo.from_dict(data["info"]), data
    except (ValueError, KeyError, TypeError) as exc:
        raise UserError(f"{sidecar} is not a valid dwrseg-rt sidecar ({exc.__class__.__name__})") from None


def record_training(path: str | Path, **fields) -> None:
    """Add results (e.g. val_miou) to a checkpoint's training metadata, in place and atomically."""
    path = Path(path)
    payload = read_checkpoint(path)
    payload["info"]["training"].update(fields)
    atomic_write(path, lambda temp: torch.save(payload, temp))
