"""NAS-Bench-201's network as data (xautodl models/cell_infers/tiny_network.py `TinyNetwork`): for a
preset, the stem, three stages of N cells joined by two residual reduction blocks, and the head.

The emitter (compiler/emit_nb201.py) writes the network from this plan and the static counter
(compiler/counting.py) counts it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from nasc.compiler import ir
from nasc.compiler.conventions.nb201 import PRESETS, SEARCH_PRESETS, Nb201Preset
from nasc.compiler.options import EmitOptions
from nasc.compiler.presets import pick_search_preset


@dataclass(frozen=True)
class Nb201Layer:
    name: str  # cell_0, …; reduce_0, reduce_1 for the residual blocks
    residual: bool  # a ResNet basic block at stride 2 (C → 2C), not a cell
    in_channels: int
    channels: int
    reduction: int  # the image's size over this layer's output size


@dataclass(frozen=True)
class Nb201Skeleton:
    channels: int  # the stem's
    layers: tuple[Nb201Layer, ...]

    @property
    def cells(self) -> tuple[Nb201Layer, ...]:
        return tuple(layer for layer in self.layers if not layer.residual)


def nb201_skeleton(preset: Nb201Preset) -> Nb201Skeleton:
    c, layers = preset.channels, []
    for stage in range(3):
        width = c * 2**stage
        if stage:
            layers.append(Nb201Layer(f"reduce_{stage - 1}", True, width // 2, width, 2**stage))
        start = sum(not layer.residual for layer in layers)
        layers += [
            Nb201Layer(f"cell_{start + i}", False, width, width, 2**stage)
            for i in range(preset.cells_per_stage)
        ]
    return Nb201Skeleton(c, tuple(layers))


def resolve_preset(genotype: ir.Genotype, options: EmitOptions) -> tuple[str, Nb201Preset]:
    """The preset a compile asks for. `--scale N@P`: N cells per stage, P channels before the
    classifier (P = 4·C)."""
    name = options.preset or next(iter(PRESETS))
    if name not in PRESETS:
        raise ValueError(f"unknown nb201 preset {name!r}; choose from {', '.join(PRESETS)}")
    preset = PRESETS[name]
    channels = options.first_filters
    if options.penultimate_filters is not None:
        if channels is not None:
            raise ValueError("give the first-stage channels or the penultimate filters, not both")
        if options.penultimate_filters % 4:
            raise ValueError(
                f"P = {options.penultimate_filters} is not a multiple of 4: the last stage runs at 4·C"
            )
        channels = options.penultimate_filters // 4
    if options.cells_per_stage or channels:
        preset = replace(
            preset,
            cells_per_stage=options.cells_per_stage or preset.cells_per_stage,
            channels=channels or preset.channels,
        )
        name += f"-{preset.cells_per_stage}@{4 * preset.channels}"
    if options.num_classes:
        preset = replace(preset, num_classes=options.num_classes)
        name += f"-{options.num_classes}"
    return name, preset


def resolve_search_preset(options: EmitOptions) -> tuple[str, Nb201Preset]:
    """A supernet's preset: `search`, its classes as asked; N cells per stage and C where asked."""
    name, preset = pick_search_preset(options.preset, options.penultimate_filters, SEARCH_PRESETS)
    if options.cells_per_stage or options.first_filters:
        cells = options.cells_per_stage or preset.cells_per_stage
        preset = replace(preset, cells_per_stage=cells, channels=options.first_filters or preset.channels)
        name += f"-{preset.cells_per_stage}x{preset.channels}"
    if options.num_classes:
        preset = replace(preset, num_classes=options.num_classes)
        name += f"-{options.num_classes}"
    if options.partial_channels != 1:
        raise ValueError("--partial-channels is PC-DARTS's, for DARTS-skeleton supernets")
    return name, preset
