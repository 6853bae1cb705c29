"""One test per diagnostic: message, line and column, as a user reads them."""

from __future__ import annotations

import pytest

import nasc
from nasc import NascError

from .conftest import cell_text

OK_REDUCTION = "reduction(h0, h1) {\n  h2 = add(identity(h0), identity(h1))\n  return concat(h2)\n}\n"


def diagnose(text: str) -> list[tuple[str, int, int, str | None]]:
    with pytest.raises(NascError) as caught:
        nasc.parse(text, "t.cell")
    return [
        (d.message, d.span.line if d.span else 0, d.span.column if d.span else 0, d.hint)
        for d in caught.value.diagnostics
    ]


def only(text: str) -> tuple[str, int, int, str | None]:
    found = diagnose(text)
    assert len(found) == 1, found
    return found[0]


# (source, expected message, line, column, expected hint fragment)
CASES = {
    "syntax_missing_paren": (
        cell_text("h2 = add(identity(h0), identity(h1)\nreturn concat(h2)"),
        "expected `)` or `,` after this, found `return` on line 4",
        3,
        36,
        "close the list with `)`",
    ),
    "syntax_unexpected_token": (
        cell_text("h2 = add(identity(h0), identity(h1)))\nreturn concat(h2)"),
        "unexpected `)`, expected `return`, `}` or a name",
        3,
        37,
        "a block reads",
    ),
    "syntax_missing_header": (
        "normal(h0, h1) {\n}\n",
        "unexpected `normal`, expected `genotype`",
        1,
        1,
        "starts with `genotype NAME`",
    ),
    "syntax_unexpected_character": (
        cell_text("h2 = add(identity(h0), identity(h1)) @\nreturn concat(h2)"),
        "unexpected character `@`",
        3,
        38,
        "comments start with `#`",
    ),
    "syntax_unterminated_string": (
        'genotype t\nmeta { paper = "Zoph\n}\n',
        "unterminated string",
        2,
        16,
        "double quotes on one line",
    ),
    "syntax_truncated": (
        "genotype t\nnormal(h0, h1) {\n  h2 = add(",
        "expected `)` or a name after this",
        3,
        12,
        None,
    ),
    "syntax_number_as_name": (
        cell_text("2h = add(identity(h0), identity(h1))\nreturn concat(h2)"),
        "unexpected `2`, expected `return`, `}` or a name",
        3,
        1,
        "names start with a letter",
    ),
    "undefined_name": (
        cell_text("h2 = add(identity(h0), identity(h7))\nreturn concat(h2)"),
        "`h7` is not defined",
        3,
        33,
        "defined here: h0, h1",
    ),
    "undefined_name_did_you_mean": (
        cell_text("h2 = add(identity(h0), identity(hh1))\nreturn concat(h2)"),
        "`hh1` is not defined",
        3,
        33,
        "did you mean `h1`?",
    ),
    "defined_twice": (
        cell_text(
            "h2 = add(identity(h0), identity(h1))\nh2 = add(identity(h0), identity(h2))\nreturn concat(h2)"
        ),
        "`h2` is defined twice",
        4,
        1,
        "first defined on line 3",
    ),
    "input_shadowed": (
        cell_text("h1 = add(identity(h0), identity(h0))\nreturn concat(h1)"),
        "`h1` is defined twice",
        3,
        1,
        "first defined on line 2",
    ),
    "used_before_defined": (
        cell_text(
            "h2 = add(identity(h0), identity(h3))\nh3 = add(identity(h0), identity(h1))\n"
            "return concat(h2, h3)"
        ),
        "`h3` is used before it is defined",
        3,
        33,
        "defined on line 4",
    ),
    "unknown_op": (
        cell_text("h2 = add(sep_conv_3x4(h0), identity(h1))\nreturn concat(h2)"),
        "unknown op `sep_conv_3x4`",
        3,
        10,
        "did you mean `sep_conv_3x3`?",
    ),
    "combine_used_as_op": (
        cell_text("h2 = add(concat(h0), identity(h1))\nreturn concat(h2)"),
        "unknown op `concat`",
        3,
        10,
        "`concat` is a combine",
    ),
    "unknown_combine": (
        cell_text("h2 = ad(identity(h0), identity(h1))\nreturn concat(h2)"),
        "unknown combine `ad`",
        3,
        6,
        "did you mean `add`?",
    ),
    "op_used_as_combine": (
        cell_text("h2 = identity(identity(h0), identity(h1))\nreturn concat(h2)"),
        "unknown combine `identity`",
        3,
        6,
        "`identity` is an op",
    ),
    "combine_arity": (
        cell_text("h2 = add(identity(h0))\nreturn concat(h2)"),
        "`add` takes 2 operands, got 1",
        3,
        1,
        "a block reads",
    ),
    "op_arity": (
        cell_text("h2 = add(identity(h0, h1), identity(h1))\nreturn concat(h2)"),
        "`identity` takes 1 input, got 2",
        3,
        10,
        "exactly one state",
    ),
    "operand_without_op": (
        cell_text("h2 = add(h0, identity(h1))\nreturn concat(h2)"),
        "operand `h0` has no op",
        3,
        10,
        "`identity(h0)`",
    ),
    "dead_block": (
        cell_text(
            "h2 = add(identity(h0), identity(h1))\nh3 = add(identity(h0), identity(h1))\nreturn concat(h2)"
        ),
        "block `h3` never reaches the cell output",
        4,
        1,
        "add `h3` to `return concat(...)`",
    ),
    "output_undefined": (
        cell_text("h2 = add(identity(h0), identity(h1))\nreturn concat(h2, h9)"),
        "`h9` is not defined",
        4,
        19,
        None,
    ),
    "output_not_concat": (
        cell_text("h2 = add(identity(h0), identity(h1))\nreturn add(h2)"),
        "a cell output is a `concat`, not `add`",
        4,
        8,
        "channel concatenation",
    ),
    "output_empty": (
        cell_text("h2 = add(identity(h0), identity(h1))\nreturn concat()"),
        "the cell output is empty",
        4,
        1,
        "name at least one state",
    ),
    "output_duplicate_member": (
        cell_text("h2 = add(identity(h0), identity(h1))\nreturn concat(h2, h2)"),
        "`h2` appears twice in the output",
        4,
        19,
        "list each state once",
    ),
    "no_output": (
        cell_text("h2 = add(identity(h0), identity(h1))"),
        "cell `normal` has no output",
        4,
        1,
        "end the cell with `return concat(...)`",
    ),
    "two_outputs": (
        cell_text("h2 = add(identity(h0), identity(h1))\nreturn concat(h2)\nreturn concat(h2)"),
        "a cell has one output",
        5,
        1,
        "merge the states",
    ),
    "block_after_output": (
        cell_text(
            "h2 = add(identity(h0), identity(h1))\nreturn concat(h2)\nh3 = add(identity(h0), identity(h1))"
        ),
        "block `h3` comes after the cell's output",
        5,
        1,
        "`return` ends the cell",
    ),
    "empty_cell": (
        "genotype t\nnormal(h0, h1) {\n}\n" + OK_REDUCTION,
        "cell `normal` is empty",
        2,
        1,
        "a block reads",
    ),
    "cell_kind_twice": (
        cell_text("h2 = add(identity(h0), identity(h1))\nreturn concat(h2)")
        + "normal(h0, h1) {\n  h2 = add(identity(h0), identity(h1))\n  return concat(h2)\n}\n",
        "cell `normal` is given twice",
        10,
        1,
        "the first `normal` cell is on line 2",
    ),
    "unknown_cell_kind": (
        "genotype t\nnormal(h0, h1) {\n  h2 = add(identity(h0), identity(h1))\n  return concat(h2)\n}\n"
        + OK_REDUCTION.replace("reduction", "reduce", 1)
        + OK_REDUCTION,
        "unknown cell kind `reduce`",
        6,
        1,
        "did you mean `reduction`?",
    ),
    "missing_cell_kind": (
        "genotype t\nnormal(h0, h1) {\n  h2 = add(identity(h0), identity(h1))\n  return concat(h2)\n}\n",
        "genotype `t` has no `reduction` cell",
        1,
        10,
        "needs `normal` and `reduction`",
    ),
    "wrong_input_count": (
        "genotype t\nnormal(h0) {\n  h2 = add(identity(h0), identity(h0))\n  return concat(h2)\n}\n"
        + OK_REDUCTION,
        "cell `normal` declares 1 input(s); nasnet cells take 2",
        2,
        1,
        "declare `normal(h0, h1)`",
    ),
    "keyword_identifier": (
        cell_text("lambda = add(identity(h0), identity(h1))\nreturn concat(lambda)"),
        "state name `lambda` is a Python keyword",
        3,
        1,
        "choose another name",
    ),
    "dunder_identifier": (
        cell_text("__class__ = add(identity(h0), identity(h1))\nreturn concat(__class__)"),
        "state name `__class__` starts with `__`, which is reserved",
        3,
        1,
        "choose another name",
    ),
    "keyword_genotype_name": (
        cell_text("h2 = add(identity(h0), identity(h1))\nreturn concat(h2)", header="genotype None"),
        "genotype name `None` is a Python keyword",
        1,
        10,
        None,
    ),
    "metadata_bare_word": (
        "genotype t\nmeta {\n  paper = Zoph\n}\n",
        "metadata value `Zoph` is not a string or a number",
        3,
        11,
        'put text in double quotes: `paper = "Zoph"`',
    ),
    "metadata_infinite_number": (
        "genotype t\nmeta {\n  reward = 1e999\n}\n",
        "metadata number is too large",
        3,
        12,
        "finite",
    ),
    "metadata_key_twice": (
        "genotype t\nmeta {\n  seed = 1\n  seed = 2\n}\n",
        "metadata key `seed` is given twice",
        4,
        3,
        "line 3",
    ),
    "metadata_dunder_key": (
        'genotype t\nmeta {\n  __import__ = "os"\n}\n',
        "metadata key `__import__` starts with `__`",
        3,
        3,
        None,
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_diagnostic(case: str) -> None:
    text, message, line, column, hint = CASES[case]
    found = diagnose(text)
    matching = [d for d in found if d[0].startswith(message)]
    assert matching, f"no diagnostic starting {message!r} in {found}"
    _message, got_line, got_column, got_hint = matching[0]
    assert (got_line, got_column) == (line, column), found
    if hint is not None:
        assert got_hint is not None and hint in got_hint


def test_every_error_in_a_file_is_reported_in_source_order() -> None:
    text = cell_text(
        "h2 = add(sep_conv_3x4(h0), identity(h9))\nh3 = ad(identity(h0), identity(h1))\nreturn concat(h2, h3)"
    )
    found = diagnose(text)
    assert [d[0] for d in found] == [
        "unknown op `sep_conv_3x4`",
        "`h9` is not defined",
        "unknown combine `ad`",
    ]
    assert [(d[1], d[2]) for d in found] == sorted((d[1], d[2]) for d in found)


def test_dead_block_is_not_reported_on_a_cell_that_is_already_broken() -> None:
    found = diagnose(
        cell_text(
            "h2 = add(identity(h0), identity(h9))\nh3 = add(identity(h0), identity(h1))\nreturn concat(h3)"
        )
    )
    assert [d[0] for d in found] == ["`h9` is not defined"]


def test_rendered_diagnostic_has_location_source_line_caret_and_hint() -> None:
    text = cell_text("h2 = add(sep_conv_3x4(h0), identity(h1))\nreturn concat(h2)")
    with pytest.raises(NascError) as caught:
        nasc.parse(text, "cells/t.cell")
    assert caught.value.render() == (
        "cells/t.cell:3:10: error: unknown op `sep_conv_3x4`\n"
        "  |\n"
        "3 | h2 = add(sep_conv_3x4(h0), identity(h1))\n"
        "  |          ^^^^^^^^^^^^\n"
        "  = hint: did you mean `sep_conv_3x3`?"
    )


def test_empty_text_is_one_clear_error() -> None:
    with pytest.raises(NascError) as caught:
        nasc.parse("  \n# only a comment\n" * 0 + "\n\n", "e.cell")
    assert caught.value.diagnostics[0].headline() == "e.cell: error: the file is empty"
