"""Text to syntax tree. The Lark parser is built once; Lark's exceptions stop here and become
nasc diagnostics whose expected-token sets are written in words."""

from __future__ import annotations

import functools
import re
from dataclasses import replace
from importlib import resources

from lark import Lark, Token, Transformer
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedInput, UnexpectedToken
from lark.lexer import Lexer

from nasc.diagnostics import Diagnostic, NascError, Span, printable
from nasc.grammar import syntax as st
from nasc.grammar.lines import LineRecognizer

# Terminal names as a person would say them.
TOKEN_WORDS = {
    "NAME": "a name",
    "STRING": "a string",
    "NUMBER": "a number",
    "LPAR": "`(`",
    "RPAR": "`)`",
    "COMMA": "`,`",
    "COLON": "`:`",
    "EQUAL": "`=`",
    "LBRACE": "`{`",
    "RBRACE": "`}`",
    "GENOTYPE": "`genotype`",
    "META": "`meta`",
    "RETURN": "`return`",
    "SPACE": "`space`",
    "KEEP": "`keep`",
    "LSQB": "`[`",
    "RSQB": "`]`",
    "$END": "the end of the file",
}

BLOCK_SHAPE = "a block reads `state = combine(op(input), op(input))`"


def _span(token: Token) -> Span:
    return Span(token.line, token.column, token.end_line, token.end_column)


def _between(first, last) -> Span:
    """The span from the start of `first` to the end of `last` (tokens or nodes)."""
    a = first.span if hasattr(first, "span") else _span(first)
    b = last.span if hasattr(last, "span") else _span(last)
    return Span(a.line, a.column, b.end_line, b.end_column)


def _name(token: Token) -> st.Name:
    return st.Name(token.value, _span(token))


def _pick(child) -> st.Pick:
    return child if isinstance(child, st.Choice) else _name(child)


def _names(children) -> tuple[st.Name, ...]:
    return tuple(_name(c) for c in children if isinstance(c, Token) and c.type == "NAME")


def _unescape(literal: str) -> str:
    return re.sub(
        r"\\(.)", lambda m: {"n": "\n", "t": "\t", "r": "\r"}.get(m.group(1), m.group(1)), literal[1:-1]
    )


def _meta_value(kind: str, text: str) -> tuple[str | int | float, str]:
    """A metadata value token's value and kind (`string`, `number`, `bare` or `too_large`)."""
    if kind == "string":
        return _unescape(text), "string"
    if kind == "bare":
        return text, "bare"
    if re.fullmatch(r"[+-]?\d+", text) is None:
        return float(text), "number"
    try:
        return int(text), "number"
    except ValueError:  # past Python's digit limit: the checker reports it at its line:col
        return text[:20] + "…", "too_large"


class _ToSyntaxTree(Transformer):
    """Runs inside the LALR parser (no intermediate tree). With keep_all_tokens every rule sees its
    punctuation too, which gives each node its exact span."""

    def start(self, children):
        header, *rest = children
        metadata = rest[0] if rest and isinstance(rest[0], st.Metadata) else None
        cells = tuple(c for c in rest if isinstance(c, st.CellDeclaration))
        sets = tuple(c for c in rest if isinstance(c, st.ChoiceSet))
        name, convention, span, kind = header
        return st.Module(name, metadata, cells, (), span, convention, kind, sets)

    def header(self, children):
        convention = _name(children[3]) if len(children) == 4 else None
        return (_name(children[1]), convention, _between(children[0], children[-1]), children[0].value)

    def choice_set(self, children):
        name, _equal, choice = children
        return st.ChoiceSet(_name(name), choice, _between(name, choice))

    def choice(self, children):
        return st.Choice(_names(children[1:-1]), _between(children[0], children[-1]))

    def keep(self, children):
        keyword, number = children
        text = number.value
        count = int(text) if re.fullmatch(r"\d{1,6}", text) else -1  # the checker says what is wrong
        return st.Keep(count, text, _between(keyword, number))

    def metadata(self, children):
        _meta, open_brace, *entries, close_brace = children
        return st.Metadata(
            tuple(entries), _between(children[0], close_brace), _span(open_brace), _span(close_brace)
        )

    def meta_entry(self, children):
        key, _equal, (value, kind, value_span) = children
        return st.MetaEntry(_name(key), value, kind, value_span, Span(key.line, key.column, *value_span[2:]))

    def string_value(self, children):
        return (*_meta_value("string", children[0].value), _span(children[0]))

    def number_value(self, children):
        return (*_meta_value("number", children[0].value), _span(children[0]))

    def bare_value(self, children):
        return (*_meta_value("bare", children[0].value), _span(children[0]))

    def cell(self, children):
        kind = children[0]
        brace_at = next(i for i, c in enumerate(children) if isinstance(c, Token) and c.type == "LBRACE")
        open_brace, close_brace = children[brace_at], children[-1]
        statements = tuple(children[brace_at + 1 : -1])
        return st.CellDeclaration(
            _name(kind),
            _names(children[1:brace_at]),
            statements,
            _between(kind, close_brace),
            _between(kind, open_brace),
            _span(close_brace),
        )

    def block(self, children):
        keep = children[-1] if isinstance(children[-1], st.Keep) else None
        if keep is not None:
            children = children[:-1]
        target, _equal, combine, _open, *operands, _close = children
        operands = tuple(o for o in operands if not isinstance(o, Token))
        return st.BlockStatement(
            _name(target), _pick(combine), operands, _between(target, keep or _close), keep
        )

    def output(self, children):
        keyword, combine, _open, *members, close = children
        return st.OutputStatement(_name(combine), _names(members), _between(keyword, close))

    def op_application(self, children):
        op, _open, *args, close = children
        picks = tuple(_pick(a) for a in args if isinstance(a, st.Choice) or a.type == "NAME")
        return st.OpApplication(_pick(op), picks, _between(op, close))

    def bare_state(self, children):
        name = _name(children[0])
        return st.BareState(name, name.span)


