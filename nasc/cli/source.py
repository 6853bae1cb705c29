"""Commands on .cell source: check, fmt, hash."""

from __future__ import annotations

import difflib
import os
import sys

import click

import nasc
from nasc.cli.common import each_genotype, each_result, jobs_option, say, shown, write
from nasc.compiler.api import STDIN, read_source
from nasc.compiler.hashing import space_hash
from nasc.compiler.space_ir import Space, space_size
from nasc.fileio import OutputError


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path())
@click.option("-q", "--quiet", is_flag=True, help="Print diagnostics only.")
@jobs_option
def check(files: tuple[str, ...], quiet: bool, jobs: int | None) -> None:
    """Parse and check .cell and .space files (directories are searched for both; - reads
    standard input).

    Exit status: 0 clean, 1 diagnostics or an unreadable file, 2 usage error, 3 a bug.

    \b
    Example:
      nasc check genotypes/nasnet_a.cell
      cat my.cell | nasc check -
    """
    checked = []

    def ok(path: str, result: tuple[str, list[str]]) -> None:
        summary, warnings = result
        checked.append(path)
        for warning in warnings:
            click.echo(warning + "\n", err=True)
        if not quiet:
            say(f"{shown(path)}: ok: {summary}" + (f" ({len(warnings)} warning(s))" if warnings else ""))

    failed = each_result(files, _summary, ok, jobs)
    if failed:
        click.echo(f"{failed} file(s) with errors, {len(checked)} clean", err=True)
        sys.exit(1)


@click.command()
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
    """Rewrite .cell files in canonical form, keeping comments and metadata. A symlink is written
    through; `-` reads standard input and writes the canonical text to standard output.

    Exit status: 0 done (or already canonical), 1 diagnostics, a file that cannot be written, or
    (with --check/--diff) a file that is not canonical; 2 usage error; 3 a bug.

    \b
    Examples:
      nasc fmt genotypes/
      nasc fmt --check --diff genotypes/nasnet_a.cell
    """
    would_change: list[str] = []
    unwritable: list[str] = []

    def reformat(path: str, genotype) -> None:
        canonical = nasc.format(genotype)
        if to_stdout or (path == STDIN and not (check_only or show_diff)):
            write(STDIN, canonical.encode("utf-8"))
            return
        current = genotype.source if path == STDIN else read_source(path)
        if current == canonical:
            return
        would_change.append(path)
        if show_diff:
            name = shown(path)
            diff = difflib.unified_diff(
                current.splitlines(True),
                canonical.splitlines(True),
                f"{name} (current)",
                f"{name} (canonical)",
            )
            say("".join(diff), nl=False)
        if check_only or show_diff:
            click.echo(f"would reformat {shown(path)}", err=True)
            return
        try:
            write(path, canonical.encode("utf-8"))
        except OutputError as error:
            click.echo(f"nasc: error: {error}", err=True)
            unwritable.append(path)
            return
        click.echo(f"reformatted {shown(path)}", err=True)

    failed = each_genotype(files, reformat)
    if failed or unwritable or ((check_only or show_diff) and would_change):
        sys.exit(1)


def _summary(genotype) -> tuple[str, list[str]]:
    """What `nasc check` says of a clean file, and its warnings rendered (computed where the file
    was checked)."""
    from nasc.compiler.dead import dead_edges

    if isinstance(genotype, Space):
        cells = ", ".join(f"{c.kind} ({len(c.nodes)} nodes)" for c in genotype.cells)
        size = space_size(genotype)
        return (
            f"space {genotype.name}: {cells}; {size:,} cells ({size:.1e}); hash {space_hash(genotype)[:12]}",
            [],
        )

    cells = ", ".join(f"{c.kind} ({len(c.blocks)} blocks)" for c in genotype.cells)
    warnings = [warning.render(genotype.source) for warning in dead_edges(genotype)]
    return f"genotype {genotype.name}: {cells}; hash {nasc.structural_hash(genotype)[:12]}", warnings


@click.command(name="hash")
@click.argument("files", nargs=-1, required=True, type=click.Path())
@jobs_option
def hash_command(files: tuple[str, ...], jobs: int | None) -> None:
    """Print the structural hash: equal for the same architecture whatever the names, comments,
    metadata, block order or operand order of commutative combines.

    Exit status: 0 hashed, 1 a file with diagnostics, 2 usage error, 3 a bug.

    \b
    Example:
      nasc hash genotypes/nasnet_a.cell
    """
    many = len(files) > 1 or any(f not in ("", STDIN) and os.path.isdir(f) for f in files)

    def show(path: str, digest: str) -> None:
        say(f"{digest}  {shown(path)}" if many else digest)

    if each_result(files, _hash, show, jobs):
        sys.exit(1)


def _hash(source) -> str:
    return space_hash(source) if isinstance(source, Space) else nasc.structural_hash(source)
