"""TensorFlow checkpoints of the NASNet family into compiled networks: `nasc weights --from tf`.

The authors' TensorFlow code names every variable by scope: TF-slim's NASNet-A and PNASNet-5
(tensorflow/models research/slim/nets/nasnet) and the TPU AmoebaNet (tensorflow/tpu
models/official/amoeba_net) alike. The names are derived from the compiled cells, as for the
PyTorch ports (runtime/weights.py), never from a table per network:

- cells correspond by family and order (`cell_stem_i`, `reduction_cell_i`, `cell_i`);
- a cell's squeeze of x1 is `1x1` + `beginning_bn`; the adjustment of x2 `prev_1x1` + `prev_bn`, or
  the factorized reduction's `path1_conv`, `path2_conv`, `final_path_bn`;
- the op at block i, operand j is `comb_iter_i/{left,right}`; inside it the layers take, in order,
  the names of the op's family: a separable k×k `separable_kxk_{1,2}/{depthwise,pointwise}_weights`
  and `bn_sep_kxk_{1,2}`, a 1x1 adapter (identity, pool) `1x1` + `bn_1`, AmoebaNet's bottlenecked
  convolutions `pre_1x1`, `pre_bn`, the convolution(s) (`3x3`, `1x7` `bn_1x7_7x1` `7x1`,
  `dilated_3x3`), `bn`, `post_1x1`, `post_bn`;
- the stem is `conv0` + `conv0_bn` (under `stem/` in the TPU model), the classifier `final_layer/FC`.

Kernels are transposed from TF's layouts (HWIO; depthwise [k, k, C, 1]) to PyTorch's; batch norm's
gamma, beta, moving mean and variance become weight, bias, running mean and variance. TF-slim's
ImageNet classifiers have 1,001 classes, background first: the classifier follows the checkpoint,
or drops the background row where `num_classes` is one less. `ema` takes each variable's
ExponentialMovingAverage shadow where the checkpoint has one (TF-slim and the TPU models evaluate
with them). The aux head, the global step and optimizer slots are training state and stay out.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch
from torch import nn

from nasc.compiler import ir
from nasc.compiler.conventions import convention_of
from nasc.compiler.lower import lower
from nasc.compiler.registry import OpSpec
from nasc.runtime.tensorfile import TensorFileError, converted
from nasc.runtime.tf_checkpoint import Bundle, BundleError
from nasc.runtime.weights import Imported, WeightsError, cell_correspondence

EMA = "/ExponentialMovingAverage"
CLASSIFIER = "final_layer/FC"
BATCH_NORM = {
    "weight": "gamma",
    "bias": "beta",
    "running_mean": "moving_mean",
    "running_var": "moving_variance",
}
AUX_HEAD = re.compile(r"^aux_\d+/")
TRAINING_STATE = re.compile(r"^global_step$|/(Momentum|RMSProp(_1)?|Adam(_1)?)$")  # and the aux head
LAYERS = (nn.Conv2d, nn.BatchNorm2d, nn.Linear)


def _op_layers(spec: OpSpec, leaves: int) -> list[tuple[str, str]]:
    """(kind, TF name) of each layer of an op, in the order the compiled op holds them."""
    if spec.family == "separable":
        k = spec.kernels[0][0]
        return [
            layer
            for i in (1, 2)
            for layer in (
                ("conv", f"separable_{k}x{k}_{i}/depthwise_weights"),
                ("conv", f"separable_{k}x{k}_{i}/pointwise_weights"),
                ("bn", f"bn_sep_{k}x{k}_{i}"),
            )
        ]
    if spec.family in ("identity", "pool"):  # the 1x1 that adapts width or stride
        return [("conv", "1x1/weights"), ("bn", "bn_1")]
    if spec.family == "bottleneck":
        convs = [f"dilated_{kh}x{kw}" if spec.dilation > 1 else f"{kh}x{kw}" for kh, kw in spec.kernels]
        middle: list[tuple[str, str]] = []
        for index, conv in enumerate(convs):
            if index:
                middle.append(("bn", "bn_" + "_".join(convs)))
            middle.append(("conv", f"{conv}/weights"))
        middle.append(("bn", "bn"))
        outer = [
            ("conv", "pre_1x1/weights"),
            ("bn", "pre_bn"),
            *middle,
            ("conv", "post_1x1/weights"),
            ("bn", "post_bn"),
        ]
        return outer if leaves == len(outer) else middle
    raise WeightsError(f"op {spec.name} has no counterpart in TensorFlow's NASNet-family cells")


Layers = list[tuple[str, str]]  # (kind: "conv" or "bn", TF name), in the order of the module's layers


def _leaves(prefix: str, module: nn.Module) -> list[tuple[str, nn.Module]]:
    return [
        (f"{prefix}.{name}" if name else prefix, m)
        for name, m in module.named_modules()
        if isinstance(m, LAYERS)
    ]


def _name_layers(
    names: dict[str, tuple[str, str]], leaves: list[tuple[str, nn.Module]], layers: Layers
) -> None:
    """Pair the module's layers, in order, with TF names; record each tensor's TF variable."""
    kinds = ["bn" if isinstance(m, nn.BatchNorm2d) else "conv" for _, m in leaves]
    if kinds != [kind for kind, _ in layers]:
        where = leaves[0][0].rsplit(".", 1)[0] if leaves else "a module"
        raise WeightsError(f"{where} has layers {kinds}, its TensorFlow counterpart {[k for k, _ in layers]}")
    for (path, leaf), (kind, name) in zip(leaves, layers, strict=True):
        if kind == "bn":
            for ours, theirs in BATCH_NORM.items():
                names[f"{path}.{ours}"] = (f"{name}/{theirs}", "same")
        else:
            names[f"{path}.weight"] = (name, "depthwise" if name.endswith("depthwise_weights") else "conv")
            if leaf.bias is not None:
                raise WeightsError(f"{path} has a bias; TensorFlow's convolutions here have none")


def _cell_layers(attr: str, module: nn.Module, count: int, op: tuple[int, int, OpSpec] | None) -> Layers:
    """A cell's module → its layers' TF names, relative to the cell's scope."""
    if attr == "squeeze_x1":
        return [("conv", "1x1/weights"), ("bn", "beginning_bn")]
    if attr == "adjust_x2" and hasattr(module, "conv_even"):  # the factorized reduction
        return [("conv", "path1_conv/weights"), ("conv", "path2_conv/weights"), ("bn", "final_path_bn")]
    if attr == "adjust_x2":
        return [("conv", "prev_1x1/weights"), ("bn", "prev_bn")]
    if op is None:
        raise WeightsError(f"{attr} has no counterpart in the TensorFlow cell")
    index, side, spec = op
    where = f"comb_iter_{index}/{('left', 'right')[side]}"
    return [(kind, f"{where}/{name}") for kind, name in _op_layers(spec, count)]


