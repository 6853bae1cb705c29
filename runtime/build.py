"""Build emitted modules in process: the same emitter output a user gets in a file, imported from memory."""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from types import ModuleType

from nasc.compiler import ir
from nasc.compiler.emit_torch import EmitOptions, emit_torch


def import_source(source: str, module_name: str | None = None) -> ModuleType:
    """Import generated Python text as a module (registered in sys.modules, as dataclasses need)."""
    name = module_name or "nasc_emitted_" + hashlib.sha256(source.encode()).hexdigest()[:16]
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_loader(name, loader=None)
    module = importlib.util.module_from_spec(spec)
    module.__file__ = f"<nasc:{name}>"
    sys.modules[name] = module
    try:
        exec(
            compile(source, module.__file__, "exec"), module.__dict__
        )  # our own emitted code, never .cell text
    except BaseException:
        del sys.modules[name]
        raise
    return module


def compile_module(genotype: ir.Genotype, options: EmitOptions | None = None) -> ModuleType:
    """Emit the genotype's module and import it."""
    return import_source(emit_torch(genotype, options))


class BuildError(ValueError):
    """The network cannot be built with these options (e.g. an image too small for the aux head)."""


def build_network(
    genotype: ir.Genotype,
    options: EmitOptions | None = None,
    *,
    image_size: int | None = None,
    aux_head: bool = False,
):
    """Emit, import and build the network `options` ask for: (module, model, preset name, image size),
    the module and model keeping runtime/contract.py.

    The one way the CLI and the exporter get a model, so all build the same thing."""
    options = options or EmitOptions()
    try:
        module = compile_module(genotype, options)
    except ValueError as error:
        raise BuildError(str(error)) from None
    name = module.DEFAULT_PRESET
    size = image_size or module.PRESETS[name].image_size
    try:
        model = module.create_model(name, image_size=size, aux_head=aux_head)
    except ValueError as error:  # AuxHeadTooSmall included: the caller asked for the aux head
        raise BuildError(str(error)) from None
    return module, model, name, size
