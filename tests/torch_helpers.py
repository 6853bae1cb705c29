"""Shared helpers for the torch-backend tests."""

from __future__ import annotations

import functools
from types import ModuleType

import nasc
from nasc.compiler.emit import emit_torch
from nasc.compiler.options import EmitOptions
from nasc.runtime.build import import_source

from .conftest import GENOTYPES


@functools.cache
def nasnet_a_source() -> str:
    return emit_torch(
        nasc.load(GENOTYPES / "nasnet_a.cell"), EmitOptions(source_file="genotypes/nasnet_a.cell")
    )


@functools.cache
def nasnet_a() -> ModuleType:
    return import_source(nasnet_a_source())


def parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())


@functools.cache
def small_nasnet_a(preset: str = "cifar") -> ModuleType:
    """NASNet-A at N = 1 and a quarter of the preset's width: every code path, a fraction of the cost."""
    from nasc.compiler.presets import PRESETS

    options = EmitOptions(preset=preset, cells_per_stage=1, first_filters=PRESETS[preset].filters // 4)
    return import_source(emit_torch(nasc.load(GENOTYPES / "nasnet_a.cell"), options))
