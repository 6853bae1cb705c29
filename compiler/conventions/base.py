"""A network convention: how a genotype's cells are read as a network.

A convention owns its signature rules (which cell kinds, how many inputs, what each input is), the
ops it knows and what each means, its presets, and the backend that lowers and emits its cells. The
parser, the IR, the printer and the hash know none of this: a genotype only names its convention.

The behaviour is named by "module:function" paths and imported when first used, so that checking a
file never loads an emitter, and a convention's module holds data only.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


def _resolve(path: str) -> Callable[..., Any]:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


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
    emitter: str  # "module:function" (genotype, EmitOptions) -> Python source
    resolver: str  # "module:function" (genotype, EmitOptions) -> (preset name, preset), may raise ValueError
    width: str  # "module:function" (genotype) -> penultimate filters P per first-stage filter (N@P scaling)
    counter: str | None = None  # "module:function" (genotype, preset, image_size, num_classes) -> stats
    combines: tuple[str, ...] = ("add", "concat", "add_layernorm", "add_instancenorm")
    # "nasnet": cells lowered by compiler/lower.py into NASNet's adapter graph (squeeze of x1, adjusted
    # x2, F-channel ops); any other family lowers in its own backend.
    family: str = "nasnet"
    # NASNet-family networks: the cell kind that plays each role ("normal", "reduction")
    roles: tuple[tuple[str, str], ...] = (("normal", "normal"), ("reduction", "reduction"))
    # NASNet-family networks: ops whose meaning differs from the registry's (registry.OpSpec)
    op_specs: Mapping[str, Any] = field(default_factory=dict)
    example_inputs: tuple[str, ...] = field(default=("h0", "h1"))

    @property
    def cell_inputs(self) -> int:
        return len(self.input_roles)

    def stride(self, kind: str) -> int:
        return dict(self.kind_strides).get(kind, 1)

    def describe_kinds(self) -> str:
        quoted = [f"`{kind}`" for kind in self.cell_kinds]
        return " and ".join(quoted) if len(quoted) <= 2 else ", ".join(quoted[:-1]) + " and " + quoted[-1]

    def describe_inputs(self) -> str:
        pairs = [f"{name} {role}" for name, role in zip(self.example_inputs, self.input_roles, strict=True)]
        return ", ".join(pairs)

    def emit(self, genotype, options) -> str:
        return _resolve(self.emitter)(genotype, options)

    def resolve_preset(self, genotype, options) -> tuple[str, Any]:
        """The preset `options` ask for (rescaled where asked) and its name."""
        return _resolve(self.resolver)(genotype, options)

    def penultimate_per_filter(self, genotype) -> int:
        return _resolve(self.width)(genotype)

    def count(self, genotype, preset, image_size: int | None = None, num_classes: int | None = None):
        """Static figures (compiler/counting.NetworkStats), or None where the convention has no counter."""
        if self.counter is None:
            return None
        return _resolve(self.counter)(genotype, preset, image_size, num_classes)
