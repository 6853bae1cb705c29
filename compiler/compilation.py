"""Compile once: a genotype and what it is compiled for (the options), decided once into one object
that counting, emitting, `stats`, `show` and `viz` all read: the convention, the preset asked for,
the networks the module holds, the lowered cells and each network's plan.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from types import MappingProxyType
from typing import Any

from nasc.compiler import ir
from nasc.compiler.conventions import convention_of
from nasc.compiler.conventions.base import Convention
from nasc.compiler.options import EmitOptions


@dataclass(frozen=True)
class Compilation:
    genotype: ir.Genotype
    convention: Convention
    options: EmitOptions
    preset_name: str  # the network asked for: the emitted module's default
    preset: Any  # the convention's preset dataclass, rescaled where the options ask
    networks: Mapping[str, Any]  # what the module holds: every preset, or the one rescaled network
    base_preset: str | None  # the preset a rescaled network was derived from
    lowered: Mapping[str, Any]  # NASNet family: role → compiler/lower.CellGraph (empty for DARTS)

    @cached_property
    def plans(self) -> Mapping[str, Any]:
        """Each network's plan (its cells in order, with their widths and adapters), by preset name."""
        return MappingProxyType(
            {name: self.convention.backend.plan(self, preset) for name, preset in self.networks.items()}
        )

    def count(self, image_size: int | None = None, num_classes: int | None = None):
        """The asked-for network's figures (compiler/counting.NetworkStats), counted without building it."""
        return self.convention.backend.count(self, image_size, num_classes)

    def emit(self) -> str:
        """The standalone PyTorch module: every network of `networks`."""
        return self.convention.backend.emit(self)


def compile_genotype(genotype: ir.Genotype, options: EmitOptions | None = None) -> Compilation:
    """Raises ValueError for options the convention cannot honour (an unknown preset, a width that
    does not divide)."""
    options = options or EmitOptions()
    convention = convention_of(genotype)
    lowered = MappingProxyType(convention.backend.lower(genotype))
    name, preset = convention.backend.resolve_preset(genotype, options, lowered)
    rescaled = name not in convention.presets
    return Compilation(
        genotype=genotype,
        convention=convention,
        options=options,
        preset_name=name,
        preset=preset,
        networks=MappingProxyType({name: preset} if rescaled else dict(convention.presets)),
        base_preset=(options.preset or next(iter(convention.presets))) if rescaled else None,
        lowered=lowered,
    )


def compile_space(space, options: EmitOptions | None = None) -> Compilation:
    """A search space's supernet. Raises ValueError for a convention without one, or an option it
    cannot honour."""
    from nasc.compiler.conventions.darts import DARTS_SUPERNET
    from nasc.compiler.conventions.nb201 import NB201_SUPERNET

    # A NASNet space (ENAS's) is searched on DARTS's skeleton, as ENAS searched it on its own
    # NASNet-like one; its derived cells are NASNet cells.
    supernets = {DARTS_SUPERNET.name: DARTS_SUPERNET, "nasnet": DARTS_SUPERNET, "nb201": NB201_SUPERNET}
    if space.convention not in supernets:
        raise ValueError(
            f"supernets are compiled for {', '.join(supernets)} spaces; `{space.name}` is a "
            f"{space.convention} space (the multi-trial searches sample it: nasc search --space)"
        )
    options = options or EmitOptions()
    convention = supernets[space.convention]
    name, preset = convention.backend.resolve_preset(space, options)
    return Compilation(
        genotype=space,
        convention=convention,
        options=options,
        preset_name=name,
        preset=preset,
        networks=MappingProxyType({name: preset}),
        base_preset=None if name in convention.presets else next(iter(convention.presets)),
        lowered=MappingProxyType({}),
    )
