"""Property tests: print/parse round trips over the search space, and a fuzzed parser that only
ever fails with nasc's own error."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nasc
from nasc import NascError

from .strategies import genotypes

FUZZ_EXAMPLES = int(os.environ.get("NASC_FUZZ_EXAMPLES", "3000"))


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


@settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_files_fail_only_with_nasc_errors(text: str) -> None:
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
