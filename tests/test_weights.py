"""`nasc weights`: the reference's checkpoint makes the compiled network compute the reference's
function. Peers are built with random weights and random batch-norm statistics, their state_dict
saved, imported, and the logits compared in float64 (eval mode, batch 2)."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

import nasc
from nasc.cli import main
from nasc.compiler.options import EmitOptions
from nasc.runtime.build import build_network

from .conftest import GENOTYPES
from .darts_reference import NetworkCIFAR, NetworkImageNet, reference_genotypes

TOLERANCE = 1e-6  # relative to the largest logit


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


def randomized(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Random weights (the constructor's) and random batch-norm statistics and affine terms, so that
    a crossed or mis-scaled tensor cannot hide behind BN's defaults."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                shape = module.running_mean.shape
                module.running_mean.copy_(torch.rand(shape, generator=generator) - 0.5)
                module.running_var.copy_(torch.rand(shape, generator=generator) + 0.5)
                module.weight.copy_(torch.rand(shape, generator=generator) + 0.5)
                module.bias.copy_(torch.rand(shape, generator=generator) * 0.4 - 0.2)
    return model.eval()


def imported(tmp_path: Path, cell: str, peer, source: str, preset: str, *extra: str):
    """Save the peer's state_dict, import it with `nasc weights`, build the compiled network with it."""
    checkpoint = tmp_path / "reference.pth"
    torch.save(peer.state_dict(), checkpoint)
    out = tmp_path / "imported.pt"
    code, stdout, stderr = run(
        "weights", GENOTYPES / cell, checkpoint, "--from", source, "--preset", preset, "-o", out, *extra
    )
    assert code == 0, stderr
    assert f"wrote {out}" in stdout
    genotype = nasc.load(GENOTYPES / cell)
    aux_head = "--aux-head" in extra
    built = build_network(genotype, EmitOptions(preset=preset), aux_head=aux_head, weights=str(out))
    return built.model.eval(), stdout


def relative_difference(peer, ours, size: int, seed: int = 1) -> float:
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    with torch.no_grad():
        expected, got = peer.double()(x), ours.double()(x)
    return ((expected - got).abs().max() / expected.abs().max()).item()


def test_pretrainedmodels_nasnetamobile_gives_nasnet_a_mobile_its_function(tmp_path: Path) -> None:
    pretrainedmodels = pytest.importorskip("pretrainedmodels")
    torch.manual_seed(0)
    peer = randomized(pretrainedmodels.nasnetamobile(num_classes=1000, pretrained=None))
    ours, stdout = imported(tmp_path, "nasnet_a.cell", peer, "pretrainedmodels", "mobile")
    assert "1318 tensors" in stdout
    assert relative_difference(peer, ours, 224) < TOLERANCE  # pretrainedmodels' mobile runs at 224 only


@pytest.mark.slow
def test_pretrainedmodels_nasnetalarge_gives_nasnet_a_large_its_function(tmp_path: Path) -> None:
    pretrainedmodels = pytest.importorskip("pretrainedmodels")
    torch.manual_seed(0)
    peer = randomized(pretrainedmodels.nasnetalarge(num_classes=1000, pretrained=None))
    ours, _ = imported(tmp_path, "nasnet_a.cell", peer, "pretrainedmodels", "large")
    # its head's fixed 11x11 average pool is the global average at 331 px only; made global, the
    # network runs at 139 px, where its stages see odd and even maps as at 331, at a fifth of the cost
    peer.avg_pool = torch.nn.AdaptiveAvgPool2d(1)
    assert relative_difference(peer, ours, 139) < TOLERANCE


@pytest.mark.slow
def test_timm_pnasnet5large_gives_pnasnet_5_large_its_function(tmp_path: Path) -> None:
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    peer = randomized(timm.create_model("pnasnet5large", pretrained=False))
    ours, _ = imported(tmp_path, "pnasnet_5.cell", peer, "timm", "large")
    # its stem and four strided stages see maps of 69, 35, 18, 9 and 5: the odd and even sizes they
    # see at 331, the size the published weights run at (165, 83, 42, 21, 11), at a fifth of the cost
    assert relative_difference(peer, ours, 139) < TOLERANCE
    assert relative_difference(peer, ours, 160, seed=2) < TOLERANCE  # another size, other odd maps


@pytest.mark.slow
def test_timm_nasnetalarge_differs_only_in_its_strided_average_pools(tmp_path: Path) -> None:
    """timm's strided "same" average pools count the zero padding (its AvgPool2dSame pads, then
    averages); TF-slim, pretrainedmodels and nasc do not. With those four pools made TF's, timm's
    network is nasc's to the last bit of float64; as timm ships it, only the borders differ."""
    timm = pytest.importorskip("timm")
    from timm.layers.pool2d_same import AvgPool2dSame

    torch.manual_seed(0)
    peer = randomized(timm.create_model("nasnetalarge", pretrained=False))
    ours, _ = imported(tmp_path, "nasnet_a.cell", peer, "timm", "large")
    size = 128  # every cell still sees odd and even maps
    assert relative_difference(peer, ours, size) > TOLERANCE  # timm's pools, as shipped
    tf_pool = type(ours.reduction_cell_0.h4_left)  # nasc's SAME pool: averages real pixels only
    replaced = 0
    for module in list(peer.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, AvgPool2dSame):
                setattr(module, name, tf_pool("avg", child.kernel_size[0], child.stride[0]))
                replaced += 1
    assert replaced == 4  # comb_iter_2_left of cell_stem_0, cell_stem_1 and both reduction cells
    assert relative_difference(peer, ours, size) < TOLERANCE


