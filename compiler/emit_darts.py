"""The DARTS convention's backend: a checked genotype → one standalone PyTorch file that builds the
reference networks of quark0/darts cnn/model.py (NetworkCIFAR, NetworkImageNet) exactly.

Lowering is simple under DARTS: every op maps C channels to C, ops reading a cell input run at the
cell's stride, a block adds its two ops, and the cell concatenates the states its output lists. Each
op becomes one named attribute; each cell's forward is straight-line code citing its .cell lines.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import nasc
from nasc.compiler import ir
from nasc.compiler.conventions.darts import DARTS, PRESETS, DartsPreset
from nasc.compiler.hashing import structural_hash
from nasc.compiler.namespace import Namespace
from nasc.compiler.options import EmitOptions
from nasc.compiler.printer import format_block
from nasc.compiler.templating import camel as _camel
from nasc.compiler.templating import checked, source_names
from nasc.compiler.templating import environment as _environment
from nasc.compiler.templating import py_literal as _py

# Names the emitted module defines or imports at its top level.
MODULE_NAMES = (
    "annotations dataclass replace torch F Tensor nn NASC_VERSION GENOTYPE CONVENTION STRUCTURAL_HASH "
    "SOURCE_FILE METADATA ReLUConvBN FactorizedReduce SepConv DilConv DropPath Preset PRESETS DEFAULT_PRESET "
    "AuxHeadCIFAR AuxHeadImageNet AuxHeadTooSmall create_model"
).split()
CELL_ATTRIBUTES = (
    "preprocess0 preprocess1 drop_path multiplier reduction training forward parameters buffers children "
    "modules state_dict load_state_dict to cuda cpu train eval apply zero_grad register_buffer add_module"
).split()

# What each op builds, as a constructor call on C channels at `stride`; `{c}` and `{stride}` filled in.
CONSTRUCTORS = {
    "identity": None,  # nn.Identity at stride 1, a factorized reduction when strided
    "max_pool_3x3": "nn.MaxPool2d(3, stride={stride}, padding=1)",
    "avg_pool_3x3": "nn.AvgPool2d(3, stride={stride}, padding=1, count_include_pad=False)",
    "sep_conv_3x3": "SepConv({c}, {c}, 3, stride={stride}, padding=1)",
    "sep_conv_5x5": "SepConv({c}, {c}, 5, stride={stride}, padding=2)",
    "sep_conv_7x7": "SepConv({c}, {c}, 7, stride={stride}, padding=3)",
    "dil_conv_3x3": "DilConv({c}, {c}, 3, stride={stride}, padding=2, dilation=2)",
    "dil_conv_5x5": "DilConv({c}, {c}, 5, stride={stride}, padding=4, dilation=2)",
}


@dataclass
class _OpView:
    attr: str
    construct: str
    forward: str


@dataclass
class _BlockView:
    comment: str
    local: str
    operands: list[_OpView]


@dataclass
class _CellView:
    kind: str
    class_name: str
    location: str
    reduction: bool
    s0: str
    s1: str
    blocks: list[_BlockView] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)


def _cell_view(cell: ir.Cell, class_name: str, label: str) -> _CellView:
    attributes = Namespace(CELL_ATTRIBUTES)
    locals_ = Namespace((*MODULE_NAMES, "self"))
    reduction = DARTS.stride(cell.kind) > 1
    local = {name: locals_.name(name) for name in cell.inputs}
    line = cell.span.line if cell.span else None
    view = _CellView(
        kind=cell.kind,
        class_name=class_name,
        location=f"{label}:{line}" if line else label,
        reduction=reduction,
        s0=local[cell.inputs[0]],
        s1=local[cell.inputs[1]],
    )
    for block in cell.blocks:
        operands = []
        for side, operand in zip(("left", "right"), block.operands, strict=True):
            attr = attributes.name(("op", block.target, side), f"{block.target}_{side}")
            stride = 2 if reduction and operand.input in cell.inputs else 1
            template = CONSTRUCTORS[operand.op]
            if template is None:
                construct = "FactorizedReduce(c, c)" if stride > 1 else "nn.Identity()"
            else:
                construct = template.format(c="c", stride=stride)
            term = f"self.{attr}({local[operand.input]})"
            # The reference drops every op but a true identity (a strided skip is a reduction).
            dropped = not (operand.op == "identity" and stride == 1)
            operands.append(_OpView(attr, construct, f"self.drop_path({term})" if dropped else term))
        comment = f"{label}:{block.span.line}  {format_block(block)}" if block.span else format_block(block)
        view.blocks.append(_BlockView(comment, locals_.name(block.target), operands))
        local[block.target] = view.blocks[-1].local
    for member in cell.output.members:
        if reduction and member in cell.inputs:
            raise ValueError(
                f"the {cell.kind} cell outputs its input `{member}`, which is at twice the size of its "
                "blocks under the darts convention (no adapter is defined); output blocks only"
            )
        view.outputs.append(local[member])
    return view


def resolve_preset(genotype: ir.Genotype, options: EmitOptions) -> tuple[str, DartsPreset]:
    """The DARTS preset a compile asks for. `--scale N@P`: N normal cells per stage (layers = 3N + 2)
    and P channels before the classifier (P = 4 · C · the normal cell's output states)."""
    if options.first_filters is not None:
        if options.penultimate_filters is not None:
            raise ValueError("give the first-stage channels or the penultimate filters, not both")
        options = replace(
            options, penultimate_filters=options.first_filters * penultimate_per_filter(genotype)
        )
    name = options.preset or next(iter(PRESETS))  # unset: the first
    if name not in PRESETS:
        raise ValueError(f"unknown darts preset {name!r}; choose from {', '.join(PRESETS)}")
    preset = PRESETS[name]
    if options.cells_per_stage or options.penultimate_filters:
        per_channel = penultimate_per_filter(genotype)
        changes: dict[str, int] = {}
        if options.cells_per_stage:
            changes["layers"] = 3 * options.cells_per_stage + 2
        if options.penultimate_filters:
            if options.penultimate_filters % per_channel:
                raise ValueError(
                    f"P = {options.penultimate_filters} is not a positive multiple of {per_channel}: this "
                    f"genotype's normal cell outputs {per_channel // 4}·C and the last stage runs at 4·C"
                )
            changes["channels"] = options.penultimate_filters // per_channel
        preset = replace(preset, **changes)
        name += f"-{preset.cells_per_stage}@{preset.channels * per_channel}"
    if options.num_classes:
        preset = replace(preset, num_classes=options.num_classes)
        name += f"-{options.num_classes}"
    return name, preset


def penultimate_per_filter(genotype: ir.Genotype) -> int:
    """P per unit of C: the last stage runs at 4·C and the normal cell outputs one C per member."""
    return 4 * len(genotype.cell("normal").output.members)


def _preset_args(preset: DartsPreset) -> list[str]:
    return [f"{name}={_py(getattr(preset, name))}" for name in DartsPreset.__dataclass_fields__]


def emit_darts(genotype: ir.Genotype, options: EmitOptions) -> str:
    default_name, default = resolve_preset(genotype, options)
    presets = [(name, _preset_args(preset)) for name, preset in PRESETS.items()]
    if default_name not in PRESETS:
        presets.append((default_name, _preset_args(default)))
    names = Namespace(MODULE_NAMES)
    kinds = [cell.kind for cell in genotype.cells]
    class_names = {kind: names.name(("cell", kind), _camel(kind) + "Cell") for kind in kinds}
    network_class = names.name("network", _camel(genotype.name))
    source = options.source_file or genotype.filename
    label, source_literal = source_names(source, genotype.name)
    context = {
        "version": nasc.__version__,
        "source_repr": source_literal,
        "genotype_name": genotype.name,
        "structural_hash": structural_hash(genotype),
        "metadata": [(entry.key, entry.value) for entry in genotype.metadata],
        "cells": [
            _cell_view(genotype.cell(kind), class_names[kind], label) for kind in ("normal", "reduction")
        ],
        "network_class": network_class,
        "normal_class": class_names["normal"],
        "reduction_class": class_names["reduction"],
        "presets": presets,
        "default_preset": default_name,
        "default_classes": default.num_classes,
        "normal_outputs": len(genotype.cell("normal").output.members),
        "preset_names": ", ".join(name for name, _ in presets),
    }
    return checked(_environment().get_template("darts/module.py.jinja").render(context))
