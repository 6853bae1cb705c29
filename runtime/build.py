"""Build emitted modules in process: the same emitter output a user gets in a file, imported from memory."""

from __future__ import annotations

import hashlib
import importlib.util
import pickle
import sys
import zipfile
from types import ModuleType
from typing import Any, NamedTuple

import torch
from torch import nn

from nasc.compiler import ir
from nasc.compiler.conventions import convention_of
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
    """The network cannot be built with these options (e.g. an unknown preset, a width too small)."""


class AuxHeadUnavailable(BuildError):
    """The images are too small for the aux head the caller asked for."""


class Built(NamedTuple):
    module: ModuleType  # the emitted file, imported: runtime/contract.py's CompiledModule
    model: nn.Module  # its network: CompiledNetwork
    preset: str  # the preset's name, rescaled ones included (`cifar-2@240`)
    settings: Any  # the compiler's preset it names (compiler/presets.Preset, or the convention's own)
    image_size: int
    source: str  # the emitted Python text


def build_network(
    genotype: ir.Genotype,
    options: EmitOptions | None = None,
    *,
    image_size: int | None = None,
    aux_head: bool = False,
    drop_path_keep_prob: float | None = None,
    num_classes: int | None = None,
    weights: str | None = None,
) -> Built:
    """Emit, import and build the network `options` ask for. The one way the CLI, the trainer and
    the exporter get a model, so all build the same thing; the preset comes from the compiler, never
    read back from the module."""
    options = options or EmitOptions()
    convention = convention_of(genotype)
    try:
        name, preset = convention.resolve_preset(genotype, options)
        source = emit_torch(genotype, options)
    except ValueError as error:
        raise BuildError(str(error)) from None
    module = import_source(source)
    size = image_size or preset.image_size
    try:
        model = module.create_model(
            name,
            image_size=size,
            aux_head=aux_head,
            drop_path_keep_prob=drop_path_keep_prob,
            num_classes=num_classes,
        )
    except module.AuxHeadTooSmall as error:
        raise AuxHeadUnavailable(str(error)) from None
    except ValueError as error:
        raise BuildError(str(error)) from None
    if weights is not None:
        _load_weights(model, weights)
    return Built(module, model, name, preset, size, source)


def _load_weights(model: nn.Module, path: str) -> None:
    """A state_dict file into the model, strictly, never running code from the file."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, ValueError) as error:
        raise BuildError(f"cannot read weights {path}: {first_line(error)}") from None
    if not isinstance(state, dict):
        raise BuildError(f"{path} holds no state_dict")
    try:
        model.load_state_dict(state)
    except RuntimeError as error:  # missing, unexpected or mis-shaped tensors
        raise BuildError(f"the weights in {path} are not this network's: {first_line(error, 1)}") from None


def first_line(error: BaseException, skip: int = 0) -> str:
    """An exception's message as one line for a user (the `skip`-th non-blank line, at most 240 chars)."""
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    return (lines[skip] if len(lines) > skip else lines[0] if lines else type(error).__name__)[:240]
