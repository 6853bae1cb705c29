"""Property tests: print/parse round trips over the search space, and a fuzzed parser that only
ever fails with nasc's own error."""

from __future__ import annotations

import dataclasses
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nasc
from nasc import NascError

from .strategies import genotypes

FUZZ_EXAMPLES = int(os.environ.get("NASC_FUZZ_EXAMPLES", "600"))


@settings(max_examples=300, deadline=None)
@given(genotypes())
def test_print_parse_print_is_unchanged(genotype) -> None:
    text = nasc.format(genotype)
    parsed = nasc.parse(text)
    assert parsed == genotype
    assert nasc.format(parsed) == text


@settings(max_examples=200, deadline=None)
@given(genotypes(with_comments=False))
def test_hash_ignores_comments_and_metadata_but_sees_the_architecture(genotype) -> None:
    from nasc.compiler import ir

    stripped = ir.Genotype("other_name", genotype.cells)
    assert nasc.structural_hash(stripped) == nasc.structural_hash(genotype)


# -- fuzzing ----------------------------------------------------------------------------------------

JUNK = st.binary(min_size=1, max_size=8).map(lambda b: b.decode("utf-8", "replace"))
TOKENS = st.sampled_from(
    [
        "(",
        ")",
        "{",
        "}",
        ",",
        "=",
        "return",
        "genotype",
        "meta",
        "add",
        "h0",
        "h9",
        '"',
        "#",
        "1e5",
        "-",
        "\n",
        "concat",
        "identity",
        "__x__",
        "class",
        "\x00",
        "é",
        "\r",
        "# c\r",
    ]
)


@st.composite
def mutated(draw) -> str:
    text = nasc.format(draw(genotypes()))
    lines = text.split("\n")
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(
            st.sampled_from(["delete_line", "duplicate_line", "swap_tokens", "junk", "truncate", "insert"])
        )
        if kind == "delete_line" and len(lines) > 1:
            del lines[draw(st.integers(0, len(lines) - 1))]
        elif kind == "duplicate_line":
            i = draw(st.integers(0, len(lines) - 1))
            lines.insert(i, lines[i])
        elif kind == "swap_tokens":
            words = "\n".join(lines).split(" ")
            if len(words) > 1:
                i, j = draw(st.integers(0, len(words) - 1)), draw(st.integers(0, len(words) - 1))
                words[i], words[j] = words[j], words[i]
            lines = " ".join(words).split("\n")
        elif kind in ("junk", "insert"):
            joined = "\n".join(lines)
            at = draw(st.integers(0, len(joined)))
            piece = draw(JUNK if kind == "junk" else TOKENS)
            lines = (joined[:at] + piece + joined[at:]).split("\n")
        elif kind == "truncate":
            joined = "\n".join(lines)
            lines = joined[: draw(st.integers(0, len(joined)))].split("\n")
    return "\n".join(lines)


@pytest.mark.slow
@settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_files_fail_only_with_nasc_errors(text: str) -> None:
    _assert_same_tree_as_lark(text)  # the fast path never accepts what Lark refuses
    try:
        genotype = nasc.parse(text, "fuzz.cell")
    except NascError as error:
        assert error.diagnostics
        rendered = error.render()
        assert rendered.startswith("fuzz.cell")
        for diagnostic in error.diagnostics:
            assert diagnostic.message
    else:  # whatever parses must print and re-parse to the same IR
        assert nasc.parse(nasc.format(genotype)) == genotype


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text_fails_only_with_nasc_errors(text: str) -> None:
    try:
        nasc.parse(text)
    except NascError as error:
        assert error.render()


# -- the one-statement-per-line fast path ---------------------------------------------------------


def _spans(node, path: str = "module"):
    """Every span in a syntax tree with where it sits (spans take no part in equality)."""
    if isinstance(node, tuple) and not hasattr(node, "_fields"):
        for i, child in enumerate(node):
            yield from _spans(child, f"{path}[{i}]")
    elif dataclasses.is_dataclass(node):
        for field in dataclasses.fields(node):
            value = getattr(node, field.name)
            if field.name.endswith("span"):
                yield f"{path}.{field.name}", value
            else:
                yield from _spans(value, f"{path}.{field.name}")


def _assert_same_tree_as_lark(text: str) -> bool:
    """The fast path either declines or returns exactly Lark's tree, spans included. True when it
    recognised the text."""
    from nasc.grammar import parser

    recognized = parser._recognizer().recognize(text, parser._meta_value)
    if recognized is None:
        return False
    reference = parser._lark().parse(text)  # raises if the fast path accepted what Lark refuses
    assert recognized == reference
    assert dict(_spans(recognized)) == dict(_spans(reference))
    return True


@st.composite
def relaid(draw) -> str:
    """A valid genotype's text with its layout changed: spaces added, removed or made tabs, comments
    between and after statements, statements joined onto one line or split over several."""
    text = nasc.format(draw(genotypes()))
    pieces = []
    for piece in text.split(" "):
        pieces.append(piece)
        pieces.append(draw(st.sampled_from([" ", "  ", "\t", " \t "])))
    text = "".join(pieces[:-1])
    for punctuation in ["(", ")", ",", "=", ":"]:
        if draw(st.booleans()):
            text = text.replace(punctuation, draw(st.sampled_from([f" {punctuation} ", f"{punctuation}\t"])))
    lines = text.split("\n")
    for _ in range(draw(st.integers(0, 3))):
        i = draw(st.integers(0, len(lines) - 1))
        change = draw(st.sampled_from(["join", "comment", "split", "blank"]))
        if change == "join" and i + 1 < len(lines) and "#" not in lines[i]:
            lines[i : i + 2] = [lines[i] + " " + lines[i + 1]]
        elif change == "comment":
            lines.insert(i, "  # between")
        elif change == "split" and "(" in lines[i]:
            lines[i] = lines[i].replace("(", "(\n", 1)
        elif change == "blank":
            lines.insert(i, "")
    return "\n".join(lines)


@settings(max_examples=150, deadline=None)
@given(genotypes())
def test_the_fast_path_reads_every_canonical_file_as_lark_does(genotype) -> None:
    assert _assert_same_tree_as_lark(nasc.format(genotype))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(relaid())
def test_the_fast_path_reads_any_layout_as_lark_does_or_leaves_it_to_lark(text: str) -> None:
    _assert_same_tree_as_lark(text)


def test_the_fast_path_reads_the_zoo_and_declines_a_statement_over_two_lines() -> None:
    from pathlib import Path

    for path in sorted(Path("genotypes").glob("*.cell")):
        assert _assert_same_tree_as_lark(path.read_text()), path
    relaid = Path("genotypes/nasnet_a.cell").read_text().replace(" = ", "\t=  ").replace("\n", "\n\n# gap\n")
    assert _assert_same_tree_as_lark(relaid)  # hand layout, one statement a line: still the fast path
    text = Path("genotypes/nasnet_a.cell").read_text().replace("h2 = add(", "h2 = add(\n", 1)
    assert not _assert_same_tree_as_lark(text)
    assert nasc.parse(text) == nasc.parse(Path("genotypes/nasnet_a.cell").read_text())
