"""The DARTS convention (Liu, Simonyan, Yang 2019, "DARTS: Differentiable Architecture Search";
reference: quark0/darts cnn/model.py `NetworkCIFAR`, `NetworkImageNet`, cnn/operations.py).

Every op maps C channels to C; a cell's first input is the output of the cell two below (DARTS's
s0, preprocessed by a 1x1 ReLU-conv-BN, or a factorized reduction after a reduction cell), the second
that of the cell below (s1). State indices in a DARTS genotype are positions here: 0 is the first
input, 1 the second, k ≥ 2 the block defined (k − 2)th. compiler/emit_darts.py implements it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from types import MappingProxyType

from nasc.compiler.conventions.base import Convention, DartsFamily, DartsSupernet
from nasc.compiler.presets import CIFAR10, IMAGENET


@dataclass(frozen=True)
class DartsPreset:
    """A DARTS network skeleton: `layers` cells (reduction cells at layers//3 and 2·layers//3),
    `channels` (C) in the first stage, doubling at each reduction."""

    stem: str  # "cifar": 3x3 conv to 3C; "imagenet": three strided 3x3 convs (stem0, stem1)
    channels: int
    layers: int
    image_size: int
    num_classes: int
    drop_path_prob: float  # the reference's training setting; drop path grows to it linearly in time

    @property
    def cells_per_stage(self) -> int:
        return (self.layers - 2) // 3

    @property
    def width(self) -> int:
        """The first stage's width C, in which the convention scales P (N @ P)."""
        return self.channels


PRESETS = MappingProxyType(
    {
        # cnn/train.py: --init_channels 36 --layers 20, drop path 0.2, CIFAR-10
        "cifar": DartsPreset(
            stem="cifar", channels=36, layers=20, image_size=32, num_classes=10, drop_path_prob=0.2
        ),
        # cnn/train_imagenet.py: --init_channels 48 --layers 14, no drop path, ImageNet
        "imagenet": DartsPreset(
            stem="imagenet", channels=48, layers=14, image_size=224, num_classes=1000, drop_path_prob=0.0
        ),
    }
)

OPS = MappingProxyType(
    {
        "identity": "the state itself (DARTS's skip_connect); when strided, a factorized reduction: "
        "ReLU, two stride-2 1x1 convs to C/2 (the second on the input shifted by one pixel), BN",
        "max_pool_3x3": "3x3 max pooling, padding 1",
        "avg_pool_3x3": "3x3 average pooling, padding 1, the padding not counted",
        "sep_conv_3x3": "(ReLU → depthwise 3x3 → pointwise → BN) twice, the stride on the first",
        "sep_conv_5x5": "(ReLU → depthwise 5x5 → pointwise → BN) twice, the stride on the first",
        "sep_conv_7x7": "(ReLU → depthwise 7x7 → pointwise → BN) twice, the stride on the first",
        "dil_conv_3x3": "ReLU → depthwise 3x3, dilation 2 → pointwise → BN: a separable dilated conv",
        "dil_conv_5x5": "ReLU → depthwise 5x5, dilation 2 → pointwise → BN: a separable dilated conv",
    }
)

DARTS = Convention(
    name="darts",
    title="DARTS",
    summary="DARTS (Liu et al. 2019): cells of C channels, the reference CIFAR and ImageNet networks",
    reference="quark0/darts cnn/model.py (NetworkCIFAR, NetworkImageNet), cnn/operations.py",
    cell_kinds=("normal", "reduction"),
    input_roles=("from the cell two below (DARTS's s0)", "from the cell below (s1)"),
    kind_strides=(("normal", 1), ("reduction", 2)),
    ops=OPS,
    combines=("add",),
    presets=PRESETS,
    data={"cifar": CIFAR10, "imagenet": IMAGENET},  # cnn/utils.py, cnn/train_imagenet.py
    backend=DartsFamily(),
    example_inputs=("s0", "s1"),
)

# cnn/train_search.py: Network(C=16, num_classes=10, layers=8), 32 px CIFAR-10, no drop path
SEARCH_PRESETS = MappingProxyType(
    {
        "search": DartsPreset(
            stem="cifar", channels=16, layers=8, image_size=32, num_classes=10, drop_path_prob=0.0
        )
    }
)

# A DARTS space compiles into its search network.
DARTS_SUPERNET = replace(
    DARTS,
    summary="the weight-sharing search network of a DARTS space",
    reference="quark0/darts cnn/model_search.py (Network, Cell, MixedOp)",
    presets=SEARCH_PRESETS,
    data={"search": CIFAR10},
    backend=DartsSupernet(),
)
