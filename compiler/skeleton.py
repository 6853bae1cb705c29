"""The NASNet network skeleton as data: for a preset, which cells exist, in what order, at which
width, and which earlier output feeds each cell's second input (docs/reference.md, "Network
skeletons"; TF-slim nasnet.py `_build_nasnet_base`).

The emitted network builds itself by the same rules; static counting (compiler/counting.py) reads
this plan, and a test holds the two to the same numbers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from nasc.compiler import ir
from nasc.compiler.conventions import convention_of
from nasc.compiler.lower import CellGraph, RealizedCell, lower, realize
from nasc.compiler.options import EmitOptions
from nasc.compiler.presets import Preset, effective_preset


@dataclass(frozen=True)
class CellPlan:
    """One cell of the network. Outputs are numbered 0 (the stem) and 1, 2, ... (cell i is output i+1);
    x1 is always the output just below; `x2` is None for the first cell after a stem."""

    name: str  # the reference's module name: cell_stem_0, cell_3, reduction_cell_1
    kind: str
    filters: int
    x1: int
    x2: int | None


@dataclass(frozen=True)
class Skeleton:
    stem: str  # "cifar": 3x3 conv, stride 1; "imagenet": 3x3 conv, stride 2, VALID, then 2 reduction cells
    stem_channels: int
    cells: tuple[CellPlan, ...]
    aux_after: int  # index of the cell whose output feeds the aux head


def nasnet_skeleton(preset: Preset) -> Skeleton:
    num_cells = 3 * preset.cells_per_stage
    # Reduction cells go before normal cells int(k/3 * num_cells), k = 1, 2.
    reduction_before = [int(k / 3 * num_cells) for k in (1, 2)]
    cells: list[CellPlan] = []
    counts = {"stem": 0, "normal": 0, "reduction": 0}

    def add(kind: str, filters: int, back: int, stem: bool = False) -> None:
        # `back` counts outputs below this cell: 2 is the one two below, 3 the one three below.
        # The stem is output 0; "before the stem" means the cell has no x2.
        x1 = len(cells)
        x2 = x1 + 1 - back
        # Names as TF-slim and timm give them; PNASNet numbers its inline reductions with the cells.
        family = "stem" if stem else ("normal" if preset.reductions_inline else kind)
        name = {"stem": "cell_stem_{}", "normal": "cell_{}", "reduction": "reduction_cell_{}"}[family]
        cells.append(CellPlan(name.format(counts[family]), kind, filters, x1, x2 if x2 >= 0 else None))
        counts[family] += 1

    if preset.stem == "imagenet":
        stem_channels = preset.stem_filters or int(32 * preset.stem_multiplier)
        for k in range(2):  # two reduction cells at filter scaling 1/4, 1/2
            add("reduction", int(preset.filters * 0.25 * 2**k), 2, stem=True)
    else:
        stem_channels = int(preset.filters * preset.stem_multiplier)
    filter_scaling = 1
    aux_after = -1
    for cell_num in range(num_cells):
        back, kind = 2, "normal"
        if cell_num in reduction_before:
            filter_scaling *= 2
            if preset.reductions_inline:  # PNASNet: this cell is the reduction cell
                kind = "reduction"
            else:
                add("reduction", int(preset.filters * filter_scaling), 2)
                # skip_reduction_layer_input: the normal cell after a reduction reads, as x2, the
                # output two back counted before the reduction cell was appended (three back after).
                if preset.skip_reduction_layer_input:
                    back = 3
        add(kind, int(preset.filters * filter_scaling), back)
        if cell_num == reduction_before[1] - 1:
            aux_after = len(cells) - 1
    return Skeleton(preset.stem, stem_channels, tuple(cells), aux_after)


@dataclass(frozen=True)
class CellInstance:
    """One cell of a planned network with its concrete numbers and the adapters it really has."""

    plan: CellPlan
    x1_channels: int
    x2_channels: int | None
    reduce_x2: bool  # x2 is at twice x1's size (a reduction cell lies between them)
    cell: RealizedCell
    reduction: int  # the input size over this cell's output size (a power of two)

    @property
    def name(self) -> str:
        return self.plan.name


def instances(skeleton: Skeleton, graphs: Mapping[str, CellGraph]) -> tuple[CellInstance, ...]:
    """Every cell of the skeleton realized: widths from the plan, adapters from the lowering. Sizes
    are compared as reductions (powers of two), so the plan holds at any image size."""
    stem_reduction = 2 if skeleton.stem == "imagenet" else 1
    outputs: list[tuple[int, int]] = [(skeleton.stem_channels, stem_reduction)]  # (channels, reduction)
    planned = []
    for plan in skeleton.cells:
        x1_channels, x1_reduction = outputs[plan.x1]
        x2 = outputs[plan.x2] if plan.x2 is not None else None
        reduce_x2 = x2 is not None and x2[1] != x1_reduction
        graph = graphs[plan.kind]
        cell = realize(graph, plan.filters, x1_channels, x2[0] if x2 else None, reduce_x2)
        reduction = x1_reduction * graph.stride
        outputs.append((cell.out_channels, reduction))
        planned.append(CellInstance(plan, x1_channels, x2[0] if x2 else None, reduce_x2, cell, reduction))
    return tuple(planned)


def resolve_preset(
    genotype: ir.Genotype, options: EmitOptions, graphs: Mapping[str, CellGraph] | None = None
) -> tuple[str, Preset]:
    """The NASNet preset a compile asks for, rescaled (N @ P, classes) for this genotype's widths
    (`graphs`: its lowered cells, where the caller has them)."""
    convention = convention_of(genotype)
    preset = options.preset or next(iter(convention.presets))  # unset: the convention's first
    if preset not in convention.presets:
        choices = ", ".join(convention.presets)
        raise ValueError(f"unknown {convention.name} preset {preset!r}; choose from {choices}")
    unit = (graphs or lower(genotype))["normal"].out_channels_per_filter
    penultimate = options.penultimate_filters
    if options.first_filters is not None:
        if penultimate is not None:
            raise ValueError("give the first-stage filters or the penultimate filters, not both")
        penultimate = 4 * unit * options.first_filters
    return effective_preset(
        preset, unit, options.cells_per_stage, penultimate, options.num_classes, convention.presets
    )


def penultimate_per_filter(genotype: ir.Genotype) -> int:
    """P per unit of F0: the last stage runs at 4·F0 and the normal cell outputs k·F."""
    return 4 * lower(genotype)["normal"].out_channels_per_filter
