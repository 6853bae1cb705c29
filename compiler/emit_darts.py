"""The DARTS convention's backend of the emitter (compiler/emit.py): cell classes and, per preset,
the network that quark0/darts cnn/model.py builds (NetworkCIFAR, NetworkImageNet), exactly.

Lowering is simple under DARTS: every op maps C channels to C, ops reading a cell input run at the
cell's stride, a block adds its two ops, and the cell concatenates the states its output lists. Each
op becomes one named attribute; each cell's forward is straight-line code citing its .cell lines.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from nasc.compiler import emit, ir
from nasc.compiler.compilation import Compilation
from nasc.compiler.conventions.darts import DARTS, DartsPreset
from nasc.compiler.darts_skeleton import DartsSkeleton
from nasc.compiler.emit import (
    CellCall,
    ModuleView,
    NetworkView,
    OpView,
    docstring,
    feature_info,
    line_comment,
    location,
    network_views,
    render_module,
    source_label,
)
from nasc.compiler.liveness import SharedRelu, straight_line
from nasc.compiler.namespace import Namespace
from nasc.compiler.printer import format_block
from nasc.compiler.templating import camel as _camel

# Names the DARTS building blocks add at the emitted module's top level.
MODULE_NAMES = (*emit.MODULE_NAMES, *"FactorizedReduce SepConv DilConv AuxHeadCIFAR AuxHeadImageNet".split())
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
    "sep_conv_3x3": "SepConv({c}, {c}, 3, stride={stride}, padding=1, bn=bn)",
    "sep_conv_5x5": "SepConv({c}, {c}, 5, stride={stride}, padding=2, bn=bn)",
    "sep_conv_7x7": "SepConv({c}, {c}, 7, stride={stride}, padding=3, bn=bn)",
    "dil_conv_3x3": "DilConv({c}, {c}, 3, stride={stride}, padding=2, dilation=2, bn=bn)",
    "dil_conv_5x5": "DilConv({c}, {c}, 5, stride={stride}, padding=4, dilation=2, bn=bn)",
}
# The ops whose modules read their input as it is; every other (a strided identity too) begins with
# ReLU, which the cell computes once per state.
RAW_INPUT = frozenset({"max_pool_3x3", "avg_pool_3x3"})


@dataclass
class _BlockView:
    comment: str
    local: str
    operands: list[OpView]
    activations: list[tuple[str, str]]  # (local, state): `local = torch.relu(state)`, once per state


@dataclass
class CellHead:
    """What a DARTS cell class and a supernet's cell class share (templates/darts/cell_head.jinja)."""

    kind: str
    class_name: str
    location: str
    reduction: bool
    reduction_prev: bool  # the cell below is a reduction cell: s0 is at twice s1's size
    s0: str
    s1: str
    outputs: list[str] = field(default_factory=list)
    multiplier: int = 0  # the cell's output width in C; 0: one C per output


@dataclass
class _CellView(CellHead):
    blocks: list[_BlockView] = field(default_factory=list)


