"""Source spans, diagnostics and their rendering (location, the line, a caret, one hint)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple


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


@dataclass(frozen=True)
class Diagnostic:
    message: str
    span: Span | None = None
    filename: str | None = None
    hint: str | None = None
    severity: str = "error"

    @property
    def location(self) -> str:
        filename = self.filename or "<input>"
        if self.span is not None:
            return f"{filename}:{self.span.line}:{self.span.column}"
        return filename

    def headline(self) -> str:
        return f"{self.location}: {self.severity}: {self.message}"

    def render(self, source: str | None = None) -> str:
        """rustc-style text: headline, the source line with a caret under the span, and the hint."""
        lines = [self.headline()]
        if self.span is not None and source is not None:
            source_lines = source.splitlines()
            if 1 <= self.span.line <= len(source_lines):
                text = source_lines[self.span.line - 1].expandtabs(1)
                gutter = str(self.span.line)
                pad = " " * len(gutter)
                end = self.span.end_column if self.span.end_line == self.span.line else len(text) + 1
                width = max(1, end - self.span.column)
                lines.append(f"{pad} |")
                lines.append(f"{gutter} | {text}")
                lines.append(f"{pad} | {' ' * (self.span.column - 1)}{'^' * width}")
        if self.hint:
            lines.append(f"  = hint: {self.hint}")
        return "\n".join(lines)


class NascError(Exception):
    """The one exception nasc raises for bad input. It carries every diagnostic found."""

    def __init__(self, diagnostics: list[Diagnostic] | tuple[Diagnostic, ...], source: str | None = None):
        self.diagnostics = tuple(diagnostics)
        self.source = source
        super().__init__("\n".join(d.headline() for d in self.diagnostics))

    def render(self) -> str:
        return "\n\n".join(d.render(self.source) for d in self.diagnostics)


def did_you_mean(name: str, candidates: list[str] | tuple[str, ...] | set[str]) -> str | None:
    """The closest known name, phrased as a hint; None when nothing is close."""
    import difflib

    close = difflib.get_close_matches(name, sorted(candidates), n=1, cutoff=0.6)
    return f"did you mean `{close[0]}`?" if close else None
