"""onnxruntime on nasc's export vs eager PyTorch of the same model, and vs onnxruntime on the
hand-written peer's export — side by side in one process, batch 1 (ratios, not absolutes).

    python bench/bench_onnx.py [--repeats 30] [--skip-large]

mobile @224: nasc vs pretrainedmodels nasnetamobile; large @331: nasc vs timm nasnetalarge.
Rounds alternate between the runners; each figure is the median. Each network's mult-adds per
second are also given as a share of this machine's peak: onnxruntime's own rate on a 2048x2048x2048
MatMul with the same threads (the best of its runs), measured in the same process.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

import nasc
from nasc.compiler.compilation import compile_genotype
from nasc.compiler.options import EmitOptions
from nasc.runtime.onnx_export import export_onnx
from nasc.runtime.onnx_runtime import run

ROOT = Path(__file__).resolve().parent.parent


def peer_model(preset: str) -> torch.nn.Module:
    if preset == "mobile":
        import pretrainedmodels

        return pretrainedmodels.nasnetamobile(num_classes=1000, pretrained=None).eval()
    import timm

    return timm.create_model("nasnetalarge", pretrained=False).eval()


def export_peer(model: torch.nn.Module, size: int, path: Path) -> None:
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        program = torch.onnx.export(model, (torch.randn(1, 3, size, size),), dynamo=True, optimize=True)
    program.save(str(path))


def cpu_session(path: Path):
    """A CPU session whose threads do not spin between runs: spinning would steal the cores from the
    eager PyTorch run that follows it in each round."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def peak_mult_adds_per_second(folder: Path, n: int = 2048, repeats: int = 10) -> float:
    """onnxruntime's best rate on one large MatMul: what this machine's cores can do at most."""
    import onnx
    from onnx import TensorProto, helper

    a = helper.make_tensor_value_info("a", TensorProto.FLOAT, [n, n])
    b = helper.make_tensor_value_info("b", TensorProto.FLOAT, [n, n])
    c = helper.make_tensor_value_info("c", TensorProto.FLOAT, [n, n])
    graph = helper.make_graph([helper.make_node("MatMul", ["a", "b"], ["c"])], "peak", [a, b], [c])
    path = folder / "peak.onnx"
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.save(model, str(path))
    session = cpu_session(path)
    rng = np.random.default_rng(0)
    inputs = {name: rng.standard_normal((n, n)).astype(np.float32) for name in ("a", "b")}
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        session.run(None, inputs)
        best = min(best, time.perf_counter() - start)
    return n**3 / best


def bench(preset: str, size: int, repeats: int, folder: Path, peak: float) -> None:
    genotype = nasc.load(ROOT / "genotypes" / "nasnet_a.cell")
    ours_path, peer_path = folder / f"nasc_{preset}.onnx", folder / f"peer_{preset}.onnx"
    report = export_onnx(genotype, EmitOptions(preset=preset), str(ours_path))
    from nasc.runtime.build import compile_module

    eager = compile_module(genotype, EmitOptions(preset=preset)).create_model(preset).eval()
    export_peer(peer_model(preset), size, peer_path)
    x = np.random.default_rng(0).standard_normal((1, 3, size, size)).astype(np.float32)
    x_torch = torch.from_numpy(x)
    ours, peer = cpu_session(ours_path), cpu_session(peer_path)

    def eager_step() -> None:
        with torch.no_grad():
            eager(x_torch)

    runners = {"nasc ort": lambda: run(ours, x), "peer ort": lambda: run(peer, x), "nasc eager": eager_step}
    for step in runners.values():
        step()
        step()
    samples: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(repeats):
        for name, step in runners.items():
            start = time.perf_counter()
            step()
            samples[name].append(time.perf_counter() - start)
    median = {name: statistics.median(values) for name, values in samples.items()}
    print(f"{preset} @{size}, batch 1 ({report.nodes} nodes, {report.size_bytes / 1e6:.0f} MB):")
    for name, seconds in median.items():
        print(f"  {name:11s} {1e3 * seconds:8.1f} ms")
    print(
        f"  nasc ort / peer ort = {median['nasc ort'] / median['peer ort']:.2f}; "
        f"eager / ort speed-up = {median['nasc eager'] / median['nasc ort']:.1f}x"
    )
    mult_adds = compile_genotype(genotype, EmitOptions(preset=preset)).count().mult_adds
    rate = mult_adds / median["nasc ort"]
    print(
        f"  {mult_adds / 1e9:.2f} G mult-adds in {1e3 * median['nasc ort']:.1f} ms: "
        f"{rate / 1e9:.1f} G/s, {100 * rate / peak:.0f}% of the machine's peak"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--skip-large", action="store_true")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    with tempfile.TemporaryDirectory() as folder:
        peak = peak_mult_adds_per_second(Path(folder))
        print(f"peak: {peak / 1e9:.1f} G mult-adds/s (onnxruntime, one 2048³ MatMul)")
        bench("mobile", 224, args.repeats, Path(folder), peak)
        if not args.skip_large:
            bench("large", 331, max(5, args.repeats // 5), Path(folder), peak)


if __name__ == "__main__":
    main()
