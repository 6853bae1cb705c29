"""Gradient checkpointing: what it saves and what it costs, side by side in one process.

    python bench/bench_checkpointing.py [--batch 32] [--repeats 3]

For NASNet-A and DARTS-V2 at their CIFAR presets, one training step (forward + backward) with and
without `set_grad_checkpointing()`: the bytes the forward pass leaves saved for the backward pass
(counted with saved-tensor hooks: exact, independent of the allocator; with checkpointing, a cell's
activations exist again only while its backward runs) and the step's wall time (median of the
rounds, alternating).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

import nasc
from nasc.compiler.options import EmitOptions
from nasc.runtime.build import build_network

ROOT = Path(__file__).resolve().parent.parent
CASES = {
    "nasnet_a cifar": ("nasnet_a", EmitOptions(preset="cifar"), 32),
    "darts_v2 cifar": ("darts_v2", EmitOptions(preset="cifar"), 32),
}


def step(model: torch.nn.Module, images: torch.Tensor) -> tuple[int, float]:
    """(bytes saved for backward, seconds) of one forward + backward."""
    saved = 0

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        nonlocal saved
        saved += tensor.numel() * tensor.element_size()
        return tensor

    model.zero_grad(set_to_none=True)
    start = time.perf_counter()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        loss = model(images).logsumexp(dim=1).mean()
    loss.backward()
    return saved, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.manual_seed(0)
    for label, (name, options, size) in CASES.items():
        model = build_network(nasc.load(ROOT / "genotypes" / f"{name}.cell"), options).model.eval()
        images = torch.randn(args.batch, 3, size, size)
        figures: dict[bool, list[tuple[int, float]]] = {False: [], True: []}
        for _ in range(args.repeats):
            for enabled in (False, True):
                model.set_grad_checkpointing(enabled)
                figures[enabled].append(step(model, images))
        plain_bytes, checked_bytes = figures[False][0][0], figures[True][0][0]
        plain_time = statistics.median(t for _, t in figures[False])
        checked_time = statistics.median(t for _, t in figures[True])
        print(
            f"{label}, batch {args.batch}: saved for backward {plain_bytes / 2**20:,.0f} MiB → "
            f"{checked_bytes / 2**20:,.0f} MiB ({checked_bytes / plain_bytes:.2f}×); step "
            f"{plain_time:.2f} s → {checked_time:.2f} s ({checked_time / plain_time:.2f}×)"
        )


if __name__ == "__main__":
    main()
