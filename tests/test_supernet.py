"""A space compiled into a supernet: for the DARTS space, the search network of quark0/darts
cnn/model_search.py, tensor for tensor and logit for logit, and its derivation rule."""

from __future__ import annotations

import functools
from types import ModuleType

import pytest
import torch

import nasc
from nasc.compiler.api import load_space, parse_space
from nasc.compiler.compilation import compile_space
from nasc.compiler.darts_format import read_darts
from nasc.compiler.hashing import space_hash
from nasc.runtime.build import import_source

from .conftest import ROOT
from .darts_search_reference import PRIMITIVES, Network
from .test_cli import run

DARTS_SPACE = ROOT / "spaces" / "darts.space"


@functools.cache
def supernet_module(path=DARTS_SPACE) -> ModuleType:
    return import_source(compile_space(load_space(path)).emit())


def pair(seed: int = 0):
    """The reference's search network and nasc's, Network(16, 10, 8), with the reference's weights,
    random batch-norm statistics and α copied into nasc's by position; float64."""
    torch.manual_seed(seed)
    reference = Network(16, 10, 8, torch.nn.CrossEntropyLoss()).double()
    ours = supernet_module().DartsSearch().double()
    with torch.no_grad():
        for name, buffer in reference.named_buffers():
            if "running_mean" in name:
                buffer.copy_(torch.randn_like(buffer) * 0.1)
            elif "running_var" in name:
                buffer.copy_(torch.rand_like(buffer) + 0.5)
        for alpha in reference.arch_parameters():
            alpha.copy_(torch.randn_like(alpha))
    theirs = list(reference.state_dict().values()) + [a.detach() for a in reference.arch_parameters()]
    mine = ours.state_dict()
    assert len(mine) == len(theirs)
    ours.load_state_dict(dict(zip(mine, theirs, strict=True)))
    return reference, ours


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach(), b.detach()
    return float((a - b).abs().max() / b.abs().max())


def test_the_supernet_has_the_reference_search_networks_tensors_in_its_order() -> None:
    torch.manual_seed(0)
    reference = Network(16, 10, 8, torch.nn.CrossEntropyLoss())
    ours = supernet_module().DartsSearch()
    theirs = [tuple(t.shape) for t in reference.state_dict().values()]
    mine = [tuple(t.shape) for name, t in ours.state_dict().items() if not name.startswith("architecture.")]
    assert mine == theirs
    assert [tuple(a.shape) for a in ours.arch_parameters()] == [(14, len(PRIMITIVES))] * 2
    assert sum(p.numel() for p in ours.weights()) == sum(p.numel() for p in reference.parameters())
    assert {id(p) for p in ours.weights()}.isdisjoint(id(a) for a in ours.arch_parameters())


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_the_supernet_computes_the_reference_logits(mode: str) -> None:
    reference, ours = pair()
    reference.train(mode == "train")
    ours.train(mode == "train")
    x = torch.randn(2, 3, 32, 32, dtype=torch.float64)
    expected = reference(x)
    assert relative(ours(x), expected) < 1e-6


def test_derive_applies_the_references_rule() -> None:
    for seed in range(3):
        reference, ours = pair(seed)
        derived = nasc.parse(ours.derive("derived"))
        expected = reference.genotype()
        text = (
            f"derived = Genotype(normal={expected['normal']}, normal_concat={expected['normal_concat']}, "
            f"reduce={expected['reduce']}, reduce_concat={expected['reduce_concat']})"
        )
        theirs = read_darts(text, name="derived")
        assert nasc.structural_hash(derived) == nasc.structural_hash(theirs)
        assert all(o.op != "none" for c in derived.cells for b in c.blocks for o in b.operands)


def test_a_path_runs_one_candidate_per_edge_and_the_mixture_every_one() -> None:
    module = supernet_module()
    torch.manual_seed(0)
    net = module.DartsSearch().eval()
    x = torch.randn(2, 3, 32, 32)
    path = {kind: [4] * 14 for kind in ("normal", "reduction")}  # sep_conv_3x3 everywhere
    calls = []
    hooks = [
        op.register_forward_hook(lambda m, i, o, name=name: calls.append(name))
        for name, op in net.named_modules()
        if name.endswith(("candidates.1", "candidates.4"))
    ]
    net(x, path=path)
    assert calls and all(name.endswith("candidates.4") for name in calls)
    calls.clear()
    net(x)
    assert any(name.endswith("candidates.1") for name in calls)
    for hook in hooks:
        hook.remove()


