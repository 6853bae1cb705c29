"""The NASNet family's backend of the emitter (compiler/emit.py): lowered cell graphs → cell
classes (one per variant: the modules an instance has) and, per preset, the network's stem, cells
and straight-line forward (docs/reference.md)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from nasc.compiler import emit
from nasc.compiler.compilation import Compilation
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
from nasc.compiler.lower import Adapter, CellGraph, Channels, RealizedCell
from nasc.compiler.namespace import Namespace
from nasc.compiler.presets import Preset
from nasc.compiler.skeleton import CellInstance, Skeleton, nasnet_skeleton
from nasc.compiler.templating import camel as _camel
from nasc.compiler.templating import environment as _environment
from nasc.compiler.templating import py_literal as _py

# Helpers of templates/support.py.jinja and the op templates each emitted name needs besides itself.
NEEDS = {
    "SeparableBranch": {"SameConv2d"},
    "ConvBranch": {"SameConv2d"},
    "BottleneckBranch": {"SameConv2d"},
    "PoolBranch": {"SamePool2d"},  # and ConvBN, which every module has (the squeeze)
}

# Names the NASNet family's building blocks add at the emitted module's top level.
MODULE_NAMES = (
    *emit.MODULE_NAMES,
    *"same_padding SameConv2d SamePool2d FactorizedReduction PoolBranch SeparableBranch ConvBranch "
    "BottleneckBranch AuxHead".split(),
)
# Attributes every cell has, and nn.Module's own.
CELL_ATTRIBUTES = (
    "squeeze_x1 adjust_x2 drop_path out_channels stride kind cell_forward grad_checkpointing "
    "training forward parameters buffers children modules "
    "named_parameters named_buffers named_children named_modules state_dict load_state_dict to cuda cpu "
    "train eval apply zero_grad register_buffer register_parameter add_module get_submodule dump_patches "
    "call_super_init T_destination extra_repr half float double type requires_grad_ share_memory"
).split()
FORWARD_LOCALS = ("self", "x1", "x2", "relu_x1", "relu_x2")

# How a cell variant receives x2, by the lowering's name for the adapter (lower.realize), and what
# its class name adds to the kind's: one class per way, each with only the modules it runs.
X2_WAYS = {
    Adapter.RELU_CONV_BN: (
        "",
        "Both inputs arrive through ReLU, computed once per cell output by the network; x2 is\n"
        "    brought to F channels: 1x1 conv → BN.",
    ),
    Adapter.RELU_FACTORIZED_REDUCTION: (
        "ReducingX2",
        "Both inputs arrive through ReLU, computed once per cell output by the network; x2 is at\n"
        "    twice x1's size: a factorized reduction to F channels.",
    ),
    Adapter.X2_AS_IS: (
        "KeepingX2",
        "x1 arrives through ReLU, computed once by the network; x2 already has F channels at x1's\n"
        "    size: h1 is x2.",
    ),
    Adapter.NO_X2: (
        "WithoutX2",
        "No x2 (the first cell after a stem): h1 is x1 itself, unsqueezed; relu(x1) serves the\n"
        "    squeeze and every op that reads h1 through ReLU.",
    ),
}
# Which ways read x2 only through ReLU: the network then passes relu(x2), computed once per cell
# output for every cell that reads it so (x1 always is, but for the first cell after a stem).
X2_ACTIVATED = {Adapter.RELU_CONV_BN, Adapter.RELU_FACTORIZED_REDUCTION}


@dataclass
class _BlockView:
    comment: str
    local: str
    operands: list[OpView]
    init: str
    forward: str
    norm: str | None = None
    channels: str = ""
    # (local, state): `local = torch.relu(state)`, computed once before the first op that reads it
    activations: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class _CellView:
    kind: str
    role: str  # "normal" or "reduction": what the network uses the cell as
    class_name: str
    location: str
    stride: int
    x2_doc: str
    parameters: str
    adjust_x2: str | None
    forward_parameters: str
    x1_activation: str
    h0: str
    h1: str
    h1_term: str
    blocks: list[_BlockView] = field(default_factory=list)
    output_adapters: list[tuple[str, str]] = field(default_factory=list)
    output_terms: list[str] = field(default_factory=list)
    out_channels: str = ""
    out_channels_doc: str = ""


def _x2_way(cell: RealizedCell) -> Adapter:
    return next(Adapter(module.what) for module in cell.modules if module.attr == "adjust_x2")


def _signature(cell: RealizedCell) -> tuple:
    """What decides a cell variant's code: its kind and every module it has, numbers aside."""
    return (cell.graph.kind, cell.graph.stride, tuple((m.attr, m.what, m.adapters) for m in cell.modules))


