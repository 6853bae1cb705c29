"""Tabular benchmarks: every distinct architecture of a space trained once at fixed settings, one JSON
line per result, and memory-light look-ups into such a table (docs/benchmarks.md has the format).

A table is built on the search's executors (warm local workers, or Ray), appending each result as
it finishes, flushed and fsynced: a killed build loses only the architectures in flight, and
`--resume` trains the rest. Architectures that hash alike (compiler/hashing.py: NAS-Bench-201's
isomorphism) are trained once; a look-up by any of them finds the one row.
"""

from __future__ import annotations

import functools
import itertools
import json
import os
import random
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from nasc.compiler.hashing import structural_hash
from nasc.compiler.nb201_format import TO_BENCHMARK, read_nb201
from nasc.fileio import atomic_write_text

FORMAT = "nasc-table-v1"
# What a row's hash and architecture string may hold (a table is untrusted: what it names is printed)
_HASH = re.compile(r"[0-9a-f]{64}\Z")
_ARCH = re.compile(r"[|+~a-z0-9_]{1,400}\Z")
# What a table keeps of each epoch (runtime/search/child.py records them)
EPOCH_FIELDS = ("train_loss", "train_accuracy", "val_accuracy", "test_accuracy", "seconds")
SPACES = ("nb201",)


class TableError(Exception):
    """A table that cannot be built or read as asked; the message says why, in one line."""


@dataclass(frozen=True)
class TableSettings:
    """What every architecture of a table is trained with (the table's fidelity)."""

    space: str = "nb201"
    dataset: str = "digits"
    epochs: int = 8
    cells_per_stage: int = 1  # N of the network each cell is trained in
    channels: int = 4  # its first stage's width C
    batch_size: int = 32
    seed: int = 0


@functools.cache
def space_architectures(space: str) -> tuple[str, ...]:
    """Every architecture string of a space, in nasc's enumeration order (built once per process)."""
    if space != "nb201":
        raise TableError(f"unknown space {space!r}; tables are built for: {', '.join(SPACES)}")
    ops = tuple(TO_BENCHMARK.values())
    return tuple(
        f"|{a}~0|+|{b}~0|{c}~1|+|{d}~0|{e}~1|{f}~2|" for a, b, c, d, e, f in itertools.product(ops, repeat=6)
    )


@functools.cache
def architecture_hashes(space: str) -> dict[str, str]:
    """Every architecture string of a space → its structural hash (computed once per process)."""
    return {arch: structural_hash(read_nb201(arch, name="a")) for arch in space_architectures(space)}


def distinct_architectures(space: str) -> dict[str, str]:
    """Each distinct architecture's hash → its first string in enumeration order."""
    distinct: dict[str, str] = {}
    for arch, digest in architecture_hashes(space).items():
        distinct.setdefault(digest, arch)
    return distinct


def _header(settings: TableSettings, architectures: int, distinct: int) -> dict:
    return {
        "format": FORMAT,
        "space": settings.space,
        "dataset": settings.dataset,
        "settings": asdict(settings),
        "architectures": architectures,
        "distinct": distinct,
    }


# -- building -----------------------------------------------------------------------------------------


def build_table(
    settings: TableSettings,
    path: str | os.PathLike[str],
    *,
    workers: int = 1,
    executor: str = "local",
    address: str | None = None,
    resume: bool = False,
    limit: int | None = None,
    report: Callable[[str], None] = print,
) -> dict:
    """Train the space's distinct architectures not yet in the table at `path` (in a seeded random
    order, so that a partial table is a uniform sample) and append each result."""
    from nasc.runtime.search.ledger import append_line

    path = Path(path)
    distinct = distinct_architectures(settings.space)
    header = _header(settings, len(space_architectures(settings.space)), len(distinct))
    done = _prepare(path, header, resume)
    order = list(distinct.items())
    random.Random(settings.seed).shuffle(order)
    pending = [(digest, arch) for digest, arch in order if digest not in done][: limit or None]
    report(
        f"{len(done):,} of {len(distinct):,} distinct architectures in {path}; training {len(pending):,} "
        f"({settings.epochs} epochs each, N = {settings.cells_per_stage}, C = {settings.channels}, "
        f"{settings.dataset}) on {workers} worker(s)"
    )
    pool = _executor(executor, workers, address)
    started, finished, failed = time.perf_counter(), 0, 0
    queue = list(enumerate(pending))
    try:
        while queue or pool.in_flight():
            while queue and pool.in_flight() < workers:
                step, (digest, arch) = queue.pop(0)
                pool.submit(_job(settings, step, digest, arch))
            for result in pool.wait(timeout=1.0):
                digest, arch = pending[result["step"]]
                row = _row(digest, arch, result)
                append_line(path, row)
                finished += 1
                failed += row.get("status") == "failed"
                report(_progress_line(row, finished, len(pending), time.perf_counter() - started))
    finally:
        pool.shutdown()
    return {
        "trained": finished,
        "failed": failed,
        "in_table": len(done) + finished,
        "distinct": len(distinct),
    }


