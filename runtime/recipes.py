"""What a training run is asked for: the paper's recipes, each dataset's defaults, and TrainConfig,
which fills in every default a run depends on (`resolved`)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from nasc.compiler import ir
from nasc.compiler.conventions import convention_of


class TrainingError(Exception):
    """A user-facing problem (bad options, unusable out dir, no checkpoint): one clear line."""


class NonFiniteLoss(TrainingError):
    pass


@dataclass(frozen=True)
class Recipe:
    """A training recipe of the paper (appendix A.6, A.7; Inception-v3's schedule for ImageNet)."""

    optimizer: str  # "sgd" (momentum) or "rmsprop_tf"
    lr: float
    momentum: float
    weight_decay: float
    schedule: str  # "cosine" (single period) or "exponential" (staircase)
    label_smoothing: float
    aux_weight: float
    ema_decay: float | None
    decay_rate: float = 0.94
    decay_epochs: float = 2.0


RECIPES = {
    "cifar": Recipe(
        "sgd",
        lr=0.025,
        momentum=0.9,
        weight_decay=5e-4,
        schedule="cosine",
        label_smoothing=0.0,
        aux_weight=0.4,
        ema_decay=None,
    ),
    "imagenet": Recipe(
        "rmsprop_tf",
        lr=0.045,
        momentum=0.9,
        weight_decay=4e-5,
        schedule="exponential",
        label_smoothing=0.1,
        aux_weight=0.4,
        ema_decay=0.9999,
    ),
}

# What each dataset trains by default: the full networks for real data, a small NASNet (the search's
# N = 2 proxy) for the embedded digits, so that it trains in minutes on two cores.
DATASET_DEFAULTS = {
    "digits": {
        "recipe": "cifar",
        "preset": "cifar",
        "scale": (2, 8),  # N = 2 cells per stage, F0 = 8 first-stage filters (P follows from the cells)
        "image_size": 16,
        "epochs": 15,
        "batch_size": 32,
        "lr": 0.05,
    },
    "cifar10": {
        "recipe": "cifar",
        "preset": "cifar",
        "scale": None,
        "image_size": 32,
        "epochs": 600,
        "batch_size": 32,
        "lr": None,
    },
    "imagefolder": {
        "recipe": "imagenet",
        "preset": "mobile",
        "scale": None,
        "image_size": 224,
        "epochs": 100,
        "batch_size": 32,
        "lr": None,
    },
}


@dataclass
class TrainConfig:
    """Everything a run depends on. None means: the dataset's or the recipe's default."""

    dataset: str = "digits"
    data_dir: str | None = None
    out: str = "runs/train"
    preset: str | None = None
    scale: tuple[int, int] | None = None
    num_classes: int | None = None
    image_size: int | None = None
    recipe: str | None = None
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    momentum: float | None = None
    weight_decay: float | None = None
    label_smoothing: float | None = None
    aux_weight: float | None = None
    aux_head: bool = True
    ema_decay: float | None = None
    drop_path_keep_prob: float | None = None
    cutout: int = 0
    seed: int = 0
    device: str = "auto"
    workers: int = 0
    # Channels-last trains NASNet-A mobile in 0.6x the time on a CPU, but oneDNN's backward pass hung
    # (and aborted search workers) on the search's tiny proxies (F = 2): opt-in, not the default.
    channels_last: bool = False
    amp: bool = False
    resume: bool = False
    quiet: bool = False
    artifacts: bool = True  # False: write nothing (search children keep only their result)
    stop_signals: bool = True  # False: leave SIGINT/SIGTERM to the caller (a search child's parent)
    first_filters: int | None = None  # F0 instead of P in `scale` (the search's children)
    test: bool = True  # False: no test-set pass at the end (a search child's reward is validation)
    test_every_epoch: bool = False  # True: each epoch's row has the test accuracy (a tabular benchmark's)

    def resolved(self, genotype: ir.Genotype | None = None) -> TrainConfig:
        """A copy with every default filled in from the dataset and the recipe (and, given the
        genotype, its convention: a default preset it has, the proxy width in its units)."""
        if self.dataset not in DATASET_DEFAULTS:
            raise TrainingError(f"unknown dataset {self.dataset!r}; choose {', '.join(DATASET_DEFAULTS)}")
        defaults = DATASET_DEFAULTS[self.dataset]
        recipe_name = self.recipe or defaults["recipe"]
        if recipe_name not in RECIPES:
            raise TrainingError(f"unknown recipe {recipe_name!r}; choose {', '.join(RECIPES)}")
        recipe = RECIPES[recipe_name]

        def pick(value, fallback):
            return fallback if value is None else value

        preset, scale = self.preset, self.scale
        if preset is None:
            preset = defaults["preset"]
            if genotype is not None and preset not in convention_of(genotype).presets:
                preset = next(iter(convention_of(genotype).presets))
        if scale is None and defaults["scale"] is not None and self.first_filters is None:
            cells, first_filters = defaults["scale"]
            unit = convention_of(genotype).penultimate_per_filter(genotype) if genotype is not None else 24
            scale = (cells, first_filters * unit)
        return dataclasses.replace(
            self,
            recipe=recipe_name,
            preset=preset,
            scale=scale,
            image_size=pick(self.image_size, defaults["image_size"]),
            epochs=pick(self.epochs, defaults["epochs"]),
            batch_size=pick(self.batch_size, defaults["batch_size"]),
            lr=pick(self.lr, pick(defaults["lr"], recipe.lr)),
            momentum=pick(self.momentum, recipe.momentum),
            weight_decay=pick(self.weight_decay, recipe.weight_decay),
            label_smoothing=pick(self.label_smoothing, recipe.label_smoothing),
            aux_weight=pick(self.aux_weight, recipe.aux_weight),
            ema_decay=pick(self.ema_decay, recipe.ema_decay),
        )
