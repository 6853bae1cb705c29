"""`nasc weights`: a reference implementation's checkpoint as a compiled network's state_dict."""

from __future__ import annotations

import click

from nasc.cli.common import OUTPUT_PATH, PRESET_HELP, force_option, parse_scale, prepare_output, shown, write
from nasc.compiler.api import load


@click.command(name="weights")
@click.argument("file", type=click.Path())
@click.argument("checkpoint", type=click.Path())
@click.option(
    "--from",
    "source",
    type=click.Choice(["timm", "pretrainedmodels", "darts", "tf"]),
    required=True,
    help="The implementation that wrote CHECKPOINT (its module names); tf: a TensorFlow checkpoint of "
    "TF-slim's NASNet-A or PNASNet-5 or the TPU AmoebaNet, given by its prefix (model.ckpt for "
    "model.ckpt.index and model.ckpt.data-*).",
)
@click.option("--preset", help=f"Preset (default: the convention's first): {PRESET_HELP}.")
@click.option(
    "--scale",
    callback=parse_scale,
    metavar="N@P",
    help="The preset rescaled as the checkpoint's network was (e.g. a search proxy): N cells per stage, "
    "P penultimate filters.",
)
@click.option(
    "--num-classes",
    type=click.IntRange(min=1),
    help="Classes of the classifier (default: as many as the checkpoint's).",
)
@click.option("--aux-head", is_flag=True, help="Keep the checkpoint's aux head (load with aux_head=True).")
@click.option(
    "--ema",
    is_flag=True,
    help="--from tf: take the ExponentialMovingAverage of each variable where the checkpoint has one "
    "(TF-slim and the TPU models evaluate with them).",
)
@click.option("-o", "--output", type=OUTPUT_PATH, help="Output file (default: GENOTYPE_PRESET.pt).")
@force_option
def weights_command(
    file: str,
    checkpoint: str,
    source: str,
    preset: str | None,
    scale: tuple[int, int] | None,
    num_classes: int | None,
    aux_head: bool,
    ema: bool,
    output: str | None,
    force: bool,
) -> None:
    """Import a reference network's checkpoint (timm, pretrainedmodels, the DARTS repository, or the
    authors' TensorFlow) as the state_dict of the network FILE compiles to.

    CHECKPOINT is a torch.save'd state_dict (.pth/.pt; wrapped as {"state_dict": …} or {"model": …},
    or with DataParallel's module. prefix), a .safetensors file, or with --from tf a TensorFlow
    checkpoint's prefix; it is read without running code.
    Every tensor's place is derived from the cells; the first tensor that does not fit is named on
    both sides and nothing is written. The result loads with create_model(PRESET, num_classes=K,
    weights=OUT) (and aux_head=True where --aux-head kept the aux head).

    Exit status: 0 written, 1 a checkpoint that does not fit (nothing written), 2 usage error, 3 a bug.

    \b
    Examples:
      nasc weights genotypes/nasnet_a.cell nasnetalarge.pth --from timm --preset large -o w.pt
      nasc weights genotypes/darts_v2.cell cifar10_model.pt --from darts --preset cifar
      nasc weights genotypes/pnasnet_5.cell pnasnet-5_large_2017_12_13/model.ckpt --from tf --preset large
    """
    from nasc.compiler.conventions import convention_of
    from nasc.compiler.options import EmitOptions
    from nasc.runtime.build import BuildError, build_network
    from nasc.runtime.tf_weights import import_tf_weights, read_bundle, tf_classes
    from nasc.runtime.weights import (
        WeightsError,
        classes_in,
        import_weights,
        read_checkpoint,
        save_state_dict,
    )

    if source == "tf" and aux_head:
        raise click.UsageError("--aux-head reads PyTorch ports; a TensorFlow checkpoint's aux head stays out")
    if ema and source != "tf":
        raise click.UsageError("--ema is for --from tf (a PyTorch port's file holds one set of weights)")
    genotype = load(file)
    preset = preset or next(iter(convention_of(genotype).presets))
    destination = output or f"{genotype.name}_{preset}.pt"
    prepare_output(destination, inputs=(file, checkpoint, f"{checkpoint}.index"), force=force, text=False)
    try:
        if source == "tf":
            bundle = read_bundle(checkpoint)
            classes = num_classes or tf_classes(bundle)
        else:
            tensors = read_checkpoint(checkpoint)
            classes = num_classes or classes_in(tensors, source)
        cells, filters = scale or (None, None)
        options = EmitOptions(preset=preset, cells_per_stage=cells, penultimate_filters=filters)
        try:
            built = build_network(genotype, options, aux_head=aux_head, num_classes=classes)
        except BuildError as error:
            raise click.UsageError(str(error)) from None
        if source == "tf":
            imported = import_tf_weights(genotype, bundle, built.model, ema=ema)
        else:
            imported = import_weights(genotype, tensors, source, built.model, aux_head=aux_head)
        built.model.load_state_dict(imported.state_dict)  # the proof that it loads strictly
    except WeightsError as error:
        raise click.ClickException(f"{shown(checkpoint)}: {error}") from None
    written = write(destination, save_state_dict(imported.state_dict))
    click.echo(
        f"wrote {written}: {imported.mapped} tensors from {shown(checkpoint)} ({source}) for genotype "
        f"{genotype.name}, preset {built.preset}, {imported.num_classes} classes"
        + (", with the aux head" if imported.aux_head else "")
        + (", the moving averages" if ema else "")
    )
    if imported.left_out:
        click.echo(f"  left out: {imported.left_out_said}")
    compiled = f" from `nasc compile {shown(file)} --scale {scale[0]}@{scale[1]}`" if scale else ""
    click.echo(
        f"  load it: create_model({built.preset!r}, num_classes={imported.num_classes}"
        + (", aux_head=True" if imported.aux_head else "")
        + f", weights={destination!r}){compiled}"
    )
