"""What users and trainers rely on in the built network: ScheduledDropPath, modes, gradients, the
timm-style interface, TF "SAME" padding, and agreement between the compiler's plan and the module."""

from __future__ import annotations

import inspect

import pytest
import torch
from hypothesis import HealthCheck, given, settings

import nasc
from nasc.compiler.lower import Adapter, lower
from nasc.compiler.options import EmitOptions
from nasc.compiler.skeleton import instances, nasnet_skeleton, resolve_preset
from nasc.runtime.build import compile_module

from .strategies import genotypes
from .torch_helpers import nasnet_a, small_nasnet_a


def small(preset: str = "cifar", **kwargs):
    # N = 1 and a quarter of the width: every code path of the preset, a fraction of the cost.
    return small_nasnet_a(preset).create_model(**kwargs)


# -- ScheduledDropPath ------------------------------------------------------------------------------


@pytest.mark.parametrize(("preset", "total_cells"), [("cifar", 3 * 6 + 2), ("large", 3 * 6 + 4)])
def test_drop_path_keep_probabilities_follow_the_schedule(preset: str, total_cells: int) -> None:
    module = nasnet_a()
    model = module.create_model(preset)
    keep = module.PRESETS[preset].drop_path_keep_prob
    assert len(model.cells) == total_cells
    assert model.drop_path_keep_probs() == [1.0] * total_cells  # nothing dropped at step 0
    for fraction in (0.25, 0.5, 1.0, 1.7):
        model.set_drop_path_progress(fraction)
        expected = [1 - min(1.0, fraction) * (i + 1) / total_cells * (1 - keep) for i in range(total_cells)]
        assert model.drop_path_keep_probs() == pytest.approx(expected)
    assert model.drop_path_keep_probs()[-1] == pytest.approx(keep)  # the last cell reaches the preset's keep


def test_mobile_preset_has_no_drop_path_and_dense_dropout() -> None:
    model = nasnet_a().create_model("mobile")
    model.set_drop_path_progress(1.0)
    assert set(model.drop_path_keep_probs()) == {1.0}
    assert model.dropout.p == 0.5


def test_drop_path_mask_is_per_example_with_mean_keep() -> None:
    model = small()
    model.set_drop_path_progress(1.0)
    drop = model.cells[-1].drop_path
    drop.train()
    torch.manual_seed(0)
    x = torch.ones(20000, 1, 1, 1)
    out = drop(x)
    kept = out != 0
    assert torch.unique(out[kept]).tolist() == [pytest.approx(1 / drop.keep_prob)]
    assert kept.float().mean().item() == pytest.approx(drop.keep_prob, abs=0.01)
    assert out.mean().item() == pytest.approx(1.0, abs=0.02)  # unbiased


def test_eval_mode_is_deterministic_and_training_drops_paths() -> None:
    model = small(drop_path_keep_prob=0.5)
    model.set_drop_path_progress(1.0)
    x = torch.randn(4, 3, 32, 32)
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x), model(x))
        torch.manual_seed(1)
        model.train()
        a = model(x)
        torch.manual_seed(2)
        b = model(x)
    assert not torch.allclose(a, b)


def test_identity_branches_are_never_dropped() -> None:
    from .torch_helpers import nasnet_a_source

    body = nasnet_a_source()
    # normal cell: h4 = add(avg_pool_3x3(h0), identity(h1)); reduction cell: h5 = add(identity(h3), ...)
    # An identity at F channels is the state itself: no module, never dropped.
    assert "h4 = self.drop_path(self.h4_left(h0)) + h1\n" in body
    assert "h5 = h3 + self.drop_path(self.h5_right(h2))\n" in body
    # Where h1 is the raw stem output (no x2), the identity is a 1x1 adapter, still never dropped.
    assert "h4 = self.drop_path(self.h4_left(h0)) + self.h4_right(relu_x1)\n" in body
    cells = body.split("# -- cells")[1].split("# -- the networks")[0]
    assert "class NormalCell(Cell)" in cells and "nn.Identity()" not in cells  # no no-op modules


# -- training -----------------------------------------------------------------------------------------