class _CellWriter:
    """The names and decisions of one cell variant's class, made as its view is written."""

    def __init__(self, cell: RealizedCell, label: str) -> None:
        graph = cell.graph
        self.graph, self.label, self.way = graph, label, _x2_way(cell)
        self.env = _environment()
        self.attributes = Namespace(CELL_ATTRIBUTES)
        self.locals = Namespace((*MODULE_NAMES, *FORWARD_LOCALS))
        self.local = {name: self.locals.name(name) for name in graph.inputs}
        self.adapted = {module.attr for module in cell.modules if module.adapters}
        self.reductions = {m.attr: m for m in cell.modules if m.what == Adapter.FACTORIZED_REDUCTION}
        # Ops that begin with ReLU share one relu(h) per state; without x2, h1 is x1, already
        # activated for the squeeze.
        no_x2 = self.way == Adapter.NO_X2
        self.relu = SharedRelu(self.locals, {graph.inputs[1]: "relu_x1"} if no_x2 else None)
        self.read_raw = {output.member for output in graph.outputs}  # states some term reads as they are

    def channels(self, channels: Channels) -> str:
        if channels.h1:
            return "x1_channels" if self.way == Adapter.NO_X2 else "filters"
        return "filters" if channels.filters == 1 else f"{channels.filters} * filters"

    def op(self, op, activations: list[tuple[str, str]]) -> OpView:
        adapted = op.attr in self.adapted
        family = self.env.get_template(op.spec.template).module
        construct = str(family.construct(op, self.channels(op.in_channels), adapted)).strip()
        if not construct:  # an identity at F channels and stride 1: the state itself
            self.read_raw.add(op.state)
            return OpView(None, "", self.local[op.state])
        attr = self.attributes.name(("op", op.attr), op.attr)
        source = self.local[op.state]
        if op.spec.reads_activated(adapted):
            source = self.relu.of(op.state, source, activations)
        else:
            self.read_raw.add(op.state)
        term = f"self.{attr}({source})"
        return OpView(attr, construct, f"self.drop_path({term})" if op.spec.drop_path else term)

    def block(self, block) -> _BlockView:
        activations: list[tuple[str, str]] = []
        operands = [self.op(op, activations) for op in block.operands]
        norm = self.attributes.name(("norm", block.target), block.norm_attr) if block.norm_attr else None
        view = _BlockView(
            comment=line_comment(self.label, block.span, block.source),
            local=self.locals.name(block.target),
            operands=operands,
            init="",
            forward="",
            norm=norm,
            channels=self.channels(block.channels),
            activations=activations,
        )
        combine = self.env.get_template(f"nasnet/combines/{block.combine.name}.jinja").module
        view.init = str(combine.init(view)).strip()
        view.forward = str(combine.forward(view, [op.forward for op in operands])).strip()
        self.local[block.target] = view.local
        return view

    def output(self, output) -> tuple[tuple[str, str] | None, str]:
        """(the adapter's attribute and construction, or None; the output's term)."""
        module = self.reductions.get(output.adapter_attr or "")
        if module is None:
            return None, self.local[output.member]
        attr = self.attributes.name(("out", output.member), output.adapter_attr)
        member, final = self.channels(output.channels), self.channels(self.graph.final_channels)
        # A factorized reduction at stride 1 is its 1x1 convolution and batch norm.
        adapter = "FactorizedReduction" if module.stride > 1 else "ConvBN"
        return (attr, f"{adapter}({member}, {final}, bn)"), f"self.{attr}({self.local[output.member]})"


def _cell_view(cell: RealizedCell, class_name: str, label: str) -> _CellView:
    """The class of one cell variant: the modules that `cell` (any instance of the variant) has."""
    graph, writer = cell.graph, _CellWriter(cell, label)
    way = writer.way
    view = _CellView(
        kind=graph.kind,
        role="reduction" if graph.stride > 1 else "normal",
        class_name=class_name,
        location=location(label, graph.span),
        stride=graph.stride,
        x2_doc=X2_WAYS[way][1],
        parameters="x1_channels: int, x2_channels: int, filters: int"
        if way in X2_ACTIVATED
        else "x1_channels: int, filters: int",
        adjust_x2={
            Adapter.RELU_CONV_BN: "ConvBN(x2_channels, filters, bn)",
            Adapter.RELU_FACTORIZED_REDUCTION: "FactorizedReduction(x2_channels, filters, bn)",
        }.get(way),
        forward_parameters={
            Adapter.NO_X2: "x1: Tensor",
            Adapter.X2_AS_IS: "relu_x1: Tensor, x2: Tensor",
        }.get(way, "relu_x1: Tensor, relu_x2: Tensor"),
        x1_activation="relu_x1 = torch.relu(x1)" if way == Adapter.NO_X2 else "",
        h0=writer.local[graph.inputs[0]],
        h1=writer.local[graph.inputs[1]],
        h1_term={Adapter.NO_X2: "x1", Adapter.X2_AS_IS: "x2"}.get(way, "self.adjust_x2(relu_x2)"),
    )
    view.blocks = [writer.block(block) for block in graph.blocks]
    for output in graph.outputs:
        adapter, term = writer.output(output)
        if adapter is not None:
            view.output_adapters.append(adapter)
        view.output_terms.append(term)
    if way == Adapter.NO_X2 and graph.inputs[1] not in writer.read_raw:
        view.h1_term = ""  # every reader of h1 reads relu_x1: no name for x1 itself
    per_filter = graph.out_channels_per_filter
    view.out_channels = f"{per_filter} * filters"
    view.out_channels_doc = f"{per_filter}·F"
    return view


