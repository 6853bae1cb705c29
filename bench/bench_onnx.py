"""onnxruntime on nasc's export vs onnxruntime on the hand-written peer's export, and vs eager
PyTorch of the same model — batch 1, ratios, each contender timed alone.

    python bench/bench_onnx.py [--repeats 30] [--rounds 3] [--skip-large] [--profile]

mobile @224: nasc vs pretrainedmodels nasnetamobile; large @331: nasc vs timm nasnetalarge.

Each contender runs in a process of its own, one after another, so nothing else runs or spins beside
it: an onnxruntime session timed in the process that has just run eager PyTorch loses cores to
torch's worker threads, still spinning (1.08-1.10 instead of 0.95 on a 2-core machine). A round
times every contender once (warm-up, then the median of `--repeats` runs); the figure is the median
over `--rounds` rounds. The machine's peak — onnxruntime's best rate on a 2048³ MatMul, in a process
of its own — is printed first, and each network's mult-adds per second as a share of it, so a
figure from one machine is not read as another's. `--profile` adds onnxruntime's per-op profile of
both exports: the time by op type after onnxruntime's graph optimizations.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
CELL = ROOT / "genotypes" / "nasnet_a.cell"


# -- in a process of its own ----------------------------------------------------------------------


def cpu_session(path: Path, profile: bool = False):
    import onnxruntime as ort

    options = ort.SessionOptions()
    if profile:
        options.enable_profiling = True
        options.profile_file_prefix = str(path.with_suffix(""))
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def time_onnx(path: str, size: int, repeats: int) -> float:
    session = cpu_session(Path(path))
    x = np.random.default_rng(0).standard_normal((1, 3, size, size)).astype(np.float32)
    feed = {session.get_inputs()[0].name: x}
    return _median_seconds(lambda: session.run(None, feed), repeats)


def time_eager(preset: str, size: int, repeats: int) -> float:
    import torch

    import nasc
    from nasc.compiler.options import EmitOptions
    from nasc.runtime.build import compile_module

    model = compile_module(nasc.load(CELL), EmitOptions(preset=preset)).create_model(preset).eval()
    x = torch.from_numpy(np.random.default_rng(0).standard_normal((1, 3, size, size)).astype(np.float32))

    def step() -> None:
        with torch.no_grad():
            model(x)

    return _median_seconds(step, repeats)


def time_peak(folder: str, n: int = 2048, repeats: int = 10) -> float:
    """onnxruntime's best rate on one large MatMul: what this machine's cores can do at most."""
    import onnx
    from onnx import TensorProto, helper

    values = [helper.make_tensor_value_info(name, TensorProto.FLOAT, [n, n]) for name in "abc"]
    graph = helper.make_graph([helper.make_node("MatMul", ["a", "b"], ["c"])], "peak", values[:2], values[2:])
    path = Path(folder) / "peak.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(path))
    session = cpu_session(path)
    rng = np.random.default_rng(0)
    inputs = {name: rng.standard_normal((n, n)).astype(np.float32) for name in ("a", "b")}
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        session.run(None, inputs)
        best = min(best, time.perf_counter() - start)
    return n**3 / best


def profile_onnx(path: str, size: int, repeats: int = 10) -> dict[str, float]:
    """Milliseconds a run by op type, from onnxruntime's profiler (after its graph optimizations)."""
    session = cpu_session(Path(path), profile=True)
    x = np.random.default_rng(0).standard_normal((1, 3, size, size)).astype(np.float32)
    feed = {session.get_inputs()[0].name: x}
    for _ in range(repeats):
        session.run(None, feed)
    trace_path = Path(session.end_profiling())
    trace = json.loads(trace_path.read_text())
    trace_path.unlink()
    by_type: dict[str, float] = {}
    for event in trace:
        if event.get("cat") == "Node" and event.get("name", "").endswith("_kernel_time"):
            kind = event["args"]["op_name"]
            by_type[kind] = by_type.get(kind, 0.0) + event["dur"] / 1e3 / repeats
    return by_type


def _median_seconds(step, repeats: int) -> float:
    step()
    step()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


