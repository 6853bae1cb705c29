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
from nasc.compiler.presets import PRESETS
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
        except BrokenPipeError:  # the reader went away (`nasc diff a b | head`): stop quietly
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            sys.exit(1)
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


# -- compiling --------------------------------------------------------------------------------------

PRESET_NAMES = tuple(PRESETS)


def _parse_scale(_ctx: click.Context, _param: click.Parameter, value: str | None) -> tuple[int, int] | None:
    """The paper's `N@P`: N normal cells per stage, P filters in the penultimate layer."""
    if value is None:
        return None
    cells, _, filters = value.partition("@")
    if not (cells.isdigit() and filters.isdigit()) or int(cells) < 1 or int(filters) < 1:
        raise click.BadParameter(
            f"{value!r} is not N@P, e.g. 6@768 (N cells per stage, P penultimate filters)"
        )
    return int(cells), int(filters)


def _network_options(command: Callable) -> Callable:
    """--preset, --scale and --num-classes, shared by every command that builds a network."""
    command = click.option("--num-classes", type=click.IntRange(min=1), help="Classes of the classifier.")(
        command
    )
    command = click.option(
        "--scale",
        callback=_parse_scale,
        metavar="N@P",
        help="N normal cells per stage, P penultimate filters (e.g. 6@768).",
    )(command)
    return click.option(
        "--preset",
        type=click.Choice(PRESET_NAMES),
        default="cifar",
        show_default=True,
        help="Network skeleton and hyper-parameters of the reference.",
    )(command)


def _emit_options(path: str, preset: str, scale: tuple[int, int] | None, num_classes: int | None):
    from nasc.compiler.emit_torch import EmitOptions

    cells, filters = scale or (None, None)
    return EmitOptions(
        preset=preset,
        cells_per_stage=cells,
        penultimate_filters=filters,
        num_classes=num_classes,
        source_file=path,
    )


def _build(genotype, options, *, image_size: int | None = None):
    """Emit, import and build the network of `options`; returns (source, module, model, image size)."""
    from nasc.compiler.emit_torch import emit_torch
    from nasc.runtime.build import import_source

    try:
        source = emit_torch(genotype, options)
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    module = import_source(source)
    preset = module.PRESETS[module.DEFAULT_PRESET]
    size = image_size or preset.image_size
    try:
        model = module.create_model(module.DEFAULT_PRESET, image_size=size)
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    return source, module, model, size


@main.command(name="compile")
@click.argument("file", type=click.Path())
@click.option("--target", type=click.Choice(["torch", "onnx"]), default="torch", show_default=True)
@click.option("-o", "--output", type=click.Path(), help="Output file (default: GENOTYPE.py / .onnx here).")
@_network_options
def compile_command(file: str, target: str, output: str | None, preset: str, scale, num_classes) -> None:
    """Compile a .cell file into a standalone PyTorch module (or a verified ONNX model).

    The module imports only torch and the standard library and offers
    create_model(preset, num_classes=..., aux_head=...), PRESETS and the network class.

    \b
    Example:
      nasc compile genotypes/nasnet_a.cell --target torch -o nasnet_a.py
      nasc compile genotypes/nasnet_a.cell --preset mobile --scale 4@1056
    """
    genotype = load(file)
    options = _emit_options(file, preset, scale, num_classes)
    if target == "onnx":
        _export(genotype, options, output or f"{genotype.name}.onnx", image_size=None, opset=None, batch="1")
        return
    source, module, model, size = _build(genotype, options)
    destination = output or f"{genotype.name}.py"
    try:
        atomic_write_text(destination, source)
    except OSError as error:
        raise click.ClickException(f"cannot write {destination}: {error.strerror or error}") from None
    from nasc.runtime.stats import count_parameters, measure

    stats = measure(model, size)
    classes = sorted({type(cell).__name__ for cell in model.cells})
    network = type(model).__name__
    click.echo(f"wrote {destination}: genotype {genotype.name}, classes {', '.join([*classes, network])}")
    click.echo(
        f"  preset {module.DEFAULT_PRESET}: {count_parameters(model):,} parameters, "
        f"{stats.mult_adds:,} mult-adds at {size}x{size}, {len(model.cells)} cells"
    )


