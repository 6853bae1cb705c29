"""A child's cost where it would be deployed: parameters, mult-adds, and latency measured in
onnxruntime (MnasNet's approach: time the real network on the target, do not guess from a proxy).

The deployment network is the child's cells in a network of a given size (`--deploy`): a preset
of the convention (its cells per stage, widths and image size), or `N@P` (N normal cells per
stage, about P penultimate filters: each child's first-stage width F0 is P over its own width per
filter, rounded, since a cell that concatenates more states is wider at the same F0), at
`--deploy-image-size` pixels. Latency: the network exported to ONNX, one onnxruntime session on
the CPU with its threads pinned, a few warm-up runs, then the median of `runs` timed runs at batch 1.
"""

from __future__ import annotations

import contextlib
import io
import statistics
import time
import warnings
from dataclasses import dataclass

from nasc.compiler import ir
from nasc.compiler.conventions import convention_of
from nasc.compiler.options import EmitOptions

DEFAULT_DEPLOY = "2@256"
DEFAULT_IMAGE_SIZE = 32  # for N@P, which names no image size
WARMUP_RUNS = 3


class DeploymentError(ValueError):
    """A --deploy value that names no network."""


@dataclass(frozen=True)
class Deployment:
    preset: str | None = None
    cells: int | None = None  # N of N@P
    penultimate: int | None = None  # P of N@P
    image_size: int | None = None
    num_classes: int = 10

    @classmethod
    def parse(cls, text: str, image_size: int | None = None, num_classes: int = 10) -> Deployment:
        cells, at, filters = text.partition("@")
        if at:
            if not (cells.isdigit() and filters.isdigit()) or int(cells) < 1 or int(filters) < 1:
                raise DeploymentError(f"--deploy {text!r} is not a preset or N@P, e.g. 2@256")
            return cls(None, int(cells), int(filters), image_size, num_classes)
        return cls(text, None, None, image_size, num_classes)

    def describe(self) -> str:
        network = self.preset or f"{self.cells}@{self.penultimate}"
        return f"{network} at {self.size()} px" if self.size() else network

    def size(self) -> int | None:
        return self.image_size or (None if self.preset else DEFAULT_IMAGE_SIZE)

    def options(self, genotype: ir.Genotype) -> EmitOptions:
        if self.preset:
            return EmitOptions(preset=self.preset, num_classes=self.num_classes)
        per_filter = convention_of(genotype).penultimate_per_filter(genotype)
        first = max(1, round(self.penultimate / per_filter))
        return EmitOptions(cells_per_stage=self.cells, first_filters=first, num_classes=self.num_classes)


@dataclass(frozen=True)
class Cost:
    params: int
    macs: int | None  # None where the convention has no static counter (DARTS)
    latency_ms: float
    latency_method: str


def count(genotype: ir.Genotype, deployment: Deployment, model=None) -> tuple[int, int | None]:
    """Parameters and mult-adds of the deployment network, counted from the IR (milliseconds)
    where the convention has a static counter; otherwise parameters of the built network (`model`,
    or built here) and no mult-adds."""
    convention = convention_of(genotype)
    try:
        _name, preset = convention.resolve_preset(genotype, deployment.options(genotype))
    except ValueError as error:
        raise DeploymentError(f"--deploy {deployment.describe()}: {error}") from None
    size = deployment.size() or preset.image_size
    stats = convention.count(genotype, preset, size, deployment.num_classes)
    if stats is not None:
        return stats.parameters, stats.mult_adds
    if model is None:
        from nasc.runtime.build import build_network

        model = build_network(genotype, deployment.options(genotype), image_size=deployment.size()).model
    return sum(p.numel() for p in model.parameters()), None


def measure(genotype: ir.Genotype, deployment: Deployment, runs: int = 20, threads: int = 1) -> Cost:
    """Build the deployment network, count it, export it and time it in onnxruntime."""
    import onnxruntime as ort
    import torch

    from nasc.runtime.build import BuildError, build_network

    options = deployment.options(genotype)
    try:
        built = build_network(genotype, options, image_size=deployment.size())
    except BuildError as error:
        raise DeploymentError(f"--deploy {deployment.describe()}: {error}") from None
    model = built.model.eval()
    params, macs = count(genotype, deployment, model)
    example = torch.zeros(1, 3, built.image_size, built.image_size)
    data, exporter = _export(model, example)
    session_options = ort.SessionOptions()
    session_options.intra_op_num_threads = session_options.inter_op_num_threads = threads
    session_options.log_severity_level = 3
    session = ort.InferenceSession(data, session_options, providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: example.numpy()}
    for _ in range(WARMUP_RUNS):
        session.run(None, feed)
    timings = []
    for _ in range(runs):
        began = time.perf_counter()
        session.run(None, feed)
        timings.append(time.perf_counter() - began)
    return Cost(
        params=params,
        macs=macs,
        latency_ms=1000 * statistics.median(timings),
        latency_method=f"onnxruntime cpu, {threads} thread(s), median of {runs}, {exporter} export",
    )


def _export(model, example) -> tuple[bytes, str]:
    """ONNX bytes of `model`: TorchScript's exporter (about a second for a proxy network), or the
    dynamo exporter `nasc export` uses (about ten) where TorchScript's graph does not load."""
    import onnxruntime as ort
    import torch

    quiet = contextlib.redirect_stdout(io.StringIO())
    with warnings.catch_warnings(), quiet:
        warnings.simplefilter("ignore")
        buffer = io.BytesIO()
        try:
            torch.onnx.export(model, (example,), buffer, dynamo=False, input_names=["images"])
            options = ort.SessionOptions()
            options.log_severity_level = 4
            ort.InferenceSession(buffer.getvalue(), options, providers=["CPUExecutionProvider"])
            return buffer.getvalue(), "torchscript"
        except Exception:  # a graph onnxruntime refuses: the exporter nasc export trusts
            program = torch.onnx.export(model, (example,), dynamo=True, optimize=True, verbose=False)
            return program.model_proto.SerializeToString(), "dynamo"
