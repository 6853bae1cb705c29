"""A NASNet-shaped space's supernet (ENAS's sharing) and the path searches on it: a sampled path
runs the cell the sampler decodes — its edges' weights, its loose ends, derive() of the α that
selects it — and SPOS's evolution and batch-norm recalibration do what they say."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch

import nasc
from nasc.compiler.api import format, load_space, parse
from nasc.compiler.compilation import compile_space
from nasc.compiler.options import EmitOptions
from nasc.compiler.space import sampler
from nasc.runtime.build import import_source
from nasc.runtime.oneshot import OneShotConfig, create_search
from nasc.runtime.sampled_paths import OFF, supernet_path

from .conftest import ROOT
from .test_oneshot import FEW_PATHS, small_digits

ENAS_SPACE = ROOT / "spaces" / "enas.space"


@pytest.fixture(scope="module")
def supernet():
    space = load_space(ENAS_SPACE)
    compilation = compile_space(space, EmitOptions(cells_per_stage=1, first_filters=4, num_classes=10))
    module = import_source(compilation.emit())
    torch.manual_seed(0)
    return module, module.create_model(compilation.preset_name).eval(), sampler(space)


def test_a_path_runs_one_weight_set_per_edge_and_no_other(supernet) -> None:
    module, net, space = supernet
    choices = space.random_choices(random.Random(1))
    path = supernet_path(module.SPACE_CELLS, space, choices)
    assert all(sum(index != OFF for index in rows) == 2 * 5 for rows in path.values())  # two per block
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        before = net(x, path=path)
        assert net.cell_0.kind == "normal"
        rows = path["normal"]
        off = rows.index(OFF)
        convs = [space.ops.index("sep_conv_3x3"), space.ops.index("sep_conv_5x5")]
        on = next(i for i, index in enumerate(rows) if index in convs)  # an op with weights
        edges = [m for m in net.cell_0.modules() if isinstance(m, module.MixedOp)]
        for p in edges[off].parameters():
            p.add_(1.0)
        assert torch.equal(net(x, path=path), before)  # the weights of a state it does not read
        for p in edges[on].parameters():
            p.add_(1.0)
        assert not torch.equal(net(x, path=path), before)


def test_the_loose_ends_are_the_decoded_cells_outputs(supernet) -> None:
    module, _, space = supernet
    rng = random.Random(2)
    for _ in range(20):
        choices = space.random_choices(rng)
        genotype = space.decode(choices)
        path = supernet_path(module.SPACE_CELLS, space, choices)
        for kind, rows in path.items():
            targets = [node[0] for node in module.SPACE_CELLS[kind]["nodes"]]
            loose = [t for t, out in zip(targets, module.loose_ends(kind, rows), strict=True) if out]
            assert tuple(loose) == genotype.cell(kind).output.members


def test_derive_reads_back_the_path_alpha_selects(supernet) -> None:
    module, net, space = supernet
    rng = random.Random(3)
    for _ in range(10):
        choices = space.random_choices(rng)
        path = supernet_path(module.SPACE_CELLS, space, choices)
        alphas = {}
        for kind, rows in path.items():
            alpha = torch.zeros(len(rows), len(module.SPACE_CELLS[kind]["ops"]))
            for row, index in enumerate(rows):
                if index != OFF:
                    alpha[row, index] = 5.0
            alphas[kind] = alpha
        derived = parse(net.derive("sampled", alphas))
        assert derived == space.decode(choices)


def _search(tmp_path: Path, strategy: str, **changes):
    settings = {"epochs": 1, "batch_size": 32, "cells_per_stage": 1, "init_channels": 4, **FEW_PATHS}
    config = OneShotConfig(
        out=str(tmp_path), space_source=format(load_space(ENAS_SPACE)), strategy=strategy, **settings
    )
    for key, value in changes.items():
        setattr(config, key, value)
    return create_search(config, small_digits())


def test_aging_evolution_finds_better_paths_than_it_started_with(tmp_path: Path, monkeypatch) -> None:
    search = _search(tmp_path, "spos", spos_population=8, spos_sample=3, spos_cycles=200)
    identity = search.sampler.ops.index("identity")
    # a score the search can climb: the share of op choices that are identity
    ops = [i for i, d in enumerate(search.sampler.decisions()) if d.role == "op"]
    scores = []

    def score(choices: list[int]) -> float:
        scores.append(sum(choices[i] == identity for i in ops) / len(ops))
        return scores[-1]

    monkeypatch.setattr(search, "score", score)
    best = search.evolve(random.Random(0))
    assert score(best) == max(scores[:-1])  # the best path ever scored
    assert max(scores[:-1]) > max(scores[:8]) + 0.2  # climbed well past the first population


def test_recalibration_forgets_the_statistics_of_other_paths(tmp_path: Path) -> None:
    search = _search(tmp_path, "spos")
    choices = search.sampler.random_choices(random.Random(4))
    path = search.path(choices)
    torch.manual_seed(0)  # the training images' augmentation
    search.recalibrate(path)
    fresh = {k: v.clone() for k, v in search.net.state_dict().items() if "running" in k}
    with torch.no_grad():
        for name, value in search.net.state_dict().items():
            if "running" in name:
                value.add_(3.0)
    torch.manual_seed(0)
    search.recalibrate(path)
    again = {k: v for k, v in search.net.state_dict().items() if "running" in k}
    assert all(torch.allclose(again[k], fresh[k]) for k in fresh)
    assert not search.net.training


def test_the_enas_controller_learns_toward_rewarded_paths(tmp_path: Path, monkeypatch) -> None:
    search = _search(tmp_path, "enas", controller_aggregate=8, controller_learning_rate=0.05)
    identity = search.sampler.ops.index("identity")
    ops = [i for i, d in enumerate(search.sampler.decisions()) if d.role == "op"]
    share = lambda rows: sum(r[i] == identity for r in rows for i in ops) / (len(rows) * len(ops))  # noqa: E731

    class Rewarded(torch.nn.Module):  # the shared model's accuracy: the share of identity edges
        def forward(self, x, path):
            on = [index for rows in path.values() for index in rows if index != OFF]
            right = round(len(x) * sum(index == identity for index in on) / len(on))
            logits = torch.zeros(len(x), 10)
            logits[:right, 0] = 1.0  # the label
            logits[right:, 1] = 1.0
            return logits

    monkeypatch.setattr(search, "net", Rewarded())
    batch = (torch.zeros(100, 1), torch.zeros(100, dtype=torch.long))
    monkeypatch.setattr(search, "batch", lambda _: batch)
    before = share(search.sample(200))
    for step in range(40):
        search.controller_step(0, step)
    assert share(search.sample(200)) > before + 0.1


def test_the_enas_controller_keeps_every_op_in_play_however_hard_it_is_pushed(tmp_path: Path) -> None:
    """ENAS's temperature and tanh bound: a controller whose heads all push one op still samples the
    others (the shared weights go on training them); without them, it collapses onto that op."""
    unbounded = {"controller_temperature": 1.0, "controller_tanh_constant": 0.0}
    shares = {}
    for name, changes in (("enas", {}), ("unbounded", {**unbounded, "controller_favour_convs": False})):
        search = _search(tmp_path / name, "enas", **changes)
        pushed = search.sampler.ops.index("max_pool_3x3")
        with torch.no_grad():
            for key, head in search.controller.heads.items():
                if key.endswith("_op"):
                    head.weight.zero_()
                    head.bias.fill_(-100.0)
                    head.bias[pushed] = 100.0
        ops = [i for i, d in enumerate(search.sampler.decisions()) if d.role == "op"]
        rows = torch.tensor(search.sample(500))[:, ops]
        shares[name] = [float((rows == op).float().mean()) for op in range(len(search.sampler.ops))]
    assert max(shares["enas"]) < 0.5 and min(shares["enas"]) > 0.05, shares["enas"]
    assert shares["unbounded"][pushed] > 0.99


def test_a_space_the_path_searches_cannot_sample_is_refused_at_its_line(tmp_path: Path) -> None:
    from .test_cli import run

    darts = ROOT / "spaces" / "darts.space"
    code, _, err = run("search", "--strategy", "spos", "--space", str(darts), "--out", str(tmp_path / "s"))
    assert code == 1 and "darts.space:12:1: error: the sampling searches" in err
    nasnet = ROOT / "spaces" / "nasnet.space"
    code, _, err = run("search", "--strategy", "enas", "--space", str(nasnet), "--out", str(tmp_path / "n"))
    assert code == 1 and "nasnet.space:14:5: error: a supernet sums each node's edges" in err
    assert not (tmp_path / "s").exists() and not (tmp_path / "n").exists()


def test_spos_searches_the_nas_bench_201_space_and_derives_a_benchmark_cell(tmp_path: Path) -> None:
    from nasc.compiler.nb201_format import read_nb201, write_nb201

    space = load_space(ROOT / "spaces" / "nb201.space")
    config = OneShotConfig(
        out=str(tmp_path),
        space_source=format(space),
        strategy="spos",
        epochs=1,
        batch_size=32,
        cells_per_stage=1,
        init_channels=4,
        **FEW_PATHS,
    )
    search = create_search(config, small_digits())
    choices = search.sampler.random_choices(random.Random(5))
    assert search.path(choices) == {"normal": choices}  # one op per edge, in α's row order
    search.run()
    derived = nasc.load(tmp_path / "best.cell")
    assert derived.convention == "nb201" and derived.meta("strategy") == "spos"
    assert read_nb201(write_nb201(derived)).cells == derived.cells  # a NAS-Bench-201 string: look it up
