"""Static counting: parameters, conv + linear mult-adds and per-cell output shapes, from the lowered
cells and the skeleton alone, without building a network (milliseconds instead of seconds).

Every module the emitted code builds is counted by the same rules it is built by: convolutions have
no bias, batch norm has a scale and a shift (running statistics are buffers, not parameters), the
classifier and the aux head's linear layer have a bias. A convolution costs output pixels × input
channels per group × kernel area × output channels mult-adds. tests/test_stats.py holds these
figures equal to those measured with forward hooks on the real module, for every preset.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from nasc.compiler import ir
from nasc.compiler.conventions.darts import DartsPreset
from nasc.compiler.conventions.nb201 import Nb201Preset
from nasc.compiler.darts_skeleton import DartsCell, darts_skeleton
from nasc.compiler.lower import Adapter, RealizedCell
from nasc.compiler.nb201_skeleton import Nb201Skeleton
from nasc.compiler.presets import Preset
from nasc.compiler.registry import OpSpec
from nasc.compiler.skeleton import CellInstance, nasnet_skeleton


@dataclass(frozen=True)
class CellStats:
    name: str
    kind: str
    output_shape: tuple[int, ...]
    parameters: int
    mult_adds: int


@dataclass(frozen=True)
class NetworkStats:
    parameters: int
    parameters_with_aux: int | None
    mult_adds: int
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    cells: tuple[CellStats, ...]

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class _Tally:
    parameters: int = 0
    mult_adds: int = 0

    def conv(self, c_in: int, c_out: int, kernel: tuple[int, int], pixels: int, groups: int = 1) -> None:
        weights = (c_in // groups) * kernel[0] * kernel[1] * c_out
        self.parameters += weights
        self.mult_adds += pixels * weights

    def bn(self, channels: int) -> None:
        self.parameters += 2 * channels

    def conv_bn_1x1(self, c_in: int, c_out: int, pixels: int) -> None:
        """A 1x1 conv (or a factorized reduction's two halves, which add up the same) and its BN."""
        self.conv(c_in, c_out, (1, 1), pixels)
        self.bn(c_out)

    def add(self, other: _Tally) -> None:
        self.parameters += other.parameters
        self.mult_adds += other.mult_adds

    def linear(self, c_in: int, c_out: int) -> None:
        self.parameters += c_in * c_out + c_out
        self.mult_adds += c_in * c_out


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _count_cell(cell: RealizedCell, x1_size: int, x2_size: int | None) -> _Tally:
    tally = _Tally()
    filters = cell.filters
    out_size = _ceil_div(x1_size, cell.graph.stride)
    specs = {op.spec.name: op.spec for block in cell.graph.blocks for op in block.operands}
    for module in cell.modules:
        c_in, c_out = module.in_channels, module.out_channels
        if module.attr == "squeeze_x1":
            tally.conv_bn_1x1(c_in, c_out, x1_size**2)
        elif module.attr == "adjust_x2":
            if module.what == Adapter.RELU_FACTORIZED_REDUCTION:
                tally.conv_bn_1x1(c_in, c_out, _ceil_div(x2_size or x1_size, 2) ** 2)
            elif module.what == Adapter.RELU_CONV_BN:
                tally.conv_bn_1x1(c_in, c_out, x1_size**2)
        elif (
            module.what == Adapter.FACTORIZED_REDUCTION
        ):  # an output member brought to the last block's shape
            tally.conv_bn_1x1(c_in, c_out, out_size**2)
        elif module.what.endswith("_norm"):
            tally.bn(c_out)  # GroupNorm(1, C) and affine InstanceNorm have a scale and shift per channel
        else:
            spec = specs[module.what]
            in_size = x1_size if module.stride > 1 else out_size
            _count_op(tally, spec, c_in, filters, module.stride, in_size, out_size, bool(module.adapters))
    return tally


def _count_op(
    tally: _Tally, spec: OpSpec, c_in: int, filters: int, stride: int, in_size: int, size: int, adapted: bool
) -> None:
    pixels = size**2
    if spec.family in ("identity", "pool"):
        if adapted:  # identity: ReLU → 1x1 conv (strided) → BN; pool: pool → 1x1 conv → BN
            tally.conv_bn_1x1(c_in, filters, pixels)
    elif spec.family == "separable":
        kernel = spec.kernels[0]
        for layer_in in (c_in, filters):
            tally.conv(layer_in, layer_in, kernel, pixels, groups=layer_in)
            tally.conv(layer_in, filters, (1, 1), pixels)
            tally.bn(filters)
    elif spec.family == "conv":
        for index, kernel in enumerate(spec.kernels):
            tally.conv(c_in if index == 0 else filters, filters, kernel, pixels)
            tally.bn(filters)
    elif spec.family == "bottleneck":
        reduced = spec.bottleneck[0] * filters // spec.bottleneck[1]
        width = reduced if reduced >= 1 else filters
        conv_in = c_in
        if reduced >= 1:
            tally.conv_bn_1x1(c_in, reduced, in_size**2)  # before the stride
            conv_in = reduced
        for index, kernel in enumerate(spec.kernels):
            # 1xk then kx1: the first strides along its long axis only (in × out pixels)
            first_of_two = len(spec.kernels) > 1 and index == 0 and stride > 1
            tally.conv(conv_in, width, kernel, in_size * size if first_of_two else pixels)
            tally.bn(width)
            conv_in = width
        if reduced >= 1:
            tally.conv_bn_1x1(width, filters, pixels)
    else:  # a new family must say how it counts
        raise NotImplementedError(f"no counting rule for op family {spec.family!r}")


def count_network(
    preset: Preset,
    planned: tuple[CellInstance, ...],
    image_size: int | None = None,
    num_classes: int | None = None,
) -> NetworkStats:
    """A NASNet-family network's figures from its lowered cells and planned instances (see
    compiler/compilation.py): equal to measuring the built module."""
    size = preset.image_size if image_size is None else image_size
    classes = preset.num_classes if num_classes is None else num_classes
    skeleton = nasnet_skeleton(preset)
    stem = _Tally()
    stem_size = (size - 3) // 2 + 1 if skeleton.stem == "imagenet" else size  # imagenet: stride 2, VALID
    stem.conv(3, skeleton.stem_channels, (3, 3), stem_size**2)
    stem.bn(skeleton.stem_channels)

    outputs: list[tuple[int, int]] = [(skeleton.stem_channels, stem_size)]  # (channels, size)
    cells: list[CellStats] = []
    total = _Tally(stem.parameters, stem.mult_adds)
    for instance in planned:
        plan = instance.plan
        x1_size = outputs[plan.x1][1]
        x2_size = outputs[plan.x2][1] if plan.x2 is not None else None
        tally = _count_cell(instance.cell, x1_size, x2_size)
        out = (instance.cell.out_channels, _ceil_div(x1_size, instance.cell.graph.stride))
        outputs.append(out)
        cells.append(_cell_stats(plan.name, plan.kind, out, tally))
        total.add(tally)
    aux_channels, aux_size = outputs[skeleton.aux_after + 1]
    pooled = (aux_size - 5) // 3 + 1
    aux = None
    if pooled >= 1:
        aux = _Tally()
        projected, hidden = int(128 * preset.aux_scaling), int(768 * preset.aux_scaling)
        aux.conv_bn_1x1(aux_channels, projected, pooled**2)
        aux.conv(projected, hidden, (pooled, pooled), 1)
        aux.bn(hidden)
        aux.linear(hidden, classes)
    return _network_stats(total, aux, size, outputs[-1][0], classes, cells)


def count_darts(
    genotype: ir.Genotype, preset: DartsPreset, image_size: int | None = None, num_classes: int | None = None
) -> NetworkStats:
    """A DARTS network's figures (quark0/darts cnn/model.py, as compiler/emit_darts.py builds it)."""
    size = preset.image_size if image_size is None else image_size
    classes = preset.num_classes if num_classes is None else num_classes
    skeleton = darts_skeleton(preset, genotype)
    total = _Tally()
    c = preset.channels
    if skeleton.stem == "imagenet":  # stem0: two strided 3x3 convs; stem1: one
        sizes = []  # of the outputs so far: stem0's, stem1's, then the cells'
        for c_in, c_out in ((3, c // 2), (c // 2, c), (c, c)):
            size = _halve(size)
            total.conv(c_in, c_out, (3, 3), size**2)
            total.bn(c_out)
            sizes.append(size)
        del sizes[0]  # inside stem0
    else:
        total.conv(3, skeleton.stem_channels, (3, 3), size**2)
        total.bn(skeleton.stem_channels)
        sizes = [size, size]  # the stem's output feeds the first two cells
    cells: list[CellStats] = []
    for plan in skeleton.cells:
        tally, out_size = _count_darts_cell(plan, genotype.cell(plan.kind), sizes[-2], sizes[-1])
        sizes.append(out_size)
        cells.append(_cell_stats(plan.name, plan.kind, (plan.out_channels, out_size), tally))
        total.add(tally)
    aux_plan, aux_size = skeleton.cells[skeleton.aux_after], sizes[skeleton.aux_after + 2]
    stride = 3 if skeleton.stem == "cifar" else 2  # the aux head's 5x5 pool
    aux = None
    if (aux_size - 5) // stride + 1 == 2:
        aux = _Tally()
        aux.conv_bn_1x1(aux_plan.out_channels, 128, 2 * 2)
        aux.conv(128, 768, (2, 2), 1)
        if skeleton.stem == "cifar":  # the reference's ImageNet head has no BN after this conv
            aux.bn(768)
        aux.linear(768, classes)
    return _network_stats(
        total,
        aux,
        preset.image_size if image_size is None else image_size,
        skeleton.cells[-1].out_channels,
        classes,
        cells,
    )


def _count_darts_cell(plan: DartsCell, cell: ir.Cell, s0_size: int, s1_size: int) -> tuple[_Tally, int]:
    tally, c = _Tally(), plan.channels
    if plan.reduction_prev:
        _factorized_reduce(tally, plan.prev_prev_channels, c, s0_size)
    else:
        tally.conv_bn_1x1(plan.prev_prev_channels, c, s0_size**2)
    tally.conv_bn_1x1(plan.prev_channels, c, s1_size**2)
    reduction = plan.kind == "reduction"
    out_size = _halve(s1_size) if reduction else s1_size
    for block in cell.blocks:
        for operand in block.operands:
            strided = reduction and operand.input in cell.inputs
            _count_darts_op(tally, operand.op, c, s1_size if strided else out_size, out_size, strided)
    return tally, out_size


def _count_darts_op(tally: _Tally, op: str, c: int, in_size: int, out_size: int, strided: bool) -> None:
    """cnn/operations.py's OPS, C channels to C; pools have no parameters."""
    family, _, kernel = op.rpartition("_")
    if op == "identity":
        if strided:  # a strided skip_connect is a FactorizedReduce
            _factorized_reduce(tally, c, c, in_size)
        return
    if family in ("max_pool", "avg_pool"):
        return
    k = int(kernel.partition("x")[0])
    layers = 2 if family == "sep_conv" else 1  # sep_conv: two (depthwise, pointwise, BN); dil_conv: one
    for _ in range(layers):
        tally.conv(c, c, (k, k), out_size**2, groups=c)
        tally.conv(c, c, (1, 1), out_size**2)
        tally.bn(c)


def count_nb201(
    genotype: ir.Genotype,
    preset: Nb201Preset,
    skeleton: Nb201Skeleton,
    image_size: int | None = None,
    num_classes: int | None = None,
) -> NetworkStats:
    """NAS-Bench-201's TinyNetwork (the plan compiler/emit_nb201.py builds from): a `none` edge, a
    pool and an identity hold no weights; every other op is ReLU → conv → BN, C to C."""
    size = preset.image_size if image_size is None else image_size
    classes = preset.num_classes if num_classes is None else num_classes
    total = _Tally()
    total.conv(3, skeleton.channels, (3, 3), size**2)
    total.bn(skeleton.channels)
    cell, cells = genotype.cell("normal"), []
    for layer in skeleton.layers:
        tally = _Tally()
        if layer.residual:  # ReLU → 3x3 conv (stride 2) → BN, ReLU → 3x3 conv → BN; avg pool → 1x1 conv
            size = _halve(size)
            tally.conv(layer.in_channels, layer.channels, (3, 3), size**2)
            tally.bn(layer.channels)
            tally.conv(layer.channels, layer.channels, (3, 3), size**2)
            tally.bn(layer.channels)
            tally.conv(layer.in_channels, layer.channels, (1, 1), size**2)
        else:
            for operand in (operand for block in cell.blocks for operand in block.operands):
                if operand.op in ("conv_1x1", "conv_3x3"):
                    k = 1 if operand.op == "conv_1x1" else 3
                    tally.conv(layer.channels, layer.channels, (k, k), size**2)
                    tally.bn(layer.channels)
        cells.append(
            _cell_stats(layer.name, "residual" if layer.residual else "normal", (layer.channels, size), tally)
        )
        total.add(tally)
    features = skeleton.layers[-1].channels
    total.bn(features)  # the head's BN → ReLU before the pool
    return _network_stats(
        total, None, preset.image_size if image_size is None else image_size, features, classes, cells
    )


def _factorized_reduce(tally: _Tally, c_in: int, c_out: int, size: int) -> None:
    """Two stride-2 1x1 convs to C/2, the second on the map without its first row and column."""
    tally.conv(c_in, c_out // 2, (1, 1), _halve(size) ** 2)
    tally.conv(c_in, c_out // 2, (1, 1), ((size - 2) // 2 + 1) ** 2)
    tally.bn(c_out)


def _halve(size: int) -> int:
    """A map's size after a stride-2 layer padded to keep "SAME"-like sizes (it rounds up)."""
    return (size - 1) // 2 + 1


def _cell_stats(name: str, kind: str, output: tuple[int, int], tally: _Tally) -> CellStats:
    channels, size = output
    return CellStats(name, kind, (1, channels, size, size), tally.parameters, tally.mult_adds)


def _network_stats(
    total: _Tally, aux: _Tally | None, image_size: int, features: int, classes: int, cells: list[CellStats]
) -> NetworkStats:
    """The network's figures once its stem and cells are in `total`: the classifier, and the aux head."""
    if classes:
        total.linear(features, classes)
    return NetworkStats(
        parameters=total.parameters,
        parameters_with_aux=total.parameters + aux.parameters if aux is not None else None,
        mult_adds=total.mult_adds,
        input_shape=(1, 3, image_size, image_size),
        output_shape=(1, classes if classes else features),
        cells=tuple(cells),
    )
