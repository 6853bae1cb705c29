"""The base layer: source spans, diagnostics and their rendering (location, the line, a caret, a hint),
and the one error type for bad input.

Everything else builds on this module and it imports nothing of nasc, so the layers read bottom-up:
diagnostics → grammar → compiler → runtime → cli.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

# A file with thousands of mistakes gets the first ones, like rustc; the rest are counted.
MAX_DIAGNOSTICS = 20


class Span(NamedTuple):
    """A region of a source file. Lines and columns are 1-based; `end_column` is exclusive.

    The file name is not part of a span: a diagnostic names its file once. (A NamedTuple, not a
    dataclass: the parser makes thousands per second.)
    """

    line: int
    column: int
    end_line: int
    end_column: int


def span_field() -> Span | None:
    """Spans travel with nodes but never take part in equality, so trees compare by content."""
    return field(default=None, compare=False, repr=False, hash=False)


# What a terminal would act on rather than print: C0 controls but tab and newline, DEL, C1 controls,
# and the line/paragraph separators and bidirectional overrides that reorder or split what is shown.
# Lone surrogates are the bytes of a file name that is not UTF-8 (Python's surrogateescape).
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def _escape(char: str) -> str:
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte of a file name
        code -= 0xDC00
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str, *, keep_newlines: bool = True) -> str:
    """Text from a file, made inert for a terminal: control characters and escape sequences are
    shown as `\\x1b`-style escapes, so a file cannot retitle, recolour or rewrite the screen."""
    escaped = _UNSAFE.sub(lambda m: _escape(m.group()), text)
    return escaped if keep_newlines else escaped.replace("\n", "\\n")


# A name from a file (an identifier, an op, a tensor) is shown up to this many characters, and a whole
# message or hint up to MAX_SHOWN_TEXT: the rest is an ellipsis and a count, whatever the file holds.
MAX_SHOWN_WORD = 80
MAX_SHOWN_TEXT = 600
_LONG_WORD = re.compile(rf"[^\s`'\"]{{{MAX_SHOWN_WORD + 1},}}")


def name_list(names: Iterable[str], shown: int = 10) -> str:
    """`a, b, c` — or, past `shown` names, the first ones and how many more."""
    names = list(names)
    if len(names) <= shown:
        return ", ".join(names)
    return f"{', '.join(names[:shown])} and {len(names) - shown:,} more"


def clip(text: str) -> str:
    """Text for one line of a message, bounded: each overlong word, then the whole, cut short."""
    if len(text) <= MAX_SHOWN_WORD:
        return text
    text = _LONG_WORD.sub(lambda m: _cut(m.group(), MAX_SHOWN_WORD - 20), text)
    return _cut(text, MAX_SHOWN_TEXT) if len(text) > MAX_SHOWN_TEXT else text


def _cut(text: str, keep: int) -> str:
    return f"{text[:keep]}…({len(text) - keep:,} more characters)"


def _display(text: str, column: int) -> tuple[str, int]:
    """The line as shown (tabs as one space, unsafe characters escaped) and where `column` lands."""
    shown: list[str] = []
    position = 1
    target = None
    for index, char in enumerate(text, start=1):
        if index == column:
            target = position
        piece = " " if char == "\t" else (_escape(char) if _UNSAFE.match(char) else char)
        shown.append(piece)
        position += len(piece)
    return "".join(shown), target if target is not None else position + (column - len(text) - 1)


@dataclass(frozen=True)
class Diagnostic:
    message: str
    span: Span | None = None
    filename: str | None = None
    hint: str | None = None
    severity: str = "error"

    @property
    def location(self) -> str:
        filename = printable(self.filename or "<input>", keep_newlines=False)
        if self.span is not None:
            return f"{filename}:{self.span.line}:{self.span.column}"
        return filename

    def headline(self) -> str:
        return f"{self.location}: {self.severity}: {clip(printable(self.message, keep_newlines=False))}"

    def render(self, source: str | None = None) -> str:
        """rustc-style text: headline, the source line with a caret under the span, and the hint.

        Lines are split at `\\n` only (the lexer's and editors' notion of a line): U+2028, U+0085 or a
        form feed inside a line do not move the caret to another line."""
        lines = [self.headline()]
        if self.span is not None and source is not None:
            line_start = _line_start(source, self.span.line)
            if line_start is not None:
                line_end = source.find("\n", line_start)
                # Only a window around the caret is shown (see _window): the line is cut to a few
                # windows' width around it first, so a 4 MiB line costs what a short one does.
                cut = max(0, self.span.column - 1 - MAX_SHOWN_LINE)
                line_end = line_end if line_end >= 0 else len(source)
                raw = source[
                    line_start + cut : min(line_end, line_start + self.span.column - 1 + 2 * MAX_SHOWN_LINE)
                ]
                column = self.span.column - cut
                end_column = (
                    self.span.end_column - cut if self.span.end_line == self.span.line else len(raw) + 1
                )
                text, start = _display(raw, column)
                _, end = _display(raw, max(end_column, column + 1))
                text, start, end = _window(text, start, end)
                gutter = str(self.span.line)
                pad = " " * len(gutter)
                lines.append(f"{pad} |")
                lines.append(f"{gutter} | {text}")
                lines.append(f"{pad} | {' ' * (start - 1)}{'^' * max(1, end - start)}")
        if self.hint:
            lines.append(f"  = hint: {clip(printable(self.hint, keep_newlines=False))}")
        return "\n".join(lines)


# A longer source line is shown as a window around the caret, as rustc does.
MAX_SHOWN_LINE = 160


def _window(text: str, start: int, end: int) -> tuple[str, int, int]:
    """Cut a long display line to MAX_SHOWN_LINE characters around columns start..end (1-based)."""
    if len(text) <= MAX_SHOWN_LINE:
        return text, start, end
    end = min(end, start + MAX_SHOWN_LINE // 2)
    first = max(0, start - 1 - MAX_SHOWN_LINE // 3)
    last = min(len(text), first + MAX_SHOWN_LINE)
    prefix = "…" if first > 0 else ""
    suffix = "…" if last < len(text) else ""
    shift = len(prefix) - first
    return prefix + text[first:last] + suffix, start + shift, end + shift


def _line_start(source: str, line: int) -> int | None:
    """Offset of the first character of 1-based `line`, or None past the end."""
    offset = 0
    for _ in range(line - 1):
        offset = source.find("\n", offset)
        if offset < 0:
            return None
        offset += 1
    return offset if offset <= len(source) else None


class NascError(Exception):
    """The one exception nasc raises for bad input. It carries the diagnostics to show (at most
    MAX_DIAGNOSTICS) and how many more were found."""

    def __init__(
        self,
        diagnostics: list[Diagnostic] | tuple[Diagnostic, ...],
        source: str | None = None,
        omitted: int = 0,
    ):
        self.diagnostics = tuple(diagnostics)
        self.source = source
        self.omitted = omitted
        super().__init__("\n".join(d.headline() for d in self.diagnostics))

    def __reduce__(self):
        # Rebuilt from its parts, not its message, so it crosses process boundaries (nasc check -j).
        return type(self), (self.diagnostics, self.source, self.omitted)

    def render(self) -> str:
        text = "\n\n".join(d.render(self.source) for d in self.diagnostics)
        if self.omitted:
            where = self.diagnostics[-1].location.rsplit(":", 2)[0] if self.diagnostics else "<input>"
            plural = "s" if self.omitted != 1 else ""
            text += f"\n\n{where}: error: … and {self.omitted:,} more error{plural} (fix these first)"
        return text


Hint = str | Callable[[], str | None] | None


@dataclass
class DiagnosticSink:
    """Collects a file's diagnostics; hints may be given as functions, which are called only for the
    diagnostics that are shown, so a file with 100,000 mistakes costs no more than one with 20."""

    filename: str
    found: list[tuple[str, Span | None, Hint]] = field(default_factory=list)

    def error(self, message: str, span: Span | None, hint: Hint = None) -> None:
        self.found.append((message, span, hint))

    def __len__(self) -> int:
        return len(self.found)

    def raise_if_any(self, source: str | None) -> None:
        if not self.found:
            return
        ordered = sorted(self.found, key=lambda item: (item[1].line, item[1].column) if item[1] else (0, 0))
        shown = ordered[:MAX_DIAGNOSTICS]
        diagnostics = [
            Diagnostic(message, span, self.filename, hint() if callable(hint) else hint)
            for message, span, hint in shown
        ]
        raise NascError(diagnostics, source, omitted=len(ordered) - len(shown))


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    """The closest known name, phrased as a hint; None when nothing is close (or the name is too long
    to be a typo of one: matching it would cost time in proportion to its length squared)."""
    import difflib

    if len(name) > MAX_SHOWN_WORD:
        return None

    close = difflib.get_close_matches(name, sorted(set(candidates)), n=1, cutoff=0.6)
    return f"did you mean `{close[0]}`?" if close else None


def first_line(error: BaseException, skip: int = 0) -> str:
    """An exception's message as one line for a user (the `skip`-th non-blank line, at most 240 chars)."""
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    return (lines[skip] if len(lines) > skip else lines[0] if lines else type(error).__name__)[:240]
