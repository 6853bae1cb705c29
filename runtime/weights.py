"""Reference checkpoints into compiled networks: `nasc weights`.

A checkpoint of a hand-written reference network (timm, pretrainedmodels, the DARTS repository) is
read as untrusted data (`weights_only`, or safetensors) and every tensor of the compiled network is
found in it by a name derived from the compiler's view of the cell, never from a table per network:

- cells correspond by position within their family (stem cells, reduction cells, the others): the
  reference's in the order of their numbers, ours in `cell_names` order;
- inside a cell, a block corresponds to the reference's combination at the block's position (TF-slim
  ports: `comb_iter_{i}_{left,right}`; DARTS: `_ops.{2i}`, `_ops.{2i+1}`), and each module of an op to
  the reference's module of the same role, by the op's family (separable, pool projection, 1x1 conv);
- the compiler's adapters (squeeze of x1, adjustment of x2) to the reference's `conv_1x1`,
  `conv_prev_1x1` or factorized path (`path_1`, `path_2`, `final_path_bn`), or DARTS's
  `preprocess0/1`.

Shapes are checked tensor by tensor; the first disagreement is named on both sides and nothing is
written. A checkpoint tensor nasc has no place for is an error too, except the aux head's, which goes
in only when asked for.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from nasc.compiler import ir
from nasc.compiler.conventions import convention_of
from nasc.compiler.lower import lower
from nasc.runtime.tensorfile import TensorFileError, converted, read_tensor_file

SOURCES = ("timm", "pretrainedmodels", "darts")
WRAPPERS = ("state_dict", "model", "state_dict_ema", "model_ema")
AUX_PREFIXES = ("aux_head.", "auxiliary_head.", "aux_logits.")


class WeightsError(Exception):
    """The checkpoint cannot become this network's weights; the message says why, in one line."""


@dataclass(frozen=True)
class Imported:
    state_dict: dict[str, torch.Tensor]  # keyed as the compiled module names its tensors
    num_classes: int
    mapped: int  # tensors taken from the checkpoint
    left_out: tuple[str, ...]  # checkpoint tensors not taken (the aux head when not asked for)
    aux_head: bool
    left_out_said: str = ""  # what `left_out` is, in words for the user


# -- reading ----------------------------------------------------------------------------------------


