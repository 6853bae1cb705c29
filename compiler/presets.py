"""The NASNet presets (docs/reference.md, "Network skeletons"; TF-slim nasnet.py): the compiler's
copy, rendered into every emitted module's PRESETS so the file stands alone."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Preset:
    stem: str
    cells_per_stage: int
    filters: int
    stem_multiplier: float
    drop_path_keep_prob: float
    dropout_keep_prob: float
    skip_reduction_layer_input: bool
    bn_eps: float
    bn_momentum: float  # PyTorch convention: 1 - TensorFlow's decay (0.9 → 0.1, 0.9997 → 0.0003)
    image_size: int
    num_classes: int
    # PNASNet: the two reduction cells are among the 3N cells (at N and 2N) instead of added before them
    reductions_inline: bool = False
    stem_filters: int | None = None  # AmoebaNet's stem_reduction_size; None: int(32 · stem_multiplier)
    aux_scaling: float = 1.0  # AmoebaNet scales the aux head's 128 and 768 channels by 0.4
    drop_path_per_cell: bool = True  # False (AmoebaNet): drop path grows in time only, alike in every cell

    @property
    def width(self) -> int:
        """The first stage's width F0, in which the convention scales P (N @ P)."""
        return self.filters


@dataclass(frozen=True)
class DataConfig:
    """How a preset's images are prepared for evaluation (timm's pretrained_cfg): resize to
    image_size / crop_pct, centre-crop, normalize. Apart from the architecture; the published top-1
    and checkpoint of a genotype come from its metadata (`top1_<preset>`, `checkpoint_<preset>`)."""

    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    crop_pct: float = 1.0
    interpolation: str = "bilinear"


CIFAR10 = DataConfig(mean=(0.4914, 0.4822, 0.4465), std=(0.2470, 0.2435, 0.2616))
IMAGENET = DataConfig(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), crop_pct=0.875)
# TF-slim's inception preprocessing (pixels to [-1, 1]); timm's cfgs of the TF-ported large networks
TF_INCEPTION = DataConfig(mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), crop_pct=0.875)
TF_INCEPTION_LARGE = replace(TF_INCEPTION, crop_pct=0.911, interpolation="bicubic")

DATA: dict[str, DataConfig] = {"cifar": CIFAR10, "mobile": TF_INCEPTION, "large": TF_INCEPTION_LARGE}

PRESETS: dict[str, Preset] = {
    "cifar": Preset("cifar", 6, 32, 3.0, 0.6, 1.0, False, 1e-5, 0.1, 32, 10),
    "mobile": Preset("imagenet", 4, 44, 1.0, 1.0, 0.5, False, 1e-3, 0.0003, 224, 1000),
    "large": Preset("imagenet", 6, 168, 3.0, 0.7, 0.5, True, 1e-3, 0.0003, 331, 1000),
}


def pretrained_cfg(
    metadata: Mapping[str, object],
    data: Mapping[str, DataConfig],
    preset: str,
    base: str | None,
    image_size: int,
    num_classes: int,
    first_conv: str,
) -> dict[str, object]:
    """timm's pretrained_cfg for one preset's network: how to prepare its images, its first conv and
    classifier (real parameter names), and, for a published network, the checkpoint and top-1 its
    genotype's metadata names (`checkpoint_<preset>`, `top1_<preset>`). A rescaled network (`base`:
    the preset it was rescaled from) takes its base's transform and was never published."""
    config = data[base or preset]
    return {
        "input_size": (3, image_size, image_size),
        "mean": config.mean,
        "std": config.std,
        "crop_pct": config.crop_pct,
        "interpolation": config.interpolation,
        "num_classes": num_classes,
        "first_conv": first_conv,
        "classifier": "classifier",
        "checkpoint": "" if base else str(metadata.get(f"checkpoint_{preset}", "")),
        "top1": None if base else metadata.get(f"top1_{preset}"),
    }


def effective_preset(
    preset: str,
    normal_per_filter: int,
    cells_per_stage: int | None = None,
    penultimate_filters: int | None = None,
    num_classes: int | None = None,
    presets: Mapping[str, Preset] = PRESETS,
) -> tuple[str, Preset]:
    """The preset a compile asked for, rescaled by --scale / --num-classes, and its name (e.g.
    `cifar-2@240-5`); raises ValueError for a scale this genotype cannot have. `normal_per_filter`:
    the genotype's normal-cell output channels in units of F."""
    base = presets[preset]
    if not (cells_per_stage or penultimate_filters or num_classes):
        return preset, base
    scaled = scale_preset(base, normal_per_filter, cells_per_stage, penultimate_filters, num_classes)
    name = f"{preset}-{scaled.cells_per_stage}@{scaled.filters * 4 * normal_per_filter}"
    if num_classes:
        name += f"-{scaled.num_classes}"
    return name, scaled


def scale_preset(
    base: Preset,
    normal_per_filter: int,
    cells_per_stage: int | None,
    penultimate_filters: int | None,
    num_classes: int | None,
) -> Preset:
    """The paper's N @ P: N normal cells per stage, P filters in the penultimate layer (P = 4·k·F0 where
    the normal cell outputs k·F channels)."""
    changes: dict[str, int] = {}
    if cells_per_stage is not None:
        if cells_per_stage < 1:
            raise ValueError("N (cells per stage) must be at least 1")
        changes["cells_per_stage"] = cells_per_stage
    if penultimate_filters is not None:
        unit = 4 * normal_per_filter
        if penultimate_filters < unit or penultimate_filters % unit:
            raise ValueError(
                f"P = {penultimate_filters} is not a positive multiple of {unit}: this genotype's "
                f"normal cell outputs {normal_per_filter}·F and the last stage runs at 4·F0"
            )
        changes["filters"] = penultimate_filters // unit
    if num_classes is not None:
        if num_classes < 1:
            raise ValueError("the number of classes must be at least 1")
        changes["num_classes"] = num_classes
    return replace(base, **changes)


def pick_search_preset(preset: str | None, penultimate_filters: int | None, presets: Mapping):
    """A supernet's preset by name (the first where none is asked) and its name. A supernet is
    sized by its cells per stage and first width C, never by the penultimate filters P."""
    if penultimate_filters:
        raise ValueError("a supernet is sized by its cells per stage and its first width C, not by P")
    name = preset or next(iter(presets))
    if name not in presets:
        raise ValueError(f"unknown supernet preset {name!r}; choose from {', '.join(presets)}")
    return name, presets[name]
