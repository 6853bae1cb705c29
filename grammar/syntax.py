"""The syntax tree: what the grammar recognised, with spans, before any checking.

Nodes are frozen; spans are excluded from equality (see `span_field`). The tree is deliberately
looser than the language (a block may have any number of operands, an operand may be a bare state)
so that the checker, not the parser, reports those mistakes in words.
"""

from __future__ import annotations

from nasc.diagnostics import Span, span_field
from nasc.nodes import frozen_node


@frozen_node
class Name:
    text: str
    span: Span | None = span_field()


@frozen_node
class Comment:
    text: str  # including the leading '#', trailing whitespace removed
    span: Span | None = span_field()


@frozen_node
class MetaEntry:
    key: Name
    value: str | int | float
    value_kind: str  # "string", "number", "bare" (an unquoted word) or "too_large" (past the digit limit)
    value_span: Span | None = span_field()
    span: Span | None = span_field()


@frozen_node
class Metadata:
    entries: tuple[MetaEntry, ...]
    span: Span | None = span_field()
    open_span: Span | None = span_field()
    close_span: Span | None = span_field()


@frozen_node
class Choice:
    """`[a, b, c]`: candidates where a cell names one (a space's op, input or combine)."""

    members: tuple[Name, ...]
    span: Span | None = span_field()


Pick = Name | Choice  # one name, a named set, or a list of candidates


@frozen_node
class ChoiceSet:
    """`ops = [a, b]` before a space's cells: a named list of candidate ops or combines."""

    name: Name
    choice: Choice
    span: Span | None = span_field()


@frozen_node
class Keep:
    """`keep K` after a space's node: a derived cell keeps its K strongest edges."""

    count: int
    text: str
    span: Span | None = span_field()


@frozen_node
class OpApplication:
    op: Pick
    args: tuple[Pick, ...]
    span: Span | None = span_field()


@frozen_node
class BareState:
    name: Name
    span: Span | None = span_field()


Operand = OpApplication | BareState


@frozen_node
class BlockStatement:
    target: Name
    combine: Pick
    operands: tuple[Operand, ...]
    span: Span | None = span_field()
    keep: Keep | None = None


@frozen_node
class OutputStatement:
    combine: Name
    members: tuple[Name, ...]
    span: Span | None = span_field()


Statement = BlockStatement | OutputStatement


@frozen_node
class CellDeclaration:
    kind: Name
    inputs: tuple[Name, ...]
    statements: tuple[Statement, ...]
    span: Span | None = span_field()
    header_span: Span | None = span_field()  # from the kind to the opening brace
    close_span: Span | None = span_field()


@frozen_node
class Module:
    name: Name
    metadata: Metadata | None
    cells: tuple[CellDeclaration, ...]
    comments: tuple[Comment, ...]
    header_span: Span | None = span_field()
    convention: Name | None = None  # `genotype NAME : CONVENTION`; None: the default
    kind: str = "genotype"  # the header's keyword: "genotype" (a cell file) or "space"
    sets: tuple[ChoiceSet, ...] = ()
