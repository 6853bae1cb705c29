"""The DARTS network skeleton as data: for a preset, which cells exist, in what order, at which width
and from which earlier outputs (quark0/darts cnn/model.py `NetworkCIFAR`, `NetworkImageNet`).

The emitter (compiler/emit_darts.py) writes the network from this plan and the static counter
(compiler/counting.py) counts it; a test holds the counts to the built module's.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from nasc.compiler import ir
from nasc.compiler.conventions.darts import PRESETS, SEARCH_PRESETS, DartsPreset
from nasc.compiler.options import EmitOptions
from nasc.compiler.presets import pick_search_preset


@dataclass(frozen=True)
class DartsCell:
    """One cell: it reads the outputs of the two cells below (the stem's, for the first ones)."""

    name: str  # cell_0, cell_1, ...
    kind: str  # "normal" or "reduction"
    reduction_prev: bool  # the cell below reduces (or the ImageNet stem): s0 is at twice s1's size
    prev_prev_channels: int
    prev_channels: int
    channels: int  # C of this cell's stage
    out_channels: int  # C · the states it concatenates
    reduction: int  # the image's size over this cell's output size (a power of two)


@dataclass(frozen=True)
class DartsSkeleton:
    stem: str  # "cifar": a 3x3 conv to 3C; "imagenet": stem0 (two strided 3x3 convs) and stem1 (one)
    stem_channels: int
    stem_reduction: int  # 1 (cifar) or 8 (imagenet)
    cells: tuple[DartsCell, ...]
    aux_after: int  # index of the cell whose output feeds the aux head: the second reduction cell


def darts_skeleton(preset: DartsPreset, genotype: ir.Genotype) -> DartsSkeleton:
    c = preset.channels
    multiplier = {kind: len(genotype.cell(kind).output.members) for kind in ("normal", "reduction")}
    imagenet = preset.stem == "imagenet"
    stem_channels, stem_reduction = (c, 8) if imagenet else (3 * c, 1)
    reductions = (preset.layers // 3, 2 * preset.layers // 3)
    channels, reduction, reduction_prev = [stem_channels, stem_channels], stem_reduction, imagenet
    current = c
    cells = []
    for index in range(preset.layers):
        kind = "reduction" if index in reductions else "normal"
        if kind == "reduction":
            current *= 2
            reduction *= 2
        out_channels = multiplier[kind] * current
        inputs = (channels[-2], channels[-1])
        cells.append(
            DartsCell(f"cell_{index}", kind, reduction_prev, *inputs, current, out_channels, reduction)
        )
        channels.append(out_channels)
        reduction_prev = kind == "reduction"
    return DartsSkeleton(preset.stem, stem_channels, stem_reduction, tuple(cells), reductions[1])


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


def resolve_search_preset(options: EmitOptions) -> tuple[str, DartsPreset]:
    """A supernet's preset: `search` (the reference's search network), its classes as asked; N
    cells per stage (3N + 2 cells) and its first width C where asked."""
    name, preset = pick_search_preset(options.preset, options.penultimate_filters, SEARCH_PRESETS)
    if options.cells_per_stage or options.first_filters:  # a smaller search network (a proxy)
        layers = 3 * options.cells_per_stage + 2 if options.cells_per_stage else preset.layers
        preset = replace(preset, layers=layers, channels=options.first_filters or preset.channels)
        name += f"-{preset.layers}x{preset.channels}"
    if options.num_classes:
        preset = replace(preset, num_classes=options.num_classes)
        name += f"-{options.num_classes}"
    k = options.partial_channels
    if k < 1 or preset.channels % k:
        raise ValueError(f"--partial-channels {k} must divide C = {preset.channels}")
    if k > 1:
        name += f"-pc{k}"
    return name, preset


def penultimate_per_filter(genotype: ir.Genotype) -> int:
    """P per unit of C: the last stage runs at 4·C and the normal cell outputs one C per member."""
    return 4 * len(genotype.cell("normal").output.members)
