"""The nb201 convention: NAS-Bench-201's cells and network, held to the benchmark's own code (xautodl,
installed by the README's test command), its architecture strings, and its isomorphism."""

from __future__ import annotations

import itertools
import random
from collections import defaultdict

import pytest
import torch

import nasc
from nasc.compiler.compilation import compile_genotype
from nasc.compiler.nb201_format import read_nb201, write_nb201
from nasc.compiler.options import EmitOptions
from nasc.runtime.build import build_network
from nasc.runtime.stats import measure

from .test_cli import run

xautodl = pytest.importorskip("xautodl", reason="the README's test command installs xautodl")
from xautodl.models.cell_infers.tiny_network import TinyNetwork  # noqa: E402
from xautodl.models.cell_searchs.genotypes import Structure  # noqa: E402

BENCHMARK_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"


def architecture(ops: tuple[str, ...]) -> str:
    a, b, c, d, e, f = ops
    return f"|{a}~0|+|{b}~0|{c}~1|+|{d}~0|{e}~1|{f}~2|"


def every_architecture() -> list[str]:
    return [architecture(ops) for ops in itertools.product(BENCHMARK_OPS, repeat=6)]


SAMPLE = [BEST, architecture(("none",) * 6), *random.Random(201).sample(every_architecture(), 3)]


@pytest.mark.parametrize(("arch", "preset"), [(a, "cifar") for a in SAMPLE] + [(BEST, "imagenet16")])
def test_the_compiled_network_is_nas_bench_201s(arch: str, preset: str) -> None:
    """The same parameters in the same order (a state_dict maps by position) and the same logits for
    the same weights and batch-norm statistics, in float64."""
    built = build_network(read_nb201(arch), EmitOptions(preset=preset))
    ours = built.model.double().eval()
    classes = {"cifar": 10, "imagenet16": 120}[preset]
    theirs = TinyNetwork(16, 5, Structure.str2structure(arch), classes).double().eval()
    reference = theirs.state_dict()
    assert [tuple(v.shape) for v in ours.state_dict().values()] == [
        tuple(v.shape) for v in reference.values()
    ]
    generator = torch.Generator().manual_seed(0)
    weights = {
        key: torch.rand(value.shape, generator=generator, dtype=torch.float64) + 0.5
        if value.is_floating_point()
        else value
        for key, value in reference.items()
    }
    theirs.load_state_dict(weights)
    ours.load_state_dict(dict(zip(ours.state_dict(), weights.values(), strict=True)))
    x = torch.randn(2, 3, built.image_size, built.image_size, dtype=torch.float64, generator=generator)
    with torch.no_grad():
        expected, got = theirs(x)[1], ours(x)
    assert ((got - expected).abs().max() / expected.abs().max()).item() <= 1e-6


def test_static_counts_equal_the_built_network() -> None:
    for arch in SAMPLE:
        genotype = read_nb201(arch)
        built = build_network(genotype)
        measured = measure(built.model, built.image_size)
        counted = compile_genotype(genotype, EmitOptions()).count()
        assert (counted.parameters, counted.mult_adds) == (measured.parameters, measured.mult_adds)
        cells = [(c.output_shape, c.parameters, c.mult_adds) for c in counted.cells if c.kind != "residual"]
        assert cells == [(c.output_shape, c.parameters, c.mult_adds) for c in measured.cells]


def test_every_pair_the_benchmark_calls_isomorphic_hashes_alike() -> None:
    """Over the whole space: nasc's hash merges whatever xautodl's `to_unique_str(consider_zero=True)`
    (the benchmark's 6,466 classes) merges, and more only where `none` makes an op read zero."""
    classes: dict[str, set[str]] = defaultdict(set)
    hashes = {}
    for arch in every_architecture():
        hashes[arch] = nasc.structural_hash(read_nb201(arch, name="a"))
        classes[Structure.str2structure(arch).to_unique_str(True)].add(hashes[arch])
    assert len(classes) == 6466
    assert all(len(members) == 1 for members in classes.values())
    distinct = len(set(hashes.values()))
    assert distinct < len(classes)
    # what nasc merges beyond the benchmark: a node of `none` edges only, and ops reading it, are zero
    assert (
        hashes[architecture(("none", "none", "nor_conv_3x3", "nor_conv_1x1", "none", "none"))]
        == hashes[architecture(("none", "none", "avg_pool_3x3", "nor_conv_1x1", "none", "none"))]
    )


