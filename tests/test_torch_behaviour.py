"""What users and trainers rely on in the built network: ScheduledDropPath, modes, gradients, the
timm-style interface, TF "SAME" padding, and agreement between the compiler's plan and the module."""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings

import nasc
from nasc.compiler.lower import lower, realize
from nasc.runtime.build import compile_module

from .strategies import genotypes
from .torch_helpers import nasnet_a


def small(preset: str = "cifar", **kwargs):
    # N = 1 and a quarter of the width: every code path of the preset, a fraction of the cost.
    module = nasnet_a()
    base = module.PRESETS[preset]
    return module.create_model(
        preset, cells_per_stage=1, penultimate_filters=base.penultimate_filters // 4, **kwargs
    )


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
    assert "h4 = self.drop_path(self.h4_left(h0)) + self.h4_right(h1)\n" in body
    assert "h5 = self.h5_left(h3) + self.drop_path(self.h5_right(h2))\n" in body


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
    module = nasnet_a()
    with pytest.raises(ValueError, match="unknown preset"):
        module.create_model("huge")
    with pytest.raises(ValueError, match="multiple of 24"):
        module.create_model("cifar", penultimate_filters=100)


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


def cell_context(index: int, cell) -> tuple[int, int, int | None, bool]:
    """(filters, x1 channels, x2 channels, reduce_x2) of a built cell, read off its modules."""
    filters, x1 = cell.squeeze_x1.conv.out_channels, cell.squeeze_x1.conv.in_channels
    adjust = cell.adjust_x2
    if hasattr(adjust, "conv_even"):
        return filters, x1, adjust.conv_even.in_channels, True
    if hasattr(adjust, "conv"):
        return filters, x1, adjust.conv.in_channels, False
    return filters, x1, (None if index == 0 else filters), False


def built_adapters(cell) -> set[str]:
    """The adapters a built cell really has, named as the compiler's plan names them."""
    found = set()
    for name, child in cell.named_children():
        if getattr(child, "project", None) is not None:
            found.add(name)
        if name.startswith("out_") and not isinstance(child, torch.nn.Identity):
            found.add(name)
    return found


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(genotypes(with_comments=False))
def test_random_genotypes_build_run_and_have_exactly_the_planned_adapters(genotype) -> None:
    module = compile_module(genotype)
    graphs = lower(genotype)
    for preset in ("cifar", "mobile"):
        base = module.PRESETS[preset]
        unit = base.penultimate_filters // base.filters
        model = module.create_model(
            preset, cells_per_stage=1, penultimate_filters=unit * 4, image_size=64
        ).eval()
        with torch.no_grad():
            assert model(torch.randn(1, 3, 64, 64)).shape == (1, base.num_classes)
        for index, cell in enumerate(model.cells):
            graph = graphs["normal" if cell.stride == 1 else "reduction"]
            filters, x1, x2, reduce_x2 = cell_context(index, cell)
            realized = realize(graph, filters, x1, x2, reduce_x2)
            assert cell.out_channels == realized.out_channels
            planned = {m.attr for m in realized.modules if m.adapters or m.what == "factorized_reduction"}
            assert planned == built_adapters(cell)


def test_realized_plan_names_the_adapters_the_module_has() -> None:
    genotype = nasc.load("genotypes/nasnet_a.cell")
    graphs = lower(genotype)
    model = nasnet_a().create_model("cifar", cells_per_stage=2, penultimate_filters=192)
    first = model.cells[0]  # the first normal cell after the CIFAR stem: no x2, h1 is the raw stem output
    stem_channels = first.squeeze_x1.conv.in_channels
    filters = first.squeeze_x1.conv.out_channels
    realized = realize(graphs["normal"], filters, stem_channels, None, False)
    by_attr = {m.attr: m for m in realized.modules}
    assert by_attr["out_h1"].what == "factorized_reduction"
    assert type(first.out_h1).__name__ == "ConvBN"  # stride-1 factorized reduction is 1x1 conv + BN
    assert by_attr["h4_right"].adapters == ("relu_conv_bn 1x1",) and first.h4_right.project is not None
    assert by_attr["h5_left"].adapters == ("conv_bn 1x1",) and first.h5_left.project is not None
    assert by_attr["h6_right"].adapters == () and first.h6_right.project is None
    second = model.cells[1]  # x2 is the stem output: same size, other width → a 1x1 adapter, h1 is F wide
    stem_out = second.adjust_x2.conv.in_channels
    realized = realize(graphs["normal"], filters, second.squeeze_x1.conv.in_channels, stem_out, False)
    by_attr = {m.attr: m for m in realized.modules}
    assert by_attr["adjust_x2"].what == "relu_conv_bn" and type(second.adjust_x2).__name__ == "ReLUConvBN"
    assert "out_h1" not in by_attr and isinstance(second.out_h1, torch.nn.Identity)
