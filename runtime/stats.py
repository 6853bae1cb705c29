"""Measuring a built network: parameters, conv + linear mult-adds, and a per-cell table, from the
real module with forward hooks (batch 1). `nasc stats` counts statically (compiler/counting.py); this
is the measurement the tests hold those counts to, and what a user can run on a module they changed.
"""

from __future__ import annotations

import torch
from torch import nn

from nasc.compiler.counting import CellStats, NetworkStats


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _layer_mult_adds(layer: nn.Module, output: torch.Tensor) -> int:
    if isinstance(layer, nn.Conv2d):
        kh, kw = layer.kernel_size
        return output[0].numel() * (layer.in_channels // layer.groups) * kh * kw
    if isinstance(layer, nn.Linear):
        return (output.numel() // output.shape[0]) * layer.in_features
    return 0


def measure(model: nn.Module, image_size: int, aux_model: nn.Module | None = None) -> NetworkStats:
    """Parameters (without aux head; with it when `aux_model` is given), and mult-adds of one
    eval-mode forward pass at batch 1, in total and per cell."""
    counter = {"total": 0}
    per_cell: dict[str, int] = {}
    owner: dict[nn.Module, str] = {}
    named_cells = list(zip(model.cell_names, model.cells, strict=True))
    for name, cell in named_cells:
        for sub in cell.modules():
            owner[sub] = name

    def hook(layer: nn.Module, _inputs, output: torch.Tensor) -> None:
        macs = _layer_mult_adds(layer, output)
        counter["total"] += macs
        if layer in owner:
            per_cell[owner[layer]] = per_cell.get(owner[layer], 0) + macs

    handles = [
        m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))
    ]
    shapes: dict[str, tuple[int, ...]] = {}
    handles += [
        cell.register_forward_hook(lambda _m, _i, out, key=name: shapes.__setitem__(key, tuple(out.shape)))
        for name, cell in named_cells
    ]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            x = torch.zeros(1, 3, image_size, image_size)
            logits = model(x)
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    cells = tuple(
        CellStats(name, cell.kind, shapes[name], count_parameters(cell), per_cell.get(name, 0))
        for name, cell in named_cells
    )
    return NetworkStats(
        parameters=count_parameters(model),
        parameters_with_aux=count_parameters(aux_model) if aux_model is not None else None,
        mult_adds=counter["total"],
        input_shape=(1, 3, image_size, image_size),
        output_shape=tuple(logits.shape),
        cells=cells,
    )
