"""A fast path for the layout nearly every .cell file has: one statement per line.

The grammar (`cell.lark`) defines the language and Lark parses it; but Lark's LALR loop costs a few
microseconds per token, and bulk work (a search writing and re-reading 20,000 cells, deduplicating
a NAS-Bench-sized set of 423k) reads mostly machine-written files in canonical layout. This
recognizer matches such a file one statement at a time, each statement with one regular expression
built from the grammar's own terminals, and returns exactly the syntax tree, spans included, that
the Lark parser returns for it. Anything else — a statement split over lines, a comment inside one,
an unusual operand, any error — returns None, and Lark parses the file (and explains its errors).
The tests hold the two to the same tree on every text they generate, valid or not.
"""

from __future__ import annotations

import re

from nasc.diagnostics import Span
from nasc.grammar import syntax as st

_SPACE = r"[ \t]*"
# Between statements: layout and whole comments. Statements themselves stay on one line.
_GAP = r"(?:[ \t\n]+|#[^\n]*)*+"


def _atomic(pattern: str) -> str:
    """A token as the lexer takes it: longest match, never given back to make a statement fit."""
    return f"(?>{pattern})"


class LineRecognizer:
    """Built once from the grammar's terminals (NAME, STRING, NUMBER) and its reserved words."""

    def __init__(self, terminals: dict[str, str], keywords: frozenset[str]) -> None:
        name = _atomic(terminals["NAME"])
        names = f"{name}(?:{_SPACE},{_SPACE}{name})*"
        self.keywords = keywords
        self.name = re.compile(name)
        compile_ = lambda body: re.compile(_GAP + body)  # noqa: E731
        self.header = compile_(
            rf"(?P<keyword>genotype)[ \t]+(?P<name>{name})(?:{_SPACE}:{_SPACE}(?P<convention>{name}))?"
        )
        self.meta_open = compile_(rf"(?P<keyword>meta){_SPACE}(?P<brace>\{{)")
        self.meta_entry = compile_(
            rf"(?P<key>{name}){_SPACE}={_SPACE}(?:(?P<string>{_atomic(terminals['STRING'])})"
            rf"|(?P<number>{_atomic(terminals['NUMBER'])})|(?P<bare>{name}))"
        )
        self.cell_open = compile_(
            rf"(?P<kind>{name}){_SPACE}\({_SPACE}(?P<inputs>{names})?{_SPACE}\){_SPACE}(?P<brace>\{{)"
        )
        operand = rf"(?P<op{{i}}>{name}){_SPACE}\({_SPACE}(?P<arg{{i}}>{name}){_SPACE}(?P<close{{i}}>\))"
        self.block = compile_(
            rf"(?P<target>{name}){_SPACE}={_SPACE}(?P<combine>{name}){_SPACE}\({_SPACE}"
            + operand.format(i=0)
            + rf"{_SPACE},{_SPACE}"
            + operand.format(i=1)
            + rf"{_SPACE}(?P<close>\))"
        )
        self.output = compile_(
            rf"(?P<keyword>return)[ \t]+(?P<combine>{name}){_SPACE}\({_SPACE}(?P<members>{names})?"
            rf"{_SPACE}(?P<close>\))"
        )
        self.close = compile_(r"(?P<brace>\})")
        self.end = re.compile(_GAP + r"\Z")

    def recognize(self, text: str, value_of) -> st.Module | None:
        """The syntax tree of `text`, or None where Lark must parse it. `value_of(kind, token)` turns
        a metadata value token into (value, value_kind), as the Lark transformer does."""
        if "\r" in text or "\f" in text:
            return None
        reader = _Reader(text, self.keywords)
        found = reader.next(self.header)
        if found is None:
            return None
        keyword = reader.span(found, "keyword")
        name = reader.name(found, "name")
        convention = reader.name(found, "convention") if found.group("convention") else None
        header_span = _join(keyword, (convention or name).span)
        metadata = None
        found = reader.next(self.meta_open)
        if found is not None:
            metadata = self._metadata(reader, found, value_of)
            if metadata is None:
                return None
        cells = []
        while (found := reader.next(self.cell_open)) is not None:
            cell = self._cell(reader, found)
            if cell is None:
                return None
            cells.append(cell)
        if reader.bad or self.end.match(text, reader.position) is None:
            return None
        return st.Module(name, metadata, tuple(cells), (), header_span, convention)

    def _metadata(self, reader: _Reader, opened: re.Match, value_of) -> st.Metadata | None:
        keyword, open_span = reader.span(opened, "keyword"), reader.span(opened, "brace")
        entries = []
        while (found := reader.next(self.meta_entry)) is not None:
            key = reader.name(found, "key")
            kind = found.lastgroup
            if kind == "bare" and found.group(kind) in self.keywords:
                return None
            value_span = reader.span(found, kind)
            value, value_kind = value_of(kind, found.group(kind))
            entries.append(st.MetaEntry(key, value, value_kind, value_span, _join(key.span, value_span)))
        closed = reader.next(self.close)
        if closed is None:
            return None
        close_span = reader.span(closed, "brace")
        return st.Metadata(tuple(entries), _join(keyword, close_span), open_span, close_span)

    def _cell(self, reader: _Reader, opened: re.Match) -> st.CellDeclaration | None:
        kind = reader.name(opened, "kind")
        inputs = reader.names(opened, "inputs", self.name)
        header_span = _join(kind.span, reader.span(opened, "brace"))
        statements: list[st.Statement] = []
        block, output = self.block, self.output
        while True:
            if (found := reader.next(block)) is not None:
                statements.append(reader.block(found))
            elif (found := reader.next(output)) is not None:
                span = _join(reader.span(found, "keyword"), reader.span(found, "close"))
                members = reader.names(found, "members", self.name)
                statements.append(st.OutputStatement(reader.name(found, "combine"), members, span))
            else:
                break
        closed = reader.next(self.close)
        if closed is None:
            return None
        close_span = reader.span(closed, "brace")
        return st.CellDeclaration(
            kind, inputs, tuple(statements), _join(kind.span, close_span), header_span, close_span
        )


