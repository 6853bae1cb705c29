"""Emit: a compilation → one standalone PyTorch file, through the Jinja templates.

The core every backend shares: the module's header and provenance, the support code, one network
class template over a base class (templates/network.py.jinja), the presets and `create_model`.
A backend (compiler/emit_nasnet.py, emit_darts.py, emit_nb201.py) contributes only what differs: its
cell classes (a template with a `cell_class` macro and the views it reads), its building blocks
(a template) and, per network, a `NetworkView` of code lines it computed.

Every name and number is computed in Python into the views; the templates only print. Names from the
.cell file pass through one namespace per scope; strings are emitted with repr. The result is parsed
back with `ast` before anyone can import it.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from nasc.compiler import ir
from nasc.compiler.compilation import Compilation, compile_genotype
from nasc.compiler.hashing import space_hash, structural_hash
from nasc.compiler.liveness import Line
from nasc.compiler.namespace import Namespace
from nasc.compiler.options import EmitOptions
from nasc.compiler.presets import pretrained_cfg
from nasc.compiler.space_ir import Space
from nasc.compiler.templating import checked, environment, network_class, source_names
from nasc.version import __version__

# Names every emitted module defines or imports at its top level; a backend adds its own.
MODULE_NAMES = (
    "annotations copy dataclass torch F Tensor nn checkpoint "
    "NASC_VERSION GENOTYPE CONVENTION STRUCTURAL_HASH SOURCE_FILE METADATA "
    "BatchNormConfig halved strided_pointwise StridedPointwiseConv is_pointwise PointwiseConv "
    "ShiftedPairConv ConvBN DropPath Cell global_pooling "
    "feature_maps fold_batch_norms use_channels_last inference_copy AuxHeadTooSmall Network Preset PRESETS "
    "DEFAULT_PRESET create_model"
).split()


@dataclass
class OpView:
    """One op of a cell's block: its attribute, construction and term in the forward."""

    attr: str | None  # None: an identity that needs no module (the term is the state itself)
    construct: str
    forward: str


@dataclass
class CellCall:
    attr: str
    construct: str


@dataclass
class NetworkView:
    """One preset's network class: what the backend decided, as code the template prints."""

    class_name: str
    preset_name: str
    doc: str  # the class docstring, its lines after the first indented
    num_classes: int
    image_size: int
    drop_rate: float
    drop_path_keep_prob: float
    bn: str  # the BatchNormConfig the network's modules share
    stem_init: list[str]  # __init__ lines building the stem
    stem_forward: list[str]  # _forward_cells lines running it
    cells: list[CellCall]
    forward: list[Line]  # the straight-line rest of _forward_cells
    cell_names: list[str]
    feature_info: list[str]
    num_features: int
    aux_size: str  # halved()'s arguments: the aux head's input size
    aux_head: str | None  # its construction; None: the network has none
    aux_input: str
    output: str
    first_conv: str  # the stem's first convolution, for pretrained_cfg
    drop_path_per_cell: bool = False
    relu_before_pool: bool = False
    bases: str = "Network"  # a supernet's class is also a Supernet
    pretrained_cfg: dict[str, object] = field(default_factory=dict)


@dataclass
class ModuleView:
    """What a backend hands the core for one module."""

    description: str  # the module docstring's paragraph about the networks
    blocks_template: str  # the backend's building blocks
    cell_template: str  # a template with a `cell_class(cell)` macro
    cells: list[Any]  # the views its macro reads
    networks: list[NetworkView]
    uses_functional: bool = False  # the blocks call torch.nn.functional
    extra: dict[str, Any] = field(default_factory=dict)  # what the blocks template reads besides


def docstring(*paragraphs: str) -> str:
    """A class docstring's text, wrapped to the emitted code's width and indented for a class body
    (the template writes the quotes)."""
    return "\n\n    ".join("\n    ".join(textwrap.wrap(paragraph, 96)) for paragraph in paragraphs)


def feature_info(entries: list[tuple[int, int, str]]) -> list[str]:
    """timm's feature_info entries as code: (channels, reduction, module name) each."""
    return [
        f'{{"num_chs": {channels}, "reduction": {reduction}, "module": "{module}"}}'
        for channels, reduction, module in entries
    ]


def source_label(compilation: Compilation) -> str:
    """How the module's comments cite the .cell file (see templating.source_names)."""
    genotype = compilation.genotype
    return source_names(compilation.options.source_file or genotype.filename, genotype.name)[0]


def location(label: str, span) -> str:
    """Where a cell is in its .cell file, as the emitted comments cite it: `file:line`."""
    return f"{label}:{span.line}" if span else label


def line_comment(label: str, span, source: str) -> str:
    """A block's comment in emitted code: where it is, and its line of the .cell file."""
    return f"{label}:{span.line}  {source}" if span else source


def network_views(
    compilation: Compilation, names: Namespace, build: Callable[[str, Any, Any, str, str], NetworkView]
) -> list[NetworkView]:
    """Each network the module holds, as `build(preset name, preset, plan, class name, title)` makes it."""
    genotype = compilation.genotype
    kind = "supernet of space" if isinstance(genotype, Space) else "network of genotype"
    title = f"{compilation.convention.title} {kind} `{genotype.name}`"
    return [
        build(
            name,
            preset,
            compilation.plans[name],
            names.name(("network", name), network_class(genotype.name, name)),
            title,
        )
        for name, preset in compilation.networks.items()
    ]


def render_module(compilation: Compilation, view: ModuleView) -> str:
    genotype, convention = compilation.genotype, compilation.convention
    _, source_literal = source_names(compilation.options.source_file or genotype.filename, genotype.name)
    metadata = {entry.key: entry.value for entry in genotype.metadata}
    for network in view.networks:
        network.pretrained_cfg = pretrained_cfg(
            metadata,
            convention.data,
            network.preset_name,
            compilation.base_preset,
            network.image_size,
            network.num_classes,
            network.first_conv,
        )
    env = environment()
    context = {
        "version": __version__,
        "source_repr": source_literal,
        "genotype_name": genotype.name,
        "structural_hash": space_hash(genotype) if isinstance(genotype, Space) else structural_hash(genotype),
        "is_space": isinstance(genotype, Space),
        "metadata": [(entry.key, entry.value) for entry in genotype.metadata],
        # A space's derived cells are read by its own convention, whichever network searches it.
        "convention": genotype.convention if isinstance(genotype, Space) else convention.name,
        "title": convention.title,
        "description": view.description,
        "default_preset": compilation.preset_name,
        "default_classes": compilation.preset.num_classes,
        "preset_names": ", ".join(compilation.networks),
        "uses_functional": view.uses_functional,
        "blocks_template": view.blocks_template,
        "cell_class": env.get_template(view.cell_template).module.cell_class,
        "cells": view.cells,
        "networks": view.networks,
        **view.extra,
    }
    return checked(env.get_template("module.py.jinja").render(context))


def emit_torch(genotype: ir.Genotype, options: EmitOptions | None = None) -> str:
    """The emitted module's source text, by the genotype's convention. Deterministic: same input,
    same bytes."""
    return compile_genotype(genotype, options).emit()