def _cells_and_forward(
    planned: tuple[CellInstance, ...], class_names: Mapping[tuple, str]
) -> tuple[list[CellCall], list[tuple[str, tuple[str, ...]]]]:
    """Each cell's construction, and the forward's lines (each with the values it reads)."""
    values = ["x_stem", *(f"x_{instance.name}" for instance in planned)]
    # relu(x) once per value, however many cells read it through ReLU (as x1 every cell but the first
    # after a stem, as x2 where it is adjusted): computed as soon as the value exists.
    readers = [(plan.x1, plan.x2, _x2_way(cell)) for plan, cell in ((i.plan, i.cell) for i in planned)]
    activated = {x1 for x1, _, way in readers if way != Adapter.NO_X2}
    activated |= {x2 for _, x2, way in readers if way in X2_ACTIVATED}

    def relu_of(source: int) -> str:
        return f"relu_{values[source]}"

    lines: list[tuple[str, tuple[str, ...]]] = []
    if 0 in activated:
        lines.append((f"{relu_of(0)} = torch.relu(x_stem)", ("x_stem",)))
    calls = []
    for index, instance in enumerate(planned, start=1):
        plan, cell = instance.plan, instance.cell
        way = _x2_way(cell)
        arguments = [f"x1_channels={instance.x1_channels}"]
        inputs = [values[plan.x1] if way == Adapter.NO_X2 else relu_of(plan.x1)]
        if way in X2_ACTIVATED:
            arguments.append(f"x2_channels={instance.x2_channels}")
            inputs.append(relu_of(plan.x2))
        elif way == Adapter.X2_AS_IS:
            inputs.append(values[plan.x2])
        arguments += [f"filters={plan.filters}", "bn=bn"]
        construct = f"{class_names[_signature(cell)]}({', '.join(arguments)})"
        calls.append(CellCall(instance.name, construct))
        lines.append((f"{values[index]} = self.{instance.name}({', '.join(inputs)})", tuple(inputs)))
        if index in activated:
            lines.append((f"{relu_of(index)} = torch.relu({values[index]})", (values[index],)))
    return calls, lines


def _stages(planned: tuple[CellInstance, ...], skeleton: Skeleton) -> list[tuple[int, int, str]]:
    """Per stage, its last output (channels, reduction, module): the stem (or the second stem
    cell), each cell before a reduction cell, and the last cell."""
    stem_cells = 2 if skeleton.stem == "imagenet" else 0
    if stem_cells:
        first = planned[stem_cells - 1]
        stages = [(first.cell.out_channels, first.reduction, first.name)]
    else:
        stages = [(skeleton.stem_channels, 1, "stem")]
    for index in range(stem_cells + 1, len(planned)):
        if planned[index].cell.graph.stride > 1:
            before = planned[index - 1]
            stages.append((before.cell.out_channels, before.reduction, before.name))
    last = planned[-1]
    stages.append((last.cell.out_channels, last.reduction, last.name))
    return stages


