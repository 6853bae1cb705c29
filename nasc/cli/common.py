"""What several commands share: reading .cell files, network options, writing outputs, and text
that reaches the terminal only after it has been made inert."""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from nasc.cli.app import report
from nasc.compiler import ir
from nasc.compiler.api import STDIN, cell_files, display_name, load_source
from nasc.compiler.conventions import CONVENTIONS
from nasc.compiler.space_ir import Space
from nasc.diagnostics import NascError, printable
from nasc.fileio import OutputError, check_output, has_mark, write_output, write_stdout

T = TypeVar("T")
DATASETS = ("digits", "cifar10", "imagefolder")  # what runtime/data.load_dataset reads
PRESET_HELP = "; ".join(f"{name} {'|'.join(c.presets)}" for name, c in CONVENTIONS.items())


def say(text: str, *, err: bool = False, nl: bool = True) -> None:
    """Print text that may hold a file's content or name: control characters are shown escaped."""
    click.echo(printable(text), err=err, nl=nl)


def shown(path: str) -> str:
    """A path as messages show it."""
    return printable(display_name(path), keep_newlines=False) if path != "" else "''"


# The commands on source (check, fmt, hash) read cells and spaces alike.
SOURCE_SUFFIXES = (".cell", ".space")


def each_genotype(paths: tuple[str, ...], on_ok: Callable[[str, ir.Genotype | Space], None]) -> int:
    """Load every cell or space, report diagnostics, call `on_ok` for the good ones; returns how
    many failed."""
    failed = 0
    for path, problem in cell_files(paths, SOURCE_SUFFIXES):
        if problem is not None:
            report(problem)
            failed += 1
            continue
        try:
            genotype = load_source(path)
        except NascError as error:
            report(error)
            failed += 1
            continue
        on_ok(path, genotype)
    return failed


jobs_option = click.option(
    "-j",
    "--jobs",
    type=click.IntRange(min=1),
    help="Processes to load and check files on (default: every core, from 64 files on).",
)

# Below this many files a process pool costs more than it saves.
PARALLEL_FROM = 64


def _load_and(task: Callable[[ir.Genotype | Space], T], path: str) -> T | NascError:
    try:
        return task(load_source(path))
    except NascError as error:
        return error


def each_result(
    paths: tuple[str, ...],
    task: Callable[[ir.Genotype | Space], T],
    on_ok: Callable[[str, T], None],
    jobs: int | None = None,
) -> int:
    """Like each_genotype, for read-only work: `task` (a module-level function: it runs in worker
    processes) maps each loaded genotype to what `on_ok` prints. Files are loaded and checked on
    `jobs` processes (default: every core, for 64 files or more); results and diagnostics come
    back in the files' order, so the output is the same as with one process."""
    files = list(cell_files(paths, SOURCE_SUFFIXES))
    jobs = jobs or (os.cpu_count() or 1)
    readable = [path for path, problem in files if problem is None and path not in ("", STDIN)]
    if jobs > 1 and len(readable) >= PARALLEL_FROM:
        from concurrent.futures import ProcessPoolExecutor
        from functools import partial

        with ProcessPoolExecutor(max_workers=jobs) as pool:
            chunk = max(1, len(readable) // (jobs * 8))
            loaded = pool.map(partial(_load_and, task), readable, chunksize=chunk)
            results = dict(zip(readable, loaded, strict=True))
    else:
        results = {}
    failed = 0
    for path, problem in files:
        result = problem if problem is not None else results.get(path)
        if result is None:
            result = _load_and(task, path)
        if isinstance(result, NascError):
            report(result)
            failed += 1
            continue
        on_ok(path, result)
    return failed


# -- network options -----------------------------------------------------------------------------


def parse_scale(_ctx: click.Context, _param: click.Parameter, value: str | None) -> tuple[int, int] | None:
    """The paper's `N@P`: N normal cells per stage, P filters in the penultimate layer."""
    if value is None:
        return None
    cells, _, filters = value.partition("@")
    if not (cells.isdigit() and filters.isdigit()) or int(cells) < 1 or int(filters) < 1:
        raise click.BadParameter(
            f"{value!r} is not N@P, e.g. 6@768 (N cells per stage, P penultimate filters)"
        )
    return int(cells), int(filters)


def network_options(command: Callable) -> Callable:
    """--preset, --scale and --num-classes, shared by every command that builds a network."""
    command = click.option("--num-classes", type=click.IntRange(min=1), help="Classes of the classifier.")(
        command
    )
    command = click.option(
        "--scale",
        callback=parse_scale,
        metavar="N@P",
        help="N normal cells per stage, P penultimate filters (e.g. 6@768).",
    )(command)
    return click.option(
        "--preset",
        metavar="NAME",
        help=f"Network skeleton and hyper-parameters of the reference (default: the convention's first); "
        f"by convention: {PRESET_HELP}.",
    )(command)


def emit_options(path: str, preset: str, scale: tuple[int, int] | None, num_classes: int | None):
    from nasc.compiler.options import EmitOptions

    cells, filters = scale or (None, None)
    return EmitOptions(
        preset=preset,
        cells_per_stage=cells,
        penultimate_filters=filters,
        num_classes=num_classes,
        source_file=display_name(path),
    )


# -- outputs ---------------------------------------------------------------------------------------


class OutputPath(click.Path):
    """A path to write: an empty one is a usage error, not the default name in disguise."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if value == "":
            self.fail("the path is empty", param, ctx)
        return super().convert(value, param, ctx)


OUTPUT_PATH = OutputPath()

force_option = click.option(
    "--force", is_flag=True, help="Replace an existing output file that nasc did not write."
)


def prepare_output(
    destination: str,
    *,
    inputs: tuple[str, ...] = (),
    force: bool = False,
    text: bool = True,
    ours: Callable[[str], bool] = has_mark,
) -> None:
    """Check, before any work, that `destination` may be written (`-`: standard output, text only)."""
    if destination == STDIN:
        if not text:
            raise click.UsageError("-o - writes to standard output, which is for text; name a file")
        return
    if destination == "":
        raise click.UsageError("the output path is empty")
    check_output(destination, inputs=inputs, force=force, ours=ours, shown=shown(destination))


def write(destination: str, data: bytes) -> str:
    """Write an output checked by `prepare_output`; the name to report ("standard output" for -)."""
    if destination == STDIN:
        write_stdout(data)
        return "standard output"
    write_output(destination, data, shown(destination))
    return shown(destination)


def progress_stream() -> bool:
    """Whether progress should be a live display (a terminal) rather than plain lines."""
    return sys.stderr.isatty()


Config = TypeVar("Config")


def config_from(cls: type[Config], options: dict[str, Any], **overrides: Any) -> Config:
    """Build a dataclass config from click options named like its fields. An option that names no
    field is a bug in the command's declaration, caught by the tests rather than silently dropped."""
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(options) - names)
    if unknown:
        raise TypeError(f"options without a {cls.__name__} field: {', '.join(unknown)}")
    return cls(**{**options, **overrides})


__all__ = [
    "OUTPUT_PATH",
    "OutputError",
    "cell_files",
    "config_from",
    "each_genotype",
    "each_result",
    "emit_options",
    "force_option",
    "jobs_option",
    "network_options",
    "prepare_output",
    "say",
    "shown",
    "write",
]