def _token(
    kind: str, value: str, start: int, line: int, column: int, end_column: int, end: int, _new=str.__new__
) -> Token:
    """Token(...) without its constructor's compatibility shim: 2.5x faster, same object."""
    token = _new(Token, value)
    token.type, token.value, token.start_pos, token.end_pos = kind, value, start, end
    token.line, token.column, token.end_line, token.end_column = line, column, line, end_column
    return token


class _CellLexer(Lexer):
    """One master regex over the grammar's own terminals: several times faster than Lark's lexer
    on cell files, which matters when a search writes and re-reads 20,000 of them. `genotype`,
    `meta` and `return` are reserved words."""

    def __init__(self, lexer_conf) -> None:
        terminals = {t.name: t.pattern.to_regexp() for t in lexer_conf.terminals}
        self.keywords = {
            t.pattern.value: t.name
            for t in lexer_conf.terminals
            if t.pattern.type == "str" and re.fullmatch(terminals["NAME"], t.pattern.value)
        }
        # Layout and comments are skipped by the same match that finds the next token.
        skip = (
            "(?:" + "|".join(terminals[name] for name in lexer_conf.ignore) + ")*+"
        )  # possessive: never give back
        order = ["STRING", "NUMBER", "NAME"]
        order += sorted(
            name
            for name in terminals
            if name not in order and name not in lexer_conf.ignore and name not in self.keywords.values()
        )
        self.master = re.compile(
            skip + "(?:" + "|".join(f"(?P<{name}>{terminals[name]})" for name in order) + ")"
        )
        self.skip = re.compile(skip)

    def lex(self, text: str, parser_state=None):
        match, keywords = self.master.match, self.keywords
        position, line, line_start, size = 0, 1, 0, len(text)
        while True:
            found = match(text, position)
            if found is None:
                position = self.skip.match(text, position).end()
                if position >= size:
                    return
                line = text.count("\n", 0, position) + 1
                line_start = text.rfind("\n", 0, position) + 1
                raise UnexpectedCharacters(text, position, line, position - line_start + 1)
            kind = found.lastgroup
            start = found.start(kind)
            newlines = text.count("\n", position, start)
            if newlines:
                line += newlines
                line_start = text.rfind("\n", position, start) + 1
            value = found.group(kind)
            if kind == "NAME":
                kind = keywords.get(value, kind)
            column = start - line_start + 1
            position = found.end()
            yield _token(kind, value, start, line, column, column + len(value), position)


@functools.cache
def _lark() -> Lark:
    grammar = resources.files("nasc.grammar").joinpath("cell.lark").read_text(encoding="utf-8")
    return Lark(
        grammar,
        parser="lalr",
        lexer=_CellLexer,
        keep_all_tokens=True,
        maybe_placeholders=False,
        transformer=_ToSyntaxTree(),
    )


@functools.cache
def _recognizer() -> LineRecognizer:
    lexer_conf = _lark().lexer_conf
    terminals = {t.name: t.pattern.to_regexp() for t in lexer_conf.terminals}
    return LineRecognizer(terminals, frozenset(_CellLexer(lexer_conf).keywords))


# Strings cannot span lines, so this finds exactly the comments the lexer skipped.
_COMMENT_OR_STRING = re.compile(r'"(?:[^"\\\x00-\x1f]|\\.)*"|#[^\n]*')


def _comments(text: str) -> tuple[st.Comment, ...]:
    if "#" not in text:  # machine-written files: no scan
        return ()
    found = []
    line, scanned = 1, 0
    for match in _COMMENT_OR_STRING.finditer(text):
        if not match.group().startswith("#"):
            continue
        line += text.count("\n", scanned, match.start())
        scanned = match.start()
        column = match.start() - (text.rfind("\n", 0, match.start()) + 1) + 1
        body = match.group().rstrip()
        found.append(st.Comment(body, Span(line, column, line, column + len(body))))
    return tuple(found)


