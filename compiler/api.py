"""The Python API: text or file in, checked Genotype IR out, and back to text or a hash."""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from nasc.compiler import ir
from nasc.compiler.check import check
from nasc.compiler.hashing import structural_hash as _structural_hash
from nasc.compiler.printer import format_genotype
from nasc.compiler.space_check import check_space as _check_space
from nasc.compiler.space_ir import Space
from nasc.diagnostics import Diagnostic, NascError
from nasc.grammar.parser import parse_syntax

# A NASNet genotype is about 1 KB; a file this large is not a cell file. Refusing it at once (from
# its size, before reading) keeps every command's time bounded; checking is linear below it.
MAX_SOURCE_BYTES = 4 << 20

# The path that means standard input, as Unix tools read it.
STDIN = "-"


def parse(text: str, filename: str | None = None) -> ir.Genotype:
    """Parse and check .cell text. Raises NascError carrying every diagnostic."""
    return _parse(text, filename, check)


def parse_space(text: str, filename: str | None = None) -> Space:
    """Parse and check a search space's text (`space NAME : CONVENTION`)."""
    return _parse(text, filename, _check_space)


def parse_source(text: str, filename: str | None = None) -> ir.Genotype | Space:
    """A cell or a space, as the file's header says."""
    return _parse(
        text,
        filename,
        lambda module, *rest: (_check_space if module.kind == "space" else check)(module, *rest),
    )


def _parse(text: str, filename: str | None, checker: Callable):
    name = filename or "<input>"
    # Universal newlines, as Python's text mode reads files: a lone \r is a line break, never part
    # of a comment or a name (and so never something that could end a line in generated code).
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise NascError(
            [Diagnostic("the file is empty", None, name, hint="a .cell file starts with `genotype NAME`")],
            text,
        )
    # Parsing makes millions of small acyclic objects on a large file; the cyclic collector would
    # rescan all of them again and again (superlinear time: 3.7 s instead of 1.9 s for 1 MiB).
    # Reference counting frees them all the same. (Inline rather than a context manager, whose
    # 2 µs count at thousands of files a second.)
    if not gc.isenabled():
        return checker(parse_syntax(text, name), name, text)
    gc.disable()
    try:
        return checker(parse_syntax(text, name), name, text)
    finally:
        gc.enable()


def cell_files(
    paths: Iterable[str], suffixes: tuple[str, ...] = (".cell",)
) -> Iterator[tuple[str, NascError | None]]:
    """Expand directories into the files below them with one of `suffixes` (sorted); a directory
    with none is an error. `-` is standard input."""
    for path in paths:
        if path not in ("", STDIN) and os.path.isdir(path):
            found = sorted(str(p) for p in Path(path).rglob("*") if p.suffix in suffixes and p.is_file())
            if not found:
                kinds = " or ".join(suffixes)
                yield path, NascError([Diagnostic(f"no {kinds} files in this directory", None, path)])
            for file in found:
                yield file, None
        else:
            yield path, None


def read_source(path: str | os.PathLike[str]) -> str:
    """Read a .cell file's text (`-`: standard input), turning every way a file can be unusable
    into one clear diagnostic."""
    name = os.fspath(path)
    if name == STDIN:
        return _decode(_read_limited(sys.stdin.buffer, "<stdin>"), "<stdin>")

    def fail(message: str, hint: str | None = None) -> NascError:
        return NascError([Diagnostic(message, None, name, hint)])

    if name == "":  # shown as '', not as the "<input>" of a nameless source
        raise NascError(
            [Diagnostic("the path is empty", None, "''", "name a .cell file, or `-` for standard input")]
        )
    file = Path(path)
    try:
        if file.is_dir():
            raise fail("is a directory, not a .cell file")
        if not file.exists():
            raise fail("no such file")
        size = file.stat().st_size
        if size > MAX_SOURCE_BYTES:
            raise fail(_too_large(size))
        with file.open("rb") as handle:  # pipes and FIFOs report size 0: the read is bounded too
            data = _read_limited(handle, name)
    except PermissionError:
        raise fail("permission denied") from None
    except OSError as error:
        raise fail(f"cannot read: {error.strerror or error}") from None
    return _decode(data, name)


def _too_large(size: int | None = None) -> str:
    limit = f".cell files are limited to {MAX_SOURCE_BYTES >> 20} MiB"
    return f"file is {size / (1 << 20):.1f} MiB; {limit}" if size is not None else f"input too large; {limit}"


def _read_limited(handle: BinaryIO, name: str) -> bytes:
    data = handle.read(MAX_SOURCE_BYTES + 1)
    if len(data) > MAX_SOURCE_BYTES:
        raise NascError([Diagnostic(_too_large(), None, name)])
    return data


def _decode(data: bytes, name: str) -> str:
    def fail(message: str, hint: str | None = None) -> NascError:
        return NascError([Diagnostic(message, None, name, hint)])

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


def display_name(path: str | os.PathLike[str]) -> str:
    """How diagnostics name a path: `<stdin>` for `-`."""
    name = os.fspath(path)
    return "<stdin>" if name == STDIN else name


def load(path: str | os.PathLike[str]) -> ir.Genotype:
    """Read, parse and check a .cell file (`-`: standard input)."""
    return parse(read_source(path), display_name(path))


def load_space(path: str | os.PathLike[str]) -> Space:
    """Read, parse and check a search space file (`-`: standard input)."""
    return parse_space(read_source(path), display_name(path))


def load_source(path: str | os.PathLike[str]) -> ir.Genotype | Space:
    """Read a cell or a space, as its header says."""
    return parse_source(read_source(path), display_name(path))


def format(genotype: ir.Genotype | Space) -> str:
    """The canonical text of a genotype or a space."""
    if isinstance(genotype, Space):
        from nasc.compiler.space_printer import format_space

        return format_space(genotype)
    return format_genotype(genotype)


def structural_hash(genotype: ir.Genotype) -> str:
    """Hex SHA-256 identifying the architecture (see nasc.compiler.hashing for what it ignores)."""
    return _structural_hash(genotype)
