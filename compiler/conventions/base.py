"""A network convention: how a genotype's cells are read as a network.

A convention owns its signature rules (which cell kinds, how many inputs, what each input is), the
ops it knows and what each means, its presets, and the family of networks it builds (its backend),
whose methods lower, count and emit its cells. The parser, the IR, the printer and the hash know
none of this: a genotype only names its convention.

A backend imports its emitter when first used (inside its methods), so that checking a file never
loads an emitter, and a convention's module holds data only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class NasnetFamily:
    """NASNet, PNASNet, AmoebaNet: cells lowered into NASNet's adapter graph (compiler/lower.py), a
    skeleton per preset (compiler/skeleton.py), counted statically (compiler/counting.py) and
    emitted by compiler/emit_nasnet.py."""

    def lower(self, genotype) -> dict[str, Any]:
        from nasc.compiler.lower import lower

        return lower(genotype)

    def resolve_preset(self, genotype, options, lowered=None) -> tuple[str, Any]:
        from nasc.compiler.skeleton import resolve_preset

        return resolve_preset(genotype, options, lowered)

    def penultimate_per_filter(self, genotype) -> int:
        from nasc.compiler.skeleton import penultimate_per_filter

        return penultimate_per_filter(genotype)

    def plan(self, compilation, preset) -> Any:
        from nasc.compiler.skeleton import instances, nasnet_skeleton

        return instances(nasnet_skeleton(preset), compilation.lowered)

    def count(self, compilation, image_size: int | None, num_classes: int | None):
        from nasc.compiler.counting import count_network

        plan = compilation.plans[compilation.preset_name]
        return count_network(compilation.preset, plan, image_size, num_classes)

    def emit(self, compilation) -> str:
        from nasc.compiler.emit_nasnet import emit_nasnet

        return emit_nasnet(compilation)


class DartsFamily:
    """DARTS: every op C to C, the reference's networks (compiler/darts_skeleton.py), counted
    statically and emitted by compiler/emit_darts.py."""

    def lower(self, genotype) -> dict[str, Any]:
        return {}  # DARTS cells need no adapters: the emitter reads the IR

    def resolve_preset(self, genotype, options, lowered=None) -> tuple[str, Any]:
        from nasc.compiler.darts_skeleton import resolve_preset

        return resolve_preset(genotype, options)

    def penultimate_per_filter(self, genotype) -> int:
        from nasc.compiler.darts_skeleton import penultimate_per_filter

        return penultimate_per_filter(genotype)

    def plan(self, compilation, preset) -> Any:
        from nasc.compiler.darts_skeleton import darts_skeleton

        return darts_skeleton(preset, compilation.genotype)

    def count(self, compilation, image_size: int | None, num_classes: int | None):
        from nasc.compiler.counting import count_darts

        return count_darts(compilation.genotype, compilation.preset, image_size, num_classes)

    def emit(self, compilation) -> str:
        from nasc.compiler.emit_darts import emit_darts

        return emit_darts(compilation)


class Nb201Family:
    """NAS-Bench-201: one cell kind of C channels inside the benchmark's TinyNetwork
    (compiler/nb201_skeleton.py), counted statically and emitted by compiler/emit_nb201.py."""

    def lower(self, genotype) -> dict[str, Any]:
        return {}  # every op is C to C at stride 1: the emitter reads the IR

    def resolve_preset(self, genotype, options, lowered=None) -> tuple[str, Any]:
        from nasc.compiler.nb201_skeleton import resolve_preset

        return resolve_preset(genotype, options)

    def penultimate_per_filter(self, genotype) -> int:
        return 4  # the last stage runs at 4·C

    def plan(self, compilation, preset) -> Any:
        from nasc.compiler.nb201_skeleton import nb201_skeleton

        return nb201_skeleton(preset)

    def count(self, compilation, image_size: int | None, num_classes: int | None):
        from nasc.compiler.counting import count_nb201

        plan = compilation.plans[compilation.preset_name]
        return count_nb201(compilation.genotype, compilation.preset, plan, image_size, num_classes)

    def emit(self, compilation) -> str:
        from nasc.compiler.emit_nb201 import emit_nb201

        return emit_nb201(compilation)


class DartsSupernet:
    """A DARTS space's weight-sharing search network (quark0/darts cnn/model_search.py): the DARTS
    skeleton (compiler/darts_skeleton.py) of mixed cells, emitted by compiler/emit_supernet.py."""

    def lower(self, space) -> dict[str, Any]:
        return {}

    def resolve_preset(self, space, options, lowered=None) -> tuple[str, Any]:
        from nasc.compiler.darts_skeleton import resolve_search_preset

        return resolve_search_preset(options)

    def plan(self, compilation, preset) -> Any:
        from nasc.compiler.darts_skeleton import darts_skeleton

        return darts_skeleton(preset, compilation.genotype)

    def emit(self, compilation) -> str:
        from nasc.compiler.emit_supernet import emit_supernet

        return emit_supernet(compilation)


class Nb201Supernet:
    """A NAS-Bench-201 space's weight-sharing search network (xautodl models/cell_searchs
    TinyNetworkDarts): the benchmark's TinyNetwork of mixed cells, emitted by
    compiler/emit_supernet.py."""

    def lower(self, space) -> dict[str, Any]:
        return {}

    def resolve_preset(self, space, options, lowered=None) -> tuple[str, Any]:
        from nasc.compiler.nb201_skeleton import resolve_search_preset

        return resolve_search_preset(options)

    def plan(self, compilation, preset) -> Any:
        from nasc.compiler.nb201_skeleton import nb201_skeleton

        return nb201_skeleton(preset)

    def emit(self, compilation) -> str:
        from nasc.compiler.emit_supernet import emit_supernet

        return emit_supernet(compilation)


Backend = NasnetFamily | DartsFamily | Nb201Family | DartsSupernet | Nb201Supernet


@dataclass(frozen=True)
class Convention:
    name: str
    title: str  # the network family as people write it: "NASNet", "DARTS"
    summary: str  # one line: the paper and the network family
    reference: str  # the reference implementation the convention is exact against
    cell_kinds: tuple[str, ...]  # every kind is required
    input_roles: tuple[str, ...]  # what each declared cell input is, in order
    kind_strides: tuple[tuple[str, int], ...]  # stride of each kind's ops on the cell inputs
    ops: Mapping[str, str]  # the op names this convention knows → what each means here
    presets: Mapping[str, Any]  # preset name → the convention's preset dataclass
    data: Mapping[str, Any]  # preset name → compiler/presets.DataConfig (evaluation transform)
    backend: Backend
    combines: tuple[str, ...] = ("add", "concat", "add_layernorm", "add_instancenorm")
    # NASNet-family networks: the cell kind that plays each role ("normal", "reduction")
    roles: tuple[tuple[str, str], ...] = (("normal", "normal"), ("reduction", "reduction"))
    # NASNet-family networks: ops whose meaning differs from the registry's (registry.OpSpec)
    op_specs: Mapping[str, Any] = field(default_factory=dict)
    example_inputs: tuple[str, ...] = field(default=("h0", "h1"))
    # NAS-Bench-201's nodes: a block sums one op on each earlier state, in order (`add` with as many
    # operands as there are states before it), and the cell outputs its last block alone
    dense_nodes: bool = False
    blocks_per_cell: int | None = None  # None: any number
    # identity is always the state itself here (no adapter ever changes its shape), so the
    # structural hash reads `identity(x)` as `x`
    identity_is_state: bool = False

    @property
    def cell_inputs(self) -> int:
        return len(self.input_roles)

    @property
    def nasnet_family(self) -> bool:
        """Whether the cells are lowered into NASNet's adapter graph (compiler/lower.py)."""
        return isinstance(self.backend, NasnetFamily)

    def stride(self, kind: str) -> int:
        return dict(self.kind_strides).get(kind, 1)

    def describe_kinds(self) -> str:
        quoted = [f"`{kind}`" for kind in self.cell_kinds]
        return " and ".join(quoted) if len(quoted) <= 2 else ", ".join(quoted[:-1]) + " and " + quoted[-1]

    def describe_inputs(self) -> str:
        pairs = [f"{name} {role}" for name, role in zip(self.example_inputs, self.input_roles, strict=True)]
        return ", ".join(pairs)

    def resolve_preset(self, genotype, options) -> tuple[str, Any]:
        """The preset `options` ask for (rescaled where asked) and its name; ValueError otherwise."""
        return self.backend.resolve_preset(genotype, options)

    def penultimate_per_filter(self, genotype) -> int:
        return self.backend.penultimate_per_filter(genotype)
