"""onnxruntime on nasc's export vs onnxruntime on the hand-written peer's export, and vs eager
PyTorch of the same model — batch 1, ratios, each contender timed alone.

    python bench/bench_onnx.py [--repeats 30] [--rounds 3] [--skip-large|--skip-mobile] [--profile]

mobile @224: nasc vs pretrainedmodels nasnetamobile; large @331: nasc vs timm nasnetalarge; and
nasc's int8 export (`--int8 --calibrate digits`) against its float one. The peer
is exported twice: at torch.onnx's default opset (what a user exporting it gets) and at nasc's (18),
so that nasc is compared with the peer's best and not with an opset.

Each contender runs in a process of its own, one after another, so nothing else runs or spins beside
it: an onnxruntime session timed in the process that has just run eager PyTorch loses cores to
torch's worker threads, still spinning (1.08-1.10 instead of 0.95 on a 2-core machine). A round
times every contender once (warm-up, then the median of `--repeats` runs); the figure is the median
over `--rounds` rounds. The machine's peak — onnxruntime's best rate on a 2048³ MatMul, in a process
of its own — is printed first, and each network's mult-adds per second as a share of it, so a
figure from one machine is not read as another's. `--profile` adds onnxruntime's per-op profile of
nasc's export, its int8 export and the peer's at opset 18: the time by op type after onnxruntime's
graph optimizations, convolutions by kind (depthwise, 1x1, k×k).
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
PEER_DEFAULT, PEER_SAME = "peer ort", "peer ort @18"  # the peer at torch.onnx's opset, and at nasc's
INT8 = "nasc ort int8"


# -- in a process of its own ----------------------------------------------------------------------


def cpu_session(path: Path, profile: bool = False, optimized: Path | None = None):
    """A CPU session; with `profile`, onnxruntime's profiler on; with `optimized`, the graph after
    onnxruntime's optimizations written there."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if profile:
        options.enable_profiling = True
        options.profile_file_prefix = str(path.with_suffix(""))
    if optimized is not None:
        options.optimized_model_filepath = str(optimized)
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
    """Milliseconds a run by op type, from onnxruntime's profiler (after its graph optimizations);
    convolutions by kind too: depthwise (`Conv:dw`), 1x1 (`Conv:1x1`), or their kernel size."""
    import onnx

    optimized = Path(path).with_suffix(".optimized.onnx")
    session = cpu_session(Path(path), profile=True, optimized=optimized)
    kinds = _convolution_kinds(onnx.load(str(optimized)))
    optimized.unlink()
    x = np.random.default_rng(0).standard_normal((1, 3, size, size)).astype(np.float32)
    feed = {session.get_inputs()[0].name: x}
    for _ in range(repeats):
        session.run(None, feed)
    trace_path = Path(session.end_profiling())
    trace = json.loads(trace_path.read_text())
    trace_path.unlink()
    by_type: dict[str, float] = {}
    for event in trace:
        name = event.get("name", "")
        if event.get("cat") == "Node" and name.endswith("_kernel_time"):
            kind = event["args"]["op_name"]
            node = name.removesuffix("_kernel_time")
            kind = f"{kind}:{kinds[node]}" if node in kinds else kind
            by_type[kind] = by_type.get(kind, 0.0) + event["dur"] / 1e3 / repeats
    return by_type


def _convolution_kinds(model) -> dict[str, str]:
    """Each convolution node of an optimized graph (float or int8): depthwise, 1x1, or k×k."""
    shapes = {tensor.name: list(tensor.dims) for tensor in model.graph.initializer}
    kinds = {}
    for node in model.graph.node:
        if not node.op_type.endswith("Conv"):
            continue
        group = next((a.i for a in node.attribute if a.name == "group"), 1)
        weight = shapes.get(node.input[3] if node.op_type.startswith("QLinear") else node.input[1], [])
        if group > 1:
            kinds[node.name] = "dw"
        elif len(weight) == 4:
            kinds[node.name] = "1x1" if weight[2:] == [1, 1] else f"{weight[2]}x{weight[3]}"
    return kinds


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


def peer_network(preset: str):
    if preset == "mobile":
        import pretrainedmodels

        return pretrainedmodels.nasnetamobile(num_classes=1000, pretrained=None).eval()
    import timm

    return timm.create_model("nasnetalarge", pretrained=False).eval()


