"""The DARTS convention's backend: a checked genotype → one standalone PyTorch file that builds the
reference networks of quark0/darts cnn/model.py (NetworkCIFAR, NetworkImageNet) exactly.

Lowering is simple under DARTS: every op maps C channels to C, ops reading a cell input run at the
cell's stride, a block adds its two ops, and the cell concatenates the states its output lists. Each
op becomes one named attribute; each cell's forward is straight-line code citing its .cell lines.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from nasc.compiler import ir
from nasc.compiler.compilation import Compilation
from nasc.compiler.conventions.darts import DARTS, DartsPreset
from nasc.compiler.darts_skeleton import DartsSkeleton
from nasc.compiler.hashing import structural_hash
from nasc.compiler.liveness import Line, SharedRelu, straight_line
from nasc.compiler.namespace import Namespace
from nasc.compiler.presets import pretrained_cfg
from nasc.compiler.printer import format_block
from nasc.compiler.templating import camel as _camel
from nasc.compiler.templating import checked, network_class, source_names
from nasc.compiler.templating import environment as _environment
from nasc.version import __version__

# Names the emitted module defines or imports at its top level.
MODULE_NAMES = (
    "annotations dataclass torch F Tensor nn NASC_VERSION GENOTYPE CONVENTION STRUCTURAL_HASH "
    "SOURCE_FILE METADATA ConvBN FactorizedReduce SepConv DilConv DropPath Preset PRESETS DEFAULT_PRESET "
    "AuxHeadCIFAR AuxHeadImageNet AuxHeadTooSmall create_model checkpoint Cell global_pooling feature_maps "
    "copy fold_batch_norms inference_copy use_channels_last"
).split()
CELL_ATTRIBUTES = (
    "preprocess0 preprocess1 drop_path multiplier reduction kind cell_forward grad_checkpointing "
    "training forward parameters buffers children "
    "modules state_dict load_state_dict to cuda cpu train eval apply zero_grad register_buffer add_module"
).split()

# What each op builds, as a constructor call on C channels at `stride`; `{c}` and `{stride}` filled in.
CONSTRUCTORS = {
    "identity": None,  # the state itself at stride 1 (no module), a factorized reduction when strided
    "max_pool_3x3": "nn.MaxPool2d(3, stride={stride}, padding=1)",
    "avg_pool_3x3": "nn.AvgPool2d(3, stride={stride}, padding=1, count_include_pad=False)",
    "sep_conv_3x3": "SepConv({c}, {c}, 3, stride={stride}, padding=1)",
    "sep_conv_5x5": "SepConv({c}, {c}, 5, stride={stride}, padding=2)",
    "sep_conv_7x7": "SepConv({c}, {c}, 7, stride={stride}, padding=3)",
    "dil_conv_3x3": "DilConv({c}, {c}, 3, stride={stride}, padding=2, dilation=2)",
    "dil_conv_5x5": "DilConv({c}, {c}, 5, stride={stride}, padding=4, dilation=2)",
}
# The ops whose modules read their input as it is; every other (a strided identity too) begins with
# ReLU, which the cell computes once per state.
RAW_INPUT = frozenset({"max_pool_3x3", "avg_pool_3x3"})


@dataclass
class _OpView:
    attr: str | None  # None: an identity, the state itself
    construct: str
    forward: str


@dataclass
class _BlockView:
    comment: str
    local: str
    operands: list[_OpView]
    activations: list[tuple[str, str]]  # (local, state): `local = torch.relu(state)`, once per state


@dataclass
class _CellView:
    kind: str
    class_name: str
    location: str
    reduction: bool
    reduction_prev: bool  # the cell below is a reduction cell: s0 is at twice s1's size
    s0: str
    s1: str
    blocks: list[_BlockView] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)


def _cell_view(cell: ir.Cell, reduction_prev: bool, class_name: str, label: str) -> _CellView:
    attributes = Namespace(CELL_ATTRIBUTES)
    locals_ = Namespace((*MODULE_NAMES, "self", "relu_x0", "relu_x1"))
    reduction = DARTS.stride(cell.kind) > 1
    local = {name: locals_.name(name) for name in cell.inputs}
    line = cell.span.line if cell.span else None
    view = _CellView(
        kind=cell.kind,
        class_name=class_name,
        location=f"{label}:{line}" if line else label,
        reduction=reduction,
        reduction_prev=reduction_prev,
        s0=local[cell.inputs[0]],
        s1=local[cell.inputs[1]],
    )
    relu = SharedRelu(locals_)  # the ops that begin with ReLU and read one state share it
    for block in cell.blocks:
        operands, activations = [], []
        for side, operand in zip(("left", "right"), block.operands, strict=True):
            stride = 2 if reduction and operand.input in cell.inputs else 1
            template = CONSTRUCTORS[operand.op]
            if template is None and stride == 1:  # skip_connect: the state itself, never dropped
                operands.append(_OpView(None, "", local[operand.input]))
                continue
            attr = attributes.name(("op", block.target, side), f"{block.target}_{side}")
            construct = (
                "FactorizedReduce(c, c)" if template is None else template.format(c="c", stride=stride)
            )
            source = local[operand.input]
            if operand.op not in RAW_INPUT:
                source = relu.of(operand.input, source, activations)
            term = f"self.{attr}({source})"
            # The reference drops every op but a true identity (a strided skip is a reduction).
            operands.append(_OpView(attr, construct, f"self.drop_path({term})"))
        comment = f"{label}:{block.span.line}  {format_block(block)}" if block.span else format_block(block)
        view.blocks.append(_BlockView(comment, locals_.name(block.target), operands, activations))
        local[block.target] = view.blocks[-1].local
    for member in cell.output.members:
        if reduction and member in cell.inputs:
            raise ValueError(
                f"the {cell.kind} cell outputs its input `{member}`, which is at twice the size of its "
                "blocks under the darts convention (no adapter is defined); output blocks only"
            )
        view.outputs.append(local[member])
    return view


@dataclass
class _CellCall:
    attr: str
    construct: str


@dataclass
class _NetworkView:
    class_name: str
    preset_name: str
    preset: DartsPreset
    drop_path_keep_prob: float
    stem: str  # "cifar" or "imagenet"
    stem_channels: int
    cells: list[_CellCall]
    forward: list[Line]  # the straight-line body of _forward_cells after the stem
    cell_names: list[str]
    aux_input: str
    aux_channels: int
    aux_halvings: int  # stride-2 layers between the image and the aux head's input
    feature_info: list[str]
    num_features: int
    output: str
    pretrained_cfg: dict[str, object] = field(default_factory=dict)


def _network_view(
    name: str, preset: DartsPreset, skeleton: DartsSkeleton, class_names: dict, class_name: str
) -> _NetworkView:
    """One preset's network as cnn/model.py builds it, every cell a named attribute."""
    values = ["x_stem0", "x_stem1"] if skeleton.stem == "imagenet" else ["x_stem", "x_stem"]
    feature_info = [(skeleton.stem_channels, skeleton.stem_reduction, values[-1][2:])]
    calls: list[_CellCall] = []
    # Every cell reads both its inputs through ReLU (its preprocessing): relu of each value once.
    lines: list[tuple[str, tuple[str, ...]]] = [
        (f"relu_{value} = torch.relu({value})", (value,)) for value in dict.fromkeys(values)
    ]
    for index, cell in enumerate(skeleton.cells):
        if cell.kind == "reduction":
            before = skeleton.cells[index - 1]
            feature_info.append((before.out_channels, before.reduction, before.name))
        arguments = (
            f"prev_prev_channels={cell.prev_prev_channels}, prev_channels={cell.prev_channels}, "
            f"c={cell.channels}"
        )
        calls.append(_CellCall(cell.name, f"{class_names[(cell.kind, cell.reduction_prev)]}({arguments})"))
        inputs = (f"relu_{values[-2]}", f"relu_{values[-1]}")
        lines.append((f"x_{cell.name} = self.{cell.name}({', '.join(inputs)})", inputs))
        if index < len(skeleton.cells) - 1:
            lines.append((f"relu_x_{cell.name} = torch.relu(x_{cell.name})", (f"x_{cell.name}",)))
        values.append(f"x_{cell.name}")
    last, aux = skeleton.cells[-1], skeleton.cells[skeleton.aux_after]
    feature_info.append((last.out_channels, last.reduction, last.name))
    return _NetworkView(
        class_name=class_name,
        preset_name=name,
        preset=preset,
        drop_path_keep_prob=round(1.0 - preset.drop_path_prob, 6),
        stem=preset.stem,
        stem_channels=skeleton.stem_channels,
        cells=calls,
        forward=straight_line(lines, keep={f"x_{aux.name}", values[-1]}),
        cell_names=[call.attr for call in calls],
        aux_input=f"x_{aux.name}",
        aux_channels=aux.out_channels,
        aux_halvings=aux.reduction.bit_length() - 1,  # halvings of the image
        feature_info=[
            f'{{"num_chs": {chs}, "reduction": {red}, "module": "{module}"}}'
            for chs, red, module in feature_info
        ],
        num_features=last.out_channels,
        output=values[-1],
    )


