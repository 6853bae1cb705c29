"""Search spaces written in the cell language: parsed, checked, formatted, hashed, and sampled by
the multi-trial searches exactly as the spaces they used to build in code."""

from __future__ import annotations

import math
import random

import pytest

import nasc
from nasc.compiler.api import format, load_space, parse, parse_space
from nasc.compiler.hashing import space_hash
from nasc.compiler.space import NASNET_SPACE, NB201_SPACE, random_cell, sampler
from nasc.compiler.space_ir import space_size
from nasc.diagnostics import NascError

from .conftest import ROOT
from .test_cli import run

SPACES = sorted((ROOT / "spaces").glob("*.space"))


@pytest.mark.parametrize("path", SPACES, ids=lambda p: p.stem)
def test_a_shipped_space_is_canonical_and_its_text_parses_back_to_it(path) -> None:
    space = load_space(path)
    assert format(space) == path.read_text(encoding="utf-8")
    assert parse_space(format(space)) == space


def test_the_default_search_space_is_the_nasnet_space_file() -> None:
    space = load_space(ROOT / "spaces" / "nasnet.space")
    assert sampler(space) == NASNET_SPACE
    assert NASNET_SPACE.space_hash() == space_hash(space)
    nb201 = load_space(ROOT / "spaces" / "nb201.space")
    assert sampler(nb201) == NB201_SPACE and NB201_SPACE.space_hash() == space_hash(nb201)


def test_space_sizes_are_the_papers() -> None:
    # DARTS §2.4: per node i (i = 2..5 earlier states), C(i, 2) pairs of edges, 7 non-zero ops each;
    # per cell ≈ 10^9, "≈ 10^18" for the normal and reduction cells together.
    per_cell = math.prod(math.comb(i, 2) * 7**2 for i in range(2, 6))
    assert space_size(load_space(ROOT / "spaces" / "darts.space")) == per_cell**2
    assert space_size(load_space(ROOT / "spaces" / "nb201.space")) == 5**6
    per_block = [(2 + b) ** 2 * 13**2 * 2 for b in range(5)]
    assert space_size(load_space(ROOT / "spaces" / "nasnet.space")) == math.prod(per_block) ** 2


def test_a_cell_is_a_space_with_one_choice_everywhere() -> None:
    space = load_space(ROOT / "genotypes" / "nasnet_a.cell")
    assert space_size(space) == 1
    assert all(len(e.ops) == len(e.inputs) == 1 for c in space.cells for n in c.nodes for e in n.edges)


VALID = """space bad : darts
meta { note = "x" }
ops = [none, identity, sep_conv_3x3]
normal(a, b) {
    c = add(ops(a), ops(b)) keep 2
    d = add(ops(a), ops(b), ops(c)) keep 2
    return concat(c, d)
}
reduction(a, b) {
    c = add([identity, sep_conv_3x3](a), [max_pool_3x3, identity](b))
    return concat(c)
}
"""
DARTS_LIKE = "# a comment that stays\n" + VALID.replace(
    "ops = [none, identity, sep_conv_3x3]", "ops = [none, identity, sep_conv_3x3]  # the candidates"
)


def test_the_hash_ignores_names_sets_and_comments_but_not_candidates() -> None:
    base = space_hash(parse_space(DARTS_LIKE))
    renamed = DARTS_LIKE.replace("ops", "cands").replace("(a", "(x").replace("a)", "x)").replace("# a", "#")
    assert space_hash(parse_space(renamed)) == base
    listed = DARTS_LIKE.replace("ops(", "[none, identity, sep_conv_3x3](")
    assert space_hash(parse_space(listed)) == base
    for changed in (
        DARTS_LIKE.replace("none, identity, sep", "identity, none, sep"),  # the order of the weights
        DARTS_LIKE.replace("ops(c)) keep 2", "[none, identity](c)) keep 2"),
        DARTS_LIKE.replace("return concat(c, d)", "return concat(d)"),
    ):
        assert space_hash(parse_space(changed)) != base
    assert format(parse_space(DARTS_LIKE)).startswith("# a comment that stays\nspace bad : darts\n")


# the edit that breaks VALID; the message, line, column and a fragment of the hint
BAD = {
    "unknown_op_in_set": (
        ("sep_conv_3x3]", "conv_9x9]"),
        "unknown op or combine `conv_9x9`",
        3,
        24,
        "conv_3x3",
    ),
    "zero_without_keep": (
        ("[identity, sep_conv_3x3](a)", "ops(a)"),
        "set `ops` holds `none`",
        10,
        13,
        "keep",
    ),
    "keep_too_many": (
        ("ops(b)) keep 2", "ops(b)) keep 3"),
        "`keep 3`: `c` has 2 candidate edge(s)",
        5,
        29,
        None,
    ),
    "too_many_operands": (
        ("ops(c)) keep 2", "ops(c))"),
        "a derived `d` would have 3 operand(s)",
        6,
        5,
        "keep 2",
    ),
    "keep_with_input_choice": (
        ("ops(b)) keep 2", "ops([a, b])) keep 2"),
        "an edge of a `keep` node reads one",
        5,
        25,
        None,
    ),
    "undefined_input": (("ops(c)) keep 2", "ops(e)) keep 2"), "`e` is not defined", 6, 33, "a, b, c"),
    "set_named_like_an_op": (("ops = [", "identity = ["), "set `identity` has the name of an op", 3, 1, None),
    "zero_only_edge": (
        ("ops(c)) keep 2", "none(c)) keep 2"),
        "this edge's only candidate is `none`",
        6,
        29,
        None,
    ),
    "no_reduction_cell": (("reduction(a, b)", "stem(a, b)"), "unknown cell kind `stem`", 9, 1, None),
}


