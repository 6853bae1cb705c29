"""`nasc search` and `nasc top`: architecture search writing .cell files, and its best results."""

from __future__ import annotations

import atexit
import sys
from pathlib import Path

import click

from nasc.cli.common import OUTPUT_PATH, config_from, progress_stream, say, shown
from nasc.cli.oneshot import NAMES, ONESHOT, oneshot_options, run_oneshot


def _names(_ctx: click.Context, _param: click.Parameter, value: str | None) -> tuple[str, ...] | None:
    """A comma-separated list of op or combine names."""
    if value is None:
        return None
    return tuple(name.strip() for name in value.split(",") if name.strip())


def _space(_ctx: click.Context, _param: click.Parameter, value: str | None):
    """A space file, checked (its diagnostics end the command)."""
    if value is None:
        return None
    from nasc.compiler.api import load_space

    return load_space(value)


def _cell_files(name: str, text: str):
    """A repeatable option naming .cell files or directories of them."""
    return click.option(name, multiple=True, type=click.Path(), metavar="DIR_OR_FILE", help=text)


def _count(name: str, default: int, text: str, minimum: int = 1, dest: str | None = None):
    """An integer option with a lower bound and its default shown."""
    declarations = (name, dest) if dest else (name,)
    return click.option(
        *declarations, type=click.IntRange(min=minimum), default=default, show_default=True, help=text
    )


