"""`nasc search --strategy darts|gdas|enas|spos`: the one-shot strategies' flags and their run
(runtime/oneshot.py, runtime/sampled_paths.py). The references' hyperparameters are the defaults."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from nasc.cli.common import say, shown

ONESHOT = ("darts", "gdas", "enas", "spos")

# name, default (cnn/train_search.py; GDAS's temperature), type, help
_FLAGS = (
    ("epochs", 50, click.IntRange(min=1), "One-shot: epochs of the supernet."),
    ("batch_size", 64, click.IntRange(min=2), "One-shot: batch size of each step."),
    ("layers", 8, click.IntRange(min=5), "One-shot: the supernet's cells, 3N + 2 (the reference's 8)."),
    ("init_channels", 16, click.IntRange(min=2), "One-shot: C, the first stage's channels."),
    (
        "learning_rate",
        0.025,
        float,
        "One-shot: the weights' SGD learning rate (cosine to --learning-rate-min).",
    ),
    ("learning_rate_min", 0.001, float, "One-shot: the cosine schedule's floor."),
    ("momentum", 0.9, float, "One-shot: SGD momentum."),
    ("weight_decay", 3e-4, float, "One-shot: the weights' decay."),
    ("grad_clip", 5.0, float, "One-shot: the weights' gradient norm clip."),
    ("arch_learning_rate", 3e-4, float, "One-shot: α's Adam learning rate."),
    ("arch_weight_decay", 1e-3, float, "One-shot: α's decay."),
    ("train_portion", 0.5, float, "One-shot: the share of the training set that trains the weights."),
    ("order", 1, click.IntRange(1, 2), "darts: 1 first order, 2 the unrolled second-order step."),
    ("tau_max", 10.0, float, "gdas: the Gumbel-softmax temperature at the start..."),
    ("tau_min", 0.1, float, "gdas: ...annealed linearly to this."),
    (
        "max_skip",
        None,
        click.IntRange(min=0),
        "One-shot: at most K identity edges per derived cell (P-DARTS).",
    ),
    (
        "partial_channels",
        1,
        click.IntRange(min=1),
        "One-shot: each edge sees 1/K of the channels (PC-DARTS).",
    ),
    (
        "channels_last",
        True,
        bool,
        "One-shot: the supernet in channels-last memory (on a CPU 0.6x the step time).",
    ),
    ("controller_steps", 30, click.IntRange(min=1), "enas: controller updates per epoch..."),
    ("controller_aggregate", 10, click.IntRange(min=1), "enas: ...each over this many sampled paths."),
    ("controller_learning_rate", 0.0035, float, "enas: the controller's Adam learning rate."),
    ("entropy_weight", 1e-4, float, "enas: the sample entropy's weight in the reward."),
    ("baseline_decay", 0.99, float, "enas: the reward baseline's moving-average decay."),
    ("controller_temperature", 5.0, float, "enas: the controller's logits are divided by this..."),
    ("controller_tanh_constant", 1.1, float, "enas: ...then bounded by c·tanh (0: unbounded)..."),
    ("controller_op_tanh_reduce", 2.5, float, "enas: ...with c divided by this for ops."),
    (
        "controller_favour_convs",
        True,
        bool,
        "enas: ENAS's prior for the convolutions (op bias starting at 10; the normal cell's ±0.25).",
    ),
    ("derive_samples", 10, click.IntRange(min=1), "enas, spos: an epoch derives the best of N paths."),
    ("spos_population", 50, click.IntRange(min=1), "spos: the final aging evolution's population..."),
    ("spos_sample", 10, click.IntRange(min=1), "spos: ...its tournament sample..."),
    ("spos_cycles", 500, click.IntRange(min=0), "spos: ...and its cycles (paths mutated and scored)."),
    ("bn_batches", 4, click.IntRange(min=1), "enas, spos: batches that recompute a path's batch norms."),
)
NAMES = tuple(name for name, *_ in _FLAGS)


def oneshot_options(command):
    """The one-shot flags, each unset (None) unless given, so that a multi-trial search can refuse them."""
    for name, default, kind, text in reversed(_FLAGS):
        flag = "--" + name.replace("_", "-")
        if kind is bool:
            pair = f"{flag}/--no-{flag[2:]}"
            command = click.option(
                pair, default=None, help=f"{text} [default: {'on' if default else 'off'}]"
            )(command)
            continue
        shown_default = f" [default: {default}]" if default is not None else ""
        command = click.option(flag, type=kind, help=text + shown_default)(command)
    return command


def check_space(strategy: str, space) -> None:
    """Raises NascError, at the space file's line, where the strategy cannot search it: a node its
    supernet cannot hold, or (enas, spos) one the path sampler cannot sample."""
    from nasc.compiler.emit_supernet import check_supernet_space
    from nasc.compiler.space import sampler

    check_supernet_space(space)
    if strategy in ("enas", "spos"):
        sampler(space)


def run_oneshot(options: dict, given: dict, resume_dir: str | None, space=None) -> None:
    from nasc.runtime.oneshot import OneShotError, create_search, load_config

    try:
        if resume_dir:
            config = load_config(resume_dir)
        else:
            config = _config(options, given)
            if Path(config.out, "oneshot.json").exists():
                raise OneShotError(
                    f"{config.out} already holds a search; continue it with --resume {config.out}"
                )
            check_space(config.strategy, space)
        search = create_search(config)
    except OneShotError as error:
        raise click.ClickException(str(error)) from None
    started = time.monotonic()

    def report(row: dict) -> None:
        done = row["epoch"] + 1
        elapsed = time.monotonic() - started
        eta = elapsed / max(1, done - first) * (config.epochs - done)
        say(
            f"[epoch {done}/{config.epochs}] train {row['train_accuracy']:.3f} · supernet val "
            f"{row['val_accuracy']:.3f} · {row['parameter_free_ops']} parameter-free ops · {row['file']} · "
            f"elapsed {elapsed:.0f}s · ETA {eta:.0f}s",
            err=True,
        )

    first = search.epoch
    try:
        search.run(resume=bool(resume_dir), on_epoch=report)
    except KeyboardInterrupt:
        click.echo(
            f"interrupted: {search.epoch} of {config.epochs} epochs finished in {shown(config.out)}; "
            f"continue with: nasc search --resume {shown(config.out)}",
            err=True,
        )
        sys.exit(130)
    click.echo(
        f"search {config.strategy} in {config.out}: {config.epochs} epochs; derived {config.out}/best.cell"
    )


def _config(options: dict, given: dict):
    from nasc.runtime.oneshot import OneShotConfig, OneShotError

    if options["space_source"] is None:
        raise OneShotError(
            f"--strategy {options['strategy']} trains a supernet of a space: give one with --space "
            "(darts, gdas: e.g. spaces/darts.space; enas, spos: spaces/enas.space)"
        )
    values = {name: default for name, default, *_ in _FLAGS}
    values.update({k: v for k, v in given.items() if v is not None})
    if options["latency"] not in (None, "table"):
        raise OneShotError("a one-shot search prices latency by FBNet's lookup table: --latency table")
    layers = values.pop("layers")
    if (layers - 2) % 3:
        raise OneShotError(f"--layers {layers} is not 3N + 2 (reduction cells at one and two thirds)")
    return OneShotConfig(
        out=options["out"] or f"runs/search-{options['strategy']}",
        space_source=options["space_source"],
        strategy=options["strategy"],
        dataset=options["dataset"],
        data_dir=options["data_dir"],
        seed=options["seed"],
        cells_per_stage=(layers - 2) // 3,
        objective=options["objective"],
        latency_weight=options["latency_weight"],
        target_latency_ms=options["target_latency_ms"],
        **values,
    )
