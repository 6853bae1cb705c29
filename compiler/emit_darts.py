"""The DARTS convention's backend: a checked genotype → one standalone PyTorch file that builds the
reference networks of quark0/darts cnn/model.py (NetworkCIFAR, NetworkImageNet) exactly.

Lowering is simple under DARTS: every op maps C channels to C, ops reading a cell input run at the
cell's stride, a block adds its two ops, and the cell concatenates the states its output lists. Each
op becomes one named attribute; each cell's forward is straight-line code citing its .cell lines.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from nasc.compiler import ir
from nasc.compiler.conventions.darts import DARTS, PRESETS, DartsPreset
from nasc.compiler.hashing import structural_hash
from nasc.compiler.liveness import Line, SharedRelu, straight_line
from nasc.compiler.namespace import Namespace
from nasc.compiler.options import EmitOptions
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
    name: str, preset: DartsPreset, genotype: ir.Genotype, class_names: dict, class_name: str
) -> _NetworkView:
    """One preset's network as cnn/model.py builds it, every cell a named attribute."""
    c = preset.channels
    multiplier = {kind: len(genotype.cell(kind).output.members) for kind in ("normal", "reduction")}
    if preset.stem == "imagenet":
        values, channels, reduction = ["x_stem0", "x_stem1"], [c, c], 8
        reduction_prev = True
    else:
        values, channels, reduction = ["x_stem", "x_stem"], [3 * c, 3 * c], 1
        reduction_prev = False
    reductions = (preset.layers // 3, 2 * preset.layers // 3)
    feature_info = [(channels[-1], reduction, "stem1" if preset.stem == "imagenet" else "stem")]
    calls: list[_CellCall] = []
    # Every cell reads both its inputs through ReLU (its preprocessing): relu of each value once.
    lines: list[tuple[str, tuple[str, ...]]] = [
        (f"relu_{value} = torch.relu({value})", (value,)) for value in dict.fromkeys(values)
    ]
    current = c
    aux = None
    for index in range(preset.layers):
        kind = "reduction" if index in reductions else "normal"
        if kind == "reduction":
            current *= 2
            feature_info.append((channels[-1], reduction, f"cell_{index - 1}"))
            reduction *= 2
        attr = f"cell_{index}"
        arguments = f"prev_prev_channels={channels[-2]}, prev_channels={channels[-1]}, c={current}"
        construct = f"{class_names[(kind, reduction_prev)]}({arguments})"
        calls.append(_CellCall(attr, construct))
        inputs = (f"relu_{values[-2]}", f"relu_{values[-1]}")
        lines.append((f"x_{attr} = self.{attr}({', '.join(inputs)})", inputs))
        if index < preset.layers - 1:
            lines.append((f"relu_x_{attr} = torch.relu(x_{attr})", (f"x_{attr}",)))
        values.append(f"x_{attr}")
        channels.append(multiplier[kind] * current)
        reduction_prev = kind == "reduction"
        if index == reductions[1]:
            aux = (values[-1], channels[-1], reduction.bit_length() - 1)  # halvings of the image
    feature_info.append((channels[-1], reduction, f"cell_{preset.layers - 1}"))
    assert aux is not None  # every preset has a second reduction cell
    forward = straight_line(lines, keep={aux[0], values[-1]})
    return _NetworkView(
        class_name=class_name,
        preset_name=name,
        preset=preset,
        drop_path_keep_prob=round(1.0 - preset.drop_path_prob, 6),
        stem=preset.stem,
        stem_channels=3 * c if preset.stem == "cifar" else c,
        cells=calls,
        forward=forward,
        cell_names=[call.attr for call in calls],
        aux_input=aux[0],
        aux_channels=aux[1],
        aux_halvings=aux[2],
        feature_info=[
            f'{{"num_chs": {chs}, "reduction": {red}, "module": "{module}"}}'
            for chs, red, module in feature_info
        ],
        num_features=channels[-1],
        output=values[-1],
    )


def emit_darts(genotype: ir.Genotype, options: EmitOptions) -> str:
    """The module: one class per cell variant, one straight-line class per preset. A rescaled compile
    (N @ P, classes) holds that one network only."""
    default_name, default = resolve_preset(genotype, options)
    presets = dict(PRESETS) if default_name in PRESETS else {default_name: default}
    names = Namespace(MODULE_NAMES)
    source = options.source_file or genotype.filename
    label, source_literal = source_names(source, genotype.name)
    # A cell after a reduction cell (or the ImageNet stem) reduces its s0: a variant of its own.
    variants = sorted({(kind, after) for preset in presets.values() for kind, after in _cells(preset)})
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
            genotype,
            class_names,
            names.name(("network", name), network_class(genotype.name, name)),
        )
        for name, preset in presets.items()
    ]
    metadata = {entry.key: entry.value for entry in genotype.metadata}
    base = None if default_name in PRESETS else options.preset or next(iter(PRESETS))
    for network in networks:
        size, classes = network.preset.image_size, network.preset.num_classes
        first_conv = "stem0.0" if network.stem == "imagenet" else "stem.0"
        network.pretrained_cfg = pretrained_cfg(
            metadata, DARTS.data, network.preset_name, base, size, classes, first_conv
        )
    context = {
        "version": __version__,
        "source_repr": source_literal,
        "genotype_name": genotype.name,
        "structural_hash": structural_hash(genotype),
        "metadata": [(entry.key, entry.value) for entry in genotype.metadata],
        "cells": cells,
        "networks": networks,
        "default_preset": default_name,
        "default_classes": default.num_classes,
        "preset_names": ", ".join(presets),
    }
    return checked(_environment().get_template("darts/module.py.jinja").render(context))


def _cells(preset: DartsPreset) -> list[tuple[str, bool]]:
    """(kind, whether the cell below reduces) for each cell of the preset's network."""
    reductions = (preset.layers // 3, 2 * preset.layers // 3)
    after = preset.stem == "imagenet"  # the ImageNet stem ends strided
    cells = []
    for index in range(preset.layers):
        kind = "reduction" if index in reductions else "normal"
        cells.append((kind, after))
        after = kind == "reduction"
    return cells
