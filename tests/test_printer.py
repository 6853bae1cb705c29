"""The canonical printer: golden files, stability, and parse(fmt(x)) == parse(x)."""

from __future__ import annotations

from pathlib import Path

import pytest

import nasc
from nasc.compiler import ir

from .conftest import GENOTYPES, GOLDEN

FMT_CASES = sorted(p for p in (GOLDEN / "fmt").glob("*.cell") if not p.name.endswith(".expected.cell"))


def expected_path(case: Path) -> Path:
    return case.with_name(case.name.replace(".cell", ".expected.cell"))


@pytest.mark.parametrize("case", FMT_CASES, ids=lambda p: p.stem)
def test_golden_format(case: Path) -> None:
    expected = expected_path(case)
    if not expected.exists():  # a shipped genotype is its own golden file: it must already be canonical
        expected = case
    assert nasc.format(nasc.load(case)) == expected.read_text()


@pytest.mark.parametrize("case", FMT_CASES, ids=lambda p: p.stem)
def test_format_is_stable_and_preserves_the_ir(case: Path) -> None:
    original = nasc.load(case)
    once = nasc.format(original)
    again = nasc.parse(once)
    assert again == original
    assert nasc.format(again) == once


def test_shipped_genotypes_are_canonical() -> None:
    for path in GENOTYPES.glob("*.cell"):
        assert nasc.format(nasc.load(path)) == path.read_text(), path


def test_comments_and_metadata_survive_formatting() -> None:
    genotype = nasc.load(GOLDEN / "fmt" / "messy.cell")
    assert genotype.meta("paper") == 'Someone "et al." 2018'
    assert genotype.meta("reward") == 0.95
    assert genotype.meta("seed") == 7
    normal = genotype.cell("normal")
    assert normal.blocks[0].comments == ir.Comments(("# between operands",), "# end of x")
    assert normal.close_comments.leading == ("# before the closing brace",)
    assert genotype.footer == ("# at the very end",)
    assert genotype.comments == ir.Comments(
        ("# A cell written by hand, in a hurry.",), "# trailing on the header"
    )


def test_strings_with_every_escape_round_trip() -> None:
    value = 'quote " backslash \\ newline \n tab \t return \r unicode é'
    genotype = nasc.parse(
        'genotype t\nmeta { note = "x" }\n'
        "normal(h0, h1) { h2 = add(identity(h0), identity(h1)) return concat(h2) }\n"
        "reduction(h0, h1) { h2 = add(identity(h0), identity(h1)) return concat(h2) }\n"
    )
    changed = ir.Genotype(genotype.name, genotype.cells, (ir.MetaEntry("note", value),))
    assert nasc.parse(nasc.format(changed)).meta("note") == value