def emit_darts(compilation: Compilation) -> str:
    """The module: one class per cell variant, one straight-line class per preset. A rescaled compile
    (N @ P, classes) holds that one network only."""
    genotype, options = compilation.genotype, compilation.options
    presets = compilation.networks
    names = Namespace(MODULE_NAMES)
    source = options.source_file or genotype.filename
    label, source_literal = source_names(source, genotype.name)
    # A cell after a reduction cell (or the ImageNet stem) reduces its s0: a variant of its own.
    variants = sorted(
        {(cell.kind, cell.reduction_prev) for plan in compilation.plans.values() for cell in plan.cells}
    )
    class_names = {
        (kind, after): names.name(
            ("cell", kind, after), _camel(kind) + "Cell" + ("AfterReduction" if after else "")
        )
        for kind, after in variants
    }
    cells = [
        _cell_view(genotype.cell(kind), after, class_names[(kind, after)], label) for kind, after in variants
    ]
    networks = [
        _network_view(
            name,
            preset,
            compilation.plans[name],
            class_names,
            names.name(("network", name), network_class(genotype.name, name)),
        )
        for name, preset in presets.items()
    ]
    metadata = {entry.key: entry.value for entry in genotype.metadata}
    for network in networks:
        size, classes = network.preset.image_size, network.preset.num_classes
        first_conv = "stem0.0" if network.stem == "imagenet" else "stem.0"
        network.pretrained_cfg = pretrained_cfg(
            metadata, DARTS.data, network.preset_name, compilation.base_preset, size, classes, first_conv
        )
    context = {
        "version": __version__,
        "source_repr": source_literal,
        "genotype_name": genotype.name,
        "structural_hash": structural_hash(genotype),
        "metadata": [(entry.key, entry.value) for entry in genotype.metadata],
        "cells": cells,
        "networks": networks,
        "default_preset": compilation.preset_name,
        "default_classes": compilation.preset.num_classes,
        "preset_names": ", ".join(presets),
    }
    return checked(_environment().get_template("darts/module.py.jinja").render(context))
