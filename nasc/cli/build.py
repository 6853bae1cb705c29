"""Commands that build networks: compile, stats, export, show."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import click
from click.core import ParameterSource

import nasc
from nasc.cli.common import (
    DATASETS,
    OUTPUT_PATH,
    emit_options,
    force_option,
    network_options,
    prepare_output,
    say,
    shown,
    write,
)
from nasc.compiler.api import STDIN, load, load_source
from nasc.compiler.conventions import convention_of
from nasc.compiler.space_ir import Space
from nasc.diagnostics import Diagnostic, NascError
from nasc.fileio import MARK

if TYPE_CHECKING:
    from nasc.compiler.compilation import Compilation
    from nasc.runtime.onnx_quantize import Int8Request


def _compilation(genotype, options) -> Compilation:
    from nasc.compiler.compilation import compile_genotype

    try:
        return compile_genotype(genotype, options)
    except ValueError as error:  # an unknown preset, a width that does not divide
        raise click.UsageError(str(error)) from None


@click.command(name="compile")
@click.argument("file", type=click.Path())
@click.option("--target", type=click.Choice(["torch", "onnx"]), default="torch", show_default=True)
@click.option(
    "-o", "--output", type=OUTPUT_PATH, help="Output file (default: GENOTYPE.py / .onnx here; - for stdout)."
)
@network_options
@force_option
def compile_command(
    file: str, target: str, output: str | None, preset: str, scale, num_classes, force: bool
) -> None:
    """Compile a .cell file into a standalone PyTorch module (or a verified ONNX model).

    The module imports only torch and the standard library and offers
    create_model(preset, num_classes=..., aux_head=...), PRESETS and the network class.
    An existing output is replaced only if nasc wrote it (or with --force).

    Exit status: 0 written, 1 diagnostics or an output that may not be written, 2 usage error, 3 a bug.

    \b
    Example:
      nasc compile genotypes/nasnet_a.cell --target torch -o nasnet_a.py
      nasc compile genotypes/nasnet_a.cell --preset mobile --scale 4@1056
    """
    source = load_source(file)
    options = emit_options(file, preset, scale, num_classes)
    if isinstance(source, Space):
        _compile_supernet(source, options, target, output, file, force)
        return
    genotype = source
    if target == "onnx":
        _export(genotype, options, output or f"{genotype.name}.onnx", (file,), force, None, None, "1")
        return
    destination = output or f"{genotype.name}.py"
    prepare_output(destination, inputs=(file,), force=force)
    compilation = _compilation(genotype, options)
    figures = compilation.count()
    try:
        source = compilation.emit()
    except ValueError as error:  # a cell the convention cannot build (an output it cannot adapt)
        raise click.UsageError(str(error)) from None
    written = write(destination, source.encode("utf-8"))
    size = figures.input_shape[-1]
    click.echo(f"wrote {written}: genotype {genotype.name}", err=destination == STDIN)
    click.echo(
        f"  preset {compilation.preset_name}: {figures.parameters:,} parameters, "
        f"{figures.mult_adds:,} mult-adds at {size}x{size}, {len(figures.cells)} cells",
        err=destination == STDIN,
    )


def _compile_supernet(space, options, target: str, output: str | None, file: str, force: bool) -> None:
    """A space's weight-sharing supernet, as a standalone PyTorch module."""
    from nasc.compiler.compilation import compile_space

    if target != "torch":
        raise click.UsageError("a supernet compiles to PyTorch (--target torch); export its derived cells")
    try:
        compilation = compile_space(space, options)
        source = compilation.emit()
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    destination = output or f"{space.name}_supernet.py"
    prepare_output(destination, inputs=(file,), force=force)
    written = write(destination, source.encode("utf-8"))
    preset = compilation.preset
    # DARTS's search network counts its cells; NAS-Bench-201's, N per stage
    cells = getattr(preset, "layers", None) or f"3 x {getattr(preset, 'cells_per_stage', '?')}"
    click.echo(f"wrote {written}: supernet of space {space.name}", err=destination == STDIN)
    click.echo(
        f"  preset {compilation.preset_name}: C = {preset.channels}, {cells} cells, "
        f"{preset.num_classes} classes at {preset.image_size}x{preset.image_size}",
        err=destination == STDIN,
    )