def read_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint file, by name: a torch.save'd state_dict (possibly wrapped in
    {"state_dict": …} or {"model": …}, possibly with DataParallel's `module.` prefix) or a
    safetensors file. Never runs code from the file (runtime/tensorfile.py)."""
    try:
        tensors = read_tensor_file(path)
    except TensorFileError as error:
        raise WeightsError(str(error)) from None
    for _ in range(3):  # unwrap {"state_dict": {...}} and the like
        if isinstance(tensors, Mapping):
            wrapper = next((key for key in WRAPPERS if isinstance(tensors.get(key), Mapping)), None)
            if wrapper is not None and not any(isinstance(v, torch.Tensor) for v in tensors.values()):
                tensors = tensors[wrapper]
    if not isinstance(tensors, Mapping) or not tensors:
        raise WeightsError("holds no state_dict (a mapping of names to tensors)")
    found = {str(key): value for key, value in tensors.items() if isinstance(value, torch.Tensor)}
    if not found:
        raise WeightsError("holds no tensors")
    if all(key.startswith("module.") for key in found):  # saved from DataParallel
        found = {key.removeprefix("module."): value for key, value in found.items()}
    return found


# -- the names: derived from the lowered cells ------------------------------------------------------

# Inside one op, our module → the reference's, by the op's family (TF-slim ports: timm, pretrainedmodels).
SEPARABLE_TF = {
    "depthwise_1": "separable_1.depthwise_conv2d",
    "pointwise_1": "separable_1.pointwise_conv2d",
    "bn_1": "bn_sep_1",
    "depthwise_2": "separable_2.depthwise_conv2d",
    "pointwise_2": "separable_2.pointwise_conv2d",
    "bn_2": "bn_sep_2",
}
# DARTS's ops are nn.Sequential: index of each layer (cnn/operations.py).
SEPARABLE_DARTS = {
    "depthwise_1": "op.1",
    "pointwise_1": "op.2",
    "bn_1": "op.3",
    "depthwise_2": "op.5",
    "pointwise_2": "op.6",
    "bn_2": "op.7",
}
DILATED_DARTS = {"depthwise": "op.1", "pointwise": "op.2", "bn": "op.3"}
RELU_CONV_BN_DARTS = {"conv": "op.1", "bn": "op.2"}


def _split(key: str) -> tuple[str, str, str]:
    """`cell_7.h2_left.bn_1.weight` → ("cell_7", "h2_left", "bn_1.weight")."""
    head, _, rest = key.partition(".")
    module, _, tail = rest.partition(".")
    return head, module, tail


def _rename(tail: str, table: Mapping[str, str]) -> str | None:
    module, _, parameter = tail.partition(".")
    if module in table:
        return f"{table[module]}.{parameter}"
    return None


def _op_positions(genotype: ir.Genotype) -> dict[tuple[str, str], tuple[int, int]]:
    """(cell role, op attribute) → (block position, operand position), from the lowered cells."""
    positions = {}
    if convention_of(genotype).nasnet_family:
        for role, graph in lower(genotype).items():
            for index, block in enumerate(graph.blocks):
                for side, op in enumerate(block.operands):
                    positions[(role, op.attr)] = (index, side)
    else:
        for cell in genotype.cells:  # DARTS: two operands a block, named as emit_darts names them
            for index, block in enumerate(cell.blocks):
                for side, name in enumerate(("left", "right")):
                    positions[(cell.kind, f"{block.target}_{name}")] = (index, side)
    return positions


def _tf_port_candidates(key: str, cell_of: Mapping[str, tuple[str, str]], positions, stem: str) -> list[str]:
    """Where a TF-slim port (timm, pretrainedmodels) keeps the tensor we call `key`."""
    head, module, tail = _split(key)
    if head == "stem":  # nn.Sequential(conv, bn) → conv0.conv, conv0.bn (conv_0 in timm's PNASNet)
        index, _, parameter = f"{module}.{tail}".partition(".")
        return [f"{stem}.{'conv' if index == '0' else 'bn'}.{parameter}"]
    if head == "classifier":
        return [f"last_linear.{module}"]
    if head not in cell_of:
        return []
    reference_cell, role = cell_of[head]
    base = f"{reference_cell}."
    if module == "squeeze_x1":
        return [base + f"conv_1x1.{tail}"]
    if module == "adjust_x2":
        factorized = {"conv_even": "path_1.conv", "conv_odd": "path_2.conv", "bn": "final_path_bn"}
        sub, _, parameter = tail.partition(".")
        names = [base + f"conv_prev_1x1.{tail}"]
        if sub in factorized:
            path = f"{factorized[sub]}.{parameter}"
            names = [base + path, base + f"conv_prev_1x1.{path}"] + (names if sub == "bn" else [])
        return names
    if (role, module) in positions:
        index, side = positions[(role, module)]
        op = base + f"comb_iter_{index}_{('left', 'right')[side]}."
        renamed = _rename(tail, SEPARABLE_TF)
        if renamed:
            return [op + renamed]
        if tail.startswith("project."):  # a pool's 1x1 projection: max_pool → conv → bn
            return [op + tail.removeprefix("project.")]
        return [op + tail]  # a 1x1 ReLU-conv-BN (identity with a stride or another width)
    return []


def _darts_candidates(key: str, cell_of: Mapping[str, tuple[str, str]], positions, stem: str) -> list[str]:
    """Where quark0/darts cnn/model.py (NetworkCIFAR, NetworkImageNet) keeps the tensor `key`."""
    head, module, tail = _split(key)
    if head in ("stem", "stem0", "stem1", "classifier"):
        return [key]
    if head == "aux_head":
        return [f"auxiliary_head.{module}.{tail}" if tail else f"auxiliary_head.{module}"]
    if head not in cell_of:
        return []
    reference_cell, kind = cell_of[head]
    base = f"{reference_cell}."
    if module in ("preprocess0", "preprocess1"):  # ReLUConvBN (op.1, op.2) or FactorizedReduce
        renamed = _rename(tail, RELU_CONV_BN_DARTS)
        return [base + f"{module}.{name}" for name in (renamed, tail) if name]
    if (kind, module) in positions:
        index, side = positions[(kind, module)]
        op = base + f"_ops.{2 * index + side}."
        renamed = _rename(tail, SEPARABLE_DARTS) or _rename(tail, DILATED_DARTS)
        return [op + (renamed or tail)]  # FactorizedReduce keeps its names (conv_1, conv_2, bn)
    return []


CANDIDATES: dict[str, Callable[..., list[str]]] = {
    "timm": _tf_port_candidates,
    "pretrainedmodels": _tf_port_candidates,
    "darts": _darts_candidates,
}
CELL_PREFIX = {
    "timm": re.compile(r"^((cell_stem|reduction_cell|cell)_(\d+))\."),
    "pretrainedmodels": re.compile(r"^((cell_stem|reduction_cell|cell)_(\d+))\."),
    "darts": re.compile(r"^((cells)\.(\d+))\."),
    "tf": re.compile(r"^((cell_stem|reduction_cell|cell)_(\d+))/"),
}
OUR_CELL = re.compile(r"^(cell_stem|reduction_cell|cell)_(\d+)$")


def cell_correspondence(
    checkpoint: Mapping[str, torch.Tensor], source: str, our_names: tuple[str, ...]
) -> dict[str, str]:
    """Our cell → the reference's. Within each family (stem cells, reduction cells, the rest) the
    reference's cells are taken in the order of their numbers, so the checkpoint's key order does not
    matter (safetensors sorts keys; pretrainedmodels numbers NASNet-A mobile's cells 0-3, 6-9, 12-15)."""
    theirs: dict[str, set[tuple[int, str]]] = {}
    for key in checkpoint:
        match = CELL_PREFIX[source].match(key)
        if match:
            family = "cell" if match.group(2) == "cells" else match.group(2)
            theirs.setdefault(family, set()).add((int(match.group(3)), match.group(1)))
    queues = {family: [name for _, name in sorted(cells)] for family, cells in theirs.items()}
    mine: dict[str, list[str]] = {}
    for name in our_names:
        mine.setdefault(OUR_CELL.match(name).group(1), []).append(name)
    counts = {family: len(names) for family, names in mine.items()}
    found = {family: len(queues.get(family, [])) for family in set(mine) | set(queues)}
    if any(found[family] != counts.get(family, 0) for family in found):
        words = {"cell_stem": "stem", "reduction_cell": "reduction", "cell": "other"}

        def describe(table: Mapping[str, int]) -> str:
            total = sum(table.values())
            if len([count for count in table.values() if count]) < 2:
                return str(total)
            parts = ", ".join(f"{table.get(family, 0)} {word}" for family, word in words.items())
            return f"{total} ({parts})"

        raise WeightsError(
            f"the checkpoint has {describe(found)} cells, this network at this preset "
            f"{describe(counts)}: is it a {source} checkpoint of this network and preset?"
        )
    return {
        name: reference
        for family, names in mine.items()
        for name, reference in zip(names, queues[family], strict=True)
    }


def _stem_prefix(checkpoint: Mapping[str, torch.Tensor], source: str) -> str:
    """The reference's stem: its one top-level module besides the cells, classifier and aux head."""
    tops = {key.split(".")[0] for key in checkpoint if not CELL_PREFIX[source].match(key)}
    tops -= {"last_linear", "classifier", "auxiliary_head", "aux_head", "aux_logits"}
    return min(tops) if tops else "conv0"


# -- importing --------------------------------------------------------------------------------------


def import_weights(
    genotype: ir.Genotype,
    checkpoint: Mapping[str, torch.Tensor],
    source: str,
    model: torch.nn.Module,
    *,
    aux_head: bool = False,
) -> Imported:
    """The compiled `model`'s state_dict filled from `checkpoint` (a reference network's tensors).
    Raises WeightsError naming the first tensor that cannot be placed."""
    if source not in SOURCES:
        raise WeightsError(f"unknown source {source!r}; choose from {', '.join(SOURCES)}")
    if convention_of(genotype).nasnet_family == (source == "darts"):
        raise WeightsError(
            f"--from {source} reads {'DARTS' if source == 'darts' else 'TF-slim-port (NASNet, PNASNet)'} "
            f"checkpoints; genotype {genotype.name} is a {genotype.convention} network"
        )
    ours = model.state_dict()
    reference_of = cell_correspondence(checkpoint, source, tuple(model.cell_names))
    cell_of = {
        name: (reference_of[name], cell.kind)
        for name, cell in zip(model.cell_names, model.cells, strict=True)
    }
    positions = _op_positions(genotype)
    candidates = CANDIDATES[source]
    stem = _stem_prefix(checkpoint, source)
    state: dict[str, torch.Tensor] = {}
    used: set[str] = set()
    for key, tensor in ours.items():
        if key.startswith("aux_head.") and not aux_head:
            continue
        names = candidates(key, cell_of, positions, stem)
        found = next((name for name in names if name in checkpoint), None)
        if found is None and key.endswith(".num_batches_tracked"):
            state[key] = tensor.clone()  # checkpoints from before PyTorch 0.4.1 have no such counter
            continue
        if found is None:
            where = f" (looked for {', '.join(names)})" if names else ""
            raise WeightsError(f"the checkpoint has no tensor for {key}{where}")
        theirs = checkpoint[found]
        if tuple(theirs.shape) != tuple(tensor.shape):
            raise WeightsError(
                f"shape mismatch: {key} is {tuple(tensor.shape)} here, {found} is "
                f"{tuple(theirs.shape)} in the checkpoint"
            )
        try:
            state[key] = converted(found, theirs, tensor)
        except TensorFileError as error:
            raise WeightsError(str(error)) from None
        used.add(found)
    left = [key for key in checkpoint if key not in used]
    unplaced = [key for key in left if not key.startswith(AUX_PREFIXES)]
    if unplaced:
        raise WeightsError(
            f"the checkpoint has {len(unplaced)} tensor(s) this network has no place for, the first "
            f"{unplaced[0]}: is it a checkpoint of this network and preset?"
        )
    if aux_head and not any(key.startswith("aux_head.") for key in state):
        raise WeightsError("the checkpoint has no aux head weights")
    said = f"{len(left)} aux head tensor(s) of the checkpoint (keep them with --aux-head)"
    return Imported(state, model.num_classes, len(state), tuple(left), aux_head, said if left else "")


def classes_in(checkpoint: Mapping[str, torch.Tensor], source: str) -> int | None:
    """The number of classes the checkpoint's classifier has, where it has one."""
    name = "classifier.weight" if source == "darts" else "last_linear.weight"
    tensor = checkpoint.get(name)
    return int(tensor.shape[0]) if tensor is not None and tensor.ndim == 2 else None


def save_state_dict(state: Mapping[str, torch.Tensor]) -> bytes:
    """The bytes torch.save writes for a plain state_dict (to be written atomically by the caller)."""
    buffer = io.BytesIO()
    torch.save(dict(state), buffer)
    return buffer.getvalue()