def _cell_view(cell: ir.Cell, reduction_prev: bool, class_name: str, label: str) -> _CellView:
    attributes = Namespace(CELL_ATTRIBUTES)
    locals_ = Namespace((*MODULE_NAMES, "self", "relu_x0", "relu_x1"))
    reduction = DARTS.stride(cell.kind) > 1
    local = {name: locals_.name(name) for name in cell.inputs}
    view = _CellView(
        kind=cell.kind,
        class_name=class_name,
        location=location(label, cell.span),
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
                operands.append(OpView(None, "", local[operand.input]))
                continue
            attr = attributes.name(("op", block.target, side), f"{block.target}_{side}")
            construct = (
                "FactorizedReduce(c, c, bn)" if template is None else template.format(c="c", stride=stride)
            )
            source = local[operand.input]
            if operand.op not in RAW_INPUT:
                source = relu.of(operand.input, source, activations)
            term = f"self.{attr}({source})"
            # The reference drops every op but a true identity (a strided skip is a reduction).
            operands.append(OpView(attr, construct, f"self.drop_path({term})"))
        comment = line_comment(label, block.span, format_block(block))
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


def network_view(
    name: str,
    preset: DartsPreset,
    skeleton: DartsSkeleton,
    class_names: dict,
    class_name: str,
    title: str,
    supernet: str | None = None,
) -> NetworkView:
    """One preset's network as cnn/model.py builds it, every cell a named attribute. `supernet`: the
    batch-norm config of a search network's cells (cnn/model_search.py), whose cells also take their
    kind's mixing weights and path, and which has no aux head."""
    cell_bn, mixing = ("search_bn", ", *self._cell_mixing({kind!r})") if supernet else ("bn", "")
    imagenet = skeleton.stem == "imagenet"
    values = ["x_stem0", "x_stem1"] if imagenet else ["x_stem", "x_stem"]
    stages = [(skeleton.stem_channels, skeleton.stem_reduction, values[-1][2:])]
    calls: list[CellCall] = []
    # Every cell reads both its inputs through ReLU (its preprocessing): relu of each value once.
    lines: list[tuple[str, tuple[str, ...]]] = [
        (f"relu_{value} = torch.relu({value})", (value,)) for value in dict.fromkeys(values)
    ]
    for index, cell in enumerate(skeleton.cells):
        if cell.kind == "reduction":
            before = skeleton.cells[index - 1]
            stages.append((before.out_channels, before.reduction, before.name))
        arguments = (
            f"prev_prev_channels={cell.prev_prev_channels}, prev_channels={cell.prev_channels}, "
            f"c={cell.channels}, bn={cell_bn}"
        )
        calls.append(CellCall(cell.name, f"{class_names[(cell.kind, cell.reduction_prev)]}({arguments})"))
        inputs = (f"relu_{values[-2]}", f"relu_{values[-1]}")
        call = f"self.{cell.name}({', '.join(inputs)}{mixing.format(kind=cell.kind)})"
        lines.append((f"x_{cell.name} = {call}", inputs))
        if index < len(skeleton.cells) - 1:
            lines.append((f"relu_x_{cell.name} = torch.relu(x_{cell.name})", (f"x_{cell.name}",)))
        values.append(f"x_{cell.name}")
    last, aux = skeleton.cells[-1], skeleton.cells[skeleton.aux_after]
    stages.append((last.out_channels, last.reduction, last.name))
    stem = STEMS[skeleton.stem]
    stem_init = stem.init.format(c=preset.channels, channels=skeleton.stem_channels).split("\n")
    if supernet:
        stem_init.append(f"search_bn = {supernet}")
    return NetworkView(
        class_name=class_name,
        preset_name=name,
        doc=docstring(
            f"The {title}, preset `{name}`: C = {preset.channels}, {preset.layers} cells (reduction cells at "
            f"one and two thirds); {preset.image_size} px images.",
            SUPERNET_DOC if supernet else f"{stem.network} The aux head, when built, reads `{aux.name}`.",
        ),
        num_classes=preset.num_classes,
        image_size=preset.image_size,
        drop_rate=0.0,
        drop_path_keep_prob=round(1.0 - preset.drop_path_prob, 6),
        bn="BatchNormConfig(eps=1e-05, momentum=0.1)",  # PyTorch's defaults: the reference's
        stem_init=stem_init,
        stem_forward=list(stem.forward),
        cells=calls,
        forward=straight_line(lines, keep={f"x_{aux.name}", values[-1]}),
        cell_names=[call.attr for call in calls],
        feature_info=feature_info(stages),
        num_features=last.out_channels,
        aux_size=f"image_size, {aux.reduction.bit_length() - 1}",
        aux_head=None if supernet else f"{stem.aux_head}({aux.out_channels}, aux_size, num_classes, bn)",
        aux_input=f"x_{aux.name}",
        output=values[-1],
        first_conv=stem.first_conv,
        bases="Supernet, Network" if supernet else "Network",
    )


SUPERNET_DOC = (
    "cnn/model_search.py's Network: a 3x3 conv stem to 3C, the mixed cells (their batch norms without "
    "affine weights), global average pool → linear; no aux head."
)


@dataclass(frozen=True)
class _Stem:
    network: str  # what the network is, for its docstring
    init: str  # the stem's construction ({c}: C, {channels}: its output channels)
    forward: tuple[str, ...]
    aux_head: str
    first_conv: str


STEMS = {
    "cifar": _Stem(
        "NetworkCIFAR: a 3x3 conv stem to 3C, the cells, global average pool → linear.",
        "self.stem = nn.Sequential("
        "nn.Conv2d(in_chans, {channels}, 3, padding=1, bias=False), bn({channels}))",
        ("x_stem = self.stem(x)",),
        "AuxHeadCIFAR",
        "stem.0",
    ),
    "imagenet": _Stem(
        "NetworkImageNet: stem0 (two strided 3x3 convs), stem1 (one), the cells, global pool → linear.",
        "c = {c}\n"
        "self.stem0 = nn.Sequential(\n"
        "    nn.Conv2d(in_chans, c // 2, 3, stride=2, padding=1, bias=False),\n"
        "    bn(c // 2),\n"
        "    nn.ReLU(),\n"
        "    nn.Conv2d(c // 2, c, 3, stride=2, padding=1, bias=False),\n"
        "    bn(c),\n"
        ")\n"
        "self.stem1 = nn.Sequential(nn.ReLU(), nn.Conv2d(c, c, 3, stride=2, padding=1, bias=False), bn(c))",
        ("x_stem0 = self.stem0(x)", "x_stem1 = self.stem1(x_stem0)"),
        "AuxHeadImageNet",
        "stem0.0",
    ),
}


def cell_classes(compilation: Compilation, names: Namespace, suffix: str) -> dict[tuple[str, bool], str]:
    """The class name of each cell variant the networks hold, (kind, after a reduction) → name, in
    order: a cell after a reduction cell (or the ImageNet stem) reduces its s0, a variant of its own."""
    variants = sorted(
        {(cell.kind, cell.reduction_prev) for plan in compilation.plans.values() for cell in plan.cells}
    )
    return {
        (kind, after): names.name(
            ("cell", kind, after), _camel(kind) + suffix + ("AfterReduction" if after else "")
        )
        for kind, after in variants
    }


def emit_darts(compilation: Compilation) -> str:
    """The module: one class per cell variant, one straight-line class per preset. A rescaled compile
    (N @ P, classes) holds that one network only."""
    genotype = compilation.genotype
    names = Namespace(MODULE_NAMES)
    label = source_label(compilation)
    class_names = cell_classes(compilation, names, "Cell")
    cells = [
        _cell_view(genotype.cell(kind), after, class_names[(kind, after)], label)
        for kind, after in class_names
    ]
    networks = network_views(
        compilation,
        names,
        lambda name, preset, plan, class_name, title: network_view(
            name, preset, plan, class_names, class_name, title
        ),
    )
    view = ModuleView(
        description="The reference networks of quark0/darts cnn/model.py (Liu et al. 2019): `cifar` is "
        "NetworkCIFAR\n(C = 36, 20 cells), `imagenet` NetworkImageNet (C = 48, 14 cells). Presets: "
        f"{', '.join(compilation.networks)}.",
        blocks_template="darts/blocks.py.jinja",
        cell_template="darts/cell.py.jinja",
        cells=cells,
        networks=networks,
    )
    return render_module(compilation, view)
