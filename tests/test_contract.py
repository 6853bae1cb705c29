"""Every compiled module, whatever its convention, keeps the one contract (runtime/contract.py) and
timm's model-test rules: forward_features unpooled, reset_classifier(0) pooled to num_features,
every parameter gets a gradient, feature channels as feature_info says."""

from __future__ import annotations

import pytest
import torch

import nasc
from nasc.compiler.options import EmitOptions
from nasc.runtime.build import build_network
from nasc.runtime.contract import CompiledModule, CompiledNetwork

from .conftest import GENOTYPES

# Small instances of every zoo file: one cell per stage, narrow, at a size each stem accepts.
SMALL = {
    "nasnet_a": (EmitOptions(preset="cifar", cells_per_stage=1, penultimate_filters=96), 32),
    "pnasnet_5": (EmitOptions(preset="mobile", cells_per_stage=1, penultimate_filters=160), 64),
    "amoebanet_a": (EmitOptions(preset="mobile", cells_per_stage=1, penultimate_filters=128), 64),
    "darts_v1": (EmitOptions(preset="cifar", cells_per_stage=1, penultimate_filters=64), 32),
    "darts_v2": (EmitOptions(preset="cifar", cells_per_stage=1, penultimate_filters=64), 32),
}


def test_every_zoo_file_is_covered() -> None:
    assert {path.stem for path in GENOTYPES.glob("*.cell")} == set(SMALL)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_every_compiled_module_keeps_the_contract(name: str) -> None:
    options, size = SMALL[name]
    genotype = nasc.load(GENOTYPES / f"{name}.cell")
    module, model, _, _ = build_network(genotype, options, image_size=size)
    assert isinstance(module, CompiledModule) and isinstance(model, CompiledNetwork)
    assert module.CONVENTION == genotype.convention and module.GENOTYPE == genotype.name
    images = torch.randn(2, 3, size, size)
    model.eval()
    features = model.forward_features(images)
    assert features.ndim == 4 and features.shape[1] == model.num_features
    assert model.feature_info[-1]["num_chs"] == model.num_features
    assert model(images).shape == (2, model.num_classes)
    model.reset_classifier(0)
    assert model(images).shape == (2, model.num_features)
    model.reset_classifier(7)
    model.train()
    out = model(images)
    (out[0] if isinstance(out, tuple) else out).sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    with pytest.raises(module.AuxHeadTooSmall):
        module.create_model(module.DEFAULT_PRESET, image_size=8, aux_head=True)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_the_first_stage_width_names_the_same_network_as_the_penultimate_width(name: str) -> None:
    from nasc.compiler.conventions import convention_of

    genotype = nasc.load(GENOTYPES / f"{name}.cell")
    convention = convention_of(genotype)
    unit = convention.penultimate_per_filter(genotype)
    by_first = convention.resolve_preset(genotype, EmitOptions(cells_per_stage=1, first_filters=8))
    by_last = convention.resolve_preset(
        genotype, EmitOptions(cells_per_stage=1, penultimate_filters=8 * unit)
    )
    assert by_first == by_last
    with pytest.raises(ValueError, match="not both"):
        convention.resolve_preset(genotype, EmitOptions(first_filters=8, penultimate_filters=8 * unit))