def export_all(preset: str, size: int, folder: Path) -> tuple[dict[str, Path], int]:
    """nasc's export (its default opset), and the peer's twice: at torch.onnx's default opset, as a
    user exporting it would get, and at nasc's opset, so that the opset alone is not what is measured."""
    import contextlib
    import io
    import warnings

    import torch

    import nasc
    from nasc.compiler.options import EmitOptions
    from nasc.runtime.onnx_export import DEFAULT_OPSET, export_onnx
    from nasc.runtime.onnx_quantize import Int8Request

    paths = {"nasc ort": folder / f"nasc_{preset}.onnx", INT8: folder / f"nasc_{preset}_int8.onnx"}
    nodes = export_onnx(nasc.load(CELL), EmitOptions(preset=preset), str(paths["nasc ort"])).nodes
    # int8 as `nasc export --int8 --calibrate digits` makes it; random weights, so its top-1 is moot
    calibration = Int8Request("digits", calibration_images=64, eval_images=20, max_top1_drop=100.0)
    export_onnx(nasc.load(CELL), EmitOptions(preset=preset), str(paths[INT8]), int8=calibration)
    peer = peer_network(preset)
    for name, opset in ((PEER_DEFAULT, None), (PEER_SAME, DEFAULT_OPSET)):
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), torch.no_grad():
            warnings.simplefilter("ignore")
            example = (torch.randn(1, 3, size, size),)
            program = torch.onnx.export(peer, example, dynamo=True, optimize=True, opset_version=opset)
        paths[name] = folder / f"peer_{preset}_{opset}.onnx"
        program.save(str(paths[name]))
    return paths, nodes


def bench(
    preset: str, size: int, repeats: int, rounds: int, folder: Path, peak: float, profile: bool
) -> None:
    import nasc
    from nasc.compiler.compilation import compile_genotype
    from nasc.compiler.options import EmitOptions

    paths, nodes = export_all(preset, size, folder)
    contenders = {name: ("onnx", path, size, repeats) for name, path in paths.items()}
    contenders["nasc eager"] = ("eager", preset, size, repeats)
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, (kind, *args) in contenders.items():
            samples[name].append(alone(kind, *args))
    median = {name: statistics.median(values) for name, values in samples.items()}
    print(f"{preset} @{size}, batch 1 (nasc's export: {nodes} nodes), medians of {rounds} rounds:")
    for name, seconds in median.items():
        spread = f"{1e3 * min(samples[name]):.1f}-{1e3 * max(samples[name]):.1f}"
        print(f"  {name:13s} {1e3 * seconds:8.1f} ms  (rounds {spread})")
    ours = median["nasc ort"]
    best = {name: min(values) for name, values in samples.items()}  # noise only ever slows a round
    print(
        f"  nasc ort / {PEER_DEFAULT} = {ours / median[PEER_DEFAULT]:.2f} "
        f"(best rounds {best['nasc ort'] / best[PEER_DEFAULT]:.2f}); "
        f"nasc ort / {PEER_SAME} = {ours / median[PEER_SAME]:.2f} "
        f"(best rounds {best['nasc ort'] / best[PEER_SAME]:.2f}); "
        f"nasc eager / nasc ort = {median['nasc eager'] / ours:.2f}; "
        f"int8 speed-up over float = {ours / median[INT8]:.2f}x"
    )
    mult_adds = compile_genotype(nasc.load(CELL), EmitOptions(preset=preset)).count().mult_adds
    rate = mult_adds / ours
    print(
        f"  {mult_adds / 1e9:.2f} G mult-adds in {1e3 * ours:.1f} ms: "
        f"{rate / 1e9:.1f} G/s, {100 * rate / peak:.0f}% of the machine's peak"
    )
    if profile:
        for name in ("nasc ort", INT8, PEER_SAME):
            by_type = alone("profile", paths[name], size)
            total = sum(by_type.values())
            top = sorted(by_type.items(), key=lambda item: -item[1])[:12]
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
    parser.add_argument("--skip-mobile", action="store_true")
    parser.add_argument("--profile", action="store_true", help="onnxruntime's time by op type, both exports")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        peak = alone("peak", folder)
        print(f"machine peak: {peak / 1e9:.1f} G mult-adds/s (onnxruntime, one 2048³ MatMul, alone)")
        if not args.skip_mobile:
            bench("mobile", 224, args.repeats, args.rounds, Path(folder), peak, args.profile)
        if not args.skip_large:
            bench("large", 331, max(5, args.repeats // 5), args.rounds, Path(folder), peak, args.profile)


if __name__ == "__main__":
    main()
