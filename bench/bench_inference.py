"""The inference build against the hand-written peers' best eager, side by side in one process.

    python bench/bench_inference.py [--repeats 15] [--skip-large] [--threads 2] [--compile]

- mobile @224, batch 1: pretrainedmodels nasnetamobile (NCHW, and channels-last: its best eager)
  vs nasc NASNet-A mobile (eager, and `fuse()`: batch norms folded, channels-last)
- large @331, batch 1: timm nasnetalarge (channels-last) vs nasc NASNet-A large `fuse()`
- `--compile`: also `torch.compile` of the fused network (inductor), its cold start (the first
  call: tracing and C++ code generation) printed apart from its steady state

The machine's peak (torch's best rate on a 2048³ matmul) is printed first. Rounds alternate between
the models so drift hits all alike; each figure is the median of the rounds; ratios are against the
peer's best.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent


def timed(model: torch.nn.Module, images: torch.Tensor) -> float:
    start = time.perf_counter()
    with torch.inference_mode():
        model(images)
    return time.perf_counter() - start


def race(models: dict[str, tuple[torch.nn.Module, torch.Tensor]], repeats: int) -> dict[str, float]:
    for model, images in models.values():  # warm up: allocator, padding caches, kernels
        timed(model, images)
    rounds: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(repeats):
        for name, (model, images) in models.items():
            rounds[name].append(timed(model, images))
    return {name: statistics.median(times) for name, times in rounds.items()}


def peak(n: int = 2048, repeats: int = 5) -> float:
    """torch's best mult-adds per second on one large matmul: the machine's ceiling for eager."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    best = float("inf")
    for _ in range(repeats + 1):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return n**3 / best


def add_compiled(contenders: dict, fused_name: str) -> None:
    """torch.compile of the fused contender beside it, its cold start (the first call) printed."""
    model, images = contenders[fused_name]
    compiled = torch.compile(model)
    print(f"torch.compile of {fused_name}: cold start {timed(compiled, images):.1f} s")
    contenders[fused_name.replace("fuse()", "torch.compile(fuse())")] = (compiled, images)


def report(title: str, medians: dict[str, float], peer_best: str) -> None:
    print(title)
    for name, seconds in medians.items():
        print(f"  {name:<42} {seconds * 1000:8.1f} ms  {seconds / medians[peer_best]:.2f}× the peer's best")


def nasc_network(preset: str) -> torch.nn.Module:
    import nasc
    from nasc.compiler.options import EmitOptions
    from nasc.runtime.build import build_network

    genotype = nasc.load(ROOT / "genotypes" / "nasnet_a.cell")
    return build_network(genotype, EmitOptions(preset=preset)).model.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip-large", action="store_true")
    parser.add_argument("--compile", action="store_true", help="also torch.compile of the fused network")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    torch.set_num_threads(args.threads)
    print(f"machine peak: {peak() / 1e9:.1f} G mult-adds/s (torch, one 2048³ matmul)")
    import pretrainedmodels

    images = torch.randn(1, 3, 224, 224)
    last = images.contiguous(memory_format=torch.channels_last)
    peer = pretrainedmodels.nasnetamobile(num_classes=1000, pretrained=None).eval()
    peer_last = pretrainedmodels.nasnetamobile(num_classes=1000, pretrained=None).eval()
    peer_last.to(memory_format=torch.channels_last)
    ours = nasc_network("mobile")
    contenders = {
        "pretrainedmodels nasnetamobile": (peer, images),
        "pretrainedmodels nasnetamobile, channels-last": (peer_last, last),
        "nasc NASNet-A mobile, eager": (ours, images),
        "nasc NASNet-A mobile, fuse()": (ours.fuse(), images),
    }
    if args.compile:
        add_compiled(contenders, "nasc NASNet-A mobile, fuse()")
    medians = race(contenders, args.repeats)
    report("mobile @224, batch 1", medians, "pretrainedmodels nasnetamobile, channels-last")
    if args.skip_large:
        return
    import timm

    images = torch.randn(1, 3, 331, 331)
    peer = timm.create_model("nasnetalarge", pretrained=False).eval()
    peer.to(memory_format=torch.channels_last)
    contenders = {
        "timm nasnetalarge, channels-last": (peer, images.contiguous(memory_format=torch.channels_last)),
        "nasc NASNet-A large, fuse()": (nasc_network("large").fuse(), images),
    }
    if args.compile:
        add_compiled(contenders, "nasc NASNet-A large, fuse()")
    medians = race(contenders, max(3, args.repeats // 3))
    report("large @331, batch 1", medians, "timm nasnetalarge, channels-last")


if __name__ == "__main__":
    main()
