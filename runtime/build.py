"""Build emitted modules in process: the same emitter output a user gets in a file, imported from memory."""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from types import ModuleType
from typing import Any, NamedTuple

import torch
from torch import nn

from nasc.compiler import ir
from nasc.compiler.conventions import convention_of
from nasc.compiler.emit import emit_torch
from nasc.compiler.options import EmitOptions
from nasc.diagnostics import first_line
from nasc.runtime.tensorfile import TensorFileError, converted, read_tensor_file


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
    """A state_dict file, or a `nasc train` checkpoint (the weights it evaluated: the moving
    average where it kept one), into the model, strictly, never running code from the file; each
    tensor converted only where its values survive (tensorfile.converted)."""
    from nasc.runtime.checkpoint import NUMPY_RNG_TYPES, evaluated_weights

    try:
        state = read_tensor_file(path, allowed=NUMPY_RNG_TYPES)
        trained = evaluated_weights(state)
        if isinstance(trained, dict) and getattr(model, "aux_head", None) is None:
            state = {k: v for k, v in trained.items() if not k.startswith("aux_head.")}  # training-only
        elif trained is not None:
            state = trained
        if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
            raise TensorFileError("holds no state_dict (a mapping of names to tensors)")
        ours = model.state_dict()
        state = {
            key: converted(key, value, ours[key]) if key in ours else value for key, value in state.items()
        }
    except TensorFileError as error:
        raise BuildError(f"cannot read weights {path}: {error}") from None
    try:
        model.load_state_dict(state)
    except RuntimeError as error:  # missing, unexpected or mis-shaped tensors
        raise BuildError(f"the weights in {path} are not this network's: {first_line(error, 1)}") from None