def _prepare(path: Path, header: dict, resume: bool) -> set[str]:
    """The hashes the table holds results for (creating it with its header where new)."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(header) + "\n")
        return set()
    if not resume:
        raise TableError(f"{path} exists; continue it with --resume, or choose another --out")
    table = Table.load(path)
    if table.header.get("settings") != header["settings"]:
        raise TableError(
            f"{path} was built with {_describe(table.header.get('settings'))}, not "
            f"{_describe(header['settings'])}: resume it with its own settings"
        )
    with open(path, "rb+") as handle:  # a line cut short by a kill stays a lone bad line
        if handle.seek(0, os.SEEK_END):
            handle.seek(-1, os.SEEK_END)
            if handle.read(1) != b"\n":
                handle.write(b"\n")
    return set(table.index)  # a failed architecture is tried again


def _describe(settings: object) -> str:
    if not isinstance(settings, dict):
        return "unknown settings"
    return ", ".join(f"{key} {value}" for key, value in settings.items())


def _executor(name: str, workers: int, address: str | None):
    from nasc.runtime.search.executors import LocalExecutor, RayExecutor

    return RayExecutor(workers, address) if name == "ray" else LocalExecutor(workers)


def _job(settings: TableSettings, step: int, digest: str, arch: str):
    from nasc.compiler.printer import format_genotype
    from nasc.runtime.search.child import ChildJob

    text = format_genotype(read_nb201(arch, name="a"))
    return ChildJob(
        step=step,
        text=text,
        hash=digest,
        dataset=settings.dataset,
        data_dir=None,
        cells=settings.cells_per_stage,
        filters=settings.channels,
        epochs=settings.epochs,
        batch_size=settings.batch_size,
        seed=settings.seed,
        threads=1,
        record_epochs=True,
    )


def _row(digest: str, arch: str, result: dict) -> dict:
    if result.get("status") != "ok":
        return {"hash": digest, "arch": arch, "status": "failed", "reason": result.get("reason", "")}
    return {
        "hash": digest,
        "arch": arch,
        "params": result["params"],
        "macs": result["macs"],
        # one list per metric, a value per epoch: a compact line that loads fast
        "curves": {name: [round(epoch[name], 6) for epoch in result["epochs"]] for name in EPOCH_FIELDS},
    }


def _progress_line(row: dict, finished: int, total: int, elapsed: float) -> str:
    from nasc.runtime.progress import format_duration

    eta = elapsed / finished * (total - finished)
    what = f"test {row['curves']['test_accuracy'][-1]:.3f}" if "curves" in row else f"failed: {row['reason']}"
    return (
        f"[{finished}/{total}] {row['hash'][:8]} {what} · elapsed {format_duration(elapsed)} "
        f"· ETA {format_duration(eta)}"
    )


# -- look-ups -------------------------------------------------------------------------------------------


@dataclass
class Table:
    """A table in memory: one row per trained architecture, each metric an array [rows, epochs]."""

    header: dict
    hashes: list[str]
    archs: list[str]
    params: np.ndarray
    macs: np.ndarray
    metrics: dict[str, np.ndarray]
    index: dict[str, int]
    failed: set[str]
    problems: list[str]  # lines that were not rows: "line N: why"

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Table:
        path = Path(path)
        try:
            lines = path.read_bytes().split(b"\n")
        except OSError as error:
            raise TableError(f"cannot read {path}: {error.strerror or error}") from None
        header = _parse_header(path, lines[0] if lines else b"")
        epochs = int(header["settings"]["epochs"])
        rows: dict[str, tuple[dict, np.ndarray]] = {}  # one row per hash: the last kept
        failed, problems = set(), []
        for number, line in enumerate(lines[1:], start=2):
            if not line.strip():
                continue
            row, values, problem = _parse_row(line, epochs)
            if problem:
                problems.append(f"line {number}: {problem}")
            elif values is None:
                failed.add(row["hash"])
            else:
                rows[row["hash"]] = (row, values)
        stacked = np.zeros((len(rows), epochs, len(EPOCH_FIELDS)), np.float32)
        for position, (_, values) in enumerate(rows.values()):
            stacked[position] = values
        metrics = {name: stacked[:, :, field] for field, name in enumerate(EPOCH_FIELDS)}
        kept = [row for row, _ in rows.values()]
        return cls(
            header=header,
            hashes=[row["hash"] for row in kept],
            archs=[row["arch"] for row in kept],
            params=np.array([row["params"] for row in kept], dtype=np.int64),
            macs=np.array([row["macs"] for row in kept], dtype=np.int64),
            metrics=metrics,
            index={row["hash"]: position for position, row in enumerate(kept)},
            failed=failed - set(rows),
            problems=problems,
        )

    def __len__(self) -> int:
        return len(self.hashes)

    @property
    def epochs(self) -> int:
        return int(self.header["settings"]["epochs"])

    def position(self, architecture: str) -> int:
        """The row of an architecture string (any of its isomorphs), its index in the space's
        enumeration (`space_architectures`, 0 to 15,624 for nb201), or its structural hash (or a
        prefix of one, 8 digits or more); TableError where the table has none."""
        if architecture.isdigit() and len(architecture) < 8:
            strings = space_architectures(self.header["space"])
            if int(architecture) >= len(strings):
                raise TableError(f"index {architecture} is outside the space's 0 to {len(strings) - 1}")
            architecture = strings[int(architecture)]
        if architecture.startswith("|"):
            return self.row(structural_hash(read_nb201(architecture, name="a")), architecture)
        if architecture in self.index:
            return self.index[architecture]
        matches = [h for h in self.index if h.startswith(architecture)] if len(architecture) >= 8 else []
        return self.row(matches[0] if len(matches) == 1 else architecture, architecture)

    def row(self, digest: str, shown: str | None = None) -> int:
        """The row of a structural hash (`shown` names it in the error); TableError, saying how far
        the table is, where it has none."""
        if digest in self.index:
            return self.index[digest]
        distinct = self.header.get("distinct")
        trained = f"{len(self):,} of {distinct:,}" if isinstance(distinct, int) else f"{len(self):,}"
        raise TableError(
            f"the table has no row for {shown or digest} ({trained} trained): complete it with "
            "nasc bench build --resume"
        )

    def query(self, architecture: str, metric: str = "test_accuracy", epoch: int | None = None) -> float:
        """A metric of an architecture after `epoch` epochs (1-based; None: the last)."""
        return float(self.metric(metric, epoch)[self.position(architecture)])

    def metric(self, name: str, epoch: int | None = None) -> np.ndarray:
        """One metric of every row after `epoch` epochs (None: the last)."""
        if name not in self.metrics:
            raise TableError(f"unknown metric {name!r}; a table has {', '.join(self.metrics)}")
        epoch = self.epochs if epoch is None else epoch
        if not 1 <= epoch <= self.epochs:
            raise TableError(f"epoch {epoch} is outside the table's 1 to {self.epochs}")
        return self.metrics[name][:, epoch - 1]

    def training_seconds(self, epoch: int | None = None) -> np.ndarray:
        """Each row's training time up to `epoch` epochs: what a replay charges for it."""
        epoch = self.epochs if epoch is None else epoch
        return self.metrics["seconds"][:, :epoch].sum(axis=1)


