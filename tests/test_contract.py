"""Every compiled module, whatever its convention, keeps the one contract (runtime/contract.py) and
timm's model-test rules: forward_features unpooled, reset_classifier(0) pooled to num_features,
every parameter gets a gradient, feature channels as feature_info says."""

from __future__ import annotations

import ast
import os
import subprocess
import sys

import pytest
import torch

import nasc
from nasc.compiler.conventions import convention_of
from nasc.compiler.emit import emit_torch
from nasc.compiler.options import EmitOptions
from nasc.runtime.build import build_network
from nasc.runtime.contract import CompiledModule, CompiledNetwork

from .conftest import GENOTYPES, ROOT

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
    module, model = build_network(genotype, options, image_size=size)[:2]
    assert isinstance(module, CompiledModule) and isinstance(model, CompiledNetwork)
    assert module.CONVENTION == genotype.convention and module.GENOTYPE == genotype.name
    # Every cell is a named attribute, listed in order; feature_info names attributes too.
    assert [getattr(model, name) for name in model.cell_names] == model.cells
    assert {cell.kind for cell in model.cells} == {"normal", "reduction"}
    assert all(hasattr(model, info["module"]) for info in model.feature_info)
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


@pytest.mark.parametrize("name", sorted(SMALL))
def test_every_network_forward_is_straight_line_code(name: str) -> None:
    """The network reads like timm's: one line per cell naming its inputs, no loop over a plan."""
    genotype = nasc.load(GENOTYPES / f"{name}.cell")
    tree = ast.parse(emit_torch(genotype))
    networks = [
        node
        for node in tree.body
        if isinstance(node, ast.ClassDef)
        and any(isinstance(s, ast.Assign) and s.targets[0].id == "cell_names" for s in node.body)
    ]
    assert len(networks) == len(convention_of(genotype).presets)
    for network in networks:
        methods = {m.name: m for m in network.body if isinstance(m, ast.FunctionDef)}
        forward = methods["_forward_cells"]
        loops = (ast.For, ast.While, ast.comprehension)
        assert not [n for n in ast.walk(forward) if isinstance(n, loops)]
        names = next(s for s in network.body if isinstance(s, ast.Assign) and s.targets[0].id == "cell_names")
        cell_names = [element.value for element in names.value.elts]
        calls = [n.func for n in ast.walk(forward) if isinstance(n, ast.Call)]
        called = [f.attr for f in calls if isinstance(f, ast.Attribute) and f.attr in cell_names]
        assert called == cell_names


@pytest.mark.parametrize("name", sorted(SMALL))
def test_backbone_interface_as_timm_tests_it(name: str) -> None:
    """forward_intermediates gives each stage's map as feature_info describes it; reset_classifier(0,
    "") leaves forward unpooled; drop_rate and global_pool are what they say."""
    options, size = SMALL[name]
    genotype = nasc.load(GENOTYPES / f"{name}.cell")
    module = build_network(genotype, options, image_size=size).module
    model = module.create_model(module.DEFAULT_PRESET, image_size=size, drop_rate=0.25, global_pool="max")
    model.eval()
    assert model.dropout.p == 0.25 and isinstance(model.global_pool, torch.nn.AdaptiveMaxPool2d)
    images = torch.randn(2, 3, size, size)
    with torch.no_grad():
        features, maps = model.forward_intermediates(images)
        assert torch.equal(features, model.forward_features(images))
        assert len(maps) == len(model.feature_info)
        for info, feature_map in zip(model.feature_info, maps, strict=True):
            assert feature_map.shape[1] == info["num_chs"]
            assert abs(feature_map.shape[-1] - size / info["reduction"]) <= 1  # a VALID stem rounds down
        last_two = model.forward_intermediates(images, indices=2, intermediates_only=True)
        assert [m.shape for m in last_two] == [m.shape for m in maps[-2:]]
        model.reset_classifier(0, "")
        assert model(images).shape == features.shape  # unpooled
    with pytest.raises(ValueError, match="unpooled"):
        model.reset_classifier(5)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_gradient_checkpointing_gives_the_same_gradients(name: str) -> None:
    options, size = SMALL[name]
    genotype = nasc.load(GENOTYPES / f"{name}.cell")
    model = build_network(genotype, options, image_size=size).model.eval()  # no dropout noise
    images = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0))

    def gradients() -> list[torch.Tensor]:
        model.zero_grad()
        model(images).square().sum().backward()
        return [p.grad.clone() for p in model.parameters()]

    plain = gradients()
    model.set_grad_checkpointing()
    assert all(cell.grad_checkpointing for cell in model.cells)
    checkpointed = gradients()
    assert all(torch.allclose(a, b, rtol=1e-5, atol=1e-7) for a, b in zip(plain, checkpointed, strict=True))


