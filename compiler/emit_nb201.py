"""The nb201 convention's backend of the emitter (compiler/emit.py): the cell class and, per preset,
NAS-Bench-201's TinyNetwork (xautodl models/cell_infers/tiny_network.py), parameter for parameter.

Every op maps C channels to C at stride 1. A node sums its edges' ops left to right, as the
reference's `sum(...)` does; a `none` edge (the reference's `x.mul(0.)`) adds nothing and is left out,
and a node of `none` edges only is zero. Each op with weights is one named attribute, built in the
reference's order, so a state_dict maps by position.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from nasc.compiler import emit, ir
from nasc.compiler.compilation import Compilation
from nasc.compiler.conventions.nb201 import Nb201Preset
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
from nasc.compiler.nb201_skeleton import Nb201Skeleton
from nasc.compiler.printer import format_block
from nasc.compiler.templating import camel

MODULE_NAMES = (*emit.MODULE_NAMES, "ResidualReduction")
CELL_ATTRIBUTES = (
    "drop_path kind cell_forward grad_checkpointing training forward parameters buffers children "
    "modules state_dict load_state_dict to cuda cpu train eval apply zero_grad register_buffer add_module"
).split()

# What each op with a module builds on C channels; identity and none build nothing.
CONSTRUCTORS = {
    "conv_1x1": "ConvBN(c, c, bn)",
    "conv_3x3": "ConvBN(c, c, bn, kernel_size=3)",
    "avg_pool_3x3": "nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)",
}


@dataclass
class _NodeView:
    comment: str
    local: str
    operands: list[OpView]
    activations: list[tuple[str, str]]  # (local, state): `local = torch.relu(state)`, once per state


@dataclass
class _CellView:
    kind: str
    class_name: str
    location: str
    input: str
    output: str = ""
    nodes: list[_NodeView] = field(default_factory=list)


def _operand(
    operand: ir.Operand,
    target: str,
    local: str,
    attributes: Namespace,
    relu: SharedRelu,
    activations: list[tuple[str, str]],
) -> OpView | None:
    """The op's view; None for `none`, which adds nothing."""
    if operand.op == "none":
        return None
    if operand.op == "identity":  # the state itself, never dropped
        return OpView(None, "", local)
    attr = attributes.name(("op", target, operand.input), f"{target}_from_{operand.input}")
    source = local if operand.op == "avg_pool_3x3" else relu.of(operand.input, local, activations)
    return OpView(attr, CONSTRUCTORS[operand.op], f"self.drop_path(self.{attr}({source}))")


def _cell_view(cell: ir.Cell, class_name: str, label: str) -> _CellView:
    attributes = Namespace(CELL_ATTRIBUTES)
    locals_ = Namespace((*MODULE_NAMES, "self"))
    local = {cell.inputs[0]: locals_.name(cell.inputs[0])}
    view = _CellView(cell.kind, class_name, location(label, cell.span), local[cell.inputs[0]])
    relu = SharedRelu(locals_)
    for block in cell.blocks:
        activations: list[tuple[str, str]] = []
        terms = [
            _operand(operand, block.target, local[operand.input], attributes, relu, activations)
            for operand in block.operands
        ]
        comment = line_comment(label, block.span, format_block(block))
        local[block.target] = locals_.name(block.target)
        operands = [term for term in terms if term is not None]
        view.nodes.append(_NodeView(comment, local[block.target], operands, activations))
    view.output = local[cell.output.members[0]]
    return view


def network_view(
    name: str,
    preset: Nb201Preset,
    skeleton: Nb201Skeleton,
    cell_class: str,
    class_name: str,
    title: str,
    supernet: str | None = None,
) -> NetworkView:
    """One preset's TinyNetwork, every cell and residual block a named attribute. `supernet`: the
    batch-norm config of a search network's cells (xautodl's TinyNetworkDarts), whose cells also
    take the mixing weights and path."""
    cell_bn, mixing = ("search_bn", ', *self._cell_mixing("normal")') if supernet else ("bn", "")
    calls, lines, value = [], [], "x_stem"
    stages: list[tuple[int, int, str]] = []
    for index, layer in enumerate(skeleton.layers):
        if layer.residual:
            construct = f"ResidualReduction({layer.in_channels}, {layer.channels}, bn)"
            stages.append((layer.in_channels, layer.reduction // 2, skeleton.layers[index - 1].name))
        else:
            construct = f"{cell_class}(c={layer.channels}, bn={cell_bn})"
        calls.append(CellCall(layer.name, construct))
        arguments = value if layer.residual else value + mixing
        lines.append((f"x_{layer.name} = self.{layer.name}({arguments})", (value,)))
        value = f"x_{layer.name}"
    features = skeleton.layers[-1].channels
    calls.append(CellCall("lastact", f"bn({features})"))  # built before the classifier, as the reference's
    lines.append((f"x_features = self.lastact({value})", (value,)))
    stages.append((features, skeleton.layers[-1].reduction, "lastact"))
    return NetworkView(
        class_name=class_name,
        preset_name=name,
        doc=docstring(
            f"The {title}, preset `{name}`: C = {preset.channels}, N = {preset.cells_per_stage} cells per "
            f"stage; {preset.image_size} px images, {preset.num_classes} classes.",
            "TinyNetwork: a 3x3 conv → BN stem, three stages of N cells (C, 2C, 4C) joined by residual "
            "reduction blocks, BN → ReLU → global average pool → linear. No aux head."
            + (" The cells are mixed (their batch norms without affine weights)." if supernet else ""),
        ),
        num_classes=preset.num_classes,
        image_size=preset.image_size,
        drop_rate=0.0,
        drop_path_keep_prob=1.0,
        bn="BatchNormConfig(eps=1e-05, momentum=0.1)",  # PyTorch's defaults: the reference's
        stem_init=[
            f"self.stem = nn.Sequential(nn.Conv2d(in_chans, {skeleton.channels}, 3, padding=1, bias=False), "
            f"bn({skeleton.channels}))",
            *([f"search_bn = {supernet}"] if supernet else []),
        ],
        stem_forward=["x_stem = self.stem(x)"],
        cells=calls,
        forward=straight_line(lines, keep={"x_features"}),
        cell_names=[layer.name for layer in skeleton.cells],
        feature_info=feature_info(stages),
        num_features=features,
        aux_size="",
        aux_head=None,
        aux_input="x_features",
        output="x_features",
        first_conv="stem.0",
        relu_before_pool=True,
        bases="Supernet, Network" if supernet else "Network",
    )


def emit_nb201(compilation: Compilation) -> str:
    """The module: the cell class and one straight-line network class per preset."""
    genotype = compilation.genotype
    names = Namespace(MODULE_NAMES)
    label = source_label(compilation)
    cell = genotype.cell("normal")
    cell_class = names.name(("cell", cell.kind), camel(cell.kind) + "Cell")
    networks = network_views(
        compilation,
        names,
        lambda name, preset, plan, class_name, title: network_view(
            name, preset, plan, cell_class, class_name, title
        ),
    )
    view = ModuleView(
        description="NAS-Bench-201's TinyNetwork (Dong & Yang 2020; xautodl models/cell_infers): presets "
        "`cifar` (C = 16,\nN = 5, 10 classes), `cifar100` and `imagenet16` (ImageNet16-120). Presets: "
        f"{', '.join(compilation.networks)}.",
        blocks_template="nb201/blocks.py.jinja",
        cell_template="nb201/cell.py.jinja",
        cells=[_cell_view(cell, cell_class, label)],
        networks=networks,
    )
    return render_module(compilation, view)
