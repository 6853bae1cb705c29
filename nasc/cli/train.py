"""`nasc train`: train a compiled network with the paper's recipe."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from nasc.cli.common import DATASETS, OUTPUT_PATH, PRESET_HELP, config_from, parse_scale, shown
from nasc.compiler.api import load


@click.command(name="train")
@click.argument("file", type=click.Path())
@click.option(
    "--dataset",
    type=click.Choice(DATASETS),
    default="digits",
    show_default=True,
    help="digits is embedded (scikit-learn); the others read --data-dir.",
)
@click.option("--data-dir", type=click.Path(), help="CIFAR-10 python files, or DIR/train/<class>/… folders.")
@click.option(
    "--preset",
    metavar="NAME",
    help=f"Network skeleton (default: the dataset's, or the convention's first); {PRESET_HELP}.",
)
@click.option(
    "--scale", callback=parse_scale, metavar="N@P", help="N cells per stage @ P penultimate filters."
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
@click.option("--out", default="runs/train", show_default=True, type=OUTPUT_PATH, help="Output directory.")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last checkpoint.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option(
    "--workers", type=click.IntRange(min=0), default=0, show_default=True, help="Data-loading processes."
)
@click.option(
    "--channels-last",
    is_flag=True,
    help="Channels-last memory: on CPU 0.6x the step time of full-size networks; not for tiny ones.",
)
@click.option("--amp", is_flag=True, help="Automatic mixed precision (CUDA).")
def train_command(file: str, **options) -> None:
    """Train a genotype with the paper's recipe, with checkpoints, metrics, a plot and a test score.

    Runs under torchrun for several processes (DistributedDataParallel; gloo on CPU, NCCL on GPU).
    Ctrl-C or SIGTERM saves a checkpoint at the next step and stops; --resume continues exactly.

    Exit status: 0 trained, 1 bad input (cell, data, an existing run), 2 usage error, 3 a bug,
    130 stopped by a signal (resumable).

    \b
    Examples:
      nasc train genotypes/nasnet_a.cell --dataset digits --out runs/digits
      nasc train genotypes/nasnet_a.cell --dataset cifar10 --data-dir ~/data --cutout 16
      torchrun --nproc_per_node=2 -m nasc train genotypes/nasnet_a.cell --dataset digits
    """
    from nasc.runtime.signals import interrupt_on_sigterm

    interrupt_on_sigterm()  # first, before seconds of imports and data loading
    from nasc.runtime.data import DataError
    from nasc.runtime.train import TrainConfig, TrainingError, train

    genotype = load(file)
    config = config_from(TrainConfig, options)
    try:
        result = train(genotype, config)
    except (TrainingError, DataError) as error:
        raise click.ClickException(str(error)) from None
    if int(os.environ.get("RANK", "0")) != 0:
        return
    if result.stopped == "interrupted":
        click.echo(
            f"stopped after {result.steps} steps; checkpoint saved in {shown(result.out)}. "
            f"Continue with: nasc train {shown(file)} --resume --out {shown(result.out)}",
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
    written = ", ".join(sorted(p.name for p in Path(result.out).iterdir() if not p.name.startswith(".")))
    click.echo(f"  wrote {shown(result.out)}/: {written}")