@click.command()
@click.option(
    "--strategy",
    type=click.Choice(["ppo", "reinforce", "random", "evolution", *ONESHOT]),
    default="ppo",
    show_default=True,
    help="ppo/reinforce: the paper's controller; evolution: aging evolution (Real et al. 2019); "
    "darts, gdas, enas, spos: one-shot, a supernet of the --space trained once (its flags below).",
)
@_count("--budget", 40, "Architectures to sample (each becomes a .cell file).")
@click.option("--dataset", type=click.Choice(["digits", "cifar10"]), default="digits", show_default=True)
@click.option("--data-dir", type=click.Path(), help="CIFAR-10 python files (for --dataset cifar10).")
@_count("--proxy-cells", 1, "Children's normal cells per stage, N (the paper's search: 2).")
@_count("--proxy-filters", 4, "Children's first-stage filters, F0.", minimum=2)
@_count("--proxy-epochs", 1, "Children's training epochs (the paper: 20, cosine decay).")
@click.option("--proxy-batch-size", type=click.IntRange(min=2), default=32, show_default=True)
@_count("--workers", 1, "Children at a time (warm worker processes).")
@click.option(
    "--executor",
    type=click.Choice(["local", "ray"]),
    default="local",
    show_default=True,
    help="local: warm worker processes here; ray: warm Ray actors (a cluster with --address).",
)
@click.option("--address", help="Ray cluster address (default: start Ray on this machine).")
@click.option(
    "--space",
    "space_source",
    type=click.Path(dir_okay=False),
    callback=_space,
    metavar="FILE",
    help="The search space, a .space file (default: the NASNet space, spaces/nasnet.space); its "
    "hash is written into every child.",
)
@_count("--blocks", 5, "Blocks per cell (B) of the default space.", dest="num_blocks")
@click.option("--ops", callback=_names, help="Comma-separated op subset (default: the paper's 13).")
@click.option(
    "--combines", callback=_names, default="add,concat", show_default=True, help="Comma-separated combines."
)
@click.option(
    "--controller-lr", type=click.FloatRange(min=0, min_open=True), default=0.00035, show_default=True
)
@_count("--population", 100, "Evolution: population P (the paper's).")
@_count("--sample", 25, "Evolution: tournament sample S (the paper's).")
@_cell_files(
    "--seed-cells", "Evolution: initial members from .cell files (repeatable; a directory: its *.cell)."
)
@click.option(
    "--objective",
    type=click.Choice(["accuracy", "mnas", "pareto"]),
    default="accuracy",
    show_default=True,
    help="mnas: accuracy x (latency/T)^w (MnasNet); pareto: the same with w drawn per child, "
    "keeping the accuracy-latency front. darts, gdas: mnas adds -w log(LAT(α)/T) to α's loss, "
    "LAT FBNet's expected latency from the lookup table.",
)
@click.option(
    "--target-latency-ms",
    type=click.FloatRange(min=0, min_open=True),
    help="T of the mnas/pareto reward (pareto's default: the first measured latency).",
)
@click.option("--latency-weight", type=float, default=-0.07, show_default=True, help="w (MnasNet's).")
@click.option(
    "--latency",
    type=click.Choice(["onnx", "table", "none"]),
    help="onnx: export each child's deployment network and time it in onnxruntime (the default for "
    "mnas and pareto); table: sum its cells' modules from a lookup table built as the search goes "
    "(FBNet); none: count parameters and mult-adds only (the default for accuracy).",
)
@click.option(
    "--deploy",
    default="2@256",
    show_default=True,
    metavar="PRESET|N@P",
    help="The network each child is costed in: a preset, or N cells per stage @ about P filters.",
)
@click.option("--deploy-image-size", type=click.IntRange(min=8), help="Its input size (N@P default: 32).")
@_count("--latency-runs", 20, "Timed runs (median).")
@_cell_files(
    "--reference", "Published cells to train and measure alike, shown in pareto.png (e.g. genotypes/)."
)
@_count("--recycle-every", 100, "Children a warm worker trains before a fresh process replaces it.")
@click.option(
    "--benchmark",
    type=click.Path(dir_okay=False),
    help="A table (nasc bench build): search its space, each child answered from it, its training "
    "time the cost (docs/benchmarks.md).",
)
@click.option(
    "--scheduler",
    type=click.Choice(["none", "asha", "hyperband"]),
    default="none",
    show_default=True,
    help="Train (or, with --benchmark, read) each child's epochs one by one and stop the weak early "
    "(Optuna's successive halving or Hyperband); its reward is its accuracy where it stopped.",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", type=OUTPUT_PATH, help="Output directory (default: runs/search-STRATEGY).")
@click.option(
    "--resume",
    "resume_dir",
    type=click.Path(),
    metavar="DIR",
    help="Continue the search in DIR with its own settings.",
)
@oneshot_options
def search(resume_dir: str | None, **options) -> None:
    """Architecture search (the paper's controller with PPO, REINFORCE, or random search), writing
    every sampled architecture as a reviewed-ready .cell file.

    \b
    Ctrl-C or SIGTERM stops at once, keeping every finished child; --resume continues.

    Exit status: 0 done, 1 bad settings or directory, 2 usage error, 3 a bug, 130 stopped by a
    signal (resumable).

    \b
    Examples:
      nasc search --dataset digits --strategy ppo --budget 40 --out runs/demo
      nasc search --strategy evolution --population 20 --sample 5 --seed-cells genotypes/ --budget 60
      nasc search --objective mnas --target-latency-ms 5 --budget 40 --out runs/mnas
      nasc search --resume runs/demo
      nasc search --benchmark benchmarks/nb201-digits.jsonl --strategy evolution --budget 200
      nasc search --strategy darts --space spaces/darts.space --epochs 50 --out runs/darts
      nasc search --executor ray --address auto --workers 64 --budget 20000 ...
    """
    from nasc.runtime.signals import interrupt_on_sigterm

    interrupt_on_sigterm()  # first, before seconds of imports
    given = {name: options.pop(name) for name in NAMES}
    space = options["space_source"]
    if space is not None:
        from nasc.compiler.api import format

        options["space_source"] = format(space)
    if options["strategy"] in ONESHOT or (resume_dir and Path(resume_dir, "oneshot.json").exists()):
        run_oneshot(options, given, resume_dir, space)
        return
    unused = [f"--{name.replace('_', '-')}" for name, value in given.items() if value is not None]
    if unused:
        strategies = ", ".join(ONESHOT)
        raise click.UsageError(f"{', '.join(unused)}: flags of the one-shot strategies ({strategies})")
    if space is not None:
        from nasc.compiler.space import sampler

        sampler(space)  # a space the multi-trial searches cannot sample, said at its line
    from nasc.runtime.search import Search, SearchConfig, SearchError, SettingsError, load_config
    from nasc.runtime.search.executors import stop_helper_processes

    try:
        if resume_dir:
            config = load_config(resume_dir)
        else:
            _space_alone(options)
            config = config_from(
                SearchConfig, options, out=options["out"] or f"runs/search-{options['strategy']}"
            )
            if Path(config.out, "ledger.jsonl").exists():
                raise SearchError(
                    f"{config.out} already holds a search; continue it with --resume {config.out}"
                )
        try:
            runner = Search(config)  # checks the settings: nothing is written before
        except SettingsError as error:
            raise click.UsageError(str(error)) from None
        for note in runner.notes:
            say(f"note: {note}", err=True)
        live = progress_stream()
        # When nasc exits, not when this search does: a program that runs several keeps them warm.
        atexit.register(stop_helper_processes)
        summary = runner.run(resume=bool(resume_dir), progress=live, lines=not live)
    except SearchError as error:
        raise click.ClickException(str(error)) from None
    if summary["stopped"]:
        click.echo(
            f"{summary['stopped']}: stopped with {summary['finished']} of {config.budget} finished; "
            f"every finished result is in {shown(config.out)}. "
            f"Continue with: nasc search --resume {shown(config.out)}",
            err=True,
        )
        sys.exit(130)
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
    out = Path(config.out)
    written = ", ".join(
        sorted(p.name + ("/" if p.is_dir() else "") for p in out.iterdir() if p.name[0] != ".")
    )
    say(f"  wrote {shown(config.out)}/: {written}; list the best with nasc top {shown(config.out)}")


def _space_alone(options: dict) -> None:
    """--blocks, --ops and --combines shape the default space; a space file says all of it."""
    if options["space_source"] is None:
        return
    shaped = [
        flag
        for flag, key, default in (
            ("--blocks", "num_blocks", 5),
            ("--ops", "ops", None),
            ("--combines", "combines", ("add", "concat")),
        )
        if options[key] != default
    ]
    if shaped:
        raise click.UsageError(f"--space gives the whole space: drop {', '.join(shaped)} (or edit the file)")


@click.command(name="top")
@click.argument("directory", type=click.Path())
@click.option("-k", type=click.IntRange(min=1), default=10, show_default=True, help="How many.")
@click.option("--pareto", is_flag=True, help="The accuracy-latency front instead, fastest first.")
def top_command(directory: str, k: int, pareto: bool) -> None:
    """List the best distinct architectures of a search.

    \b
    Exit status: 0 listed, 1 not a search directory, 2 usage error, 3 a bug.

    \b
    Examples:
      nasc top runs/demo -k 5
      nasc top runs/mnas --pareto
    """
    from nasc.runtime.search import top

    if pareto:
        _pareto(directory)
        return
    rows = _read(top, directory, k)
    if not rows:
        click.echo("no finished architectures yet")
        return
    click.echo(f"{'rank':>4} {'reward':>8} {'step':>6} {'hash':8} {'sampled':>7}  file")
    for rank, row in enumerate(rows, start=1):
        say(
            f"{rank:>4} {row['reward']:8.4f} {row['step']:>6} {str(row['hash'])[:8]} "
            f"{row['times_sampled']:>7}  {Path(directory) / str(row['file'])}"
        )


def _read(reader, directory: str, *args) -> list[dict]:
    """What `reader` finds in a search directory; a directory that holds no search is one line."""
    from nasc.runtime.search import SearchError

    try:
        return reader(directory, *args)
    except SearchError as error:
        raise click.ClickException(str(error)) from None


def _pareto(directory: str) -> None:
    from nasc.runtime.search import pareto, read_references

    front = _read(pareto, directory)
    if not front:
        click.echo("no measured architectures yet")
        return
    click.echo(f"{'latency_ms':>10} {'accuracy':>8} {'params':>9} {'MMACs':>8} {'step':>6} {'hash':8}  file")
    for row in front:
        say(
            f"{row['latency_ms']:10.3f} {row['accuracy']:8.4f} {row['params']:>9} "
            f"{_millions(row['macs'])} {row['step']:>6} {str(row['hash'])[:8]}  "
            f"{Path(directory) / row['file']}"
        )
    references = [r for r in read_references(directory) if r.get("latency_ms") is not None]
    for row in references:
        say(
            f"{row['latency_ms']:10.3f} {row['accuracy']:8.4f} {row['params']:>9} {_millions(row['macs'])}"
            f" {'ref':>6} {'':8}  {row['file']}"
        )


def _millions(count: int | None) -> str:
    return f"{count / 1e6:8.1f}" if count is not None else f"{'-':>8}"
