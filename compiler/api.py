"""The Python API: text or file in, checked Genotype IR out, and back to text or a hash."""

from __future__ import annotations

import os
from pathlib import Path

from nasc.compiler import ir
from nasc.compiler.check import check
from nasc.compiler.diagnostics import Diagnostic, NascError
from nasc.compiler.hashing import structural_hash as _structural_hash
from nasc.compiler.printer import format_genotype
from nasc.grammar.parser import parse_syntax

# A NASNet genotype is about 1 KB; anything this large is not a cell file, and refusing it keeps
# every command's time bounded.
MAX_SOURCE_BYTES = 1 << 20


def parse(text: str, filename: str | None = None) -> ir.Genotype:
    """Parse and check .cell text. Raises NascError carrying every diagnostic."""
    name = filename or "<input>"
    # Universal newlines, as Python's text mode reads files: a lone \r is a line break, never part
    # of a comment or a name (and so never something that could end a line in generated code).
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise NascError(
            [Diagnostic("the file is empty", None, name, hint="a .cell file starts with `genotype NAME`")],
            text,
        )
    return check(parse_syntax(text, name), name, text)


def read_source(path: str | os.PathLike[str]) -> str:
    """Read a .cell file's text, turning every way a file can be unusable into one clear diagnostic."""
    name = os.fspath(path)

    def fail(message: str, hint: str | None = None) -> NascError:
        return NascError([Diagnostic(message, None, name, hint)])

    file = Path(path)
    try:
        if file.is_dir():
            raise fail("is a directory, not a .cell file")
        if not file.exists():
            raise fail("no such file")
        size = file.stat().st_size
        if size > MAX_SOURCE_BYTES:
            raise fail(
                f"file is {size / 1e6:.1f} MB; .cell files are limited to {MAX_SOURCE_BYTES // 1024} KiB"
            )
        with file.open("rb") as handle:
            data = handle.read(MAX_SOURCE_BYTES + 1)
    except PermissionError:
        raise fail("permission denied") from None
    except OSError as error:
        raise fail(f"cannot read: {error.strerror or error}") from None
    if len(data) > MAX_SOURCE_BYTES:
        raise fail(f".cell files are limited to {MAX_SOURCE_BYTES // 1024} KiB")
    if b"\0" in data:
        raise fail("binary file (it contains NUL bytes), not a .cell file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise fail(
            f"not UTF-8 text (invalid byte 0x{data[error.start]:02x} on line {line})",
            "save the file as UTF-8",
        ) from None
    return text.removeprefix("\ufeff")


def load(path: str | os.PathLike[str]) -> ir.Genotype:
    """Read, parse and check a .cell file."""
    return parse(read_source(path), os.fspath(path))


def format(genotype: ir.Genotype) -> str:
    """The canonical text of a genotype."""
    return format_genotype(genotype)


def structural_hash(genotype: ir.Genotype) -> str:
    """Hex SHA-256 identifying the architecture (see nasc.compiler.hashing for what it ignores)."""
    return _structural_hash(genotype)
