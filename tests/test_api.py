"""The Python API and the IR's own invariants."""

from __future__ import annotations

import pytest

import nasc
from nasc.compiler import ir

from .conftest import GENOTYPES


def test_load_parse_format_hash(nasnet_a_text: str) -> None:
    loaded = nasc.load(GENOTYPES / "nasnet_a.cell")
    parsed = nasc.parse(nasnet_a_text, filename="x.cell")
    assert loaded == parsed
    assert nasc.format(loaded) == nasnet_a_text
    assert nasc.structural_hash(loaded) == nasc.structural_hash(parsed)
    normal = loaded.cell("normal")
    assert normal.inputs == ("h0", "h1")
    assert [b.target for b in normal.blocks] == ["h2", "h3", "h4", "h5", "h6"]
    assert normal.output.members == ("h1", "h2", "h3", "h4", "h5", "h6")
    assert loaded.cell("reduction").output.members == ("h3", "h4", "h5", "h6")
    first_block = nasnet_a_text.splitlines().index("    h2 = add(sep_conv_5x5(h0), sep_conv_3x3(h1))") + 1
    assert normal.blocks[0].span.line == first_block  # spans survive into the IR


def test_one_exception_type_carries_all_diagnostics() -> None:
    with pytest.raises(nasc.NascError) as caught:
        nasc.parse("genotype t\nnormal(a, b) { x = add(foo(a), bar(b)) return concat(x) }\n")
    messages = [d.message for d in caught.value.diagnostics]
    assert messages == ["genotype `t` has no `reduction` cell", "unknown op `foo`", "unknown op `bar`"]
    assert all(isinstance(d, nasc.Diagnostic) for d in caught.value.diagnostics)


@pytest.mark.parametrize("bad", ["import os", "__init__", "class", "a-b", "1x", ""])
def test_ir_refuses_names_that_are_not_safe_identifiers(bad: str) -> None:
    with pytest.raises(ValueError):
        ir.Operand("identity", bad)
    with pytest.raises(ValueError):
        ir.MetaEntry(bad, 1)


def test_ir_refuses_malformed_structure() -> None:
    op = ir.Operand("identity", "h0")
    with pytest.raises(ValueError, match="unknown op"):
        ir.Operand("rm_rf", "h0")
    with pytest.raises(ValueError, match="needs an operand"):  # how many more is the convention's rule
        ir.Block("h2", "add", ())
    with pytest.raises(ValueError, match="before it is defined"):
        ir.Cell(
            "normal",
            ("h0", "h1"),
            (ir.Block("h2", "add", (op, ir.Operand("identity", "h3"))),),
            ir.Output(("h2",)),
        )
    with pytest.raises(ValueError, match="finite"):
        ir.MetaEntry("reward", float("nan"))
    with pytest.raises(ValueError, match="string or a number"):
        ir.MetaEntry("flag", True)


def test_ir_nodes_are_frozen(nasnet_a_text: str) -> None:
    genotype = nasc.parse(nasnet_a_text)
    with pytest.raises(AttributeError):
        genotype.name = "x"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        genotype.cells[0].blocks[0].operands[0].op = "identity"  # type: ignore[misc]


def test_nodes_keep_dataclass_behaviour_with_their_fast_constructor(nasnet_a_text: str) -> None:
    """Syntax and IR nodes are built by `frozen_node`'s own constructor: keywords, defaults,
    validation, span-blind equality, hashing, `replace` and pickling all behave as a dataclass's."""
    import dataclasses
    import pickle

    from nasc.diagnostics import Span
    from nasc.grammar import syntax as st

    operand = ir.Operand(input="h1", op="sep_conv_3x3", span=Span(3, 5, 3, 20))
    assert operand == ir.Operand("sep_conv_3x3", "h1") and operand.span == Span(3, 5, 3, 20)
    assert hash(operand) == hash(ir.Operand("sep_conv_3x3", "h1"))
    assert ir.Output(("h2",)).combine == "concat" and ir.Output(("h2",)).comments is ir.NO_COMMENTS
    assert dataclasses.replace(operand, input="h0").input == "h0"
    with pytest.raises(ValueError, match="unknown op"):
        dataclasses.replace(operand, op="rm_rf")
    with pytest.raises(TypeError):
        ir.Operand("identity")  # type: ignore[call-arg]
    assert st.Name("h0", Span(1, 1, 1, 3)) == st.Name("h0")
    genotype = nasc.parse(nasnet_a_text)
    assert pickle.loads(pickle.dumps(genotype)) == genotype
    assert not hasattr(genotype, "__dict__")  # slotted: no per-node dictionary


def test_carriage_returns_are_line_breaks_never_part_of_a_comment(nasnet_a_text: str) -> None:
    assert nasc.parse(nasnet_a_text.replace("\n", "\r\n")) == nasc.parse(nasnet_a_text)
    marker = "# The reference concatenates"
    split = nasnet_a_text.replace(marker, "# one line\r" + marker, 1)
    leading = nasc.parse(split).cell("normal").output.comments.leading
    assert leading[0] == "# one line" and leading[1].startswith(marker)
