"""Compiled NASNet-A vs the hand-written peers, side by side in one process (ratios, not absolutes).

    python bench/bench_torch.py [--repeats 20] [--skip-large] [--skip-memory] [--only TEXT]
    python bench/bench_torch.py --device cuda     # on a GPU: time, and allocated memory per case

- eager forward, batch 1 and 16, mobile @224: nasc vs pretrainedmodels nasnetamobile
- eager forward, batch 1, large @331: nasc vs timm nasnetalarge
- one training step (forward, backward, SGD), batch 8, mobile @224: nasc as `nasc train
  --channels-last` runs it against the peer as shipped, and against the peer made channels-last too
- peak resident memory of each of those, each in a fresh subprocess
- `nasc compile` in process (parse + check + lower + emit) for NASNet-A

Measurements alternate between the two models round by round, so drift hits both alike; each
figure is the median of the rounds. On CUDA the memory column is what the allocator holds at the
peak of three steps above what it held before them (torch.cuda.max_memory_allocated), in the same
process, after two warm-up steps of both models (cuDNN's autotuning workspaces, gradients and
momentum are not counted); the cases there are training steps at the batch sizes a GPU trains
with, float32 and bfloat16 autocast, each layout.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def build(which: str, preset: str, channels_last: bool = False):
    import torch

    warnings.filterwarnings("ignore")
    torch.manual_seed(0)
    if which == "nasc":
        import nasc
        from nasc.runtime.build import compile_module

        module = compile_module(nasc.load(ROOT / "genotypes" / "nasnet_a.cell"))
        model = module.create_model(preset)
        if channels_last:
            model.set_channels_last()  # converts the input at the stem itself
        return model
    if preset == "mobile":
        import pretrainedmodels

        model = pretrainedmodels.nasnetamobile(num_classes=1000, pretrained=None)
    else:
        import timm

        model = timm.create_model("nasnetalarge", pretrained=False)
    if channels_last:
        model.to(memory_format=torch.channels_last)
        model.channels_last = True  # task() converts the input
    return model


def task(model, kind: str, batch: int, size: int, device: str = "cpu"):
    import torch

    model.to(device)
    x = torch.randn(batch, 3, size, size, device=device)
    if getattr(model, "channels_last", False):
        x = x.contiguous(memory_format=torch.channels_last)
    if kind == "forward":
        model.eval()

        def step() -> None:
            with torch.no_grad():
                model(x)

        return step
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    target = torch.randint(0, 1000, (batch,), device=device)
    autocast = torch.autocast(device, dtype=torch.bfloat16, enabled=kind == "train-bf16")

    def train_step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with autocast:
            out = model(x)
            logits = out[0] if isinstance(out, tuple) else out
            loss = torch.nn.functional.cross_entropy(logits, target)
        loss.backward()
        optimizer.step()

    return train_step


CASES = [  # (name, preset, kind, batch, image size, {which: channels-last})
    ("mobile forward b1", "mobile", "forward", 1, 224, {}),
    ("mobile forward b16", "mobile", "forward", 16, 224, {}),
    ("mobile train step b8", "mobile", "train", 8, 224, {"nasc": True}),
    ("  both channels-last", "mobile", "train", 8, 224, {"nasc": True, "peer": True}),
    ("large forward b1", "large", "forward", 1, 331, {}),
]


CUDA_CASES = [
    ("mobile train step b8", "mobile", "train", 8, 224, {}),
    ("mobile train step b64", "mobile", "train", 64, 224, {}),
    ("  nasc channels-last", "mobile", "train", 64, 224, {"nasc": True}),
    ("  both channels-last", "mobile", "train", 64, 224, {"nasc": True, "peer": True}),
    ("mobile train b64 bf16", "mobile", "train-bf16", 64, 224, {}),
    ("  nasc channels-last", "mobile", "train-bf16", 64, 224, {"nasc": True}),
    ("  both channels-last", "mobile", "train-bf16", 64, 224, {"nasc": True, "peer": True}),
    ("large train step b16", "large", "train", 16, 331, {}),
    ("  both channels-last", "large", "train", 16, 331, {"nasc": True, "peer": True}),
]


def alternate(steps: dict, repeats: int) -> dict[str, float]:
    """Median seconds of each step, the steps taking turns round by round (drift hits all alike)."""
    samples: dict[str, list[float]] = {which: [] for which in steps}
    for _ in range(repeats):
        for which, step in steps.items():
            start = time.perf_counter()
            step()
            samples[which].append(time.perf_counter() - start)
    return {which: statistics.median(values) for which, values in samples.items()}


def cuda_case(
    preset: str, kind: str, batch: int, size: int, repeats: int, layout: dict[str, bool]
) -> tuple[dict[str, float], dict[str, float]]:
    """Median step time and peak allocated MiB above the models, alternating rounds, on CUDA."""
    import gc

    import torch

    def synchronized(step):
        def run() -> None:
            step()
            torch.cuda.synchronize()

        return run

    steps = {
        which: synchronized(task(build(which, preset, layout.get(which, False)), kind, batch, size, "cuda"))
        for which in ("nasc", "peer")
    }
    for step in steps.values():  # cuDNN's autotuning and the optimizer's state come first, for both
        step()
        step()
    memory = {}
    for which, step in steps.items():
        before = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        for _ in range(3):
            step()
        memory[which] = (torch.cuda.max_memory_allocated() - before) / 2**20
    times = alternate(steps, repeats)
    del steps
    gc.collect()
    torch.cuda.empty_cache()
    return times, memory


def time_case(
    preset: str, kind: str, batch: int, size: int, repeats: int, layout: dict[str, bool]
) -> dict[str, float]:
    steps = {
        which: task(build(which, preset, layout.get(which, False)), kind, batch, size)
        for which in ("nasc", "peer")
    }
    for step in steps.values():  # warm up: allocator, kernels, lazy init
        step()
        step()
    return alternate(steps, repeats)


def peak_memory(which: str, preset: str, kind: str, batch: int, size: int, channels_last: bool) -> float:
    """Memory (MiB) the task needs above the resident model: peak RSS while running it three times
    minus RSS before, in a fresh process that built the model (peak reset via /proc/self/clear_refs,
    so imports and the peers' heavier dependencies do not count)."""
    here = str(Path(__file__).parent)
    code = (
        f"import sys; sys.path.insert(0, {here!r}); import bench_torch as b\n"
        f"step = b.task(b.build({which!r}, {preset!r}, {channels_last}), {kind!r}, {batch}, {size})\n"
        "kib = lambda key: int(dict(l.split(':', 1) for l in open('/proc/self/status'))[key].split()[0])\n"
        "open('/proc/self/clear_refs', 'w').write('5')\n"
        "before = kib('VmRSS')\n"
        "for _ in range(3): step()\n"
        "print((kib('VmHWM') - before) / 1024)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def compile_time(repeats: int = 50) -> float:
    import nasc
    from nasc.compiler.emit import emit_torch

    text = (ROOT / "genotypes" / "nasnet_a.cell").read_text()
    emit_torch(nasc.parse(text))  # templates load once per process
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        emit_torch(nasc.parse(text, "nasnet_a.cell"))
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--skip-large", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--only", default="", help="Run the cases whose name contains this text.")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    args = parser.parse_args()
    import torch

    if args.device == "cuda":
        cuda_main(args)
        return

    results = {"torch": torch.__version__, "threads": torch.get_num_threads(), "cases": []}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; median of {args.repeats} rounds")
    print(f"{'case':24s} {'nasc ms':>9s} {'peer ms':>9s} {'ratio':>6s} {'nasc +MiB':>9s} {'peer +MiB':>9s}")
    for name, preset, kind, batch, size, layout in CASES:
        if (args.skip_large and preset == "large") or args.only not in name:
            continue
        repeats = max(3, args.repeats // 4) if preset == "large" or batch > 8 else args.repeats
        times = time_case(preset, kind, batch, size, repeats, layout)
        memory = (
            {}
            if args.skip_memory
            else {
                which: peak_memory(which, preset, kind, batch, size, layout.get(which, False))
                for which in ("nasc", "peer")
            }
        )
        ratio = times["nasc"] / times["peer"]
        results["cases"].append({"case": name, "seconds": times, "ratio": ratio, "peak_rss_mib": memory})
        mem = f"{memory['nasc']:9.0f} {memory['peer']:9.0f}" if memory else ""
        print(f"{name:24s} {1e3 * times['nasc']:9.1f} {1e3 * times['peer']:9.1f} {ratio:6.2f} {mem}")
    seconds = compile_time()
    results["compile_ms"] = 1e3 * seconds
    print(f"nasc compile (parse + check + lower + emit) of NASNet-A: {1e3 * seconds:.1f} ms")
    if args.json:
        print(json.dumps(results, indent=2))


def cuda_main(args) -> None:
    import torch

    torch.backends.cudnn.benchmark = True
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name()}; median of {args.repeats} rounds")
    columns = ("nasc ms", "peer ms", "ratio", "nasc MiB", "peer MiB", "ratio")
    print(f"{'case':24s} " + " ".join(f"{column:>9s}" for column in columns))
    for name, preset, kind, batch, size, layout in CUDA_CASES:
        if args.only not in name:
            continue
        times, memory = cuda_case(preset, kind, batch, size, args.repeats, layout)
        print(
            f"{name:24s} {1e3 * times['nasc']:9.1f} {1e3 * times['peer']:9.1f} "
            f"{times['nasc'] / times['peer']:9.2f} {memory['nasc']:9.0f} {memory['peer']:9.0f} "
            f"{memory['nasc'] / memory['peer']:9.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
