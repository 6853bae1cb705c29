"""The `nasc` command line. Messages are for people: no traceback for a user error, ever."""

from __future__ import annotations

import difflib
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import click

import nasc
from nasc.compiler.api import load, read_source
from nasc.compiler.diagnostics import Diagnostic, NascError
from nasc.fileio import atomic_write_text


def _report(error: NascError) -> None:
    click.echo(error.render(), err=True)


def _cell_files(paths: tuple[str, ...]) -> Iterator[tuple[str, NascError | None]]:
    """Expand directories into the .cell files below them (sorted); a directory with none is an error."""
    for path in paths:
        if os.path.isdir(path):
            found = sorted(str(p) for p in Path(path).rglob("*.cell") if p.is_file())
            if not found:
                yield path, NascError([Diagnostic("no .cell files in this directory", None, path)])
            for file in found:
                yield file, None
        else:
            yield path, None


class _NascGroup(click.Group):
    """Turns any exception that escapes a command into one line, so users never see a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except NascError as error:
            _report(error)
            sys.exit(1)
        except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit):
            raise
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)
        except Exception as error:  # an internal bug: say so plainly; NASC_DEBUG=1 shows the traceback
            if os.environ.get("NASC_DEBUG"):
                raise
            click.echo(
                f"nasc: internal error: {type(error).__name__}: {error} "
                "(set NASC_DEBUG=1 for the traceback and please report it)",
                err=True,
            )
            sys.exit(3)


@click.group(cls=_NascGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(nasc.__version__, prog_name="nasc")
def main() -> None:
    """nasc — compile neural-architecture cells (.cell files) into PyTorch and ONNX.

    \b
    Example:
      nasc check genotypes/nasnet_a.cell
    """


def _each_genotype(paths: tuple[str, ...], on_ok: Callable[[str, nasc.compiler.ir.Genotype], None]) -> int:
    """Load every file, report diagnostics, call `on_ok` for the good ones; returns the number that failed."""
    failed = 0
    for path, problem in _cell_files(paths):
        if problem is not None:
            _report(problem)
            failed += 1
            continue
        try:
            genotype = load(path)
        except NascError as error:
            _report(error)
            failed += 1
            continue
        on_ok(path, genotype)
    return failed


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path())
@click.option("-q", "--quiet", is_flag=True, help="Print diagnostics only.")
def check(files: tuple[str, ...], quiet: bool) -> None:
    """Parse and check .cell files (directories are searched for *.cell).

    Exit status: 0 clean, 1 diagnostics, 2 usage error.

    \b
    Example:
      nasc check genotypes/nasnet_a.cell
    """
    checked = []

    def ok(path: str, genotype) -> None:
        checked.append(path)
        if not quiet:
            cells = ", ".join(f"{c.kind} ({len(c.blocks)} blocks)" for c in genotype.cells)
            click.echo(
                f"{path}: ok: genotype {genotype.name}: {cells}; hash {nasc.structural_hash(genotype)[:12]}"
            )

    failed = _each_genotype(files, ok)
    if failed:
        click.echo(f"{failed} file(s) with errors, {len(checked)} clean", err=True)
        sys.exit(1)


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path())
@click.option(
    "--check", "check_only", is_flag=True, help="Change nothing; exit 1 if a file is not canonical."
)
@click.option("--diff", "show_diff", is_flag=True, help="Change nothing; print what formatting would change.")
@click.option(
    "--stdout",
    "to_stdout",
    is_flag=True,
    help="Print the canonical text instead of rewriting (for `git diff` textconv).",
)
def fmt(files: tuple[str, ...], check_only: bool, show_diff: bool, to_stdout: bool) -> None:
    """Rewrite .cell files in canonical form, keeping comments and metadata.

    \b
    Examples:
      nasc fmt genotypes/
      nasc fmt --check --diff genotypes/nasnet_a.cell
    """
    would_change: list[str] = []

    def reformat(path: str, genotype) -> None:
        canonical = nasc.format(genotype)
        if to_stdout:
            click.echo(canonical, nl=False)
            return
        current = read_source(path)
        if current == canonical:
            return
        would_change.append(path)
        if show_diff:
            click.echo(
                "".join(
                    difflib.unified_diff(
                        current.splitlines(True),
                        canonical.splitlines(True),
                        f"{path} (current)",
                        f"{path} (canonical)",
                    )
                ),
                nl=False,
            )
        if check_only or show_diff:
            click.echo(f"would reformat {path}", err=True)
        else:
            atomic_write_text(path, canonical)
            click.echo(f"reformatted {path}", err=True)

    failed = _each_genotype(files, reformat)
    if failed or ((check_only or show_diff) and would_change):
        sys.exit(1)


@main.command(name="hash")
@click.argument("files", nargs=-1, required=True, type=click.Path())
def hash_command(files: tuple[str, ...]) -> None:
    """Print the structural hash: equal for the same architecture whatever the names, comments,
    metadata, block order or operand order of commutative combines.

    \b
    Example:
      nasc hash genotypes/nasnet_a.cell
    """
    many = len(files) > 1 or any(os.path.isdir(f) for f in files)

    def show(path: str, genotype) -> None:
        digest = nasc.structural_hash(genotype)
        click.echo(f"{digest}  {path}" if many else digest)

    if _each_genotype(files, show):
        sys.exit(1)