@pytest.mark.parametrize("name", sorted(SMALL))
def test_channels_last_computes_the_same_function_and_gradients(name: str) -> None:
    """set_channels_last (what `nasc train` does on a CPU): NCHW in, every activation channels-last,
    the same logits and gradients."""
    options, size = SMALL[name]
    genotype = nasc.load(GENOTYPES / f"{name}.cell")
    # float64: the layouts sum in other orders, and only rounding may differ
    model = build_network(genotype, options, image_size=size).model.eval().double()
    images = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0)).double()

    def run() -> tuple[torch.Tensor, list[torch.Tensor]]:
        model.zero_grad()
        logits = model(images)
        logits.square().sum().backward()
        return logits.detach(), [p.grad.clone() for p in model.parameters()]

    logits, gradients = run()
    model.set_channels_last()
    seen = []
    hook = model.cells[-1].register_forward_hook(lambda _m, _i, output: seen.append(output))
    cl_logits, cl_gradients = run()
    hook.remove()
    assert seen[0].is_contiguous(memory_format=torch.channels_last)
    assert torch.allclose(logits, cl_logits, rtol=1e-9, atol=1e-12)
    for a, b in zip(gradients, cl_gradients, strict=True):
        assert torch.allclose(a, b, rtol=1e-8, atol=1e-12)
    model.set_channels_last(False)
    assert all(p.is_contiguous() for p in model.parameters())


ODD_BATCH_TRAINING = """
import sys, torch
import nasc
from nasc.runtime.build import build_network
from tests.test_contract import SMALL
for name in sys.argv[1:]:
    options, size = SMALL[name]
    model = build_network(nasc.load(f"genotypes/{name}.cell"), options, image_size=size).model
    model.set_channels_last()
    for batch in (5, 7):
        model(torch.randn(batch, 3, size, size)).square().sum().backward()
    print(name, file=sys.stderr)
"""
# the two whose training aborted so (heap corruption, a segmentation fault) at these sizes
ODD_BATCH_NETWORKS = ["pnasnet_5", "amoebanet_a"]


def test_channels_last_training_on_two_threads_survives_an_odd_batch() -> None:
    """A last batch of odd size, in the layout `nasc train` uses on a CPU, with the two threads this
    machine has: the strided 1x1 convolutions must keep clear of the oneDNN weight gradient that
    corrupts the heap there (StridedPointwiseConv). A subprocess, since a corrupted heap aborts."""
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    command = [sys.executable, "-c", ODD_BATCH_TRAINING, *ODD_BATCH_NETWORKS]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stderr.split() == ODD_BATCH_NETWORKS


def test_one_input_channel_trains_on_digits() -> None:
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = torch.tensor(digits.images[:16], dtype=torch.float32).unsqueeze(1) / 16.0
    images = torch.nn.functional.interpolate(images, size=32, mode="bilinear")
    labels = torch.tensor(digits.target[:16])
    options, _ = SMALL["darts_v2"]
    module = build_network(nasc.load(GENOTYPES / "darts_v2.cell"), options).module
    torch.manual_seed(0)  # three steps of SGD lower the loss from most, not all, initializations
    model = module.create_model(module.DEFAULT_PRESET, in_chans=1, num_classes=10)
    assert model.stem[0].in_channels == 1
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    losses = []
    for _ in range(3):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(images), labels)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