def test_gradients_reach_alpha_through_a_hard_sample() -> None:
    net = supernet_module().DartsSearch()
    x = torch.randn(2, 3, 32, 32)
    weights, path = {}, {}
    for kind, alpha in zip(("normal", "reduction"), net.arch_parameters(), strict=True):
        probs = torch.softmax(alpha, dim=-1)
        index = probs.argmax(-1)
        hard = torch.zeros_like(probs).scatter_(1, index[:, None], 1.0)
        weights[kind], path[kind] = hard - probs.detach() + probs, index.tolist()
        weights[kind].retain_grad()
    net(x, path=path, weights=weights).sum().backward()
    assert all(a.grad is not None and a.grad.abs().sum() > 0 for a in net.arch_parameters())
    # GDAS (xautodl): the weights of the candidates not run enter the sum at their value, zero, and
    # so receive the output's gradient all the same
    for kind, hard in weights.items():
        assert torch.all(hard.detach()[hard.detach() != 1] == 0)
        unchosen = torch.ones_like(hard, dtype=torch.bool).scatter_(
            1, torch.tensor(path[kind])[:, None], False
        )
        assert torch.all(hard.grad[unchosen] != 0)


def test_nasc_compile_writes_the_supernet(tmp_path) -> None:
    out = tmp_path / "supernet.py"
    code, stdout, err = run("compile", str(DARTS_SPACE), "--preset", "search", "-o", str(out))
    assert code == 0, err
    module = import_source(out.read_text())
    assert module.SPACE == "darts" and module.SPACE_HASH == space_hash(load_space(DARTS_SPACE))
    assert "supernet" in stdout
    code, _, err = run("compile", str(ROOT / "spaces" / "nasnet.space"), "-o", str(tmp_path / "n.py"))
    assert code == 1 and "nasnet.space:14:5: error: a supernet sums each node's edges" in err
    assert "h2 may `add, concat`" in err and not (tmp_path / "n.py").exists()
    enas = (ROOT / "spaces" / "enas.space").read_text()
    pnasnet = enas.replace("space enas\n", "space p : pnasnet\n").replace("normal(h0, h1)", "cell(h0, h1)")
    (tmp_path / "p.space").write_text(pnasnet[: pnasnet.index("reduction(h0, h1)")])
    code, _, err = run("compile", str(tmp_path / "p.space"), "-o", str(tmp_path / "p.py"))
    assert code == 2 and "supernets are compiled for darts, nasnet, nb201 spaces" in err


def test_a_space_whose_edges_differ_is_refused() -> None:
    text = DARTS_SPACE.read_text().replace(
        "h2 = add(ops(h0), ops(h1)) keep 2", "h2 = add(ops(h0), [identity, sep_conv_3x3](h1)) keep 2", 1
    )
    with pytest.raises(ValueError, match="different candidate ops"):
        compile_space(parse_space(text)).emit()


def test_partial_channels_mix_a_quarter_and_shuffle_the_rest_in() -> None:
    from nasc.compiler.options import EmitOptions

    compilation = compile_space(load_space(DARTS_SPACE), EmitOptions(partial_channels=4))
    module = import_source(compilation.emit())
    torch.manual_seed(0)
    net = module.create_model(compilation.preset_name).eval()
    full = supernet_module().DartsSearch()
    assert sum(p.numel() for p in net.weights()) < sum(p.numel() for p in full.weights()) / 3
    edge = net.cell_0.h2_h0
    x = torch.randn(2, 16, 8, 8)
    out = edge(x, torch.relu(x), torch.softmax(torch.randn(8), -1))
    # the channels the candidates did not see pass unchanged, interleaved: group g at channels g, g + 4, …
    assert torch.equal(out[:, 1::4], x[:, 4:8]) and torch.equal(out[:, 3::4], x[:, 12:16])
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    with pytest.raises(ValueError, match="must divide C"):
        compile_space(load_space(DARTS_SPACE), EmitOptions(partial_channels=3))
