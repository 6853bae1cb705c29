"""The NAS-Bench-201 space's supernet against the benchmark's own search network (xautodl
models/cell_searchs TinyNetworkDarts, code only): the same tensors in the same order, the same
logits for the same weights and α (float64), and derive() = its genotype() (every edge its argmax,
`none` included)."""

from __future__ import annotations

import pytest
import torch

from nasc.compiler.api import load_space, parse
from nasc.compiler.compilation import compile_space
from nasc.compiler.nb201_format import write_nb201
from nasc.compiler.options import EmitOptions
from nasc.runtime.build import import_source

from .conftest import ROOT

search_model = pytest.importorskip("xautodl.models.cell_searchs.search_model_darts")
cell_operations = pytest.importorskip("xautodl.models.cell_operations")

NB201_SPACE = ROOT / "spaces" / "nb201.space"


def pair(cells_per_stage: int = 1, channels: int = 4):
    torch.manual_seed(0)
    space = cell_operations.NAS_BENCH_201
    reference = search_model.TinyNetworkDarts(
        channels, cells_per_stage, 4, 10, space, affine=False, track_running_stats=True
    )
    options = EmitOptions(cells_per_stage=cells_per_stage, first_filters=channels, num_classes=10)
    compilation = compile_space(load_space(NB201_SPACE), options)
    ours = import_source(compilation.emit()).create_model(compilation.preset_name)
    # the same tensors in the same order, α apart (the reference's is its first tensor, ours the last)
    theirs = {k: v for k, v in reference.state_dict().items() if k != "arch_parameters"}
    mine = {k: v for k, v in ours.state_dict().items() if k != "architecture.normal"}
    assert [tuple(t.shape) for t in theirs.values()] == [tuple(t.shape) for t in mine.values()]
    ours.load_state_dict(dict(zip(mine, theirs.values(), strict=True)), strict=False)
    return reference.double(), ours.double()


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_the_supernet_computes_the_benchmarks_search_logits(mode: str) -> None:
    reference, ours = pair()
    with torch.no_grad():  # α away from uniform, so that every candidate's weight matters
        reference.arch_parameters.copy_(torch.randn_like(reference.arch_parameters))
        ours.architecture.normal.copy_(reference.arch_parameters)
    x = torch.randn(3, 3, 16, 16, dtype=torch.float64)
    reference.train(mode == "train")
    ours.train(mode == "train")
    for _ in range(2 if mode == "train" else 1):  # train mode: the running statistics move alike
        _, expected = reference(x)
        got = ours(x)
    assert ((got - expected).abs().max() / expected.abs().max()).item() < 1e-6
    theirs = [v for k, v in reference.state_dict().items() if k != "arch_parameters"]
    mine = {k: v for k, v in ours.state_dict().items() if k != "architecture.normal"}
    for (name, b), a in zip(mine.items(), theirs, strict=True):  # the running statistics too
        assert torch.allclose(a, b, rtol=1e-9, atol=1e-12), name


def test_derive_is_the_benchmarks_genotype() -> None:
    reference, ours = pair()
    for seed in range(5):
        torch.manual_seed(seed)
        with torch.no_grad():
            reference.arch_parameters.copy_(torch.randn_like(reference.arch_parameters))
            ours.architecture.normal.copy_(reference.arch_parameters)
        derived = parse(ours.derive())
        assert derived.convention == "nb201"
        assert write_nb201(derived) == reference.genotype().tostr()