def tf_names(
    genotype: ir.Genotype, model: nn.Module, cells: Mapping[str, str], stem: str
) -> dict[str, tuple[str, str]]:
    """Our tensor → (TF variable, layout) for every tensor of the compiled model but the aux head's."""
    ops = {
        (role, op.attr): (index, side, op.spec)
        for role, graph in lower(genotype).items()
        for index, block in enumerate(graph.blocks)
        for side, op in enumerate(block.operands)
        if op.attr
    }
    names: dict[str, tuple[str, str]] = {}
    _name_layers(names, _leaves("stem.0", model.stem[0]), [("conv", f"{stem}conv0/weights")])
    _name_layers(names, _leaves("stem.1", model.stem[1]), [("bn", f"{stem}conv0_bn")])
    for cell_name, cell in zip(model.cell_names, model.cells, strict=True):
        for attr, module in cell.named_children():
            leaves = _leaves(f"{cell_name}.{attr}", module)
            if leaves:  # (a pool or identity that keeps width and stride has none)
                layers = _cell_layers(attr, module, len(leaves), ops.get((cell.kind, attr)))
                _name_layers(names, leaves, [(kind, f"{cells[cell_name]}/{name}") for kind, name in layers])
    names["classifier.weight"] = (f"{CLASSIFIER}/weights", "fc")
    names["classifier.bias"] = (f"{CLASSIFIER}/biases", "same")
    return names


def _layout(tensor: torch.Tensor, layout: str) -> torch.Tensor:
    if layout == "conv" and tensor.ndim == 4:  # HWIO → OIHW
        return tensor.permute(3, 2, 0, 1)
    if layout == "depthwise" and tensor.ndim == 4:  # [k, k, C, 1] → [C, 1, k, k]
        return tensor.permute(2, 3, 0, 1)
    if layout == "fc" and tensor.ndim == 2:  # [in, out] → [out, in]
        return tensor.t()
    return tensor