def parse_syntax(text: str, filename: str = "<input>") -> st.Module:
    """Parse text into a syntax tree, or raise NascError with one syntax diagnostic."""
    module = _recognizer().recognize(text, _meta_value)
    try:
        if module is None:
            module = _lark().parse(text)
    except UnexpectedInput as error:
        raise NascError([_syntax_diagnostic(error, text, filename)], text) from None
    except LarkError as error:  # any other Lark failure is still a syntax problem of this file
        raise NascError([Diagnostic(f"could not parse: {error}", filename=filename)], text) from None
    comments = _comments(text)
    if not comments:
        return module
    return replace(module, comments=comments)


# What only a search space writes; a cell file's syntax errors do not offer it.
SPACE_ONLY = {"KEEP", "LSQB"}
_SPACE_HEADER = re.compile(r"(?:\s|#[^\n]*)*space\b")


def _describe(token: Token) -> str:
    if token.type == "$END":
        return "the end of the file"
    return f"`{token}`"


def _expected_words(expected: set[str]) -> str:
    words = sorted({TOKEN_WORDS.get(name, f"`{name.lower()}`") for name in expected})
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " or " + words[-1]


def _hint(expected: set[str], token: Token) -> str:
    if expected == {"GENOTYPE", "SPACE"}:
        return "a .cell file starts with `genotype NAME` (a search space: `space NAME`)"
    if token.type in ("NUMBER", "STRING") and "NAME" in expected:
        return "names start with a letter or `_` and hold letters, digits and `_`"
    if "RPAR" in expected and "COMMA" in expected:
        return "separate arguments with `,` and close the list with `)`"
    if "RBRACE" in expected and "RETURN" in expected:
        return f"{BLOCK_SHAPE}; the cell ends with `return concat(...)` and `}}`"
    if "EQUAL" in expected:
        return (
            'a metadata entry reads `key = "text"` or `key = 1.5`'
            if "STRING" not in expected
            else BLOCK_SHAPE
        )
    if "LPAR" in expected:
        return BLOCK_SHAPE
    if "STRING" in expected:
        return 'metadata values are strings in double quotes or numbers, e.g. `paper = "Zoph et al. 2018"`'
    return "a cell reads `normal(h0, h1) { ... }` with one block per line"


def _previous_token_end(text: str, offset: int) -> Span | None:
    """Where the last token before `offset` ends, to point at a missing token after it."""
    last = None
    for token in _CellLexer(_lark().lexer_conf).lex(text[:offset]):
        last = token
    if last is None:
        return None
    return Span(last.end_line, last.end_column, last.end_line, last.end_column + 1)


def _syntax_diagnostic(error: UnexpectedInput, text: str, filename: str) -> Diagnostic:
    if isinstance(error, UnexpectedCharacters):
        char = text[error.pos_in_stream] if error.pos_in_stream < len(text) else ""
        span = Span(error.line, error.column, error.line, error.column + 1)
        if char == '"':
            return Diagnostic(
                "unterminated string",
                span,
                filename,
                hint='strings are written in double quotes on one line; escape `"` as `\\"`',
            )
        shown = (
            char
            if char.isprintable()
            else printable(char)
            if printable(char) != char
            else f"U+{ord(char):04X}"
        )
        return Diagnostic(
            f"unexpected character `{shown}`",
            span,
            filename,
            hint="names hold letters, digits and `_`; comments start with `#`",
        )
    if isinstance(error, UnexpectedToken):
        token = error.token
        expected = set(error.expected) or set(getattr(error, "accepts", ()) or ())
        if not _SPACE_HEADER.match(text):  # a cell file is not told of what only spaces hold
            expected = expected - SPACE_ONLY or expected
        message = f"unexpected {_describe(token)}, expected {_expected_words(expected)}"
        span = None
        # A token that could begin a line, found at the start of one, means the line above is unfinished.
        starts_line = token.type in ("NAME", "RETURN", "RBRACE", "META") and _starts_line(text, token)
        if token.type == "$END" or starts_line:
            span = _previous_token_end(text, token.start_pos if token.type != "$END" else len(text))
            if span is not None:
                message = f"expected {_expected_words(expected)} after this"
                if token.type != "$END":
                    message += f", found {_describe(token)} on line {token.line}"
        if span is None:
            line = token.line or 1
            column = token.column or 1
            span = Span(line, column, token.end_line or line, (token.end_column or column + 1))
        return Diagnostic(message, span, filename, hint=_hint(expected, token))
    return Diagnostic(f"syntax error: {error}", None, filename)


def _starts_line(text: str, token: Token) -> bool:
    line_start = text.rfind("\n", 0, token.start_pos) + 1
    return text[line_start : token.start_pos].strip() == "" and token.start_pos > 0 and line_start > 0
