"""Static INT8 quantization of an export for onnxruntime on the CPU.

QDQ format, per-channel int8 weights, uint8 activations (the u8s8 kernels of x86 VNNI and
ARM dot-product CPUs), ranges calibrated on real frames. A few cheap nodes stay fp32 because the
class map is sensitive to them: the first conv (3 input channels) and the two that read its
output (the stem's 1x1 conv and max-pool: an 8-bit copy of the stem's un-activated output
alone cost half a point of agreement), the classifier conv and the resize of its logits.
The depth-wise convs with two outputs per channel (DWR's d=1 branch) stay fp32 for speed:
onnxruntime has no fast int8 kernel for a channel multiplier, and they took 3.6 ms each in
int8 against 0.3 ms in fp32 at 1024x512.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from dwrseg_rt.io.outputs import atomic_write

QUANTIZED_OPS = ["Conv", "Add", "Concat", "MaxPool", "Resize", "Relu"]  # BatchNormalization (the decoder's) stays fp32
# Bump whenever the recipe changes (ops quantized, nodes kept fp32, calibration preprocessing):
# it is part of the INT8 cache key, so a warm cache never serves a model of the old recipe.
RECIPE_REVISION = 2


def multiplier_depthwise(graph) -> list[str]:
    """Grouped convs with more outputs than groups (a depth-wise channel multiplier)."""
    shapes = {init.name: init.dims for init in graph.graph.initializer}
    names = []
    for node in graph.graph.node:
        groups = next((a.i for a in node.attribute if a.name == "group"), 1)
        if node.op_type == "Conv" and groups > 1 and shapes[node.input[1]][0] != groups:
            names.append(node.name)
    return names


def fp32_nodes(graph) -> list[str]:
    """Names of the nodes kept in fp32: the conv reading the image and its consumers, the
    classifier conv and everything between it and the argmax, and multiplier depth-wise convs."""
    nodes = graph.graph.node
    image = graph.graph.input[0].name
    first = [node for node in nodes if node.op_type == "Conv" and node.input[0] == image]
    keep = [node.name for node in first] + [node.name for node in nodes if set(node.input) & {o for f in first for o in f.output}]
    producers = {output: node for node in nodes for output in node.output}
    node = producers[next(n for n in nodes if n.op_type == "ArgMax").input[0]]
    while True:
        keep.append(node.name)
        if node.op_type == "Conv":
            return keep + multiplier_depthwise(graph)
        node = producers[node.input[0]]


def quantize_int8(source: Path, target: Path, batches: Sequence[np.ndarray],
                  on_batch: Callable[[], None] | None = None) -> None:
    """Write the INT8 twin of the fp32 export `source` to `target` (atomically), calibrated
    on `batches` ((1, 3, h, w) network inputs). `on_batch` is called per calibration frame."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Frames(CalibrationDataReader):
        def __init__(self) -> None:
            self.frames = iter(batches)

        def get_next(self) -> dict | None:
            batch = next(self.frames, None)
            if batch is not None and on_batch:
                on_batch()
            return None if batch is None else {"image": batch}

    with tempfile.TemporaryDirectory(prefix="dwrseg-int8-") as work:
        prepared = Path(work) / "prepared.onnx"
        quant_pre_process(str(source), str(prepared))
        keep = fp32_nodes(onnx.load(str(prepared)))
        atomic_write(target, lambda temp: quantize_static(
            prepared, temp, Frames(), quant_format=QuantFormat.QDQ, per_channel=True, activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8, op_types_to_quantize=QUANTIZED_OPS, nodes_to_exclude=keep,
            calibrate_method=CalibrationMethod.MinMax))
