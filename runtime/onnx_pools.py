"""Average pools rewritten as depthwise convolutions, for the int8 build.

onnxruntime's int8 average pool (QLinearAveragePool) is a plain loop: in NASNet-A mobile's int8
graph its 32 pools took a quarter of the kernel time, against a twentieth in float. A pool is a
depthwise convolution whose filters are all 1/k² (int8 has a fast kernel for that), times a
constant map k²/count where a window is cut by the padding: the pools nasc exports average only the
pixels they cover (count_include_pad=0), ceil_mode's extra row and column included. Zero padding
leaves the sum of the covered pixels unchanged, so the rewritten graph computes the same function.

Only the float graph handed to the quantizer is rewritten: in float, onnxruntime's pools are fast.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

from nasc.runtime.onnx_align import fresh_name, static_shapes


def average_pools_as_convolutions(model: onnx.ModelProto) -> tuple[onnx.ModelProto, int]:
    """A copy of `model` with each 2-D AveragePool that averages covered pixels only as a depthwise
    Conv (and a Mul where windows are cut), and how many were rewritten. Needs static shapes."""
    model = _copy(model)
    shapes = static_shapes(onnx.shape_inference.infer_shapes(model))
    names = {name for node in model.graph.node for name in (*node.input, *node.output)}
    names |= {tensor.name for tensor in model.graph.initializer}
    nodes, rewritten = [], 0
    for node in model.graph.node:
        pool = _Pool.of(node, shapes)
        if pool is None:
            nodes.append(node)
            continue
        nodes.extend(pool.convolution(node, model.graph.initializer, names))
        rewritten += 1
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return model, rewritten


class _Pool:
    def __init__(self, channels: int, size: tuple[int, int], kernel, strides, pads) -> None:
        self.channels, self.size = channels, size
        self.kernel, self.strides = list(kernel), list(strides)
        self.pads = list(pads)  # begin, begin, end, end; ceil_mode's extra row and column added

    @classmethod
    def of(cls, node, shapes: dict[str, list[int]]) -> _Pool | None:
        if node.op_type != "AveragePool":
            return None
        attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        shape = shapes.get(node.input[0], [])
        kernel = attributes.get("kernel_shape", [])
        if len(shape) != 4 or min(shape) < 1 or len(kernel) != 2 or attributes.get("count_include_pad", 0):
            return None
        if attributes.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
            return None
        if any(d != 1 for d in attributes.get("dilations", [1, 1])):
            return None
        strides = attributes.get("strides", [1, 1])
        pads = list(attributes.get("pads", [0, 0, 0, 0]))
        if attributes.get("ceil_mode", 0):
            for axis in (0, 1):
                extent = shape[2 + axis] + pads[axis] + pads[axis + 2]
                out = -(-(extent - kernel[axis]) // strides[axis]) + 1
                if (out - 1) * strides[axis] >= shape[2 + axis] + pads[axis]:
                    out -= 1  # a window may not start in the end padding (ONNX, as PyTorch)
                pads[axis + 2] += max(0, (out - 1) * strides[axis] + kernel[axis] - extent)
        return cls(shape[1], (shape[2], shape[3]), kernel, strides, pads)

    def counts(self) -> np.ndarray:
        """The number of real pixels under each window."""
        top, left, bottom, right = self.pads
        covered = np.pad(np.ones(self.size), ((top, bottom), (left, right)))
        (kh, kw), (sh, sw) = self.kernel, self.strides
        rows = (covered.shape[0] - kh) // sh + 1
        columns = (covered.shape[1] - kw) // sw + 1
        return np.array(
            [
                [covered[i * sh : i * sh + kh, j * sw : j * sw + kw].sum() for j in range(columns)]
                for i in range(rows)
            ]
        )

    def convolution(self, node, initializers, names: set[str]) -> list:
        area = self.kernel[0] * self.kernel[1]
        box = np.full((self.channels, 1, *self.kernel), 1.0 / area, np.float32)
        weight = _constant(f"{node.name}_filters", box, initializers, names)
        counts = self.counts()
        cut = bool(np.any(counts != area))
        summed = fresh_name(f"{node.output[0]}_box", names) if cut else node.output[0]
        names.add(summed)
        attributes = {"group": self.channels, "kernel_shape": self.kernel, "strides": self.strides}
        conv = helper.make_node(
            "Conv",
            [node.input[0], weight],
            [summed],
            fresh_name(f"{node.name}_box", names),
            pads=self.pads,
            **attributes,
        )
        if not cut:
            return [conv]
        scale = _constant(
            f"{node.name}_count", (area / counts).astype(np.float32)[None, None], initializers, names
        )
        mean = helper.make_node(
            "Mul", [summed, scale], [node.output[0]], fresh_name(f"{node.name}_mean", names)
        )
        return [conv, mean]


def _constant(name: str, value: np.ndarray, initializers, names: set[str]) -> str:
    name = fresh_name(name, names)
    names.add(name)
    initializers.append(numpy_helper.from_array(value, name))
    return name


def _copy(model: onnx.ModelProto) -> onnx.ModelProto:
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    return copy
