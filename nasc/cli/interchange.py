"""`nasc import`: cells written in other tools' formats, read safely into .cell files."""

from __future__ import annotations

import click

import nasc
from nasc.cli.common import OUTPUT_PATH, force_option, prepare_output, write
from nasc.compiler import ir
from nasc.compiler.api import STDIN, display_name, read_source
from nasc.diagnostics import Diagnostic, NascError


def _write_cell(genotype, source: str, output: str | None, force: bool) -> None:
    """Write an imported genotype as canonical .cell text, once the checker has passed it. A .cell
    file carries no "generated" mark (it is source), so replacing one always needs --force."""
    text = nasc.format(genotype)
    _check_imported(genotype.name, text, source)
    destination = output or f"{genotype.name}.cell"
    prepare_output(destination, inputs=(source,), force=force, ours=lambda _path: False)
    written = write(destination, text.encode("utf-8"))
    click.echo(
        f"wrote {written}: genotype {genotype.name} : {genotype.convention}, "
        f"hash {nasc.structural_hash(genotype)[:12]}",
        err=destination == STDIN,
    )


def _check_imported(name: str, text: str, source: str) -> None:
    """The checker's verdict on the cell text an import made, said of the file the user named: the
    text itself exists nowhere yet, so each problem quotes the line it is about."""
    try:
        nasc.parse(text, display_name(source))
    except NascError as error:
        lines = text.splitlines()
        diagnostics = [
            Diagnostic(
                f"genotype {name}: {d.message}"
                + (f" (in the cell it makes: `{lines[d.span.line - 1].strip()}`)" if d.span else ""),
                None,
                d.filename,
                d.hint,
            )
            for d in error.diagnostics
        ]
        raise NascError(diagnostics, None, error.omitted) from None


@click.group(name="import")
def import_group() -> None:
    """Read cells from another tool's format into a .cell file.

    Exit status: 0 written, 1 the input is wrong (one line pointing into it), 2 usage error, 3 a bug.

    \b
    Example:
      nasc import darts genotypes.py --name DARTS_V2 -o darts_v2.cell
    """


@import_group.command(name="darts")
@click.argument("file", type=click.Path())
@click.option(
    "-o", "--output", type=OUTPUT_PATH, help="The .cell file to write (default: NAME.cell; - for stdout)."
)
@click.option("--name", help="Which genotype of a file that holds several (e.g. DARTS_V2).")
@force_option
def import_darts(file: str, output: str | None, name: str | None, force: bool) -> None:
    """A DARTS `Genotype(normal=[...], normal_concat=..., reduce=[...], reduce_concat=...)`, or a
    Python file of them (the reference's cnn/genotypes.py, PC-DARTS, P-DARTS, GDAS): parsed as
    literals, never run. `skip_connect` becomes `identity`; the cell reads under the darts convention.

    Exit status: 0 written, 1 the input is wrong, 2 usage error, 3 a bug.

    \b
    Example:
      nasc import darts genotypes.py --name DARTS_V2 -o darts_v2.cell
      echo "Genotype(normal=[...], ...)" | nasc import darts - -o mine.cell
    """
    from nasc.compiler.darts_format import read_darts

    _write_cell(read_darts(read_source(file), display_name(file), name), file, output, force)


@import_group.command(name="nasnet")
@click.argument("file", type=click.Path())
@click.option(
    "-o", "--output", type=OUTPUT_PATH, help="The .cell file to write (default: NAME.cell; - for stdout)."
)
@force_option
def import_nasnet(file: str, output: str | None, force: bool) -> None:
    """The TF-slim / TPU cell format of NASNet, PNASNet and AmoebaNet (per cell: operations,
    hiddenstate_indices, used_hiddenstates), as JSON or a Python literal; never run. What
    `nasc export --format nasnet` writes.

    Exit status: 0 written, 1 the input is wrong, 2 usage error, 3 a bug.

    \b
    Example:
      nasc export genotypes/nasnet_a.cell --format nasnet -o nasnet_a.json
      nasc import nasnet nasnet_a.json -o again.cell
    """
    from nasc.compiler.nasnet_format import read_nasnet

    _write_cell(read_nasnet(read_source(file), display_name(file)), file, output, force)


@import_group.command(name="nb201")
@click.argument("architecture")
@click.option(
    "-o", "--output", type=OUTPUT_PATH, help="The .cell file to write (default: NAME.cell; - for stdout)."
)
@click.option("--name", help="The genotype's name (default: nb201_ and its hash's first 8 digits).")
@force_option
def import_nb201(architecture: str, output: str | None, name: str | None, force: bool) -> None:
    """A NAS-Bench-201 architecture string (`|op~i|+|op~i|op~j|+|…|`, as the benchmark's API and
    xautodl write it), or a file holding one (`-`: standard input). The string is kept in the cell's
    metadata (`nb201`); `skip_connect` becomes `identity`, `nor_conv_kxk` `conv_kxk`.

    Exit status: 0 written, 1 the input is wrong, 2 usage error, 3 a bug.

    \b
    Example:
      nasc import nb201 '|nor_conv_3x3~0|+|none~0|avg_pool_3x3~1|+|skip_connect~0|none~1|none~2|'
      nasc import nb201 arch.txt -o mine.cell
    """
    from nasc.compiler.nb201_format import read_nb201

    if name is not None and ir.identifier_problem(name):
        raise click.BadParameter(str(ir.identifier_problem(name)), param_hint="--name")
    is_string = architecture.lstrip().startswith("|")
    text = architecture if is_string else read_source(architecture)
    source = "<argument>" if is_string else architecture
    genotype = read_nb201(text, "<argument>" if is_string else display_name(architecture), name)
    _write_cell(genotype, source, output, force)
