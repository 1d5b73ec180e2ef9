"""ONNX export (opset 17) with the argmax folded in, a JSON sidecar, and a parity check.

The graph has two outputs: `class_map` (uint8 argmax, what runtimes fetch) and `logits`
(for parity checks; a TensorRT build unmarks it so engines only write class maps).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from dwrseg_rt.checkpoint import ModelInfo, atomic_write, write_sidecar

OPSET = 17


class DeployModel(nn.Module):
    """Network + argmax: (N, 3, H, W) float -> (N, H, W) uint8 class ids, (N, C, H, W) logits."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.model(image)
        return logits.argmax(1).to(torch.uint8), logits


def export_onnx(model: nn.Module, info: ModelInfo, path: Path, size: tuple[int, int], check: bool = True) -> dict:
    """Write `path` (+ `path.json` sidecar) atomically; with `check`, compare onnxruntime to torch."""
    width, height = size
    deploy = DeployModel(model.eval().float())
    dummy = torch.zeros(1, 3, height, width)

    def write(temp: Path) -> None:
        with warnings.catch_warnings(), torch.inference_mode():
            warnings.simplefilter("ignore")
            torch.onnx.export(deploy, (dummy,), str(temp), opset_version=OPSET, dynamo=False,
                              input_names=["image"], output_names=["class_map", "logits"],
                              dynamic_axes={"image": {0: "batch"}, "class_map": {0: "batch"}, "logits": {0: "batch"}})

    path = Path(path)
    atomic_write(path, write)
    report = parity_report(model, info, path, size) if check else {}
    write_sidecar(path, info, inference_size=[width, height], opset=OPSET, outputs=["class_map", "logits"], parity=report)
    return report


def sample_image(size: tuple[int, int]) -> np.ndarray:
    """A realistic frame for parity checks: a synthetic street at the export size."""
    from dwrseg_rt.data.synth import Street

    return Street(seed=12345, width=size[0], height=size[1]).render(0.5)[0]


def parity_report(model: nn.Module, info: ModelInfo, onnx_path: Path, size: tuple[int, int]) -> dict:
    """Max |logit difference| and argmax agreement between torch and onnxruntime on one frame."""
    import onnxruntime as ort

    from dwrseg_rt.runtime.preprocess import normalize

    batch = normalize(sample_image(size)[None], info.mean, info.std)
    with torch.inference_mode():
        reference = model.eval().float()(torch.from_numpy(batch)).numpy()
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    class_map, logits = session.run(["class_map", "logits"], {"image": batch})
    return {
        "max_abs_logit_diff": float(np.abs(logits - reference).max()),
        "argmax_agreement": float((class_map == reference.argmax(1)).mean()),
        "backend": f"onnxruntime {ort.__version__}",
    }
