"""ONNX export (opset 17) with the argmax folded in, a JSON sidecar, and a parity check.

The graph has one output, `class_map` (the argmax as uint8 or int32): no runtime reads
logits, so none are written. Checks that need them expose the argmax's input on a copy of
the graph in memory (`with_logits`).
"""

from __future__ import annotations

import copy
import inspect
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from dwrseg_rt.checkpoint import ModelInfo, write_sidecar
from dwrseg_rt.errors import UserError
from dwrseg_rt.export.fold import fold_batchnorms
from dwrseg_rt.io.outputs import atomic_write

OPSET = 17
GRAPH_REVISION = 2  # bump when the exported graph changes, so cached exports are made again
# torch >= 2.5 can export with dynamo; the TorchScript exporter is the one this graph is made
# and tested with. torch 2.1-2.4 (NVIDIA's JetPack 6 wheels) have no `dynamo` argument at all.
TORCHSCRIPT_EXPORT = {"dynamo": False} if "dynamo" in inspect.signature(torch.onnx.export).parameters else {}


class DeployModel(nn.Module):
    """Network (its BNs folded) + argmax: (N, 3, H, W) float32 -> (N, H, W) class ids.

    `class_dtype` is uint8 for onnxruntime and int32 for TensorRT (whose ArgMax gives int32 or
    int64 by version: the explicit cast makes it one type). `half` runs the network in fp16
    inside fp32 inputs/outputs: the strongly typed fp16 build of TensorRT 11 needs that.
    """

    def __init__(self, model: nn.Module, class_dtype: torch.dtype = torch.uint8, half: bool = False) -> None:
        super().__init__()
        model = copy.deepcopy(model).eval().float()
        fold_batchnorms(model)
        self.model = model.half() if half else model
        self.class_dtype, self.half = class_dtype, half

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        logits = self.model(image.half() if self.half else image).float()
        return logits.argmax(1).to(self.class_dtype)


def export_onnx(model: nn.Module, info: ModelInfo, path: Path, size: tuple[int, int], check: bool = True,
                class_dtype: torch.dtype = torch.uint8, half: bool = False, dynamic: bool = False) -> dict:
    """Write `path` (+ `path.json` sidecar) atomically; with `check`, compare onnxruntime to torch
    at `size`. `dynamic`: height and width are left free in the graph (one file for every camera
    shape; onnxruntime runs it as fast as a fixed-size export), `size` is then where it was checked."""
    width, height = size
    # A half-precision graph is traced on the GPU where there is one: torch before 2.2 has no
    # fp16 convolution on the CPU (the TensorRT 11 machines that need this export have a GPU).
    device = "cuda" if half and torch.cuda.is_available() else "cpu"
    deploy = DeployModel(model, class_dtype, half).to(device)
    dummy = torch.zeros(1, 3, height, width, device=device)

    def write(temp: Path) -> None:
        with warnings.catch_warnings(), torch.inference_mode():
            warnings.simplefilter("ignore")
            torch.onnx.export(deploy, (dummy,), str(temp), opset_version=OPSET, **TORCHSCRIPT_EXPORT,
                              input_names=["image"], output_names=["class_map"],
                              dynamic_axes=dynamic_axes(dynamic))

    path = Path(path)
    atomic_write(path, lambda temp: write(temp))
    report = parity_report(model, info, path, size) if check else {}
    write_sidecar(path, info, inference_size=[width, height], dynamic_size=dynamic, opset=OPSET, graph_revision=GRAPH_REVISION,
                  outputs=["class_map"], class_dtype=str(class_dtype).removeprefix("torch."), half=half, parity=report)
    return report


def dynamic_axes(size_too: bool) -> dict:
    """The batch is always free; with `size_too`, the image's height and width as well."""
    image, class_map = {0: "batch"}, {0: "batch"}
    if size_too:
        image.update({2: "height", 3: "width"})
        class_map.update({1: "height", 2: "width"})
    return {"image": image, "class_map": class_map}


PARITY_AGREEMENT = 0.999  # argmax agreement below this means the export computes something else


def check_parity(report: dict) -> None:
    """Refuse an export whose class maps differ from the checkpoint's (a broken exporter or opset)."""
    if report["argmax_agreement"] < PARITY_AGREEMENT:
        raise UserError(f"the export does not match its checkpoint: argmax agreement {report['argmax_agreement'] * 100:.2f}% "
                        f"(max |Δlogit| {report['max_abs_logit_diff']:.3g}); please report this with `dwrseg-rt info`")


def sample_image(size: tuple[int, int]) -> np.ndarray:
    """A realistic frame for parity checks: a synthetic street at the export size."""
    from dwrseg_rt.data.synth import Street

    return Street(seed=12345, width=size[0], height=size[1]).render(0.5)[0]


def with_logits(onnx_path: Path) -> bytes:
    """The exported graph with the argmax's input (the logits) as a second output, for checks."""
    import onnx

    graph = onnx.load(str(onnx_path))
    argmax = next(node for node in graph.graph.node if node.op_type == "ArgMax")
    graph.graph.output.append(onnx.helper.make_tensor_value_info(argmax.input[0], onnx.TensorProto.FLOAT, None))
    return graph.SerializeToString()


def parity_report(model: nn.Module, info: ModelInfo, onnx_path: Path, size: tuple[int, int]) -> dict:
    """Max |logit difference| and argmax agreement between torch and onnxruntime on one frame."""
    import onnxruntime as ort

    from dwrseg_rt.runtime.preprocess import normalize

    batch = normalize(sample_image(size)[None], info.mean, info.std)
    with torch.inference_mode():
        reference = model.eval().float()(torch.from_numpy(batch)).numpy()
    session = ort.InferenceSession(with_logits(onnx_path), providers=["CPUExecutionProvider"])
    class_map, logits = session.run(None, {"image": batch})
    return {
        "max_abs_logit_diff": float(np.abs(logits - reference).max()),
        "argmax_agreement": float((class_map == reference.argmax(1)).mean()),
        "backend": f"onnxruntime {ort.__version__}",
    }