_new_span = tuple.__new__  # Span(...) without NamedTuple's argument handling: half the time


def _join(first: Span, last: Span) -> Span:
    return _new_span(Span, (first[0], first[1], last[2], last[3]))


class _Reader:
    """The position in the text, the line it is on, and spans of what the last match found. Every
    statement is on one line, so one line number serves all of its tokens."""

    def __init__(self, text: str, keywords: frozenset[str]) -> None:
        self.text, self.keywords = text, keywords
        self.position, self.line, self.line_start = 0, 1, 0
        self.bad = False  # a reserved word where a name belongs

    def next(self, pattern: re.Pattern) -> re.Match | None:
        found = pattern.match(self.text, self.position)
        if found is None:
            return None
        start = found.start(1)  # every statement's pattern opens with a group: its first token
        newlines = self.text.count("\n", self.position, start)
        if newlines:
            self.line += newlines
            self.line_start = self.text.rfind("\n", self.position, start) + 1
        self.position = found.end()
        return found

    def block(self, found: re.Match) -> st.BlockStatement:
        """`target = combine(op(arg), op(arg))`, the statement of almost every line: built from the
        match's group offsets at once (groups in pattern order; a file holds thousands of them), with
        every call but the nodes' own inlined."""
        (_, _), target, combine, op0, arg0, close0, op1, arg1, close1, close = found.regs
        texts = found.groups()
        if self.keywords.intersection(texts):
            self.bad = True
        line, offset, name, new = self.line, self.line_start - 1, st.Name, tuple.__new__
        operands = (
            st.OpApplication(
                name(texts[2], new(Span, (line, op0[0] - offset, line, op0[1] - offset))),
                (name(texts[3], new(Span, (line, arg0[0] - offset, line, arg0[1] - offset))),),
                new(Span, (line, op0[0] - offset, line, close0[1] - offset)),
            ),
            st.OpApplication(
                name(texts[5], new(Span, (line, op1[0] - offset, line, op1[1] - offset))),
                (name(texts[6], new(Span, (line, arg1[0] - offset, line, arg1[1] - offset))),),
                new(Span, (line, op1[0] - offset, line, close1[1] - offset)),
            ),
        )
        return st.BlockStatement(
            name(texts[0], new(Span, (line, target[0] - offset, line, target[1] - offset))),
            name(texts[1], new(Span, (line, combine[0] - offset, line, combine[1] - offset))),
            operands,
            new(Span, (line, target[0] - offset, line, close[1] - offset)),
        )

    def span(self, found: re.Match, group: str) -> Span:
        start, end = found.span(group)
        column = start - self.line_start + 1
        return _new_span(Span, (self.line, column, self.line, column + end - start))

    def name(self, found: re.Match, group: str) -> st.Name:
        text = found.group(group)
        if text in self.keywords:
            self.bad = True
        return st.Name(text, self.span(found, group))

    def names(self, found: re.Match, group: str, name: re.Pattern) -> tuple[st.Name, ...]:
        listed = found.group(group)
        if not listed:
            return ()
        offset = found.start(group) - self.line_start + 1
        result = []
        for each in name.finditer(listed):
            text, column = each.group(), offset + each.start()
            if text in self.keywords:
                self.bad = True
            result.append(st.Name(text, _new_span(Span, (self.line, column, self.line, column + len(text)))))
        return tuple(result)
