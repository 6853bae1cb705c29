"""The NAS-Bench-201 convention (Dong & Yang 2020, "NAS-Bench-201: Extending the Scope of
Reproducible Neural Architecture Search"; reference: D-X-Y's xautodl `models/cell_infers/
tiny_network.py` `TinyNetwork`, `cells.py` `InferCell`, `cell_operations.py`).

A cell has one input (the cell below, `h0`) and nodes `h1`, `h2`, … each of which sums one op on
every earlier state, in order: `h2 = add(conv_3x3(h0), avg_pool_3x3(h1))`. The cell outputs its last
node (`return concat(h3)`: a concatenation of one state is the state). Every op maps C channels to C
at stride 1; `none` is zero. The network: a 3x3 conv → BN stem to C, three stages of N cells joined
by residual reduction blocks (ResNet basic blocks at stride 2, C → 2C → 4C), BN → ReLU → global pool
→ linear. compiler/emit_nb201.py implements it; `nasc import nb201` reads the benchmark's strings.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from types import MappingProxyType

from nasc.compiler.conventions.base import Convention, Nb201Family, Nb201Supernet
from nasc.compiler.presets import DataConfig


@dataclass(frozen=True)
class Nb201Preset:
    """TinyNetwork(C, N): `channels` C in the first stage (2C, 4C after), `cells_per_stage` N."""

    channels: int
    cells_per_stage: int
    image_size: int
    num_classes: int

    @property
    def width(self) -> int:
        """The first stage's width C, in which the convention scales P (N @ P)."""
        return self.channels


# The benchmark's three datasets (NAS-Bench-201 §2.2), all at C = 16, N = 5.
PRESETS = MappingProxyType(
    {
        "cifar": Nb201Preset(channels=16, cells_per_stage=5, image_size=32, num_classes=10),
        "cifar100": Nb201Preset(channels=16, cells_per_stage=5, image_size=32, num_classes=100),
        "imagenet16": Nb201Preset(channels=16, cells_per_stage=5, image_size=16, num_classes=120),
    }
)


def _per_255(values: tuple[float, float, float]) -> tuple[float, float, float]:
    return tuple(round(value / 255, 6) for value in values)  # type: ignore[return-value]


# xautodl datasets/get_dataset_with_transform.py: the benchmark's normalization per dataset
DATA = MappingProxyType(
    {
        "cifar": DataConfig(mean=_per_255((125.3, 123.0, 113.9)), std=_per_255((63.0, 62.1, 66.7))),
        "cifar100": DataConfig(mean=_per_255((129.3, 124.1, 112.4)), std=_per_255((68.2, 65.4, 70.4))),
        "imagenet16": DataConfig(
            mean=_per_255((122.68, 116.66, 104.01)), std=_per_255((63.22, 61.26, 65.09))
        ),
    }
)

OPS = MappingProxyType(
    {
        "none": "zero (the benchmark's `none`): the edge contributes nothing and holds no weights",
        "identity": "the state itself (the benchmark's `skip_connect`)",
        "conv_1x1": "ReLU → 1x1 conv → BN (`nor_conv_1x1`)",
        "conv_3x3": "ReLU → 3x3 conv, padding 1 → BN (`nor_conv_3x3`)",
        "avg_pool_3x3": "3x3 average pooling, padding 1, the padding not counted",
    }
)

# The benchmark's op names, in its order (xautodl cell_operations.NAS_BENCH_201), and nasc's for each.
BENCHMARK_OPS = MappingProxyType(
    {
        "none": "none",
        "skip_connect": "identity",
        "nor_conv_1x1": "conv_1x1",
        "nor_conv_3x3": "conv_3x3",
        "avg_pool_3x3": "avg_pool_3x3",
    }
)

NB201 = Convention(
    name="nb201",
    title="NAS-Bench-201",
    summary="NAS-Bench-201 (Dong & Yang 2020): one cell of C channels, nodes that sum every earlier node",
    reference="D-X-Y/AutoDL-Projects xautodl models/cell_infers (TinyNetwork, InferCell)",
    cell_kinds=("normal",),
    input_roles=("from the cell below",),
    kind_strides=(("normal", 1),),
    ops=OPS,
    combines=("add",),
    presets=PRESETS,
    data=DATA,
    backend=Nb201Family(),
    example_inputs=("h0",),
    dense_nodes=True,
    blocks_per_cell=3,  # the benchmark's cell: the input and three nodes
    identity_is_state=True,
)

# An nb201 space compiles into its search network: xautodl's TinyNetworkDarts(C = 16, N = 5,
# max_nodes = 4, 10 classes), NAS-Bench-201's DARTS, GDAS and ENAS search setting (§5).
SEARCH_PRESETS = MappingProxyType(
    {"search": Nb201Preset(channels=16, cells_per_stage=5, image_size=32, num_classes=10)}
)
NB201_SUPERNET = replace(
    NB201,
    summary="the weight-sharing search network of a NAS-Bench-201 space",
    reference="D-X-Y/AutoDL-Projects xautodl models/cell_searchs (TinyNetworkDarts, NAS201SearchCell)",
    presets=SEARCH_PRESETS,
    data={"search": DATA["cifar"]},
    backend=Nb201Supernet(),
)
