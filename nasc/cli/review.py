"""Review tools: `nasc viz` (pictures of cells) and `nasc diff` (semantic difference)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from nasc.cli.app import report
from nasc.cli.common import OUTPUT_PATH, force_option, prepare_output, say, shown, write
from nasc.compiler.api import STDIN, load
from nasc.diagnostics import NascError


@click.command()
@click.argument("file", type=click.Path())
@click.option(
    "-o",
    "--output",
    type=OUTPUT_PATH,
    help="OUT.svg, OUT.png or OUT.dot (default: GENOTYPE.svg; - writes DOT text to stdout).",
)
@click.option("--cell", "cells", default="all", show_default=True, help="normal, reduction or all.")
@click.option(
    "--lowered",
    is_flag=True,
    help="Also show what the compiler inserts: squeeze, x2 adjustment, "
    "strides, 1x1 adapters, factorized reductions.",
)
@force_option
def viz(file: str, output: str | None, cells: str, lowered: bool, force: bool) -> None:
    """Draw the cells like the paper's Figure 4 (Graphviz).

    Exit status: 0 written, 1 diagnostics, Graphviz missing or an output that may not be written,
    2 usage error, 3 a bug.

    \b
    Examples:
      nasc viz genotypes/nasnet_a.cell -o nasnet_a.svg
      nasc viz genotypes/nasnet_a.cell --cell reduction --lowered -o reduction.png
    """
    from nasc.compiler.viz import FORMATS, RenderError, render, to_dot

    genotype = load(file)
    destination = output or f"{genotype.name}.svg"
    suffix = ".dot" if destination == STDIN else Path(destination).suffix.lower()
    if suffix not in FORMATS:
        raise click.UsageError(f"cannot tell the format of {shown(destination)}: use .svg, .png or .dot")
    prepare_output(destination, inputs=(file,), force=force)
    try:
        dot_text = to_dot(genotype, cells, lowered)
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    try:
        data = render(dot_text, suffix)
    except RenderError as error:
        raise click.ClickException(str(error)) from None
    written = write(destination, data)
    click.echo(f"wrote {written}", err=destination == STDIN)


@click.command(name="diff")
@click.argument("a", type=click.Path())
@click.argument("b", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="The changes as JSON.")
def diff_command(a: str, b: str, as_json: bool) -> None:
    """Semantic difference of two genotypes (state names and block order do not matter), or of two
    spaces (node by node, edge by edge: a space's order is its architecture weights').

    Exit status (as diff(1)): 0 the same architecture, 1 different, 2 trouble (an unreadable or
    invalid file, a usage error).

    \b
    Example:
      nasc diff genotypes/nasnet_a.cell runs/demo/best.cell
    """
    from nasc.compiler.api import load_source
    from nasc.compiler.diff import diff
    from nasc.compiler.space_diff import diff_spaces
    from nasc.compiler.space_ir import Space

    try:
        first, second = load_source(a), load_source(b)
    except NascError as error:
        report(error)
        sys.exit(2)
    spaces = isinstance(first, Space), isinstance(second, Space)
    if spaces[0] != spaces[1]:
        click.echo("nasc: error: compare a space with a space and a cell with a cell", err=True)
        sys.exit(2)
    changes = diff_spaces(first, second) if spaces[0] else diff(first, second)
    if as_json:
        import json

        click.echo(json.dumps({"same": not changes, "changes": [c.to_dict() for c in changes]}, indent=2))
    elif not changes:
        say(f"{shown(a)} and {shown(b)}: the same {'space' if spaces[0] else 'architecture'}")
    else:
        for change in changes:
            say(change.text)
    sys.exit(1 if changes else 0)
