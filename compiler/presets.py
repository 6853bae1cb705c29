"""The NASNet presets (docs/reference.md, "Network skeletons"; TF-slim nasnet.py): the compiler's
copy, rendered into every emitted module's PRESETS so the file stands alone."""

from __future__ import annotations

from dataclasses import dataclass


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


PRESETS: dict[str, Preset] = {
    "cifar": Preset("cifar", 6, 32, 3.0, 0.6, 1.0, False, 1e-5, 0.1, 32, 10),
    "mobile": Preset("imagenet", 4, 44, 1.0, 1.0, 0.5, False, 1e-3, 0.0003, 224, 1000),
    "large": Preset("imagenet", 6, 168, 3.0, 0.7, 0.5, True, 1e-3, 0.0003, 331, 1000),
}