@pytest.mark.parametrize("name", sorted(SMALL))
def test_each_preset_has_a_pretrained_cfg_naming_real_parameters(name: str) -> None:
    genotype = nasc.load(GENOTYPES / f"{name}.cell")
    convention = convention_of(genotype)
    module = build_network(genotype, EmitOptions(), image_size=None).module
    metadata = {entry.key: entry.value for entry in genotype.metadata}
    for preset_name, preset in module.PRESETS.items():
        cfg = preset.pretrained_cfg
        assert cfg["input_size"] == (3, preset.image_size, preset.image_size)
        data = convention.data[preset_name]
        assert (cfg["mean"], cfg["std"], cfg["crop_pct"]) == (data.mean, data.std, data.crop_pct)
        assert cfg["top1"] == metadata.get(f"top1_{preset_name}")
        assert cfg["checkpoint"] == metadata.get(f"checkpoint_{preset_name}", "")
        parameters = dict(preset.network.__init__.__kwdefaults__)
        assert cfg["num_classes"] == parameters["num_classes"]
    # first_conv and classifier name real parameters (built small: N = 1)
    options, size = SMALL[name]
    small = build_network(genotype, options, image_size=size)
    cfg = small.module.PRESETS[small.preset].pretrained_cfg
    names = dict(small.model.named_parameters())
    assert f"{cfg['first_conv']}.weight" in names and f"{cfg['classifier']}.weight" in names
    assert cfg["top1"] is None and cfg["checkpoint"] == ""  # a rescaled network was never published


@pytest.mark.parametrize(("name", "peer"), [("nasnet_a", "nasnetalarge"), ("pnasnet_5", "pnasnet5large")])
def test_timm_resolves_a_large_networks_transform_as_for_its_own_port(name: str, peer: str) -> None:
    """timm's own helper reads the instance's pretrained_cfg: 331 px, mean and std 0.5, crop 0.911,
    bicubic, as for timm's port (without it, timm silently falls back to ImageNet's 224 px)."""
    timm = pytest.importorskip("timm")
    from timm.data import resolve_data_config

    module = build_network(nasc.load(GENOTYPES / f"{name}.cell"), EmitOptions(), image_size=None).module
    theirs = resolve_data_config(pretrained_cfg=timm.models.get_pretrained_cfg(peer).to_dict())
    assert resolve_data_config({}, model=module.create_model("large")) == theirs
    gray = module.create_model("large", in_chans=1, image_size=299, num_classes=10)
    assert resolve_data_config({}, model=gray)["input_size"] == (1, 299, 299)
    assert gray.pretrained_cfg["num_classes"] == 10 and gray.default_cfg is gray.pretrained_cfg


@pytest.mark.parametrize(
    ("name", "mode"),
    [
        ("nasnet_a", "train"),
        ("nasnet_a", "eval"),
        ("nasnet_a", "fuse"),
        ("darts_v2", "train"),
        ("darts_v2", "fuse"),
    ],
)
def test_torch_compile_sees_one_graph_without_breaks(name: str, mode: str) -> None:
    """Straight-line forwards and compile-time adapters leave torch.compile(fullgraph=True) nothing to
    break on, in training (drop path, aux head), in eval, and in the inference build (`fuse()`, whose
    compiled form docs/deployment.md recommends)."""
    options, size = SMALL[name]
    model = build_network(
        nasc.load(GENOTYPES / f"{name}.cell"), options, image_size=size, aux_head=True
    ).model
    model.set_drop_path_progress(0.5)
    model = model.eval().fuse() if mode == "fuse" else getattr(model, mode)()
    explanation = torch._dynamo.explain(model)(torch.randn(2, 3, size, size))
    torch._dynamo.reset()
    assert (explanation.graph_count, explanation.graph_break_count) == (1, 0), explanation.break_reasons
