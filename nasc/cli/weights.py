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
    type=click.Choice(["timm", "pretrainedmodels", "darts"]),
    required=True,
    help="The implementation that wrote CHECKPOINT (its module names).",
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
    output: str | None,
    force: bool,
) -> None:
    """Import a reference network's checkpoint (timm, pretrainedmodels, the DARTS repository) as the
    state_dict of the network FILE compiles to.

    CHECKPOINT is a torch.save'd state_dict (.pth/.pt; wrapped as {"state_dict": …} or {"model": …},
    or with DataParallel's module. prefix) or a .safetensors file; it is read without running code.
    Every tensor's place is derived from the cells; the first tensor that does not fit is named on
    both sides and nothing is written. The result loads with create_model(PRESET, num_classes=K,
    weights=OUT) (and aux_head=True where --aux-head kept the aux head).

    Exit status: 0 written, 1 a checkpoint that does not fit (nothing written), 2 usage error, 3 a bug.

    \b
    Examples:
      nasc weights genotypes/nasnet_a.cell nasnetalarge.pth --from timm --preset large -o w.pt
      nasc weights genotypes/darts_v2.cell cifar10_model.pt --from darts --preset cifar
    """
    from nasc.compiler.conventions import convention_of
    from nasc.compiler.options import EmitOptions
    from nasc.runtime.build import BuildError, build_network
    from nasc.runtime.weights import (
        WeightsError,
        classes_in,
        import_weights,
        read_checkpoint,
        save_state_dict,
    )

    genotype = load(file)
    preset = preset or next(iter(convention_of(genotype).presets))
    destination = output or f"{genotype.name}_{preset}.pt"
    prepare_output(destination, inputs=(file, checkpoint), force=force, text=False)
    try:
        tensors = read_checkpoint(checkpoint)
        classes = num_classes or classes_in(tensors, source)
        cells, filters = scale or (None, None)
        options = EmitOptions(preset=preset, cells_per_stage=cells, penultimate_filters=filters)
        try:
            built = build_network(genotype, options, aux_head=aux_head, num_classes=classes)
        except BuildError as error:
            raise click.UsageError(str(error)) from None
        imported = import_weights(genotype, tensors, source, built.model, aux_head=aux_head)
        built.model.load_state_dict(imported.state_dict)  # the proof that it loads strictly
    except WeightsError as error:
        raise click.ClickException(f"{shown(checkpoint)}: {error}") from None
    written = write(destination, save_state_dict(imported.state_dict))
    click.echo(
        f"wrote {written}: {imported.mapped} tensors from {shown(checkpoint)} ({source}) for genotype "
        f"{genotype.name}, preset {built.preset}, {imported.num_classes} classes"
        + (", with the aux head" if imported.aux_head else "")
    )
    if imported.left_out:
        click.echo(
            f"  left out: {len(imported.left_out)} aux head tensor(s) of the checkpoint (keep them with "
            "--aux-head)"
        )
    compiled = f" from `nasc compile {shown(file)} --scale {scale[0]}@{scale[1]}`" if scale else ""
    click.echo(
        f"  load it: create_model({built.preset!r}, num_classes={imported.num_classes}"
        + (", aux_head=True" if imported.aux_head else "")
        + f", weights={destination!r}){compiled}"
    )
