"""`nasc bench`: build a tabular benchmark of a space's architectures, and look architectures up in one."""

from __future__ import annotations

import atexit
import os

import click
from click.core import ParameterSource

from nasc.cli.common import say


@click.group(name="bench")
def bench_group() -> None:
    """Tabular benchmarks: every distinct architecture of a space trained once at fixed settings
    (docs/benchmarks.md), and look-ups into them.

    Exit status: 0 done, 1 the input is wrong (one line), 2 usage error, 3 a bug, 130 interrupted.

    \b
    Example:
      nasc bench build --space nb201 --dataset digits --out benchmarks/nb201-digits.jsonl --resume
      nasc bench query benchmarks/nb201-digits.jsonl '|nor_conv_3x3~0|+|...|'
    """


@bench_group.command(name="build")
@click.option("--space", default="nb201", show_default=True, type=click.Choice(["nb201"]))
@click.option("--dataset", default="digits", show_default=True, type=click.Choice(["digits"]))
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False), help="The table (JSON lines).")
@click.option("--epochs", default=8, show_default=True, type=click.IntRange(min=1))
@click.option("--cells", default=1, show_default=True, type=click.IntRange(min=1), help="N per stage.")
@click.option("--channels", default=4, show_default=True, type=click.IntRange(min=1), help="C.")
@click.option("--batch-size", default=32, show_default=True, type=click.IntRange(min=1))
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=click.IntRange(min=1))
@click.option("--executor", default="local", show_default=True, type=click.Choice(["local", "ray"]))
@click.option("--address", help="A Ray cluster's address (with --executor ray).")
@click.option("--limit", type=click.IntRange(min=1), help="Train at most this many architectures now.")
@click.option("--resume", is_flag=True, help="Continue the table at --out with its settings.")
def build_command(
    space: str,
    dataset: str,
    out: str,
    epochs: int,
    cells: int,
    channels: int,
    batch_size: int,
    seed: int,
    workers: int,
    executor: str,
    address: str | None,
    limit: int | None,
    resume: bool,
) -> None:
    """Train every distinct architecture of the space not yet in the table, appending one line
    each (a kill loses only those in flight; --resume goes on).

    \b
    Example:
      nasc bench build --out benchmarks/nb201-digits.jsonl --workers 2 --resume
    """
    from nasc.runtime.signals import interrupt_on_sigterm

    interrupt_on_sigterm()
    from nasc.runtime.search.executors import stop_helper_processes
    from nasc.runtime.tabular import TableError, TableSettings, build_table

    settings = TableSettings(space, dataset, epochs, cells, channels, batch_size, seed)
    atexit.register(stop_helper_processes)
    try:
        if resume and os.path.exists(out):
            settings = _resumed_settings(out, settings)
        summary = build_table(
            settings,
            out,
            workers=workers,
            executor=executor,
            address=address,
            resume=resume,
            limit=limit,
            report=lambda line: say(line, err=True),
        )
    except TableError as error:
        raise click.ClickException(str(error)) from None
    say(
        f"trained {summary['trained']:,} ({summary['failed']:,} failed); {out} holds "
        f"{summary['in_table']:,} of {summary['distinct']:,} distinct architectures"
    )


def _resumed_settings(out: str, asked):
    """A resumed table's own settings; an option given on the command line must agree with them."""
    from dataclasses import asdict

    from nasc.runtime.tabular import TableError, TableSettings, read_header

    kept = read_header(out)["settings"]
    context = click.get_current_context()
    options = {"cells": "cells_per_stage", "channels": "channels", "batch_size": "batch_size"}
    for option in ("space", "dataset", "epochs", "cells", "channels", "batch_size", "seed"):
        field = options.get(option, option)
        given = context.get_parameter_source(option) == ParameterSource.COMMANDLINE
        if given and asdict(asked)[field] != kept[field]:
            raise TableError(
                f"{out} was built with {field} {kept[field]}, not {asdict(asked)[field]}: "
                "resume it with its own settings (leave the option out)"
            )
    return TableSettings(**kept)


@bench_group.command(name="query")
@click.argument("table", type=click.Path(dir_okay=False))
@click.argument("architecture", required=False)
@click.option("--epoch", type=click.IntRange(min=1), help="After this many epochs (default: the last).")
def query_command(table: str, architecture: str | None, epoch: int | None) -> None:
    """An architecture's row (by NAS-Bench-201 string, any isomorph, index in the space's
    enumeration, or structural hash), or without one, what the table holds: rows, the spread of its
    accuracies, its best.

    \b
    Example:
      nasc bench query benchmarks/nb201-digits.jsonl '|nor_conv_3x3~0|+|...|' --epoch 4
    """
    from nasc.runtime.tabular import Table, TableError

    try:
        loaded = Table.load(table)
        for problem in loaded.problems[:10]:
            say(f"{table}: {problem}", err=True)
        if architecture is None:
            _describe(loaded, epoch)
            return
        row = loaded.position(architecture)
        values = {name: float(loaded.metric(name, epoch)[row]) for name in loaded.metrics}
    except (TableError, ValueError) as error:
        raise click.ClickException(str(error)) from None
    say(f"{loaded.archs[row]}  hash {loaded.hashes[row][:12]}")
    say(f"  parameters {int(loaded.params[row]):,}, mult-adds {int(loaded.macs[row]):,}")
    say(
        f"  after {epoch or loaded.epochs} of {loaded.epochs} epochs: "
        + ", ".join(f"{name} {value:.4f}" for name, value in values.items())
    )


def _describe(table, epoch: int | None) -> None:
    import numpy as np

    header = table.header
    say(
        f"{header['space']} on {header['dataset']}: {len(table):,} of {header['distinct']:,} distinct "
        f"architectures ({header['architectures']:,} in the space), {len(table.failed):,} failed"
    )
    say("  settings: " + ", ".join(f"{k} {v}" for k, v in header["settings"].items()))
    if not len(table):
        return
    test = table.metric("test_accuracy", epoch)
    low, median, high = np.percentile(test, [5, 50, 95])
    best = int(np.argmax(test))
    say(f"  test accuracy: 5th percentile {low:.4f}, median {median:.4f}, 95th {high:.4f}")
    say(f"  best: {table.archs[best]} ({test[best]:.4f})")
    say(f"  training time: {table.training_seconds().sum() / 3600:.2f} CPU-hours in all")