@main.command()
@click.argument("file", type=click.Path())
@_network_options
@click.option(
    "--image-size", type=click.IntRange(min=8), help="Input height and width (default: the preset's)."
)
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def stats(file: str, preset: str, scale, num_classes, image_size: int | None, as_json: bool) -> None:
    """Parameters (with and without the aux head), conv + linear mult-adds, and a per-cell table.

    \b
    Example:
      nasc stats genotypes/nasnet_a.cell --preset mobile
    """
    genotype = load(file)
    options = _emit_options(file, preset, scale, num_classes)
    _, module, model, size = _build(genotype, options, image_size=image_size)
    from nasc.runtime.stats import measure

    try:
        aux_model = module.create_model(module.DEFAULT_PRESET, image_size=size, aux_head=True)
    except ValueError:
        aux_model = None  # the image is too small for the aux head: report the network without it
    figures = measure(model, size, aux_model)
    if as_json:
        import json

        click.echo(
            json.dumps(
                {"genotype": genotype.name, "preset": module.DEFAULT_PRESET, **figures.to_dict()}, indent=2
            )
        )
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{genotype.name} · {module.DEFAULT_PRESET} · {size}x{size}")
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


def _export(genotype, options, output: str, *, image_size: int | None, opset: int | None, batch: str) -> None:
    from nasc.runtime.onnx_export import ExportError, export_onnx

    click.echo(
        f"exporting {genotype.name} ({options.preset}) to ONNX and checking it in onnxruntime ...", err=True
    )
    try:
        report = export_onnx(genotype, options, output, image_size=image_size, opset=opset, batch=batch)
    except ExportError as error:
        raise click.ClickException(str(error)) from None
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    ops = ", ".join(f"{name} {count}" for name, count in report.op_mix)
    click.echo(
        f"wrote {report.path}: opset {report.opset}, batch {report.batch}, "
        f"{report.image_size}x{report.image_size}, {report.nodes} nodes, {report.size_bytes / 1e6:.1f} MB"
    )
    click.echo(
        f"  onnxruntime ({report.provider}) vs PyTorch: max abs diff {report.max_abs_diff:.2e}, "
        f"max rel diff {report.max_rel_diff:.2e}"
    )
    click.echo(f"  graph: {'static shapes' if report.static_graph else 'dynamic shapes'}; ops: {ops}")
    meta = report.metadata
    click.echo(
        f"  provenance: genotype {meta['genotype']}, hash {meta['structural_hash'][:12]}, "
        f"preset {meta['preset']} ({meta['scale']})"
    )


