"""Shared helpers for the torch-backend tests."""

from __future__ import annotations

import functools
from types import ModuleType

import nasc
from nasc.compiler.emit_torch import EmitOptions, emit_torch
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