CHILD = {"onnx": time_onnx, "eager": time_eager, "peak": time_peak, "profile": profile_onnx}


def alone(kind: str, *args: object) -> object:
    """Run one measurement in a fresh process and return what it found."""
    command = [sys.executable, __file__, "--child", kind, json.dumps([str(a) for a in args])]
    found = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(found.stdout.strip().splitlines()[-1])


def child(kind: str, arguments: str) -> None:
    args = [int(a) if a.isdigit() else a for a in json.loads(arguments)]
    print(json.dumps(CHILD[kind](*args)))


# -- the comparison --------------------------------------------------------------------------------


def export_both(preset: str, size: int, folder: Path) -> tuple[Path, Path, int]:
    import contextlib
    import io
    import warnings

    import torch

    import nasc
    from nasc.compiler.options import EmitOptions
    from nasc.runtime.onnx_export import export_onnx

    ours, peer_path = folder / f"nasc_{preset}.onnx", folder / f"peer_{preset}.onnx"
    nodes = export_onnx(nasc.load(CELL), EmitOptions(preset=preset), str(ours)).nodes
    if preset == "mobile":
        import pretrainedmodels

        peer = pretrainedmodels.nasnetamobile(num_classes=1000, pretrained=None).eval()
    else:
        import timm

        peer = timm.create_model("nasnetalarge", pretrained=False).eval()
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        program = torch.onnx.export(peer, (torch.randn(1, 3, size, size),), dynamo=True, optimize=True)
    program.save(str(peer_path))
    return ours, peer_path, nodes


def bench(
    preset: str, size: int, repeats: int, rounds: int, folder: Path, peak: float, profile: bool
) -> None:
    import nasc
    from nasc.compiler.compilation import compile_genotype
    from nasc.compiler.options import EmitOptions

    ours, peer, nodes = export_both(preset, size, folder)
    contenders = {
        "nasc ort": ("onnx", ours, size, repeats),
        "peer ort": ("onnx", peer, size, repeats),
        "nasc eager": ("eager", preset, size, repeats),
    }
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, (kind, *args) in contenders.items():
            samples[name].append(alone(kind, *args))
    median = {name: statistics.median(values) for name, values in samples.items()}
    print(f"{preset} @{size}, batch 1 (nasc's export: {nodes} nodes), medians of {rounds} rounds:")
    for name, seconds in median.items():
        spread = f"{1e3 * min(samples[name]):.1f}-{1e3 * max(samples[name]):.1f}"
        print(f"  {name:11s} {1e3 * seconds:8.1f} ms  (rounds {spread})")
    print(
        f"  nasc ort / peer ort = {median['nasc ort'] / median['peer ort']:.2f}; "
        f"eager / ort = {median['nasc eager'] / median['nasc ort']:.2f}"
    )
    mult_adds = compile_genotype(nasc.load(CELL), EmitOptions(preset=preset)).count().mult_adds
    rate = mult_adds / median["nasc ort"]
    print(
        f"  {mult_adds / 1e9:.2f} G mult-adds in {1e3 * median['nasc ort']:.1f} ms: "
        f"{rate / 1e9:.1f} G/s, {100 * rate / peak:.0f}% of the machine's peak"
    )
    if profile:
        for name, path in (("nasc", ours), ("peer", peer)):
            by_type = alone("profile", path, size)
            total = sum(by_type.values())
            top = sorted(by_type.items(), key=lambda item: -item[1])[:10]
            print(
                f"  {name} profile, {total:.1f} ms of kernels a run: "
                + ", ".join(f"{kind} {ms:.1f}" for kind, ms in top)
            )


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip-large", action="store_true")
    parser.add_argument("--profile", action="store_true", help="onnxruntime's time by op type, both exports")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        peak = alone("peak", folder)
        print(f"machine peak: {peak / 1e9:.1f} G mult-adds/s (onnxruntime, one 2048³ MatMul, alone)")
        bench("mobile", 224, args.repeats, args.rounds, Path(folder), peak, args.profile)
        if not args.skip_large:
            bench("large", 331, max(5, args.repeats // 5), args.rounds, Path(folder), peak, args.profile)


if __name__ == "__main__":
    main()