def _parse_batch(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    if value != "dynamic" and not (value.isdigit() and int(value) >= 1):
        raise click.BadParameter(f"{value!r} is neither a positive number nor 'dynamic'")
    return value


@main.command()
@click.argument("file", type=click.Path())
@click.option(
    "--onnx", "as_onnx", is_flag=True, required=True, help="Export to ONNX (the one format so far)."
)
@click.option("-o", "--output", type=click.Path(), help="Output file (default: GENOTYPE_PRESET.onnx here).")
@_network_options
@click.option(
    "--image-size", type=click.IntRange(min=8), help="Input height and width (default: the preset's)."
)
@click.option("--opset", type=int, help="ONNX opset (default: torch.onnx's).")
@click.option(
    "--batch",
    default="1",
    show_default=True,
    callback=_parse_batch,
    metavar="N|dynamic",
    help="Fixed batch size, or 'dynamic' for a variable first axis.",
)
def export(
    file: str,
    as_onnx: bool,
    output: str | None,
    preset: str,
    scale,
    num_classes,
    image_size: int | None,
    opset: int | None,
    batch: str,
) -> None:
    """Export to ONNX, verified: onnx checker, shape inference, and onnxruntime against PyTorch.

    Fails (exit 1, no file written) if onnxruntime and PyTorch differ by more than 1e-4 relative.
    The model's metadata carries the genotype, its hash, the preset and the .cell source.

    \b
    Example:
      nasc export genotypes/nasnet_a.cell --onnx --preset mobile -o nasnet_a_mobile.onnx
    """
    genotype = load(file)
    options = _emit_options(file, preset, scale, num_classes)
    _export(
        genotype,
        options,
        output or f"{genotype.name}_{preset}.onnx",
        image_size=image_size,
        opset=opset,
        batch=batch,
    )


@main.command()
@click.argument("file", type=click.Path())
def show(file: str) -> None:
    """Show where a model came from: the provenance in an exported .onnx, or a .cell's summary.

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
                f"{file} is not a readable ONNX model: {str(error).splitlines()[0]}"
            ) from None
        if not metadata:
            raise click.ClickException(f"{file} carries no nasc provenance (it was not exported by nasc)")
        source = metadata.pop("cell_source", "")
        for key, value in metadata.items():
            click.echo(f"{key}: {value}")
        click.echo("cell source:")
        click.echo("".join(f"  | {line}\n" for line in source.splitlines()), nl=False)
        return
    genotype = load(file)
    click.echo(f"genotype {genotype.name} ({file})")
    click.echo(f"structural hash: {nasc.structural_hash(genotype)}")
    for entry in genotype.metadata:
        click.echo(f"  {entry.key} = {entry.value!r}")
    for cell in genotype.cells:
        click.echo(f"{cell.kind}: {len(cell.blocks)} blocks, output concat({', '.join(cell.output.members)})")
    _, _, model, size = _build(genotype, _emit_options(file, "cifar", None, None))
    from nasc.runtime.stats import measure

    figures = measure(model, size)
    click.echo(
        f"cifar preset: {figures.parameters:,} parameters, {figures.mult_adds:,} mult-adds at {size}x{size}"
    )


# -- training -----------------------------------------------------------------------------------------


@main.command(name="train")
@click.argument("file", type=click.Path())
@click.option(
    "--dataset",
    type=click.Choice(["digits", "cifar10", "imagefolder"]),
    default="digits",
    show_default=True,
    help="digits is embedded (scikit-learn); the others read --data-dir.",
)
@click.option("--data-dir", type=click.Path(), help="CIFAR-10 python files, or DIR/train/<class>/… folders.")
@click.option("--preset", type=click.Choice(PRESET_NAMES), help="Network skeleton (default: the dataset's).")
@click.option(
    "--scale", callback=_parse_scale, metavar="N@P", help="N cells per stage @ P penultimate filters."
)
@click.option("--image-size", type=click.IntRange(min=8), help="Input size (default: the dataset's).")
@click.option("--epochs", type=click.IntRange(min=1), help="Epochs (default: the dataset's).")
@click.option("--batch-size", type=click.IntRange(min=2), help="Batch size per process.")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), help="Initial learning rate.")
@click.option("--recipe", type=click.Choice(sorted(["cifar", "imagenet"])), help="The paper's recipe.")
@click.option("--weight-decay", type=click.FloatRange(min=0), help="L2 on conv and linear weights.")
@click.option("--momentum", type=click.FloatRange(min=0, max=1), help="Optimizer momentum.")
@click.option("--label-smoothing", type=click.FloatRange(min=0, max=1), help="Label smoothing.")
@click.option(
    "--aux-weight", type=click.FloatRange(min=0), help="Weight of the aux head's loss (0: no aux head)."
)
@click.option("--ema-decay", type=click.FloatRange(min=0, max=1), help="Evaluate an EMA of the weights.")
@click.option(
    "--drop-path-keep-prob",
    type=click.FloatRange(min=0, max=1, min_open=True),
    help="ScheduledDropPath's final keep probability (default: the preset's).",
)
@click.option("--cutout", type=click.IntRange(min=0), default=0, help="Cutout size in pixels (CIFAR: 16).")
@click.option("--out", default="runs/train", show_default=True, type=click.Path(), help="Output directory.")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last checkpoint.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option(
    "--workers", type=click.IntRange(min=0), default=0, show_default=True, help="Data-loading processes."
)
@click.option("--channels-last", is_flag=True, help="channels-last memory format (CUDA).")
@click.option("--amp", is_flag=True, help="Automatic mixed precision (CUDA).")
def train_command(file: str, **options) -> None:
    """Train a genotype with the paper's recipe, with checkpoints, metrics, a plot and a test score.

    Runs under torchrun for several processes (DistributedDataParallel; gloo on CPU, NCCL on GPU).

    \b
    Examples:
      nasc train genotypes/nasnet_a.cell --dataset digits --out runs/digits
      nasc train genotypes/nasnet_a.cell --dataset cifar10 --data-dir ~/data --cutout 16
      torchrun --nproc_per_node=2 -m nasc train genotypes/nasnet_a.cell --dataset digits
    """
    from nasc.runtime.data import DataError
    from nasc.runtime.train import TrainConfig, TrainingError, train

    genotype = load(file)
    config = TrainConfig(**options)
    try:
        result = train(genotype, config)
    except (TrainingError, DataError) as error:
        raise click.ClickException(str(error)) from None
    if int(os.environ.get("RANK", "0")) != 0:
        return
    if result.stopped == "interrupted":
        click.echo(
            f"interrupted after {result.steps} steps; checkpoint saved in {result.out}. "
            f"Continue with --resume --out {result.out}",
            err=True,
        )
        sys.exit(130)
    click.echo(
        f"trained {genotype.name} for {result.epochs} epochs ({result.steps} steps, {result.seconds:.0f} s, "
        f"{result.images_per_second:,.0f} img/s, {result.parameters:,} parameters)"
    )
    click.echo(
        f"  best validation accuracy {result.best_val_accuracy:.4f}; test accuracy {result.test_accuracy:.4f}"
    )
    click.echo(
        f"  wrote {result.out}/: checkpoint.pt, best.pt, metrics.jsonl, curves.png, model.py, result.json"
    )


# -- search -------------------------------------------------------------------------------------------


@main.command()
@click.option(
    "--strategy", type=click.Choice(["ppo", "reinforce", "random"]), default="ppo", show_default=True
)
@click.option(
    "--budget",
    type=click.IntRange(min=1),
    default=40,
    show_default=True,
    help="Architectures to sample (each becomes a .cell file).",
)
@click.option("--dataset", type=click.Choice(["digits", "cifar10"]), default="digits", show_default=True)
@click.option("--data-dir", type=click.Path(), help="CIFAR-10 python files (for --dataset cifar10).")
@click.option(
    "--proxy-cells",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Children's normal cells per stage, N (the paper's search: 2).",
)
@click.option(
    "--proxy-filters",
    type=click.IntRange(min=2),
    default=4,
    show_default=True,
    help="Children's first-stage filters, F0.",
)
@click.option(
    "--proxy-epochs",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Children's training epochs (the paper: 20, cosine decay).",
)
@click.option("--proxy-batch-size", type=click.IntRange(min=2), default=32, show_default=True)
@click.option(
    "--workers", type=click.IntRange(min=1), default=1, show_default=True, help="Children at a time."
)
@click.option(
    "--executor",
    type=click.Choice(["local", "ray"]),
    default="local",
    show_default=True,
    help="local: a process pool here; ray: one Ray task per child (a cluster with --address).",
)
@click.option("--address", help="Ray cluster address (default: start Ray on this machine).")
@click.option(
    "--blocks", type=click.IntRange(min=1), default=5, show_default=True, help="Blocks per cell (B)."
)
@click.option("--ops", help="Comma-separated op subset (default: the paper's 13).")
@click.option("--combines", default="add,concat", show_default=True, help="Comma-separated combines.")
@click.option(
    "--controller-lr", type=click.FloatRange(min=0, min_open=True), default=0.00035, show_default=True
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", type=click.Path(), help="Output directory (default: runs/search-STRATEGY).")
@click.option(
    "--resume",
    "resume_dir",
    type=click.Path(),
    metavar="DIR",
    help="Continue the search in DIR with its own settings.",
)
def search(resume_dir: str | None, **options) -> None:
    """Architecture search (the paper's controller with PPO, REINFORCE, or random search), writing
    every sampled architecture as a reviewed-ready .cell file.

    \b
    Examples:
      nasc search --dataset digits --strategy ppo --budget 40 --out runs/demo
      nasc search --resume runs/demo
      nasc search --executor ray --address auto --workers 64 --budget 20000 ...
    """
    from nasc.runtime.search import Search, SearchConfig, SearchError, load_config

    try:
        if resume_dir:
            config = load_config(resume_dir)
        else:
            ops = tuple(o.strip() for o in options["ops"].split(",")) if options["ops"] else None
            combines = tuple(c.strip() for c in options["combines"].split(","))
            config = SearchConfig(
                out=options["out"] or f"runs/search-{options['strategy']}",
                strategy=options["strategy"],
                budget=options["budget"],
                dataset=options["dataset"],
                data_dir=options["data_dir"],
                proxy_cells=options["proxy_cells"],
                proxy_filters=options["proxy_filters"],
                proxy_epochs=options["proxy_epochs"],
                proxy_batch_size=options["proxy_batch_size"],
                workers=options["workers"],
                executor=options["executor"],
                address=options["address"],
                seed=options["seed"],
                num_blocks=options["blocks"],
                ops=ops,
                combines=combines,
                controller_lr=options["controller_lr"],
            )
            try:
                config.space()
            except ValueError as error:
                raise click.UsageError(str(error)) from None
            if Path(config.out, "ledger.jsonl").exists():
                raise SearchError(
                    f"{config.out} already holds a search; continue it with --resume {config.out}"
                )
        runner = Search(config)
        summary = runner.run(resume=bool(resume_dir), progress=sys.stderr.isatty())
    except SearchError as error:
        raise click.ClickException(str(error)) from None
    best = (
        f"{summary['best_reward']:.4f} ({summary['best_file']})"
        if summary["best_reward"] is not None
        else "none"
    )
    click.echo(
        f"search {config.strategy} in {config.out}: {summary['finished']} finished "
        f"({summary['trained']} trained, {summary['duplicates']} duplicates, {summary['failed']} failed); "
        f"best {best}"
    )
    click.echo(
        f"  cells in {config.out}/cells/, ledger.jsonl, best.cell, rewards.png; list them with "
        f"nasc top {config.out}"
    )


@main.command(name="top")
@click.argument("directory", type=click.Path())
@click.option("-k", type=click.IntRange(min=1), default=10, show_default=True, help="How many.")
def top_command(directory: str, k: int) -> None:
    """List the best distinct architectures of a search.

    \b
    Example:
      nasc top runs/demo -k 5
    """
    from nasc.runtime.search import SearchError, top

    try:
        rows = top(directory, k)
    except SearchError as error:
        raise click.ClickException(str(error)) from None
    if not rows:
        click.echo("no finished architectures yet")
        return
    click.echo(f"{'rank':>4} {'reward':>8} {'step':>6} {'hash':8} {'sampled':>7}  file")
    for rank, row in enumerate(rows, start=1):
        click.echo(
            f"{rank:>4} {row['reward']:8.4f} {row['step']:>6} {row['hash'][:8]} {row['times_sampled']:>7}  "
            f"{Path(directory) / row['file']}"
        )


# -- review -------------------------------------------------------------------------------------------

DOT_INSTALL_HINT = (
    "install Graphviz: `apt-get install graphviz` (Debian/Ubuntu), `brew install graphviz` "
    "(macOS), `conda install graphviz`; or write DOT text with -o FILE.dot"
)


@main.command()
@click.argument("file", type=click.Path())
@click.option(
    "-o", "--output", type=click.Path(), help="OUT.svg, OUT.png or OUT.dot (default: GENOTYPE.svg)."
)
@click.option("--cell", "cells", default="all", show_default=True, help="normal, reduction or all.")
@click.option(
    "--lowered",
    is_flag=True,
    help="Also show what the compiler inserts: squeeze, x2 adjustment, "
    "strides, 1x1 adapters, factorized reductions.",
)
def viz(file: str, output: str | None, cells: str, lowered: bool) -> None:
    """Draw the cells like the paper's Figure 4 (Graphviz).

    \b
    Examples:
      nasc viz genotypes/nasnet_a.cell -o nasnet_a.svg
      nasc viz genotypes/nasnet_a.cell --cell reduction --lowered -o reduction.png
    """
    import shutil
    import subprocess

    from nasc.compiler.viz import to_dot

    genotype = load(file)
    destination = output or f"{genotype.name}.svg"
    suffix = Path(destination).suffix.lower()
    if suffix not in (".svg", ".png", ".dot", ".gv"):
        raise click.UsageError(f"cannot tell the format of {destination}: use .svg, .png or .dot")
    try:
        dot_text = to_dot(genotype, cells, lowered)
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    if suffix in (".dot", ".gv"):
        data = dot_text.encode()
    else:
        dot = shutil.which("dot")
        if dot is None:
            raise click.ClickException(f"the `dot` program (Graphviz) is not installed; {DOT_INSTALL_HINT}")
        rendered = subprocess.run(
            [dot, f"-T{suffix[1:]}"], input=dot_text.encode(), capture_output=True, timeout=60
        )
        if rendered.returncode != 0:
            reason = rendered.stderr.decode(errors="replace").strip().splitlines()
            raise click.ClickException(f"dot failed: {reason[0] if reason else 'no output'}")
        data = rendered.stdout
    from nasc.fileio import atomic_write_bytes

    try:
        atomic_write_bytes(destination, data)
    except OSError as error:
        raise click.ClickException(f"cannot write {destination}: {error.strerror or error}") from None
    click.echo(f"wrote {destination}")


@main.command(name="diff")
@click.argument("a", type=click.Path())
@click.argument("b", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="The changes as JSON.")
def diff_command(a: str, b: str, as_json: bool) -> None:
    """Semantic difference of two genotypes (state names and block order do not matter).

    Exit status: 0 the same architecture, 1 different, 2 an error (as diff).

    \b
    Example:
      nasc diff genotypes/nasnet_a.cell runs/demo/best.cell
    """
    from nasc.compiler.diff import diff

    try:
        first, second = load(a), load(b)
    except NascError as error:
        _report(error)
        sys.exit(2)
    changes = diff(first, second)
    if as_json:
        import json

        click.echo(json.dumps({"same": not changes, "changes": [c.to_dict() for c in changes]}, indent=2))
    elif not changes:
        click.echo(f"{a} and {b}: the same architecture")
    else:
        for change in changes:
            click.echo(change.text)
    sys.exit(1 if changes else 0)