@pytest.mark.parametrize(("name", "preset"), [("darts_v2", "cifar"), ("darts_v1", "imagenet")])
def test_darts_checkpoints_give_the_darts_networks_their_function(
    tmp_path: Path, name: str, preset: str
) -> None:
    genotype = reference_genotypes()[name.upper()]
    torch.manual_seed(0)
    if preset == "cifar":
        peer = NetworkCIFAR(36, 10, 20, auxiliary=True, genotype=genotype)
        extra, size = ("--aux-head",), 32
    else:
        peer = NetworkImageNet(48, 1000, 14, genotype=genotype)
        extra, size = (), 224
    peer = randomized(peer)
    ours, stdout = imported(tmp_path, f"{name}.cell", peer, "darts", preset, *extra)
    assert len(peer.state_dict()) == int(stdout.split(" tensors")[0].split()[-1])  # every tensor placed
    assert relative_difference(peer, ours, size) < TOLERANCE
    if preset == "cifar":
        assert "with the aux head" in stdout
        assert relative_difference(peer, ours, 48, seed=2) < TOLERANCE  # another size


def test_aux_head_tensors_are_left_out_unless_asked_for(tmp_path: Path) -> None:
    peer = randomized(NetworkCIFAR(8, 10, 5, auxiliary=True, genotype=reference_genotypes()["DARTS_V2"]))
    checkpoint = tmp_path / "wrapped.pth"
    # wrapped as training scripts save it, with DataParallel's prefix
    torch.save(
        {"state_dict": {f"module.{k}": v for k, v in peer.state_dict().items()}, "epoch": 3}, checkpoint
    )
    out = tmp_path / "w.pt"
    code, _, stderr = run(
        "weights", GENOTYPES / "darts_v2.cell", checkpoint, "--from", "darts", "--preset", "cifar", "-o", out
    )
    # the cifar preset has 20 cells; this checkpoint has 5: a clear refusal, nothing written
    assert code == 1 and "5 cells" in stderr and "20" in stderr and not out.exists()
    # at its own scale the wrapped, prefixed checkpoint imports; its aux head only when asked for
    darts_v2, scale = GENOTYPES / "darts_v2.cell", ("--preset", "cifar", "--scale", "1@128")
    code, stdout, stderr = run("weights", darts_v2, checkpoint, "--from", "darts", *scale, "-o", out)
    aux_tensors = sum(key.startswith("auxiliary_head.") for key in peer.state_dict())
    assert code == 0, stderr
    assert f"left out: {aux_tensors} aux head tensor(s)" in stdout
    assert not any(key.startswith("aux_head.") for key in torch.load(out, weights_only=True))
    with_aux = tmp_path / "with_aux.pt"
    code, stdout, stderr = run(
        "weights",
        GENOTYPES / "darts_v2.cell",
        checkpoint,
        "--from",
        "darts",
        *scale,
        "--aux-head",
        "-o",
        with_aux,
    )
    assert code == 0 and "with the aux head" in stdout and "left out" not in stdout, stderr
    options = EmitOptions(preset="cifar", cells_per_stage=1, penultimate_filters=128)
    model = build_network(nasc.load(darts_v2), options, aux_head=True, weights=str(with_aux)).model
    assert torch.equal(model.aux_head.classifier.weight, peer.auxiliary_head.classifier.weight)


@pytest.mark.parametrize("case", ["truncated", "another network", "code", "wrong --from", "not a state_dict"])
def test_bad_checkpoints_are_one_line_errors_and_nothing_is_written(tmp_path: Path, case: str) -> None:
    checkpoint = tmp_path / "bad.pth"
    cell, source = "nasnet_a.cell", "pretrainedmodels"
    good = randomized(NetworkCIFAR(8, 10, 20, auxiliary=False, genotype=reference_genotypes()["DARTS_V2"]))
    if case == "truncated":
        torch.save(good.state_dict(), checkpoint)
        checkpoint.write_bytes(checkpoint.read_bytes()[:5000])
        message = "not a file of tensors nasc can read"
    elif case == "another network":
        torch.save(good.state_dict(), checkpoint)  # a DARTS network, offered as NASNet-A
        message = "cells"
    elif case == "code":
        checkpoint.write_bytes(pickle.dumps(Exploit()))
        message = "refused: it holds Python objects"
    elif case == "wrong --from":
        torch.save(good.state_dict(), checkpoint)
        source = "darts"
        message = "--from darts reads DARTS"
    else:
        torch.save([1, 2, 3], checkpoint)
        message = "holds no state_dict"
    out = tmp_path / "w.pt"
    code, _, stderr = run(
        "weights", GENOTYPES / cell, checkpoint, "--from", source, "--preset", "mobile", "-o", out
    )
    assert code == 1, stderr
    assert message in stderr and len(stderr.strip().splitlines()) == 1 and "Traceback" not in stderr
    assert not out.exists() and not (tmp_path / "PWNED").exists()