def test_one_sgd_step_changes_every_parameter() -> None:
    torch.manual_seed(0)
    model = small(aux_head=True)
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    logits, aux_logits = model(torch.randn(4, 3, 32, 32))
    target = torch.randint(0, 10, (4,))
    loss = torch.nn.functional.cross_entropy(logits, target) + 0.4 * torch.nn.functional.cross_entropy(
        aux_logits, target
    )
    loss.backward()
    optimizer.step()
    unchanged = [name for name, p in model.named_parameters() if torch.equal(before[name], p.detach())]
    assert unchanged == []


def test_aux_logits_only_in_training_with_the_aux_head() -> None:
    model = small(aux_head=True)
    x = torch.randn(2, 3, 32, 32)
    model.train()
    logits, aux = model(x)
    assert logits.shape == aux.shape == (2, 10)
    model.eval()
    assert model(x).shape == (2, 10)
    assert small().train()(x).shape == (2, 10)


# -- the backbone interface ---------------------------------------------------------------------------


def test_timm_style_interface() -> None:
    model = small("mobile").eval()
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        features = model.forward_features(x)
        assert features.shape[1] == model.num_features == model.feature_info[-1]["num_chs"]
        pooled = model.forward_head(features, pre_logits=True)
        assert pooled.shape == (1, model.num_features)
        assert torch.allclose(model.forward_head(features), model(x))
    assert model.get_classifier() is model.classifier
    model.reset_classifier(5)
    assert model.get_classifier().out_features == 5
    assert model(x).shape == (1, 5)
    assert [f["reduction"] for f in model.feature_info] == [8, 8, 16, 32]


def test_image_too_small_for_the_aux_head_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="aux head"):
        nasnet_a().create_model("cifar", aux_head=True, image_size=8)


def test_unknown_preset_and_bad_scale_are_clear_errors() -> None:
    from nasc.compiler.options import EmitOptions
    from nasc.runtime.build import BuildError, build_network

    with pytest.raises(ValueError, match="unknown preset"):
        nasnet_a().create_model("huge")
    genotype = nasc.load("genotypes/nasnet_a.cell")
    with pytest.raises(BuildError, match="multiple of 24"):
        build_network(genotype, EmitOptions(penultimate_filters=100))


# -- TF "SAME" padding ----------------------------------------------------------------------------------


def test_strided_same_padding_puts_the_extra_pixel_after() -> None:
    module = nasnet_a()
    assert module.same_padding(8, 3, 2) == (0, 1)
    assert module.same_padding(7, 3, 2) == (1, 1)
    assert module.same_padding(8, 5, 2) == (1, 2)
    assert module.same_padding(8, 3, 1) == (1, 1)
    conv = module.SameConv2d(1, 1, (3, 3), stride=2)
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[0, 0, 0, 0] = 1.0  # picks the top-left pixel of each window
        x = torch.arange(64.0).reshape(1, 1, 8, 8)
        # TF: no padding before on an even input, so windows start at rows/cols 0, 2, 4, 6
        assert torch.equal(conv(x)[0, 0], x[0, 0, ::2, ::2])


def test_same_pooling_excludes_padding_and_never_pads_max_with_zero() -> None:
    module = nasnet_a()
    ones = torch.ones(1, 1, 8, 8)
    assert torch.equal(module.SamePool2d("avg", 3, 2)(ones), torch.ones(1, 1, 4, 4))
    assert torch.equal(module.SamePool2d("avg", 3, 1)(ones), ones)
    negative = -torch.ones(1, 1, 8, 8)
    assert torch.equal(module.SamePool2d("max", 3, 2)(negative), -torch.ones(1, 1, 4, 4))
    # a bottom-right window of an even input covers the last two rows and the padding only
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    assert module.SamePool2d("avg", 3, 2)(x)[0, 0, 1, 1].item() == pytest.approx((10 + 11 + 14 + 15) / 4)


def test_factorized_reduction_matches_the_reference_shift() -> None:
    module = nasnet_a()
    reduction = module.FactorizedReduction(1, 2, module.BatchNormConfig(1e-5, 0.1)).eval()
    with torch.no_grad():
        reduction.conv_even.weight.fill_(1.0)
        reduction.conv_odd.weight.fill_(1.0)
        for size in (6, 7):
            x = torch.arange(float(size * size)).reshape(1, 1, size, size)
            shifted = torch.nn.functional.pad(x, (0, 1, 0, 1))[:, :, 1:, 1:]  # TF: pad, then crop
            out = torch.cat([x[:, :, ::2, ::2], shifted[:, :, ::2, ::2]], dim=1)
            assert torch.allclose(reduction(x), reduction.bn(out))


