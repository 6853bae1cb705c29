"""Channel alignment of an exported graph: every convolution's output padded with zero filters to a
multiple of N channels, and every consumer given zero weights for them, so the padded channels hold
exact zeros throughout and the function is unchanged.

Why: onnxruntime's fastest x86 kernels (NCHWc: Conv, pools, concatenation in place) take channels in
blocks of 8 (AVX2) or 16 (AVX-512). A layer whose channels are not a multiple of the block falls
back to NCHW kernels and to reorders around them; for a depthwise convolution that fallback is a
grouped im2col, ~10x slower. NASNet-A mobile's F = 44 and its stem cells' 11 and 22 channels are
such layers: aligned to 16, the same network runs ~1.3x faster in onnxruntime for 15.8 % more
mult-adds, all of them on zeros.

A padded channel is a real channel whose values are all zero: it passes only through operations that
map a zero map to a zero map (ReLU, sums, pools, concatenation, spatial pads, spatial reductions)
— what `nasc export` writes once fuse() has folded the batch norms — and every convolution or
classifier reading it has zero weights for it. Any other operation, or an output that would carry
padding, leaves the graph as it was, and the report says why. The export verifies the result
against PyTorch as always.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import numpy_helper

# A tensor's channels: runs of (real channels, then zeros up to `total`); a concatenation's are its
# inputs' runs in order. Kept normal (see `normal`), so equal layouts compare equal.
Layout = tuple[tuple[int, int], ...]

KEEPS_LAYOUT = {"Relu", "Identity", "AveragePool", "GlobalAveragePool", "GlobalMaxPool"}


class NotAligned(Exception):
    """An operation the pass cannot carry padding through: the graph stays as it was."""


@dataclass(frozen=True)
class Alignment:
    multiple: int
    padded_convolutions: int  # convolutions that gained zero filters
    added_mult_adds_fraction: float  # of the convolutions' mult-adds
    skipped: str | None = None  # why the graph was left as it was


def real(layout: Layout) -> int:
    return sum(count for count, _ in layout)


def total(layout: Layout) -> int:
    return sum(size for _, size in layout)


def normal(layout: Layout) -> Layout:
    """A run without zeros merged into the next: (22, 22), (22, 26) is (44, 48)."""
    merged: list[tuple[int, int]] = []
    for count, size in layout:
        if merged and merged[-1][0] == merged[-1][1]:
            previous = merged.pop()
            count, size = previous[0] + count, previous[1] + size
        merged.append((count, size))
    return tuple(merged)


def positions(layout: Layout) -> np.ndarray:
    """Where each real channel sits among the padded ones."""
    found, start = [], 0
    for count, size in layout:
        found.extend(range(start, start + count))
        start += size
    return np.asarray(found, dtype=np.int64)


def align_channels(model, multiple: int):
    """The model with its channels aligned to `multiple` (1: none), and what was done. The input
    model is not changed."""
    if multiple <= 1:
        return model, Alignment(1, 0, 0.0)
    aligned = onnx.ModelProto()
    aligned.CopyFrom(model)
    try:
        padded, added = _Pass(aligned, multiple).run()
    except NotAligned as reason:
        return model, Alignment(multiple, 0, 0.0, skipped=str(reason))
    return aligned, Alignment(multiple, padded, added)


class _Pass:
    def __init__(self, model, multiple: int) -> None:
        self.graph, self.multiple = model.graph, multiple
        self.shapes = static_shapes(onnx.shape_inference.infer_shapes(model))
        self.constants = {tensor.name: tensor for tensor in self.graph.initializer}
        self.names = {*self.constants, *(name for node in self.graph.node for name in node.output)}
        self.layouts: dict[str, Layout] = {}
        self.readers: dict[str, list] = {}
        self.conv_widths: dict[str, int] = {}  # output channels of each full convolution
        for node in self.graph.node:
            for name in node.input:
                self.readers.setdefault(name, []).append(node)
            group = next((a.i for a in node.attribute if a.name == "group"), 1)
            if node.op_type == "Conv" and group == 1 and node.input[1] in self.constants:
                self.conv_widths[node.output[0]] = self.constants[node.input[1]].dims[0]
        self.padded = 0
        self.mult_adds = [0, 0]  # before, after

    def run(self) -> tuple[int, float]:
        for value in self.graph.input:
            if value.name not in self.constants:
                channels = self.shapes[value.name][1]
                self.layouts[value.name] = ((channels, channels),)
        for node in self.graph.node:
            self._node(node)
        for value in self.graph.output:
            layout = self.layouts.get(value.name)
            if layout is not None and real(layout) != total(layout):
                raise NotAligned(f"the output {value.name} would carry padded channels")
        del self.graph.value_info[:]  # the channel counts changed: shape inference redoes them
        used = {name for node in self.graph.node for name in node.input}
        kept = [tensor for tensor in self.graph.initializer if tensor.name in used]
        del self.graph.initializer[:]
        self.graph.initializer.extend(kept)
        before, after = self.mult_adds
        return self.padded, (after - before) / max(before, 1)

    def _node(self, node) -> None:
        op, inputs = node.op_type, list(node.input)
        activations = [name for name in inputs if name and name not in self.constants]
        if not activations:  # computed from constants alone: an Identity of a weight stays one
            if op == "Identity":
                self.constants[node.output[0]] = self.constants[inputs[0]]
            return
        if op == "Conv":
            self._conv(node)
        elif op in KEEPS_LAYOUT or (op == "MaxPool" and len(node.output) == 1):
            self._same(node, activations[:1])
        elif op in ("Add", "Sum", "Max", "Min") and len(activations) == len(inputs):
            self._same(node, activations)
        elif op == "Concat":
            self._concat(node)
        elif op in ("Pad", "ReduceMean", "ReduceMax"):
            self._spatial(node)
        elif op in ("Reshape", "Flatten"):
            self._flatten(node)
        elif op == "Gemm":
            self._classifier(node)
        elif any(name in self.layouts for name in activations):
            raise NotAligned(f"{op} ({node.name}) is not known to keep padded channels zero")

    # -- operations that pass a layout on ---------------------------------------------------------

    def _same(self, node, inputs: list[str]) -> None:
        layouts = {self._layout(name, node) for name in inputs}
        if len(layouts) != 1:
            raise NotAligned(f"{node.op_type} ({node.name}) joins tensors padded differently")
        self.layouts[node.output[0]] = layouts.pop()

    def _concat(self, node) -> None:
        rank = len(self.shapes.get(node.output[0], ()))
        axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
        if axis % max(rank, 1) == 1:
            layouts = (self._layout(name, node) for name in node.input)
            self.layouts[node.output[0]] = normal(sum(layouts, ()))
        else:
            self._same(node, list(node.input))

    def _spatial(self, node) -> None:
        """Pads and reductions that leave the channel axis alone."""
        source = node.input[0]
        layout = self._layout(source, node)
        rank = len(self.shapes[source])
        if node.op_type == "Pad":
            pads = self._constant(node, 1).tolist()
            if pads[1] or pads[rank + 1] or (len(node.input) > 3 and node.input[3]):
                raise NotAligned(f"Pad ({node.name}) pads the channels")
        else:
            if len(node.input) < 2 or not node.input[1]:
                raise NotAligned(f"{node.op_type} ({node.name}) without axes touches the channels")
            axes = {axis % rank for axis in self._constant(node, 1).tolist()}
            if axes & {0, 1}:
                raise NotAligned(f"{node.op_type} ({node.name}) works across channels")
        self.layouts[node.output[0]] = layout

    def _flatten(self, node) -> None:
        """[N, C, 1, 1] to [N, C]: a pooled map flattened for the classifier."""
        source = node.input[0]
        if source not in self.layouts:
            return
        layout, shape = self.layouts[source], self.shapes[source]
        if len(shape) != 4 or tuple(shape[2:]) != (1, 1):
            raise NotAligned(f"{node.op_type} ({node.name}) flattens a map larger than 1x1")
        if node.op_type == "Reshape":
            target = self._constant(node, 1)
            if target.tolist()[1:] not in ([real(layout)], [-1]):
                raise NotAligned(f"Reshape ({node.name}) is not a flatten of the channels")
            if target[1] != -1:
                target = target.copy()
                target[1] = total(layout)
                self._replace(node, 1, target)
        self.layouts[node.output[0]] = layout

    # -- operations with weights ------------------------------------------------------------------

    def _conv(self, node) -> None:
        layout = self._layout(node.input[0], node)
        weight = self._constant(node, 1)
        bias = self._constant(node, 2) if len(node.input) > 2 and node.input[2] else None
        group = next((a for a in node.attribute if a.name == "group"), None)
        groups = group.i if group is not None else 1
        out = weight.shape[0]
        spatial = int(np.prod(self.shapes[node.output[0]][2:]))
        kernel = int(np.prod(weight.shape[1:]))
        if groups == 1 and weight.shape[1] == real(layout):
            out_total = self._padded_width(node, out)
            new = np.zeros((out_total, total(layout), *weight.shape[2:]), weight.dtype)
            new[:out, positions(layout)] = weight
            out_layout: Layout = ((out, out_total),)
            self.mult_adds[1] += out_total * total(layout) * int(np.prod(weight.shape[2:])) * spatial
        elif groups == real(layout) == out and weight.shape[1] == 1:  # depthwise
            new = np.zeros((total(layout), 1, *weight.shape[2:]), weight.dtype)
            new[positions(layout)] = weight
            out_layout = layout
            group.i = total(layout)
            self.mult_adds[1] += total(layout) * kernel * spatial
        else:
            raise NotAligned(f"Conv ({node.name}) is neither a full nor a depthwise convolution")
        self.mult_adds[0] += out * kernel * spatial
        if new.shape != weight.shape:
            self.padded += 1
            self._replace(node, 1, new)
            if bias is not None:
                self._replace(node, 2, _spread(bias, out_layout, 0.0))
            elif total(out_layout) != out:
                self._add_input(node, np.zeros(total(out_layout), weight.dtype))
        self.layouts[node.output[0]] = out_layout

    def _padded_width(self, node, out: int) -> int:
        """`out` rounded up to the multiple; but where convolutions are concatenated alone (a
        factorized reduction's two paths), only the last is padded, for the whole concatenation."""
        rounded = -(-out // self.multiple) * self.multiple
        readers = self.readers.get(node.output[0], [])
        if len(readers) != 1 or readers[0].op_type != "Concat":
            return rounded
        concat = readers[0]
        widths = [self.conv_widths.get(name) for name in concat.input]
        sole = all(len(self.readers.get(name, [])) == 1 for name in concat.input)
        if None in widths or not sole or concat.input[0] == concat.input[-1]:
            return rounded
        if node.output[0] != concat.input[-1]:
            return out
        before = sum(widths[:-1])
        return -(-(before + out) // self.multiple) * self.multiple - before

    def _classifier(self, node) -> None:
        layout = self._layout(node.input[0], node)
        if node.input[1] not in self.constants:
            raise NotAligned(f"{node.op_type} ({node.name}) multiplies two activations")
        stored = self._constant(node, 1)
        as_stored = any(a.name == "transB" and a.i for a in node.attribute)  # [out, in], as Linear's
        weight = stored if as_stored else stored.T
        if real(layout) != total(layout):
            padded = np.zeros((weight.shape[0], total(layout)), weight.dtype)
            padded[:, positions(layout)] = weight
            self._replace(node, 1, padded if as_stored else padded.T)
        self.layouts[node.output[0]] = ((weight.shape[0], weight.shape[0]),)

    # -- helpers ------------------------------------------------------------------------------------

    def _layout(self, name: str, node) -> Layout:
        if name not in self.layouts:
            raise NotAligned(f"{node.op_type} ({node.name}) reads {name}, whose channels are unknown")
        return self.layouts[name]

    def _constant(self, node, index: int) -> np.ndarray:
        name = node.input[index]
        if name not in self.constants:
            raise NotAligned(f"{node.op_type} ({node.name}) takes {name} as an input, not a constant")
        return numpy_helper.to_array(self.constants[name])

    def _replace(self, node, index: int, value: np.ndarray) -> None:
        """A new constant for this node's input (another node may share the old one)."""
        name = fresh_name(f"{node.input[index]}_aligned", self.names)
        self.names.add(name)
        tensor = numpy_helper.from_array(np.ascontiguousarray(value), name)
        self.graph.initializer.append(tensor)
        self.constants[name] = tensor
        node.input[index] = name

    def _add_input(self, node, value: np.ndarray) -> None:
        node.input.append("")
        self._replace(node, len(node.input) - 1, value)


def _spread(values: np.ndarray, layout: Layout, fill: float) -> np.ndarray:
    """Per-channel values placed at the real channels' positions, `fill` elsewhere."""
    spread = np.full(total(layout), fill, dtype=values.dtype)
    spread[positions(layout)] = values
    return spread


def fresh_name(name: str, taken) -> str:
    candidate, n = name, 1
    while candidate in taken:
        n += 1
        candidate = f"{name}{n}"
    return candidate


def static_shapes(inferred) -> dict[str, list[int]]:
    """Every tensor's static shape (a symbolic dimension as -1), from onnx's shape inference."""
    found: dict[str, list[int]] = {}
    graph = inferred.graph
    for value in (*graph.input, *graph.value_info, *graph.output):
        dims = value.type.tensor_type.shape.dim
        found[value.name] = [d.dim_value if d.HasField("dim_value") else -1 for d in dims]
    for tensor in graph.initializer:
        found[tensor.name] = list(tensor.dims)
    return found