class Exploit:
    """A pickle that would run code when unpickled without `weights_only`."""

    def __reduce__(self):
        return (Path.touch, (Path("PWNED").absolute(),))


def test_a_shape_mismatch_names_the_tensor_on_both_sides(tmp_path: Path) -> None:
    peer = randomized(NetworkCIFAR(36, 10, 20, auxiliary=False, genotype=reference_genotypes()["DARTS_V2"]))
    state = peer.state_dict()
    state["cells.3._ops.0.op.1.weight"] = torch.zeros(7, 1, 3, 3)
    checkpoint = tmp_path / "odd.pth"
    torch.save(state, checkpoint)
    code, _, stderr = run(
        "weights",
        GENOTYPES / "darts_v2.cell",
        checkpoint,
        "--from",
        "darts",
        "--preset",
        "cifar",
        "-o",
        tmp_path / "w.pt",
    )
    assert code == 1
    assert "cell_3.h2_left.depthwise_1.weight is (36, 1, 3, 3) here" in stderr
    assert "cells.3._ops.0.op.1.weight is (7, 1, 3, 3) in the checkpoint" in stderr


def test_the_imported_weights_load_in_the_standalone_module_and_export_to_onnx(tmp_path: Path) -> None:
    """A rescaled network's checkpoint (a proxy: 5 cells, C = 8) goes through --scale, loads in the
    module `nasc compile --scale` writes, and exports to ONNX with its weights."""
    peer = randomized(NetworkCIFAR(8, 10, 5, auxiliary=False, genotype=reference_genotypes()["DARTS_V2"]))
    checkpoint, weights = tmp_path / "proxy.pth", tmp_path / "proxy.pt"
    torch.save(peer.state_dict(), checkpoint)
    darts_v2 = GENOTYPES / "darts_v2.cell"
    code, stdout, stderr = run(
        "weights",
        darts_v2,
        checkpoint,
        "--from",
        "darts",
        "--preset",
        "cifar",
        "--scale",
        "1@128",
        "-o",
        weights,
    )
    assert code == 0, stderr
    assert "create_model('cifar-1@128'" in stdout and "--scale 1@128" in stdout
    module_path = tmp_path / "darts_v2.py"
    assert run("compile", darts_v2, "--scale", "1@128", "-o", module_path)[0] == 0
    from nasc.runtime.build import import_source

    module = import_source(module_path.read_text())
    standalone = module.create_model("cifar-1@128", weights=str(weights)).eval()
    assert relative_difference(peer, standalone, 32) < TOLERANCE
    onnx_path = tmp_path / "darts_v2.onnx"
    code, _, stderr = run(
        "export", darts_v2, "--onnx", "--scale", "1@128", "--weights", weights, "-o", onnx_path
    )
    assert code == 0, stderr
    from nasc.runtime.onnx_export import read_metadata

    assert len(read_metadata(onnx_path)["weights_sha256"]) == 64
    elsewhere = tmp_path / "x.onnx"
    code, _, stderr = run("export", darts_v2, "--onnx", "--weights", weights, "-o", elsewhere)
    assert code == 1 and "not this network's" in stderr and not elsewhere.exists()


def test_a_safetensors_checkpoint_as_timm_publishes_them(tmp_path: Path) -> None:
    safetensors = pytest.importorskip("safetensors.torch")
    peer = randomized(NetworkCIFAR(36, 10, 20, auxiliary=False, genotype=reference_genotypes()["DARTS_V2"]))
    checkpoint = tmp_path / "model.safetensors"
    safetensors.save_file({k: v.contiguous() for k, v in peer.state_dict().items()}, str(checkpoint))
    out = tmp_path / "w.pt"
    code, _, stderr = run(
        "weights", GENOTYPES / "darts_v2.cell", checkpoint, "--from", "darts", "--preset", "cifar", "-o", out
    )
    assert code == 0, stderr
    model = build_network(
        nasc.load(GENOTYPES / "darts_v2.cell"), EmitOptions(preset="cifar"), weights=str(out)
    )
    assert relative_difference(peer, model.model.eval(), 32) < TOLERANCE
    checkpoint.write_bytes(checkpoint.read_bytes()[:100])  # damaged: one line, nothing written
    code, _, stderr = run(
        "weights", GENOTYPES / "darts_v2.cell", checkpoint, "--from", "darts", "-o", tmp_path / "x.pt"
    )
    assert code == 1 and "not a readable safetensors file" in stderr and not (tmp_path / "x.pt").exists()
