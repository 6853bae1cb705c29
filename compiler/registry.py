"""The vocabulary of the language: ops and combines.

Adding an op is one `OpSpec` entry here and one template in templates/ops/ (named by `template`).
The lowering reads only the fields below, so a new op needs no change anywhere else.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType


@dataclass(frozen=True)
class OpSpec:
    """One primitive operation applied to a hidden state.

    Every op maps C_in channels to the cell's F channels and runs at the cell's stride when its input
    is a cell input (stride 1 otherwise), keeping "SAME" spatial size. What differs is how it gets there:

    family:
      identity  — passes the state through; becomes ReLU → strided 1x1 conv → BN when the stride is
                  > 1 or C_in ≠ F (the reference's "none").
      pool      — a pooling window (`pool` is "avg" or "max"); a 1x1 conv → BN follows when C_in ≠ F.
      separable — two stacked ReLU → depthwise k×k → pointwise 1x1 → BN layers (stride on the first).
      conv      — ReLU → conv → BN for each kernel in `kernels` (stride on the first, C_in → F there).
      zero      — the state times 0 (NAS-Bench-201's `none`): no module, no weights; the nb201
                  convention's only (NASNet-family networks have no zero op).
    """

    name: str
    family: str
    kernels: tuple[tuple[int, int], ...]
    description: str
    dilation: int = 1
    pool: str | None = None
    # family "bottleneck" (AmoebaNet): ReLU → 1x1 to F·a/b → BN → ReLU → the convolutions → BN → ReLU
    # → 1x1 to F → BN, where (a, b) is this ratio; no bottleneck where F·a/b < 1
    bottleneck: tuple[int, int] | None = None

    @property
    def template(self) -> str:
        return f"nasnet/ops/{self.family}.jinja"

    def reads_activated(self, adapted: bool) -> bool:
        """Whether the op's module begins with ReLU, which the cell then computes once per state and
        hands it: every op but a pool and an unadapted identity (the state itself)."""
        if self.family == "identity":
            return adapted
        return self.family != "pool"

    @property
    def drop_path(self) -> bool:
        """ScheduledDropPath applies to every op branch except identity (reference behaviour)."""
        return self.family != "identity"


@dataclass(frozen=True)
class CombineSpec:
    """How a block merges its op outputs: two in NASNet-family and DARTS cells (`arity`); a
    convention whose nodes read every earlier state (nb201) gives `add` one operand per state.

    channels: "same" — operands must have equal channels, the result keeps them (add and variants);
              "sum"  — the result stacks the operands' channels (concat).
    """

    name: str
    arity: int
    channels: str
    commutative: bool
    description: str
    normalization: str | None = None


_OPS = (
    OpSpec("identity", "identity", (), "identity (strided 1x1 conv when the shape must change)"),
    OpSpec("conv_1x1", "conv", ((1, 1),), "1x1 convolution"),
    OpSpec("conv_3x3", "conv", ((3, 3),), "3x3 convolution"),
    OpSpec("conv_1x3_3x1", "conv", ((1, 3), (3, 1)), "1x3 then 3x1 convolution"),
    OpSpec("conv_1x7_7x1", "conv", ((1, 7), (7, 1)), "1x7 then 7x1 convolution"),
    OpSpec("dil_conv_3x3", "conv", ((3, 3),), "3x3 dilated convolution (dilation 2)", dilation=2),
    OpSpec("dil_conv_5x5", "conv", ((5, 5),), "5x5 dilated convolution (dilation 2)", dilation=2),
    OpSpec("avg_pool_3x3", "pool", ((3, 3),), "3x3 average pooling", pool="avg"),
    OpSpec("max_pool_3x3", "pool", ((3, 3),), "3x3 max pooling", pool="max"),
    OpSpec("max_pool_5x5", "pool", ((5, 5),), "5x5 max pooling", pool="max"),
    OpSpec("max_pool_7x7", "pool", ((7, 7),), "7x7 max pooling", pool="max"),
    OpSpec("sep_conv_3x3", "separable", ((3, 3),), "3x3 depthwise-separable convolution, applied twice"),
    OpSpec("sep_conv_5x5", "separable", ((5, 5),), "5x5 depthwise-separable convolution, applied twice"),
    OpSpec("sep_conv_7x7", "separable", ((7, 7),), "7x7 depthwise-separable convolution, applied twice"),
    OpSpec("none", "zero", (), "zero: the state times 0 (an edge that is absent)"),
)

_COMBINES = (
    CombineSpec("add", 2, "same", True, "element-wise addition"),
    CombineSpec("concat", 2, "sum", True, "channel concatenation"),
    CombineSpec("add_layernorm", 2, "same", True, "addition followed by layer normalization", "layer"),
    CombineSpec(
        "add_instancenorm", 2, "same", True, "addition followed by instance normalization", "instance"
    ),
)

OPS: MappingProxyType[str, OpSpec] = MappingProxyType({op.name: op for op in _OPS})
# The ops a NASNet-family network builds (a zero op is NAS-Bench-201's, not theirs).
NASNET_OPS: MappingProxyType[str, OpSpec] = MappingProxyType(
    {name: op for name, op in OPS.items() if op.family != "zero"}
)
COMBINES: MappingProxyType[str, CombineSpec] = MappingProxyType({c.name: c for c in _COMBINES})

# The paper's 13 operations, in the order of its list (§3) — the NASNet search space.
PAPER_OPS = (
    "identity",
    "conv_1x3_3x1",
    "conv_1x7_7x1",
    "dil_conv_3x3",
    "avg_pool_3x3",
    "max_pool_3x3",
    "max_pool_5x5",
    "max_pool_7x7",
    "conv_1x1",
    "conv_3x3",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "sep_conv_7x7",
)

# The one combine a cell output may use.
OUTPUT_COMBINE = "concat"
