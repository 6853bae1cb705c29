"""What a compile is asked for, apart from the genotype: kept in a module of its own so that
commands that only count (`nasc stats`) need not load the emitter and its templates."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EmitOptions:
    """What `nasc compile` was asked for: the default preset of the emitted file, optionally rescaled."""

    preset: str | None = None  # None: the convention's first preset (cifar for NASNet and DARTS)
    cells_per_stage: int | None = None
    penultimate_filters: int | None = None
    num_classes: int | None = None
    # The first-stage width F0 itself (filters, or DARTS's C), for callers that think in it, as the
    # search does; P (penultimate_filters) follows from the cells. Not with penultimate_filters.
    first_filters: int | None = None
    source_file: str | None = None
    # A supernet's edges see 1/K of the channels (PC-DARTS); 1: all of them. Cells ignore it.
    partial_channels: int = 1
