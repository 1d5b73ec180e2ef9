"""Self-describing checkpoints: weights plus everything needed to use them.

One `ModelInfo` (architecture, classes, palette, input size, normalisation, training notes)
travels inside every checkpoint and in the JSON sidecar of every export, and every
backend, the CLI and evaluation read preprocessing from it: there is no second copy.
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch

from dwrseg_rt.data.labels import LabelSet
from dwrseg_rt.errors import UserError
from dwrseg_rt.io.outputs import atomic_write
from dwrseg_rt.model import VARIANTS, DWRSeg, build_model

FORMAT = "dwrseg-rt/1"
# The shipped models, by name: CamVid (real streets, the default) and the synthetic world's.
SHIPPED_WEIGHTS = {name: Path(__file__).parent / "weights" / f"dwrseg_b_{name}.pt" for name in ("camvid", "synth")}
DEFAULT_WEIGHTS = SHIPPED_WEIGHTS["camvid"]


def resolve_weights(value: str | Path | None) -> Path:
    """`--weights`/`--init`: nothing -> the default model, 'camvid' or 'synth' -> that shipped
    model (unless a file of that name exists here), anything else a path (not a folder)."""
    if value is None:
        return DEFAULT_WEIGHTS
    path = Path(value)
    if str(value) in SHIPPED_WEIGHTS and not path.is_file():  # a folder named 'synth' does not shadow the model
        return SHIPPED_WEIGHTS[str(value)]
    if path.is_dir():
        raise UserError(f"weights {path} is a folder; name a .pt checkpoint, an .onnx or an .engine file (or camvid, synth)")
    return path


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

    def input_spec(self) -> dict:
        """What a program feeding an export itself (C++, another runtime) must hand it."""
        return {"name": "image", "layout": "NCHW", "dtype": "float32", "colour_order": "RGB",
                "value": "(pixel - mean) / std, pixel in 0-255", "mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, data: dict, source: str | Path = "model") -> ModelInfo:
        """Checked field by field: a file that claims our format but lacks or garbles a field is
        refused in one line (unknown extra fields, from a newer version, are ignored)."""
        def bad(what: str) -> UserError:
            return UserError(f"{source}: model metadata {what}")

        if not isinstance(data, dict):
            raise bad("is not a table of fields")
        missing = [name for name in ("variant", "classes", "palette") if name not in data]
        if missing:
            raise bad(f"lacks {', '.join(missing)}")
        known = {f.name for f in fields(cls)}
        data = {k: v for k, v in data.items() if k in known}
        if not isinstance(data["variant"], str) or data["variant"] not in VARIANTS:
            raise bad(f"names variant {data['variant']!r}, not one of {', '.join(VARIANTS)}")
        classes, palette = data["classes"], data["palette"]
        if not isinstance(classes, list) or not 0 < len(classes) < 255 or not all(isinstance(c, str) for c in classes):
            raise bad("has no valid class list (1-254 names)")
        if (not isinstance(palette, list) or len(palette) != len(classes)
                or not all(isinstance(c, (list, tuple)) and len(c) == 3 and all(isinstance(v, int) and 0 <= v <= 255 for v in c) for c in palette)):
            raise bad(f"needs one RGB color (0-255) per class ({len(classes)})")
        try:
            width, height = (int(v) for v in data.get("input_size", cls.input_size))
            mean = tuple(float(v) for v in data.get("mean", IMAGENET_MEAN))
            std = tuple(float(v) for v in data.get("std", IMAGENET_STD))
        except (TypeError, ValueError):
            raise bad("has a malformed input_size, mean or std") from None
        if not (16 <= width <= 8192 and 16 <= height <= 8192):
            raise bad(f"has input size {width}x{height}; expected 16-8192 pixels a side")
        if len(mean) != 3 or len(std) != 3 or not all(math.isfinite(v) for v in mean + std) or not all(v > 0 for v in std):
            raise bad("needs 3 finite mean and 3 positive std values")
        if not isinstance(data.get("training", {}), dict) or not isinstance(data.get("label_set", ""), str):
            raise bad("has a malformed training record or label set")
        return cls(**{**data, "input_size": (width, height), "mean": mean, "std": std})


def save_checkpoint(path: str | Path, model: DWRSeg, info: ModelInfo, half: bool = False, extra: dict | None = None) -> None:
    """Write weights + info atomically; `half` stores fp16 weights (a demo model of a few MB)."""
    state = {k: (v.half() if half and v.is_floating_point() else v) for k, v in model.state_dict().items()}
    payload = {"format": FORMAT, "info": info.to_dict(), "state_dict": state, **(extra or {})}
    atomic_write(Path(path), lambda temp: torch.save(payload, temp))


def load_tensors(path: Path):
    """torch.load of tensors and plain data only (never code); torch 2.1-2.3's TypedStorage
    deprecation warning, which every load printed there, is not the user's concern."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="TypedStorage is deprecated")
        return torch.load(path, map_location="cpu", weights_only=True)


def read_checkpoint(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"weights not found: {path}")
    try:
        payload = load_tensors(path)
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
    info = ModelInfo.from_dict(payload.get("info"), path)
    if not isinstance(payload.get("state_dict"), dict):
        raise UserError(f"{path} holds no weights (state_dict)")
    if num_classes is not None and num_classes != info.num_classes:
        raise UserError(f"{path} predicts {info.num_classes} classes, but {num_classes} are needed here")
    if variant is not None and variant.lower() != info.variant:
        raise UserError(f"{path} holds DWRSeg-{info.variant.upper()}, not DWRSeg-{variant.upper()}")
    model = build_model(info.variant, info.num_classes)
    try:
        model.load_state_dict(payload["state_dict"])  # fp16 weights are copied into the fp32 model
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise UserError(f"{path}: weights do not fit DWRSeg-{info.variant.upper()} ({first})") from None
    model.eval()
    return model, info


def write_sidecar(model_path: Path, info: ModelInfo, **extra) -> Path:
    """The JSON beside an exported model (never inside it: other loaders must still read it)."""
    sidecar = model_path.with_name(model_path.name + ".json")
    text = json.dumps({"format": FORMAT, "info": info.to_dict(), "input": info.input_spec(), **extra}, indent=2)
    atomic_write(sidecar, lambda temp: temp.write_text(text))
    return sidecar


def read_sidecar(model_path: Path) -> tuple[ModelInfo, dict]:
    sidecar = model_path.with_name(model_path.name + ".json")
    if not sidecar.is_file():
        raise UserError(f"{model_path} has no metadata sidecar {sidecar.name}; re-export it with `dwrseg-rt export`")
    try:
        data = json.loads(sidecar.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise UserError(f"{sidecar} is not a valid dwrseg-rt sidecar ({exc.__class__.__name__})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise UserError(f"{sidecar} is not a dwrseg-rt sidecar (expected format {FORMAT})")
    return ModelInfo.from_dict(data.get("info"), sidecar), data


def read_model_info(path: Path) -> ModelInfo:
    """The info of any weights we run: a checkpoint's own, or an export's sidecar."""
    path = Path(path)
    if path.suffix.lower() in (".onnx", ".engine"):
        if not path.is_file():
            raise UserError(f"weights not found: {path}")
        return read_sidecar(path)[0]
    return ModelInfo.from_dict(read_checkpoint(path).get("info"), path)


def record_training(path: str | Path, **fields) -> None:
    """Add results (e.g. val_miou) to a checkpoint's training metadata, in place and atomically."""
    path = Path(path)
    payload = read_checkpoint(path)
    payload["info"]["training"].update(fields)
    atomic_write(path, lambda temp: torch.save(payload, temp))