def test_architecture_strings_round_trip_through_cell_files(tmp_path) -> None:
    for arch in random.Random(7).sample(every_architecture(), 40):
        path = tmp_path / "a.cell"
        code, _, err = run("import", "nb201", arch, "-o", str(path), "--force")
        assert code == 0, err
        genotype = nasc.load(path)
        assert genotype.convention == "nb201" and genotype.meta("nb201") == arch
        assert write_nb201(genotype) == arch
    code, out, _ = run("export", str(path), "--format", "nb201")
    assert code == 0 and out.strip() == arch


@pytest.mark.parametrize(
    ("arch", "column", "message"),
    [
        (BEST.replace("avg_pool_3x3", "sep_conv_3x3"), 34, "unknown op `sep_conv_3x3`"),
        (BEST.replace("~1|+|skip", "~1||skip"), 48, "an empty edge"),
        (BEST.replace("avg_pool_3x3~1", "avg_pool_3x3~2"), 34, "node 2 cannot read node 2"),
        ("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|", 1, "2 node(s); NAS-Bench-201's cell has 3"),
        (
            "|nor_conv_3x3~0|+|nor_conv_3x3~0|+|none~0|none~1|none~2|",
            19,
            "node 2 has 1 edge(s); it reads each of nodes 0 to 1",
        ),
    ],
)
def test_a_wrong_architecture_string_is_an_error_at_its_position(
    arch: str, column: int, message: str
) -> None:
    code, _, err = run("import", "nb201", arch, "-o", "-")
    assert code == 1
    assert err.splitlines()[0] == f"<argument>:1:{column}: error: {message}"


def test_the_checker_holds_the_node_rule_and_warns_of_dead_edges(tmp_path) -> None:
    bad = tmp_path / "bad.cell"
    bad.write_text(
        "genotype bad : nb201\nnormal(h0) {\n    h1 = add(conv_3x3(h0))\n    h2 = add(avg_pool_3x3(h1))\n"
        "    h3 = add(identity(h0), sep_conv_3x3(h1), identity(h2))\n    return concat(h2, h3)\n}\n"
    )
    code, _, err = run("check", str(bad))
    assert code == 1
    assert "bad.cell:4:5: error: `h2` must read each earlier state once, in order: h0, h1" in err
    assert "bad.cell:5:28: error: `sep_conv_3x3` is not an op of the nb201 convention" in err
    assert "bad.cell:6:5: error: nb201 cells output their last node alone" in err
    dead = tmp_path / "dead.cell"
    dead.write_text(
        "genotype dead : nb201\nnormal(h0) {\n    h1 = add(none(h0))\n"
        "    h2 = add(conv_3x3(h0), conv_1x1(h1))\n    h3 = add(identity(h0), conv_3x3(h1), none(h2))\n"
        "    return concat(h3)\n}\n"
    )
    code, out, err = run("check", str(dead))
    assert code == 0 and "(3 warning(s))" in out
    assert (
        "dead.cell:4:14: warning: `conv_3x3(h0)` is dead: `h2` reaches the output only through `none`" in err
    )
    assert "dead.cell:4:28: warning: `conv_1x1(h1)` is dead: `h1` is zero" in err
    assert "dead.cell:5:28: warning: `conv_3x3(h1)` is dead: `h1` is zero" in err


def test_none_is_nas_bench_201s_alone(tmp_path) -> None:
    cell = tmp_path / "n.cell"
    cell.write_text(
        "genotype n\nnormal(h0, h1) {\n    h2 = add(none(h0), identity(h1))\n    return concat(h2)\n}\n"
        "reduction(h0, h1) {\n    h2 = add(identity(h0), identity(h1))\n    return concat(h2)\n}\n"
    )
    code, _, err = run("check", str(cell))
    assert code == 1 and "`none` is not an op of the nasnet convention" in err
    code, _, err = run("export", str(read_nb201_file(tmp_path)), "--format", "nasnet", "-o", "-")
    assert code == 1 and "this genotype is read by `nb201`" in err


def read_nb201_file(folder) -> object:
    path = folder / "best.cell"
    path.write_text(nasc.format(read_nb201(BEST)))
    return path
