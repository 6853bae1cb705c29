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
import hashlib
import io
import json
import statistics
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from nasc.compiler import ir
from nasc.compiler.compilation import compile_genotype
from nasc.compiler.conventions import convention_of
from nasc.compiler.options import EmitOptions
from nasc.fileio import atomic_write_text

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
    macs: int
    latency_ms: float
    latency_method: str


def count(genotype: ir.Genotype, deployment: Deployment) -> tuple[int, int]:
    """Parameters and mult-adds of the deployment network, counted from the IR (milliseconds)."""
    try:
        compilation = compile_genotype(genotype, deployment.options(genotype))
    except ValueError as error:
        raise DeploymentError(f"--deploy {deployment.describe()}: {error}") from None
    stats = compilation.count(deployment.size(), deployment.num_classes)
    return stats.parameters, stats.mult_adds


def measure(genotype: ir.Genotype, deployment: Deployment, runs: int = 20, threads: int = 1) -> Cost:
    """Build the deployment network, count it, export it and time it in onnxruntime."""
    import torch

    from nasc.runtime.build import BuildError, build_network

    options = deployment.options(genotype)
    try:
        built = build_network(genotype, options, image_size=deployment.size())
    except BuildError as error:
        raise DeploymentError(f"--deploy {deployment.describe()}: {error}") from None
    model = built.model.eval()
    params, macs = count(genotype, deployment)
    example = torch.zeros(1, 3, built.image_size, built.image_size)
    session, exporter = _session(model, example, threads)
    return Cost(
        params=params,
        macs=macs,
        latency_ms=_median_ms(session, example, runs),
        latency_method=f"onnxruntime cpu, {threads} thread(s), median of {runs}, {exporter} export",
    )


def _median_ms(session, example, runs: int) -> float:
    """The median latency of a session at `example`, after a few warm-up runs."""
    feed = {session.get_inputs()[0].name: example.numpy()}
    for _ in range(WARMUP_RUNS):
        session.run(None, feed)
    timings = []
    for _ in range(runs):
        began = time.perf_counter()
        session.run(None, feed)
        timings.append(time.perf_counter() - began)
    return 1000 * statistics.median(timings)


class LatencyTable:
    """FBNet's latency lookup table (Wu et al. 2019), built as the search goes: each module of each
    cell — an op with its channels, stride and input size, or an adapter — is timed once on its
    own in onnxruntime, and a network's latency is the sum over its cells' modules. Entries are
    keyed by the module's configuration (its repr) and input shape and kept in a JSON file that
    every worker reads and extends, so after the first children a child costs a lookup, not an
    export. The sum leaves out the stem, the classifier and the element-wise glue between modules
    (ReLU, add, concat), and counts each module's own session overhead: it is not the network's
    measured latency, but it ranks children on one scale."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path else None
        self.entries: dict[str, dict] = self._read()

    def estimate(
        self, genotype: ir.Genotype, deployment: Deployment, runs: int = 20, threads: int = 1
    ) -> Cost:
        import torch

        from nasc.runtime.build import build_network

        built = build_network(genotype, deployment.options(genotype), image_size=deployment.size())
        model = built.model.eval()
        modules = _cell_modules(model)
        shapes: dict[str, tuple[int, ...]] = {}

        def recorder(name: str):
            def record(_module, args) -> None:  # None: the call's arguments stay as they are
                shapes.setdefault(name, tuple(args[0].shape))

            return record

        hooks = [module.register_forward_pre_hook(recorder(name)) for name, module in modules.items()]
        with torch.no_grad():
            model(torch.zeros(1, 3, built.image_size, built.image_size))
        for hook in hooks:
            hook.remove()
        # built but not on this network's path (none today): not counted
        timed = {name: module for name, module in modules.items() if name in shapes}
        total = sum(self.module_ms(timed, shapes, runs, threads).values())
        params, macs = count(genotype, deployment)
        return Cost(
            params=params,
            macs=macs,
            latency_ms=total,
            latency_method=f"lookup table: the sum over the cells' {len(shapes)} modules, each timed "
            f"alone in onnxruntime cpu, {threads} thread(s), median of {runs}",
        )

    def module_ms(
        self, modules: dict[str, object], shapes: dict[str, tuple[int, ...]], runs: int = 20, threads: int = 1
    ) -> dict[str, float]:
        """Each module's latency at its input shape: from the table, or timed alone in onnxruntime
        and added to it (the file saved once, after the new entries)."""
        import torch

        latencies, added = {}, 0
        for name, module in modules.items():
            shape = shapes[name]
            key = hashlib.sha256(f"{module!r}|{shape}".encode()).hexdigest()[:24]
            if key not in self.entries:
                example = torch.zeros(shape)
                session, _ = _session(module, example, threads)
                self.entries[key] = {"module": type(module).__name__, "input": list(shape)}
                self.entries[key]["ms"] = _median_ms(session, example, runs)
                added += 1
            latencies[name] = self.entries[key]["ms"]
        if added:
            self._save()
        return latencies

    def _read(self) -> dict[str, dict]:
        """The file's entries that have the shape this table writes (it lives in a search directory,
        which may not be the user's own)."""
        if self.path is None or not self.path.is_file():
            return {}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (ValueError, OSError):
            return {}
        if not isinstance(data, dict):
            return {}
        return {
            key: entry
            for key, entry in data.items()
            if isinstance(entry, dict) and isinstance(entry.get("ms"), int | float) and entry["ms"] >= 0
        }

    def _save(self) -> None:
        """Merged, under a file lock, with what other workers wrote since this one read the file:
        concurrent workers never lose each other's entries."""
        if self.path is None:
            return
        from filelock import FileLock

        with FileLock(f"{self.path}.lock"):
            self.entries = {**self._read(), **self.entries}
            atomic_write_text(self.path, json.dumps(self.entries, indent=1, sort_keys=True) + "\n")


def _cell_modules(model) -> dict[str, object]:
    """Every module that is a direct attribute of a cell: its ops and adapters (the emitted code has
    one attribute per op), without DropPath, which costs nothing at inference."""
    found = {}
    for cell_name, cell in model.named_children():
        if not any(base.__name__ == "Cell" for base in type(cell).__mro__):
            continue
        for name, module in cell.named_children():
            if type(module).__name__ != "DropPath":
                found[f"{cell_name}.{name}"] = module
    return found


def _session(model, example, threads: int):
    """A CPU onnxruntime session of `model` with its threads pinned, and the exporter that made it:
    TorchScript's (about a second for a proxy network), or the dynamo exporter `nasc export` uses
    (about ten) where onnxruntime refuses TorchScript's graph."""
    import onnxruntime as ort
    import torch

    from nasc.runtime.onnx_export import DEFAULT_OPSET  # what `nasc export` deploys is what is timed

    def load(data: bytes):
        options = ort.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = threads
        options.log_severity_level = 4  # a refused graph is an exception, handled below
        return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])

    quiet = contextlib.redirect_stdout(io.StringIO())
    with warnings.catch_warnings(), quiet:
        warnings.simplefilter("ignore")
        buffer = io.BytesIO()
        try:
            torch.onnx.export(
                model, (example,), buffer, dynamo=False, input_names=["images"], opset_version=DEFAULT_OPSET
            )
            return load(buffer.getvalue()), "torchscript"
        except Exception:  # a graph onnxruntime refuses: the exporter nasc export trusts
            program = torch.onnx.export(
                model, (example,), dynamo=True, optimize=True, verbose=False, opset_version=DEFAULT_OPSET
            )
            return load(program.model_proto.SerializeToString()), "dynamo"