def test_the_template_of_the_bad_spaces_is_good() -> None:
    # normal c: both edges kept, 2 non-zero ops each; d: 3 pairs of its edges; reduction c: 2 × 2
    assert space_size(parse_space(VALID)) == (2 * 2) * (3 * 2 * 2) * (2 * 2)


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_space_is_a_diagnostic_at_its_line(case: str) -> None:
    (old, new), message, line, column, hint = BAD[case]
    assert old in VALID
    with pytest.raises(NascError) as raised:
        parse_space(VALID.replace(old, new, 1), "bad.space")
    found = [(d.message, d.span.line, d.span.column, d.hint) for d in raised.value.diagnostics if d.span]
    matching = [d for d in found if d[0].startswith(message)]
    assert matching, found
    assert matching[0][1:3] == (line, column), found
    if hint:
        assert hint in str(matching[0][3])


def test_a_cell_file_refuses_candidates_and_a_space_is_not_a_cell() -> None:
    cell = (
        (ROOT / "genotypes" / "darts_v2.cell")
        .read_text()
        .replace("sep_conv_3x3(s0)", "[sep_conv_3x3, identity](s0)", 1)
    )
    with pytest.raises(NascError) as raised:
        nasc.parse(cell)
    assert "belongs to a search space" in raised.value.render()
    with pytest.raises(NascError) as raised:
        nasc.load(ROOT / "spaces" / "darts.space")
    assert "is a search space, not a cell" in raised.value.render()


def test_check_fmt_and_hash_read_spaces() -> None:
    code, out, err = run("check", str(ROOT / "spaces"))
    assert code == 0, err
    assert "space darts: normal (4 nodes), reduction (4 nodes); 1,076,746,950,455,072,400 cells" in out
    code, out, _ = run("hash", str(ROOT / "spaces" / "darts.space"))
    assert out.strip() == space_hash(load_space(ROOT / "spaces" / "darts.space"))
    code, _, err = run("fmt", "--check", str(ROOT / "spaces"))
    assert code == 0, err


def test_search_refuses_a_space_it_cannot_sample_at_its_line(tmp_path) -> None:
    code, _, err = run(
        "search", "--space", str(ROOT / "spaces" / "darts.space"), "--out", str(tmp_path / "s")
    )
    assert code == 1 and "darts.space:12:1: error: the sampling searches" in err
    assert not (tmp_path / "s").exists()
    code, _, err = run("search", "--space", str(ROOT / "spaces" / "enas.space"), "--blocks", "3")
    assert code == 2 and "drop --blocks" in err


def test_nasc_diff_says_what_changed_between_two_spaces(tmp_path) -> None:
    changed = VALID.replace(
        "ops = [none, identity, sep_conv_3x3]", "ops = [none, sep_conv_3x3, max_pool_3x3]"
    )
    changed = changed.replace("return concat(c, d)", "return concat(d)")
    changed = changed.replace("[max_pool_3x3, identity](b)", "[identity, max_pool_3x3](a)")
    a, b = tmp_path / "a.space", tmp_path / "b.space"
    a.write_text(VALID)
    b.write_text(changed)
    code, out, err = run("diff", str(a), str(b))
    assert code == 1, err
    assert out.splitlines() == [
        "set ops: + max_pool_3x3; − identity",
        "normal output: [c, d] → [d]",
        "reduction c edge 2: reads [b] → [a]",
        "reduction c edge 2: ops reordered",
    ]
    code, out, _ = run("diff", str(a), str(a))
    assert code == 0 and "the same space" in out
    code, _, err = run("diff", str(a), str(ROOT / "genotypes" / "darts_v2.cell"))
    assert code == 2 and "compare a space with a space" in err


@pytest.mark.parametrize("name", ["darts", "enas", "nasnet", "nb201"])
def test_a_random_cell_of_a_space_is_a_cell_the_space_derives(name: str) -> None:
    space = load_space(ROOT / "spaces" / f"{name}.space")
    for seed in range(10):
        genotype = random_cell(space, random.Random(seed))
        assert parse(format(genotype)) == genotype  # a checked cell of the space's convention
        assert genotype.convention == space.convention
        for cell, kind in zip(genotype.cells, space.cells, strict=True):
            for block, node in zip(cell.blocks, kind.nodes, strict=True):
                assert len(block.operands) == node.kept and block.combine in node.combines
                if node.keep is not None:  # ranked edges: distinct edges, never `none`
                    assert len({o.input for o in block.operands}) == node.keep
                    assert all(o.op != "none" for o in block.operands)
        if name in ("enas", "nasnet"):  # the sampler's decisions read it back whole
            choices, dropped = sampler(space).encode(genotype)
            assert not dropped and sampler(space).decode(choices, genotype.name) == genotype
