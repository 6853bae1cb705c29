"""The supernet's search step against the reference's, side by side: quark0/darts model_search.py's
Network(C = 16, 10 classes, 8 layers) re-typed (tests/darts_search_reference.py) and nasc's
compile of spaces/darts.space, batch 32 at 32 px, 2 CPU threads, a first-order DARTS step (an
architecture step on one batch, then a weight step on another). Each contender runs in its own
process, alone (nothing else computes or spins beside it), in alternating rounds; the median step
time and the peak resident memory the steps add over the built network (Linux's VmHWM, reset after
setup) are reported with their ratios. `nasc-cl` is nasc's supernet in channels-last memory
(what `nasc search` runs; `nasc` is `--no-channels-last`), `nasc-pc4` its edges on a quarter of the channels
(`--partial-channels 4`, PC-DARTS).

    python bench/bench_oneshot.py [--steps 5] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def one(contender: str, steps: int, batch: int) -> dict:
    """Run in a child process: build the contender, take `steps` steps, report time and memory."""
    import torch

    torch.set_num_threads(2)
    torch.manual_seed(0)
    sys.path.insert(0, str(ROOT))
    if contender == "reference":
        from tests.darts_search_reference import Network

        net = Network(16, 10, 8, torch.nn.CrossEntropyLoss())
        alphas = net.arch_parameters()
        weights = list(net.parameters())
    else:
        from nasc.compiler.api import load_space
        from nasc.compiler.compilation import compile_space
        from nasc.compiler.options import EmitOptions
        from nasc.runtime.build import import_source

        options = EmitOptions(partial_channels=4 if contender == "nasc-pc4" else 1)
        compilation = compile_space(load_space(ROOT / "spaces" / "darts.space"), options)
        net = import_source(compilation.emit()).create_model(compilation.preset_name)
        net.set_channels_last(contender == "nasc-cl")
        alphas, weights = net.arch_parameters(), net.weights()
    w_opt = torch.optim.SGD(weights, 0.025, momentum=0.9, weight_decay=3e-4)
    a_opt = torch.optim.Adam(alphas, 3e-4, betas=(0.5, 0.999), weight_decay=1e-3)
    data = [(torch.randn(batch, 3, 32, 32), torch.randint(0, 10, (batch,))) for _ in range(2)]
    loss = torch.nn.functional.cross_entropy

    def step() -> None:
        (x, y), (xv, yv) = data
        a_opt.zero_grad()
        loss(net(xv), yv).backward()
        a_opt.step()
        w_opt.zero_grad()
        loss(net(x), y).backward()
        torch.nn.utils.clip_grad_norm_(weights, 5.0)
        w_opt.step()

    baseline = _status("VmRSS")  # the network, its optimizers and the data: no activation yet
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
    step()  # warm: allocator, kernels (its activations count in the peak)
    times = []
    for _ in range(steps):
        started = time.perf_counter()
        step()
        times.append(time.perf_counter() - started)
    return {"seconds": statistics.median(times), "peak_bytes": _status("VmHWM") - baseline}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--one", choices=["reference", "nasc", "nasc-cl", "nasc-pc4"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args.steps, args.batch)))
        return
    results: dict[str, list[dict]] = {"reference": [], "nasc": [], "nasc-cl": [], "nasc-pc4": []}
    for _ in range(args.rounds):
        for contender in results:
            argv = [
                sys.executable,
                __file__,
                "--one",
                contender,
                "--steps",
                str(args.steps),
                "--batch",
                str(args.batch),
            ]
            out = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
            results[contender].append(json.loads(out.strip().splitlines()[-1]))
    summary = {
        name: {
            "seconds": statistics.median(r["seconds"] for r in rows),
            "peak_mib": statistics.median(r["peak_bytes"] for r in rows) / 2**20,
        }
        for name, rows in results.items()
    }
    ref = summary["reference"]
    print(f"first-order DARTS step, C = 16, 8 cells, batch {args.batch} at 32 px, 2 threads")
    for name, row in summary.items():
        print(f"  {name:9} {row['seconds'] * 1000:8.0f} ms/step   peak +{row['peak_mib']:7.0f} MiB")
    for name in ("nasc", "nasc-cl", "nasc-pc4"):
        ours = summary[name]
        print(
            f"  {name} / reference: time {ours['seconds'] / ref['seconds']:.2f}×, "
            f"memory {ours['peak_mib'] / ref['peak_mib']:.2f}×"
        )


if __name__ == "__main__":
    main()
