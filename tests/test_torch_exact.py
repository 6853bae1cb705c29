"""Compiled NASNet-A is the reference network: parameters to the unit, mult-adds, stage shapes, and
the same cells as the hand-written peers (pretrainedmodels nasnetamobile, timm nasnetalarge)."""

from __future__ import annotations

import re

import pytest
import torch

from nasc.compiler.presets import PRESETS
from nasc.runtime.stats import measure

from .torch_helpers import nasnet_a, parameters

REFERENCE_PARAMETERS = {  # docs/reference.md: (no aux head, with aux head)
    "cifar": (3_346_538, 4_978_036),
    "mobile": (5_289_978, 7_701_218),
    "large": (88_753_150, 93_320_934),
}


@pytest.mark.parametrize("preset", sorted(REFERENCE_PARAMETERS))
def test_parameter_counts_match_the_reference(preset: str) -> None:
    module = nasnet_a()
    plain, with_aux = REFERENCE_PARAMETERS[preset]
    assert parameters(module.create_model(preset)) == plain
    assert parameters(module.create_model(preset, aux_head=True)) == with_aux


def test_bn_running_statistics_give_the_papers_rounded_figures() -> None:
    module = nasnet_a()
    for preset, expected in (("mobile", 5_326_716), ("large", 88_949_818)):
        model = module.create_model(preset)
        running = sum(b.numel() for name, b in model.named_buffers() if "running" in name)
        assert parameters(model) + running == expected


@pytest.mark.parametrize(("preset", "expected"), [("mobile", 563_638_816), ("large", 23_783_414_658)])
def test_mult_adds_match_the_reference(preset: str, expected: int) -> None:
    module = nasnet_a()
    figures = measure(module.create_model(preset), module.PRESETS[preset].image_size)
    assert figures.mult_adds == expected


def test_cifar_mult_adds_are_about_544_million() -> None:
    figures = measure(nasnet_a().create_model("cifar"), 32)
    assert 540e6 < figures.mult_adds < 548e6


STAGES = {  # docs/reference.md stage output shapes at batch 1 (C, H, W)
    "mobile": [(88, 28), (264, 28), (352, 14), (528, 14), (704, 7), (1056, 7)],
    "large": [(336, 42), (1008, 42), (1344, 21), (2016, 21), (2688, 11), (4032, 11)],
}


@pytest.mark.parametrize("preset", sorted(STAGES))
def test_stage_output_shapes(preset: str) -> None:
    module = nasnet_a()
    model = module.create_model(preset)
    figures = measure(model, module.PRESETS[preset].image_size)
    shapes = [cell.output_shape[1:] for cell in figures.cells]
    n = PRESETS[preset].cells_per_stage
    # stem output, then stage 1, reduction 0, stage 2, reduction 1, stage 3
    ends = [1, 1 + n, 2 + n, 2 + 2 * n, 3 + 2 * n, 3 + 3 * n]
    assert [(shapes[i][0], shapes[i][1]) for i in ends] == STAGES[preset]
    assert [shapes[i][1] == shapes[i][2] for i in ends] == [True] * 6
    assert [f["num_chs"] for f in model.feature_info] == [STAGES[preset][i][0] for i in (0, 1, 3, 5)]


# -- the hand-written peers -------------------------------------------------------------------------

PEER_CELL = re.compile(r"^(cell_stem_\d|cell_\d+|reduction_cell_\d)$")


def peer_cell_shapes(peer: torch.nn.Module, image_size: int) -> list[tuple[int, ...]]:
    shapes: list[tuple[int, ...]] = []
    handles = [
        m.register_forward_hook(lambda _m, _i, out: shapes.append(tuple(out.shape)))
        for name, m in peer.named_children()
        if PEER_CELL.match(name)
    ]
    with torch.no_grad():
        peer.eval()(torch.zeros(1, 3, image_size, image_size))
    for handle in handles:
        handle.remove()
    return shapes


def test_same_network_as_pretrainedmodels_nasnetamobile() -> None:
    pretrainedmodels = pytest.importorskip("pretrainedmodels")
    peer = pretrainedmodels.nasnetamobile(num_classes=1000, pretrained=None)
    module = nasnet_a()
    ours = module.create_model("mobile")
    assert parameters(ours) == parameters(peer) == 5_289_978
    ours_shapes = [c.output_shape for c in measure(ours, 224).cells]
    assert ours_shapes == peer_cell_shapes(peer, 224)


def test_same_network_as_timm_nasnetalarge() -> None:
    timm = pytest.importorskip("timm")
    peer = timm.create_model("nasnetalarge", pretrained=False, num_classes=1000)
    module = nasnet_a()
    ours = module.create_model("large")
    assert parameters(ours) == parameters(peer) == 88_753_150
    ours_shapes = [c.output_shape for c in measure(ours, 331).cells]
    assert ours_shapes == peer_cell_shapes(peer, 331)
    # Per cell, the same parameters as timm's hand-written classes, in the same order.
    peer_cells = [(name, m) for name, m in peer.named_children() if PEER_CELL.match(name)]
    assert list(ours.cell_names) == [name for name, _ in peer_cells]  # the same names, in order
    assert [parameters(c) for c in ours.cells] == [parameters(c) for _, c in peer_cells]


@pytest.mark.parametrize(
    ("preset", "scale", "image_size"),
    [
        ("cifar", None, None),
        ("mobile", None, None),
        ("large", None, None),
        ("cifar", (2, 240), 40),
        ("mobile", (1, 264), 96),
    ],
)
def test_static_counts_equal_the_built_modules(preset: str, scale, image_size) -> None:
    """`nasc stats` counts from the IR without building anything; the module's hooks must agree,
    cell by cell, with and without the aux head."""
    import nasc
    from nasc.compiler.compilation import compile_genotype
    from nasc.compiler.options import EmitOptions
    from nasc.runtime.build import build_network

    from .conftest import GENOTYPES

    genotype = nasc.load(GENOTYPES / "nasnet_a.cell")
    cells, filters = scale or (None, None)
    options = EmitOptions(preset=preset, cells_per_stage=cells, penultimate_filters=filters)
    counted = compile_genotype(genotype, options).count(image_size)
    built = build_network(genotype, options, image_size=image_size)
    model, size = built.model, built.image_size
    aux_model = build_network(genotype, options, image_size=image_size, aux_head=True).model
    measured = measure(model, size, aux_model)
    assert counted.parameters == measured.parameters
    assert counted.parameters_with_aux == measured.parameters_with_aux
    assert counted.mult_adds == measured.mult_adds
    assert counted.output_shape == measured.output_shape
    assert [(c.name, c.kind, c.output_shape, c.parameters, c.mult_adds) for c in counted.cells] == [
        (c.name, c.kind, c.output_shape, c.parameters, c.mult_adds) for c in measured.cells
    ]
