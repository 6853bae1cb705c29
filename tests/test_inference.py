"""The inference build (`network.fuse()`, `create_model(..., fused=True)`): every batch norm folded
into its convolution, channels-last memory, the same function — for every preset of every
convention, with random batch-norm statistics so that a wrongly folded tensor cannot hide."""

from __future__ import annotations

import pytest
import torch

import nasc
from nasc.compiler.conventions import convention_of
from nasc.compiler.options import EmitOptions
from nasc.runtime.build import build_network

from .conftest import GENOTYPES
from .test_weights import randomized

CASES = [
    (path.stem, preset)
    for path in sorted(GENOTYPES.glob("*.cell"))
    for preset in convention_of(nasc.load(path)).presets
]


def relative_difference(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs().max() / a.abs().max()).item()


@pytest.mark.parametrize(("name", "preset"), CASES)
def test_the_inference_build_computes_the_same_function(name: str, preset: str) -> None:
    size = 32 if preset == "cifar" else 64  # every cell and adapter runs; the figures hold at any size
    built = build_network(nasc.load(GENOTYPES / f"{name}.cell"), EmitOptions(preset=preset), image_size=size)
    model = randomized(built.model)
    fused = model.fuse()
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())  # the original is untouched
    assert not fused.training and fused.aux_head is None
    images = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert relative_difference(model(images), fused(images)) < 1e-5  # float32
        model = model.double()  # folded in float64, the two agree to float64's precision
        assert relative_difference(model(images.double()), model.fuse()(images.double())) < 1e-10


def test_create_model_builds_the_inference_build_on_request() -> None:
    options = EmitOptions(preset="cifar", cells_per_stage=1, first_filters=8)
    module = build_network(nasc.load(GENOTYPES / "darts_v2.cell"), options).module
    fused = module.create_model(fused=True)
    assert fused.channels_last and not fused.training
    stem = fused.stem[0].weight
    assert stem.is_contiguous(memory_format=torch.channels_last) and fused.stem[0].bias is not None


@pytest.mark.parametrize("size", [67, 75])  # maps odd at every stage, and odd then even
def test_factorized_reductions_run_as_one_convolution_at_odd_sizes(size: int) -> None:
    options = EmitOptions(preset="mobile", cells_per_stage=1, penultimate_filters=264)
    model = randomized(build_network(nasc.load(GENOTYPES / "nasnet_a.cell"), options, image_size=size).model)
    fused = model.fuse()
    kinds = {type(module).__name__ for module in fused.modules()}
    assert {"ShiftedPairConv", "PointwiseConv"} <= kinds and "FactorizedReduction" not in kinds
    images = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert relative_difference(model(images), fused(images)) < 1e-5
