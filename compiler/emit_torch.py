"""Emit: lowered cell graphs → one standalone PyTorch file, through the Jinja templates.

Every name and number is computed here, in Python, into a view model; the templates only print.
Names from the .cell file pass through one namespace per scope; strings are emitted with repr.
The result is parsed back with `ast` before anyone can import it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import nasc
from nasc.compiler import ir
from nasc.compiler.conventions import convention_of
from nasc.compiler.hashing import structural_hash
from nasc.compiler.lower import CellGraph, Channels, lower
from nasc.compiler.namespace import Namespace
from nasc.compiler.options import EmitOptions
from nasc.compiler.presets import Preset
from nasc.compiler.skeleton import resolve_preset
from nasc.compiler.templating import camel as _camel
from nasc.compiler.templating import checked, source_names
from nasc.compiler.templating import environment as _environment
from nasc.compiler.templating import py_literal as _py

# Helpers of templates/support.py.jinja that only some op families need.
FAMILY_HELPERS = {
    "separable": {"same_conv"},
    "conv": {"same_conv"},
    "bottleneck": {"same_conv"},
    "pool": {"same_pool"},
}

# Names the emitted module defines or imports at its top level.
MODULE_NAMES = (
    "annotations dataclass replace torch F Tensor nn "
    "NASC_VERSION GENOTYPE CONVENTION STRUCTURAL_HASH SOURCE_FILE METADATA "
    "BatchNormConfig same_padding SameConv2d SamePool2d ReLUConvBN ConvBN FactorizedReduction DropPath "
    "adjust_x2 match_output IdentityBranch PoolBranch SeparableBranch ConvBranch BottleneckBranch "
    "Preset PRESETS DEFAULT_PRESET AuxHead AuxHeadTooSmall create_model"
).split()
# Attributes every cell has, and nn.Module's own.
CELL_ATTRIBUTES = (
    "squeeze_x1 adjust_x2 drop_path out_channels stride training forward parameters buffers children modules "
    "named_parameters named_buffers named_children named_modules state_dict load_state_dict to cuda cpu "
    "train eval apply zero_grad register_buffer register_parameter add_module get_submodule dump_patches "
    "call_super_init T_destination extra_repr half float double type requires_grad_ share_memory"
).split()
FORWARD_LOCALS = ("self", "x1", "x2")


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
    init: str
    forward: str
    norm: str | None = None
    channels: str = ""


@dataclass
class _OutputView:
    attr: str
    channels: str
    stride: int


@dataclass
class _CellView:
    kind: str
    class_name: str
    location: str
    stride: int
    h0: str
    h1: str
    blocks: list[_BlockView] = field(default_factory=list)
    adapted_outputs: list[_OutputView] = field(default_factory=list)
    output_terms: list[str] = field(default_factory=list)
    final_channels: str = ""
    out_channels: str = ""
    out_channels_doc: str = ""


def _channels_code(channels: Channels) -> str:
    if channels.h1:
        return "h1_channels"
    return "filters" if channels.filters == 1 else f"{channels.filters} * filters"


def _cell_view(graph: CellGraph, class_name: str, label: str) -> _CellView:
    env = _environment()
    attributes = Namespace(CELL_ATTRIBUTES)
    locals_ = Namespace((*MODULE_NAMES, *FORWARD_LOCALS))
    local = {name: locals_.name(name) for name in graph.inputs}
    channels = graph.state_channels()
    line = graph.span.line if graph.span else None
    view = _CellView(
        kind=graph.kind,
        class_name=class_name,
        location=f"{label}:{line}" if line else label,
        stride=graph.stride,
        h0=local[graph.inputs[0]],
        h1=local[graph.inputs[1]],
    )
    for block in graph.blocks:
        operands = []
        for op in block.operands:
            attr = attributes.name(("op", op.attr), op.attr)
            construct = str(
                env.get_template(op.spec.template).module.construct(op, _channels_code(op.in_channels))
            )
            term = f"self.{attr}({local[op.state]})"
            operands.append(
                _OpView(attr, construct, f"self.drop_path({term})" if op.spec.drop_path else term)
            )
        norm = attributes.name(("norm", block.target), block.norm_attr) if block.norm_attr else None
        combine = env.get_template(f"combines/{block.combine.name}.jinja").module
        block_view = _BlockView(
            comment=f"{label}:{block.span.line}  {block.source}" if block.span else block.source,
            local=locals_.name(block.target),
            operands=operands,
            init="",
            forward="",
            norm=norm,
            channels=_channels_code(block.channels),
        )
        block_view.init = str(combine.init(block_view)).strip()
        block_view.forward = str(combine.forward(block_view, [op.forward for op in operands])).strip()
        local[block.target] = block_view.local
        view.blocks.append(block_view)
    view.final_channels = _channels_code(graph.final_channels)
    for output in graph.outputs:
        if output.adapter_attr:
            attr = attributes.name(("out", output.member), output.adapter_attr)
            view.adapted_outputs.append(
                _OutputView(attr, _channels_code(channels[output.member]), output.stride)
            )
            view.output_terms.append(f"self.{attr}({local[output.member]})")
        else:
            view.output_terms.append(local[output.member])
    per_filter = graph.out_channels_per_filter
    view.out_channels = f"{per_filter} * filters"
    view.out_channels_doc = f"{per_filter}·F"
    return view


def _preset_args(preset: Preset) -> list[str]:
    """Keyword arguments, one per field, leaving out the fields that keep their defaults."""
    arguments = []
    for name, spec in Preset.__dataclass_fields__.items():
        value = getattr(preset, name)
        if spec.default is dataclasses.MISSING or value != spec.default:
            arguments.append(f"{name}={_py(value)}")
    return arguments


def emit_torch(genotype: ir.Genotype, options: EmitOptions | None = None) -> str:
    """The emitted module's source text, by the genotype's convention. Deterministic: same input,
    same bytes."""
    return convention_of(genotype).emit(genotype, options or EmitOptions())


def emit_nasnet(genotype: ir.Genotype, options: EmitOptions) -> str:
    """The NASNet convention's module (docs/reference.md)."""
    graphs = lower(genotype)
    convention = convention_of(genotype)
    module_names = Namespace(MODULE_NAMES)
    class_names = {kind: module_names.name(("cell", kind), _camel(kind) + "Cell") for kind in graphs}
    network_class = module_names.name("network", _camel(genotype.name))
    source = options.source_file or genotype.filename
    label, source_literal = source_names(source, genotype.name)

    families = sorted({op.spec.family for g in graphs.values() for b in g.blocks for op in b.operands})
    helpers = set().union(*(FAMILY_HELPERS.get(family, set()) for family in families))
    env = _environment()
    op_templates = [env.get_template(f"ops/{family}.jinja").module for family in families]

    presets = [(name, _preset_args(preset)) for name, preset in convention.presets.items()]
    normal_per_filter = graphs["normal"].out_channels_per_filter
    default_preset, default = resolve_preset(genotype, options)
    if default_preset not in convention.presets:
        presets.append((default_preset, _preset_args(default)))

    context = {
        "version": nasc.__version__,
        "source_repr": source_literal,
        "genotype_name": genotype.name,
        "structural_hash": structural_hash(genotype),
        "metadata": [(entry.key, entry.value) for entry in genotype.metadata],
        "helpers": helpers,
        "op_templates": op_templates,
        "cells": [_cell_view(graphs[kind], class_names[kind], label) for kind in graphs],
        "cell_class": env.get_template("cell.py.jinja").module.cell_class,
        "network_class": network_class,
        "normal_class": class_names["normal"],
        "reduction_class": class_names["reduction"],
        "normal_out_per_filter": normal_per_filter,
        "presets": presets,
        "default_preset": default_preset,
        "default_classes": default.num_classes,
        "preset_names": ", ".join(name for name, _ in presets),
        "preset_summary": ", ".join(
            f"{name} ({p.cells_per_stage} @ {p.filters * 4 * normal_per_filter})"
            for name, p in convention.presets.items()
        ),
        "convention": convention.name,
        "title": convention.title,
        "summary": convention.summary,
    }
    return checked(env.get_template("module.py.jinja").render(context))