@click.command()
@click.argument("file", type=click.Path())
@network_options
@click.option(
    "--image-size", type=click.IntRange(min=8), help="Input height and width (default: the preset's)."
)
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def stats(file: str, preset: str, scale, num_classes, image_size: int | None, as_json: bool) -> None:
    """Parameters (with and without the aux head), conv + linear mult-adds, and a per-cell table,
    counted statically from the compiled cells (no network is built).

    Exit status: 0 counted, 1 diagnostics, 2 usage error, 3 a bug.

    \b
    Example:
      nasc stats genotypes/nasnet_a.cell --preset mobile
    """
    genotype = load(file)
    compilation = _compilation(genotype, emit_options(file, preset, scale, num_classes))
    name, figures = compilation.preset_name, compilation.count(image_size)
    size = figures.input_shape[-1]
    if as_json:
        import json

        used = sorted({o.op for cell in genotype.cells for b in cell.blocks for o in b.operands})
        ops = {op: convention_of(genotype).ops[op] for op in used}
        summary = {"genotype": genotype.name, "convention": genotype.convention, "preset": name}
        click.echo(json.dumps({**summary, **figures.to_dict(), "ops": ops}, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{genotype.name} · {genotype.convention} · {name} · {size}x{size}")
    for column in ("cell", "kind", "output (C×H×W)", "parameters", "mult-adds"):
        table.add_column(column, justify="right" if column in ("parameters", "mult-adds") else "left")
    for cell in figures.cells:
        table.add_row(
            cell.name,
            cell.kind,
            "×".join(map(str, cell.output_shape[1:])),
            f"{cell.parameters:,}",
            f"{cell.mult_adds:,}",
        )
    console = Console(width=100)
    console.print(table)
    with_aux = f"{figures.parameters_with_aux:,}" if figures.parameters_with_aux is not None else "n/a"
    console.print(f"parameters: {figures.parameters:,} (with aux head: {with_aux})")
    console.print(f"mult-adds (conv + linear): {figures.mult_adds:,}")
    # An op name means one thing within a convention: say what each used op is here.
    convention = convention_of(genotype)
    used = sorted({o.op for cell in genotype.cells for b in cell.blocks for o in b.operands})
    console.print(f"ops under the {convention.name} convention:")
    for op in used:
        console.print(f"  {op}: {convention.ops[op]}", highlight=False)


def _preset_name(genotype, options) -> str:
    return _compilation(genotype, options).preset_name


def _is_nasc_onnx(path: str) -> bool:
    from nasc.runtime.onnx_export import read_metadata

    try:
        return bool(read_metadata(path))
    except Exception:  # not a readable ONNX model: certainly not one nasc wrote
        return False


def _export(
    genotype,
    options,
    output: str,
    inputs,
    force: bool,
    image_size: int | None,
    opset: int | None,
    batch: str,
    weights: str | None = None,
    align: int | None = None,  # None: export_onnx's default
    int8: Int8Request | None = None,
) -> None:
    from nasc.runtime.onnx_export import DEFAULT_ALIGNMENT, ExportError, export_onnx

    prepare_output(output, inputs=inputs, force=force, text=False, ours=_is_nasc_onnx)
    click.echo(
        f"exporting {genotype.name} ({_preset_name(genotype, options)}) to ONNX and checking it in "
        "onnxruntime ...",
        err=True,
    )
    try:
        report = export_onnx(
            genotype,
            options,
            output,
            image_size=image_size,
            opset=opset,
            batch=batch,
            weights=weights,
            align=DEFAULT_ALIGNMENT if align is None else align,
            int8=int8,
        )
    except ExportError as error:
        raise click.ClickException(str(error)) from None
    ops = ", ".join(f"{name} {count}" for name, count in report.op_mix)
    click.echo(
        f"wrote {shown(report.path)}: opset {report.opset}, batch {report.batch}, "
        f"{report.image_size}x{report.image_size}, {report.nodes} nodes, {report.size_bytes / 1e6:.1f} MB"
    )
    click.echo(
        f"  onnxruntime ({report.provider}) vs PyTorch: max abs diff {report.max_abs_diff:.2e}, "
        f"max rel diff {report.max_rel_diff:.2e}"
    )
    click.echo(f"  graph: {'static shapes' if report.static_graph else 'dynamic shapes'}; ops: {ops}")
    click.echo(f"  channels: {_alignment_said(report.alignment)}")
    if report.int8 is not None:
        q = report.int8
        click.echo(
            f"  int8 ({q.method}, {q.calibration_images} {q.dataset} training images): top-1 "
            f"{q.int8_top1:.2f}% against the float model's {q.float_top1:.2f}% "
            f"({q.int8_top1 - q.float_top1:+.2f} points) on {q.eval_images} test images; "
            f"{q.int8_ms:.2f} ms a batch-1 run against {q.float_ms:.2f} ms ({q.speedup:.2f}x)"
        )
    meta = report.metadata
    click.echo(
        f"  provenance: genotype {meta['genotype']}, hash {meta['structural_hash'][:12]}, "
        f"preset {meta['preset']} ({meta['scale']})"
    )


# export's options that mean something only with --int8
INT8_FLAGS = (
    "calibrate",
    "data_dir",
    "calibration_images",
    "calibration_method",
    "eval_images",
    "max_top1_drop",
)


def _given(*names: str) -> list[str]:
    """Which of these options the command line set (not left at their defaults), as flags."""
    context = click.get_current_context()
    return [
        f"--{name.replace('_', '-')}"
        for name in names
        if context.get_parameter_source(name) == ParameterSource.COMMANDLINE
    ]


def _alignment_said(alignment) -> str:
    if alignment.skipped is not None:
        return f"as they are (not aligned to {alignment.multiple}: {alignment.skipped})"
    if alignment.multiple == 1:
        return "as they are (--align 1)"
    return (
        f"aligned to multiples of {alignment.multiple}: {alignment.padded_convolutions} convolutions "
        f"padded with zero filters, +{100 * alignment.added_mult_adds_fraction:.1f}% mult-adds"
    )


def _export_cells(genotype, format_name: str, output: str | None, inputs, force: bool) -> None:
    from nasc.compiler.darts_format import write_darts
    from nasc.compiler.nasnet_format import FormatError, write_nasnet
    from nasc.compiler.nb201_format import write_nb201

    writers = {"darts": write_darts, "nasnet": write_nasnet, "nb201": lambda g: write_nb201(g) + "\n"}
    # An architecture string is one line, most often wanted in a terminal or a script.
    destination = output or {"darts": f"{genotype.name}.py", "nasnet": f"{genotype.name}.json"}.get(
        format_name, STDIN
    )
    prepare_output(destination, inputs=inputs, force=force)
    try:
        text = writers[format_name](genotype)
    except FormatError as error:
        raise click.ClickException(str(error)) from None
    marked = f"# {MARK} from genotype {genotype.name}\n" + text if format_name == "darts" else text
    written = write(destination, marked.encode("utf-8"))
    click.echo(
        f"wrote {written}: genotype {genotype.name} in the {format_name} format", err=destination == STDIN
    )


def _parse_batch(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    if value != "dynamic" and not (value.isdigit() and int(value) >= 1):
        raise click.BadParameter(f"{value!r} is neither a positive number nor 'dynamic'")
    return value


@click.command()
@click.argument("file", type=click.Path())
@click.option("--onnx", "as_onnx", is_flag=True, help="Export to ONNX (the same as --format onnx).")
@click.option(
    "--format",
    "format_name",
    type=click.Choice(["onnx", "darts", "nasnet", "nb201"]),
    help="onnx: a verified model; darts: a DARTS Genotype(...); nasnet: the TF-slim cell format (JSON); "
    "nb201: NAS-Bench-201's architecture string (to standard output unless -o).",
)
@click.option(
    "-o",
    "--output",
    type=OUTPUT_PATH,
    help="Output file (default: GENOTYPE_PRESET.onnx, GENOTYPE.py/.json).",
)
@network_options
@click.option(
    "--image-size", type=click.IntRange(min=8), help="Input height and width (default: the preset's)."
)
@click.option(
    "--opset",
    type=int,
    help="ONNX opset (default 18: onnxruntime's CPU runs average pools 7x slower at 19 and later).",
)
@click.option(
    "--align",
    type=click.IntRange(min=1),
    default=16,
    show_default=True,
    help="Pad every layer's channels with zeros to a multiple of this, the same function: "
    "onnxruntime's x86 kernels take blocks of 8 or 16 channels. 1 keeps them as they are (ARM).",
)
@click.option("--int8", is_flag=True, help="Quantize to int8 (static, QDQ), calibrated on --calibrate.")
@click.option(
    "--calibrate",
    type=click.Choice(DATASETS),
    help="With --int8: the dataset to calibrate on (its training split) and to measure top-1 on (its "
    "test split), through the preset's evaluation transform.",
)
@click.option("--data-dir", type=click.Path(), help="Where cifar10 or imagefolder lies.")
@click.option("--calibration-images", type=click.IntRange(min=1), default=256, show_default=True)
@click.option(
    "--calibration-method",
    type=click.Choice(["minmax", "entropy", "percentile"]),
    default="minmax",
    show_default=True,
)
@click.option(
    "--eval-images",
    type=click.IntRange(min=0),
    default=2000,
    show_default=True,
    help="Test images top-1 is measured on (the split's first ones; 0: all).",
)
@click.option(
    "--max-top1-drop",
    type=click.FloatRange(min=0),
    default=1.0,
    show_default=True,
    help="Refuse (write nothing) if int8 loses more top-1 points than this against float.",
)
@click.option(
    "--batch",
    default="1",
    show_default=True,
    callback=_parse_batch,
    metavar="N|dynamic",
    help="Fixed batch size, or 'dynamic' for a variable first axis.",
)
@click.option(
    "--weights",
    type=click.Path(),
    help="A state_dict for the network (e.g. from `nasc weights`): export the trained network.",
)
@force_option
def export(
    file: str,
    as_onnx: bool,
    format_name: str | None,
    output: str | None,
    preset: str,
    scale,
    num_classes,
    image_size: int | None,
    opset: int | None,
    align: int,
    int8: bool,
    calibrate: str | None,
    data_dir: str | None,
    calibration_images: int,
    calibration_method: str,
    eval_images: int,
    max_top1_drop: float,
    batch: str,
    weights: str | None,
    force: bool,
) -> None:
    """Export to ONNX, verified: onnx checker, shape inference, and onnxruntime against PyTorch; or
    the cells in another tool's format (--format darts|nasnet|nb201; - writes to stdout).

    Fails (exit 1, no file written) if onnxruntime and PyTorch differ by more than 1e-4 relative, or
    if the format cannot express the cells (the message says what).
    The model's metadata carries the genotype, its hash, the preset and the .cell source.

    Exit status: 0 written, 1 diagnostics or a failed check (nothing written), 2 usage error, 3 a bug.

    \b
    Example:
      nasc export genotypes/nasnet_a.cell --onnx --preset mobile -o nasnet_a_mobile.onnx
      nasc export genotypes/nasnet_a.cell --onnx --preset large --weights w.pt
      nasc export genotypes/darts_v2.cell --format darts -o -
      nasc export mine.cell --format nb201   # an nb201 cell, e.g. from nasc import nb201
    """
    if as_onnx and format_name not in (None, "onnx"):
        raise click.UsageError("--onnx and --format darts|nasnet|nb201 are different exports; choose one")
    format_name = "onnx" if as_onnx else format_name
    if format_name is None:
        raise click.UsageError("choose what to export: --onnx, or --format darts|nasnet|nb201")
    network_flags = _given("weights", "align", "int8", *INT8_FLAGS)
    if network_flags and format_name != "onnx":
        raise click.UsageError(
            f"{' '.join(network_flags)}: for --onnx; the other formats hold cells, not a network"
        )
    genotype = load(file)
    if format_name != "onnx":
        _export_cells(genotype, format_name, output, (file,), force)
        return
    options = emit_options(file, preset, scale, num_classes)
    destination = output or f"{genotype.name}_{_preset_name(genotype, options)}.onnx"
    inputs = (file,) if weights is None else (file, weights)
    request = None
    if int8:
        from nasc.runtime.onnx_quantize import Int8Request

        if calibrate is None:
            raise click.UsageError("--int8 needs --calibrate DATASET (digits, cifar10 or imagefolder)")
        request = Int8Request(
            calibrate, data_dir, calibration_images, eval_images, calibration_method, max_top1_drop
        )
    elif int8_flags := _given(*INT8_FLAGS):
        verb = "is" if len(int8_flags) == 1 else "are"
        raise click.UsageError(f"{' '.join(int8_flags)} {verb} for --int8")
    _export(genotype, options, destination, inputs, force, image_size, opset, batch, weights, align, request)


@click.command()
@click.argument("file", type=click.Path())
def show(file: str) -> None:
    """Show where a model came from: the provenance in an exported .onnx, or a .cell's summary.

    Exit status: 0 shown, 1 an unreadable file or one without nasc provenance, 2 usage error, 3 a bug.

    \b
    Examples:
      nasc show nasnet_a_mobile.onnx
      nasc show genotypes/nasnet_a.cell
    """
    if file.endswith(".onnx"):
        from nasc.runtime.onnx_export import read_metadata

        if not os.path.isfile(file):
            raise NascError([Diagnostic("no such file", None, file)])
        try:
            metadata = read_metadata(file)
        except Exception as error:
            raise click.ClickException(
                f"{shown(file)} is not a readable ONNX model: {str(error).splitlines()[0]}"
            ) from None
        if not metadata:
            raise click.ClickException(
                f"{shown(file)} carries no nasc provenance (it was not exported by nasc)"
            )
        source = metadata.pop("cell_source", "")
        for key, value in metadata.items():
            say(f"{key}: {value}")
        click.echo("cell source:")
        lines = source.split("\n")  # at line feeds only: other separators are shown escaped
        if lines and lines[-1] == "":
            lines.pop()
        say("".join(f"  | {line}\n" for line in lines), nl=False)
        return
    genotype = load(file)
    say(f"genotype {genotype.name} ({shown(file)}), convention {genotype.convention}")
    click.echo(f"structural hash: {nasc.structural_hash(genotype)}")
    for entry in genotype.metadata:
        say(f"  {entry.key} = {entry.value!r}")
    for cell in genotype.cells:
        click.echo(f"{cell.kind}: {len(cell.blocks)} blocks, output concat({', '.join(cell.output.members)})")
    compilation = _compilation(genotype, emit_options(file, None, None, None))
    name, figures = compilation.preset_name, compilation.count()
    size = figures.input_shape[-1]
    click.echo(
        f"{name} preset: {figures.parameters:,} parameters, {figures.mult_adds:,} mult-adds at {size}x{size}"
    )