def read_header(path: str | os.PathLike[str]) -> dict:
    """A table's header (its first line, checked), without reading its rows."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            line = handle.readline()
    except OSError as error:
        raise TableError(f"cannot read {path}: {error.strerror or error}") from None
    return _parse_header(path, line)


def _parse_header(path: Path, line: bytes) -> dict:
    try:
        header = json.loads(line)
    except ValueError:
        header = None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise TableError(f"{path} is not a nasc table (its first line is not a {FORMAT} header)")
    settings = header.get("settings")
    names = {f.name for f in fields(TableSettings)}
    if (
        not isinstance(settings, dict)
        or set(settings) != names
        or header.get("space") not in SPACES
        or settings.get("space") != header.get("space")
        or not isinstance(header.get("dataset"), str)
        or not re.match(r"[a-z0-9_]{1,40}\Z", header["dataset"])
        or settings.get("dataset") != header.get("dataset")
        or not all(isinstance(settings[key], int) for key in names - {"space", "dataset"})
        or settings["epochs"] < 1
    ):
        raise TableError(f"{path}: the header's settings are not a table's")
    return header


def _parse_row(line: bytes, epochs: int) -> tuple[dict, np.ndarray | None, str | None]:
    """A row and its epochs' metrics [epochs, fields], or why the line is not one (a kill cuts the
    last line short)."""
    try:
        row = json.loads(line)
    except ValueError:
        return {}, None, "not a whole JSON line (cut short?); skipped"
    if (
        not isinstance(row, dict)
        or not isinstance(row.get("hash"), str)
        or not _HASH.match(row["hash"])
        or not isinstance(row.get("arch"), str)
        or not _ARCH.match(row["arch"])
    ):
        return {}, None, "not a table row; skipped"
    if row.get("status") == "failed":
        return row, None, None
    wrong = f"a row without {epochs} epochs of {', '.join(EPOCH_FIELDS)}; skipped"
    curves = row.get("curves")
    if not isinstance(curves, dict) or not all(isinstance(row.get(key), int) for key in ("params", "macs")):
        return {}, None, wrong
    try:
        values = np.array([curves[name] for name in EPOCH_FIELDS], dtype=np.float64).T
    except (TypeError, ValueError, KeyError):
        return {}, None, wrong
    if values.shape != (epochs, len(EPOCH_FIELDS)) or not np.isfinite(values).all():
        return {}, None, wrong
    return row, values, None
