"""The PNASNet convention (Liu et al. 2018, "Progressive Neural Architecture Search"; TF-slim
research/slim/nets/nasnet/pnasnet.py, timm `pnasnet5large`).

PNASNet reads the NASNet cell semantics (TF-slim's NasNetABaseCell: the squeeze of x1, the
adjustment of x2, the op and adapter rules of docs/reference.md) but has one cell, which plays both
roles: at stride 1 as the normal cell and at stride 2 as the reduction cell and the two stem cells.
Its 3N cells include the two reduction cells, at N and 2N; the cell two below is always x2.
"""

from __future__ import annotations

from types import MappingProxyType

from nasc.compiler.conventions.base import Convention, NasnetFamily
from nasc.compiler.presets import TF_INCEPTION, TF_INCEPTION_LARGE, Preset
from nasc.compiler.registry import NASNET_OPS

_COMMON = {
    "stem": "imagenet",
    "dropout_keep_prob": 0.5,
    "skip_reduction_layer_input": True,
    "bn_eps": 1e-3,
    "bn_momentum": 0.0003,
    "num_classes": 1000,
    "reductions_inline": True,
}

PRESETS = MappingProxyType(
    {
        # pnasnet.py large_imagenet_config: 12 cells, 216 filters, stem multiplier 3, 331 px
        "large": Preset(
            cells_per_stage=4,
            filters=216,
            stem_multiplier=3.0,
            drop_path_keep_prob=0.6,
            image_size=331,
            **_COMMON,
        ),
        # pnasnet.py mobile_imagenet_config: 9 cells, 54 filters, stem multiplier 1, 224 px
        "mobile": Preset(
            cells_per_stage=3,
            filters=54,
            stem_multiplier=1.0,
            drop_path_keep_prob=1.0,
            image_size=224,
            **_COMMON,
        ),
    }
)

PNASNET = Convention(
    name="pnasnet",
    title="PNASNet",
    summary="PNASNet (Liu et al. 2018): one NASNet-semantics cell at stride 1 and 2",
    reference="tensorflow/models research/slim/nets/nasnet/pnasnet.py; timm pnasnet5large",
    cell_kinds=("cell",),
    input_roles=("from the cell below", "from the cell two below"),
    kind_strides=(("cell", 1),),
    ops=MappingProxyType({name: spec.description for name, spec in NASNET_OPS.items()}),
    presets=PRESETS,
    data={"large": TF_INCEPTION_LARGE, "mobile": TF_INCEPTION},
    backend=NasnetFamily(),
    roles=(("normal", "cell"), ("reduction", "cell")),
)