def tf_classes(bundle: Bundle) -> int | None:
    entry = bundle.entries.get(f"{CLASSIFIER}/biases")
    return entry.shape[0] if entry is not None and len(entry.shape) == 1 else None


def import_tf_weights(
    genotype: ir.Genotype, bundle: Bundle, model: nn.Module, *, ema: bool = False
) -> Imported:
    """The compiled `model`'s state_dict from a TensorFlow checkpoint of the same network."""
    if not convention_of(genotype).nasnet_family:
        raise WeightsError(
            f"--from tf reads NASNet-family checkpoints (TF-slim, the TPU AmoebaNet); genotype "
            f"{genotype.name} is a {genotype.convention} network"
        )
    entries = bundle.entries
    shadows = {name.removesuffix(EMA) for name in entries if name.endswith(EMA)}
    if ema and not shadows:
        raise WeightsError("the checkpoint has no ExponentialMovingAverage variables; leave out --ema")
    cells = cell_correspondence(entries, "tf", tuple(model.cell_names))
    stem = "stem/" if "stem/conv0/weights" in entries else ""
    names = tf_names(genotype, model, cells, stem)
    ours = model.state_dict()
    state: dict[str, torch.Tensor] = {}
    used: set[str] = set()
    for key, tensor in ours.items():
        if key.startswith("aux_head."):
            continue
        if key.endswith(".num_batches_tracked"):
            state[key] = tensor.clone()  # TF keeps no such counter
            continue
        if key not in names:
            raise WeightsError(f"nasc has no TensorFlow name for {key}")
        name, layout = names[key]
        if name not in entries:
            raise WeightsError(f"the checkpoint has no variable {name} (for {key})")
        source = f"{name}{EMA}" if ema and name in shadows else name
        try:
            theirs = _layout(bundle.read(source), layout)
        except BundleError as error:
            raise WeightsError(str(error)) from None
        if key.startswith("classifier.") and theirs.shape[0] == tensor.shape[0] + 1:
            theirs = theirs[1:]  # TF-slim's background class, first of 1,001
        if tuple(theirs.shape) != tuple(tensor.shape):
            raise WeightsError(
                f"shape mismatch: {key} is {tuple(tensor.shape)} here, {source} is "
                f"{tuple(theirs.shape)} in the checkpoint ({tuple(entries[source].shape)} in TF's layout)"
            )
        try:
            state[key] = converted(source, theirs.contiguous(), tensor)
        except TensorFileError as error:
            raise WeightsError(str(error)) from None
        used |= {name, source}
    left = [name for name in entries if name not in used]
    # A moving average stays out with what it averages: placed weights, the aux head, training state.
    unplaced = [name for name in left if not _stays_out(name.removesuffix(EMA), used)]
    if unplaced:
        raise WeightsError(
            f"the checkpoint has {len(unplaced)} variable(s) this network has no place for, the first "
            f"{unplaced[0]}: is it a checkpoint of this network and preset?"
        )
    return Imported(
        state, model.num_classes, len(state), tuple(left), aux_head=False, left_out_said=_said(left)
    )


def _stays_out(name: str, used: set[str]) -> bool:
    return name in used or bool(AUX_HEAD.match(name) or TRAINING_STATE.search(name))


def read_bundle(path: str) -> Bundle:
    """The checkpoint `path` names (its prefix, its .index or a data file), its index read and checked."""
    try:
        return Bundle(path)
    except BundleError as error:
        raise WeightsError(str(error)) from None


def _said(names: list[str]) -> str:
    """What of a TensorFlow checkpoint stayed out, in words."""
    shadows = sum(name.endswith(EMA) for name in names)
    aux = sum(bool(AUX_HEAD.match(name)) and not name.endswith(EMA) for name in names)
    rest = len(names) - shadows - aux
    parts = [
        f"{shadows} ExponentialMovingAverage variable(s) (take them with --ema)" if shadows else "",
        f"{aux} aux head variable(s)" if aux else "",
        f"{rest} of training state (global step, optimizer slots)" if rest else "",
    ]
    return "; ".join(part for part in parts if part)