def _network_view(
    preset_name: str,
    preset: Preset,
    planned: tuple[CellInstance, ...],
    graphs: Mapping[str, CellGraph],
    class_names: Mapping[tuple, str],
    class_name: str,
    title: str,
) -> NetworkView:
    """One preset's network: every cell a named attribute, every adapter decided here."""
    skeleton = nasnet_skeleton(preset)
    calls, lines = _cells_and_forward(planned, class_names)
    aux, last = planned[skeleton.aux_after], planned[-1]
    imagenet = preset.stem == "imagenet"
    stem_reduction = 2 if imagenet else 1
    stem = skeleton.stem_channels
    conv = "3, stride=2, bias=False" if imagenet else "3, padding=1, bias=False"
    scaling = f", scaling={_py(preset.aux_scaling)}" if preset.aux_scaling != 1.0 else ""
    penultimate = preset.filters * 4 * graphs["normal"].out_channels_per_filter
    return NetworkView(
        class_name=class_name,
        preset_name=preset_name,
        doc=docstring(
            f"The {title}, preset `{preset_name}`: N = {preset.cells_per_stage} cells per stage, "
            f"F = {preset.filters} (P = {penultimate}), {len(planned)} cells; {preset.image_size} px images.",
            "Stem, the cells in order, then ReLU → global average pool → dropout → linear. The aux head, "
            f"when built, reads `{aux.name}`.",
        ),
        num_classes=preset.num_classes,
        image_size=preset.image_size,
        drop_rate=round(1.0 - preset.dropout_keep_prob, 6),
        drop_path_keep_prob=preset.drop_path_keep_prob,
        bn=f"BatchNormConfig(eps={_py(preset.bn_eps)}, momentum={_py(preset.bn_momentum)})",
        stem_init=[f"self.stem = nn.Sequential(nn.Conv2d(in_chans, {stem}, {conv}), bn({stem}))"],
        stem_forward=["x_stem = self.stem(x)"],
        cells=calls,
        forward=straight_line(lines, keep={f"x_{aux.name}", f"x_{last.name}"}),
        cell_names=[instance.name for instance in planned],
        feature_info=feature_info(_stages(planned, skeleton)),
        num_features=last.cell.out_channels,
        aux_size=f"{'(image_size - 3) // 2 + 1' if imagenet else 'image_size'}, "
        f"{aux.reduction.bit_length() - stem_reduction.bit_length()}",
        aux_head=f"AuxHead({aux.cell.out_channels}, aux_size, num_classes, bn{scaling})",
        aux_input=f"x_{aux.name}",
        output=f"x_{last.name}",
        first_conv="stem.0",
        drop_path_per_cell=preset.drop_path_per_cell,
        relu_before_pool=True,
    )


def emit_nasnet(compilation: Compilation) -> str:
    """The NASNet family's module: one class per cell variant, one straight-line class per preset.
    A rescaled compile (N @ P, classes) holds that one network only."""
    convention = compilation.convention
    graphs = compilation.lowered
    module_names = Namespace(MODULE_NAMES)
    label = source_label(compilation)

    # Cell variants: one class per distinct set of modules; the commonest way of a kind keeps its name.
    examples: dict[tuple, RealizedCell] = {}
    uses: dict[tuple, int] = {}
    for planned in compilation.plans.values():
        for instance in planned:
            key = _signature(instance.cell)
            examples.setdefault(key, instance.cell)
            uses[key] = uses.get(key, 0) + 1
    class_names: dict[tuple, str] = {}
    for role in graphs:
        keys = [key for key in examples if key[0] == graphs[role].kind and key[1] == graphs[role].stride]
        base = _camel(role) + "Cell"
        commonest = max(keys, key=lambda key: uses[key]) if keys else None
        for key in sorted(keys, key=lambda key: (key != commonest, list(examples).index(key))):
            suffix = "" if key == commonest else X2_WAYS[_x2_way(examples[key])][0] or "ProjectingX2"
            class_names[key] = module_names.name(("cell", key), base + suffix)
    cells = [_cell_view(examples[key], class_names[key], label) for key in class_names]
    networks = network_views(
        compilation,
        module_names,
        lambda name, preset, plan, class_name, title: _network_view(
            name, preset, plan, graphs, class_names, class_name, title
        ),
    )
    constructs = [op.construct for cell in cells for block in cell.blocks for op in block.operands]
    constructs += [cell.adjust_x2 or "" for cell in cells]
    constructs += [adapter for cell in cells for _, adapter in cell.output_adapters]
    used = {construct.split("(")[0] for construct in constructs if construct}
    for name in list(used):
        used |= NEEDS.get(name, set())
    families = sorted({op.spec.family for g in graphs.values() for b in g.blocks for op in b.operands})
    env = _environment()
    definitions = (
        str(env.get_template(f"nasnet/ops/{family}.jinja").module.define(used)) for family in families
    )
    normal_per_filter = graphs["normal"].out_channels_per_filter
    summary = ", ".join(
        f"{name} ({p.cells_per_stage} @ {p.filters * 4 * normal_per_filter})"
        for name, p in compilation.networks.items()
    )
    view = ModuleView(
        description=f"Presets: {summary}.\n{convention.summary}.",
        blocks_template="nasnet/blocks.py.jinja",
        cell_template="nasnet/cell.py.jinja",
        cells=cells,
        networks=networks,
        uses_functional=True,
        extra={"used": used, "op_definitions": [text.strip() for text in definitions if text.strip()]},
    )
    return render_module(compilation, view)