# -- the compiler's plan and the built module agree --------------------------------------------------------


def built_adapters(cell) -> set[str]:
    """The adapters a built cell really has, named as the compiler's plan names them: identities
    and pools made 1x1 convolutions, and output members brought to the last block's shape."""
    found = set()
    for name, child in cell.named_children():
        adapter = type(child).__name__ in ("ConvBN", "PoolBranch") or name.startswith("out_")
        if adapter and name not in ("squeeze_x1", "adjust_x2"):
            found.add(name)
    return found


def x2_way(cell) -> Adapter:
    """How a built cell reads x2, named as lower.realize names it."""
    if not hasattr(cell, "adjust_x2"):
        takes_x2 = len(inspect.signature(cell.cell_forward).parameters) == 2
        return Adapter.X2_AS_IS if takes_x2 else Adapter.NO_X2
    return {"ConvBN": Adapter.RELU_CONV_BN, "FactorizedReduction": Adapter.RELU_FACTORIZED_REDUCTION}[
        type(cell.adjust_x2).__name__
    ]


def assert_cells_are_the_plan(genotype, module, preset_name: str, preset) -> None:
    model = module.create_model(preset_name)
    planned = instances(nasnet_skeleton(preset), lower(genotype))
    assert list(model.cell_names) == [instance.name for instance in planned]
    for instance, cell in zip(planned, model.cells, strict=True):
        assert cell.out_channels == instance.cell.out_channels
        assert cell.squeeze_x1.conv.in_channels == instance.x1_channels
        way = next(m.what for m in instance.cell.modules if m.attr == "adjust_x2")
        assert x2_way(cell) == way
        planned_adapters = {
            m.attr for m in instance.cell.modules if m.adapters or m.what == Adapter.FACTORIZED_REDUCTION
        }
        assert planned_adapters == built_adapters(cell)
        # No identity without an adapter has a module: its term is the state itself.
        plain = {m.attr for m in instance.cell.modules if m.what == "identity" and not m.adapters}
        assert not plain & {name for name, _ in cell.named_children()}


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(genotypes(with_comments=False))
def test_random_genotypes_build_run_and_have_exactly_the_planned_adapters(genotype) -> None:
    from nasc.compiler.presets import PRESETS

    for preset in ("cifar", "mobile"):
        options = EmitOptions(preset=preset, cells_per_stage=1, first_filters=PRESETS[preset].filters // 4)
        name, rescaled = resolve_preset(genotype, options)
        module = compile_module(genotype, options)
        model = module.create_model(image_size=64).eval()
        with torch.no_grad():
            assert model(torch.randn(1, 3, 64, 64)).shape == (1, rescaled.num_classes)
        assert_cells_are_the_plan(genotype, module, name, rescaled)


def test_realized_plan_names_the_adapters_the_module_has() -> None:
    genotype = nasc.load("genotypes/nasnet_a.cell")
    options = EmitOptions(preset="cifar", cells_per_stage=2, penultimate_filters=192)
    name, preset = resolve_preset(genotype, options)
    module = compile_module(genotype, options)
    assert_cells_are_the_plan(genotype, module, name, preset)
    model = module.create_model()
    first = model.cell_0  # the first normal cell after the CIFAR stem: no x2, h1 is the raw stem output
    assert type(first).__name__ == "NormalCellWithoutX2" and not hasattr(first, "adjust_x2")
    assert type(first.out_h1).__name__ == "ConvBN"  # stride-1 factorized reduction is 1x1 conv + BN
    assert type(first.h4_right).__name__ == "ConvBN"  # identity(h1) at other than F: relu_h1 → 1x1 → BN
    assert type(first.h5_left).__name__ == "PoolBranch"  # avg_pool(h1), then 1x1 conv → BN
    assert not hasattr(first, "h6_right")  # identity(h0): h0 is F wide, no module
    second = model.cell_1  # x2 is the stem output: same size, other width → a 1x1 adapter, h1 is F wide
    assert type(second.adjust_x2).__name__ == "ConvBN"  # after the network's relu(x2)
    assert not hasattr(second, "out_h1") and not hasattr(second, "h4_right")
    after_reduction = model.cell_2  # x2 is twice x1's size
    assert type(after_reduction.adjust_x2).__name__ == "FactorizedReduction"
