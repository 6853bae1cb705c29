"""The syntax tree: what the grammar recognised, with spans, before any checking.

Nodes are frozen; spans are excluded from equality (see `span_field`). The tree is deliberately
looser than the language (a block may have any number of operands, an operand may be a bare state)
so that the checker, not the parser, reports those mistakes in words.
"""

from __future__ import annotations

from dataclasses import dataclass

from nasc.diagnostics import Span, span_field


@dataclass(frozen=True)
class Name:
    text: str
    span: Span | None = span_field()


@dataclass(frozen=True)
class Comment:
    text: str  # including the leading '#', trailing whitespace removed
    span: Span | None = span_field()


@dataclass(frozen=True)
class MetaEntry:
    key: Name
    value: str | int | float
    value_kind: str  # "string", "number", "bare" (an unquoted word) or "too_large" (past the digit limit)
    value_span: Span | None = span_field()
    span: Span | None = span_field()


@dataclass(frozen=True)
class Metadata:
    entries: tuple[MetaEntry, ...]
    span: Span | None = span_field()
    open_span: Span | None = span_field()
    close_span: Span | None = span_field()


@dataclass(frozen=True)
class OpApplication:
    op: Name
    args: tuple[Name, ...]
    span: Span | None = span_field()


@dataclass(frozen=True)
class BareState:
    name: Name
    span: Span | None = span_field()


Operand = OpApplication | BareState


@dataclass(frozen=True)
class BlockStatement:
    target: Name
    combine: Name
    operands: tuple[Operand, ...]
    span: Span | None = span_field()


@dataclass(frozen=True)
class OutputStatement:
    combine: Name
    members: tuple[Name, ...]
    span: Span | None = span_field()


Statement = BlockStatement | OutputStatement


@dataclass(frozen=True)
class CellDeclaration:
    kind: Name
    inputs: tuple[Name, ...]
    statements: tuple[Statement, ...]
    span: Span | None = span_field()
    header_span: Span | None = span_field()  # from the kind to the opening brace
    close_span: Span | None = span_field()


@dataclass(frozen=True)
class Module:
    name: Name
    metadata: Metadata | None
    cells: tuple[CellDeclaration, ...]
    comments: tuple[Comment, ...]
    header_span: Span | None = span_field()
    convention: Name | None = None  # `genotype NAME : CONVENTION`; None: the default
