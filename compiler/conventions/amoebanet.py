"""The AmoebaNet convention (Real, Aggarwal, Huang, Le 2019, "Regularized Evolution for Image
Classifier Architecture Search"; reference: tensorflow/tpu models/official/amoeba_net:
network_utils.py `BaseCell`, model_builder.py `_build_network_base`, model_specs.py).

AmoebaNet reads cells by NASNet's rules (the squeeze of x1, the adjustment of x2, separable
convolutions, pools and identity with their 1x1 adapters, the factorized reduction of output
members), with these differences, each from the reference code:
- its plain convolutions (3x3, 1x3 then 3x1, 1x7 then 7x1, dilated 3x3) are bottlenecked: ReLU →
  1x1 to F/4 (3F/8 for 1x3-3x1) → BN → ReLU → the convolution(s) → BN → ReLU → 1x1 to F → BN;
- the stem convolution has `stem_reduction_size` (32) filters whatever the width;
- the normal cell after a reduction reads the cell before the reduction as x2 (cell_outputs[-2]);
- the aux head is scaled by 0.4 (51 and 307 channels); drop path grows in time only.
"""

from __future__ import annotations

from types import MappingProxyType

from nasc.compiler.conventions.base import Convention, NasnetFamily
from nasc.compiler.presets import TF_INCEPTION, TF_INCEPTION_LARGE, Preset
from nasc.compiler.registry import NASNET_OPS, OpSpec

BOTTLENECKED = MappingProxyType(
    {
        "conv_3x3": OpSpec(
            "conv_3x3",
            "bottleneck",
            ((3, 3),),
            "3x3 convolution in a 1x1 bottleneck (F/4)",
            bottleneck=(1, 4),
        ),
        "conv_1x3_3x1": OpSpec(
            "conv_1x3_3x1",
            "bottleneck",
            ((1, 3), (3, 1)),
            "1x3 then 3x1 convolution in a 1x1 bottleneck (3F/8)",
            bottleneck=(3, 8),
        ),
        "conv_1x7_7x1": OpSpec(
            "conv_1x7_7x1",
            "bottleneck",
            ((1, 7), (7, 1)),
            "1x7 then 7x1 convolution in a 1x1 bottleneck (F/4): ReLU, 1x1, BN, ReLU, 1x7, BN, ReLU, 7x1, "
            "BN, ReLU, 1x1, BN",
            bottleneck=(1, 4),
        ),
        "dil_conv_3x3": OpSpec(
            "dil_conv_3x3",
            "bottleneck",
            ((3, 3),),
            "3x3 dilated convolution (rate 2) in a 1x1 bottleneck (F/4)",
            dilation=2,
            bottleneck=(1, 4),
        ),
    }
)

_COMMON = {
    "stem": "imagenet",
    "stem_multiplier": 1.0,
    "dropout_keep_prob": 0.5,
    "skip_reduction_layer_input": False,
    "bn_eps": 1e-3,
    "bn_momentum": 0.0003,
    "num_classes": 1000,
    "drop_path_keep_prob": 0.7,
    "stem_filters": 32,
    "aux_scaling": 0.4,
    "drop_path_per_cell": False,
}

PRESETS = MappingProxyType(
    {
        # Real et al. 2019, Table 2: AmoebaNet-A (N = 6, F = 190), 331 px
        "large": Preset(cells_per_stage=6, filters=190, image_size=331, **_COMMON),
        # Real et al. 2019, Table 2: AmoebaNet-A (N = 4, F = 50), 224 px, the mobile setting
        "mobile": Preset(cells_per_stage=4, filters=50, image_size=224, **_COMMON),
    }
)

AMOEBANET = Convention(
    name="amoebanet",
    title="AmoebaNet",
    summary="AmoebaNet (Real et al. 2019): NASNet's cells with bottlenecked convolutions",
    reference="tensorflow/tpu models/official/amoeba_net: network_utils.py, model_builder.py, model_specs.py",
    cell_kinds=("normal", "reduction"),
    input_roles=("from the cell below", "from the cell two below"),
    kind_strides=(("normal", 1), ("reduction", 2)),
    ops=MappingProxyType(
        {name: (BOTTLENECKED.get(name) or spec).description for name, spec in NASNET_OPS.items()}
    ),
    presets=PRESETS,
    data={"large": TF_INCEPTION_LARGE, "mobile": TF_INCEPTION},
    backend=NasnetFamily(),
    op_specs=BOTTLENECKED,
)
