from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from filelock import FileLock

ROOT = Path(__file__).resolve().parent.parent
GENOTYPES = ROOT / "genotypes"
GOLDEN = Path(__file__).resolve().parent / "golden"


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist, each worker gets its own share of the CPUs (and the processes it starts
    inherit it): torch's default of a thread per core, in every worker and every search child at
    once, oversubscribes the machine, and oneDNN's spinning threads then slow a 2-core run far below
    one worker's pace."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if workers < 2 or not worker.startswith("gw") or not hasattr(os, "sched_setaffinity"):
        return
    cpus, index = sorted(os.sched_getaffinity(0)), int(worker[2:])
    share = cpus[index::workers] if workers <= len(cpus) else [cpus[index % len(cpus)]]
    os.sched_setaffinity(0, share)
    import torch

    torch.set_num_threads(len(share))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist, the tests marked slow first in each worker's share: work stealing hands
    each worker a contiguous slice of the collection and steals from its end, so slow tests placed
    there start at once on every worker instead of one worker finishing the run alone on them."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers < 2:
        return
    slow = [item for item in items if item.get_closest_marker("slow")]
    fast = iter([item for item in items if not item.get_closest_marker("slow")])
    ordered, remaining = [], len(items)
    for index in range(workers):  # the shares xdist's first distribution makes
        share = remaining // (workers - index)
        remaining -= share
        mine = slow[index::workers]
        ordered += mine + [next(fast) for _ in range(max(0, share - len(mine)))]
    ordered += list(fast)
    items[:] = ordered


@pytest.fixture(scope="session")
def nasnet_a_text() -> str:
    return (GENOTYPES / "nasnet_a.cell").read_text()


def cell_text(normal_body: str, *, reduction_body: str | None = None, header: str = "genotype t") -> str:
    """A complete genotype around one normal-cell body (lines indented by the caller or not)."""
    reduction_body = reduction_body or "h2 = add(identity(h0), identity(h1))\nreturn concat(h2)"
    return f"{header}\nnormal(h0, h1) {{\n{normal_body}\n}}\nreduction(h0, h1) {{\n{reduction_body}\n}}\n"


def built_once(tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], None]) -> Path:
    """A folder that `build` fills once per test run, by whichever pytest-xdist worker asks first
    (under a lock; the others wait, then read it): a module or session fixture is otherwise set up
    again on every worker that runs one of its tests, and work stealing splits modules."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base  # the run's, not a worker's
    folder, done = shared / name, shared / f"{name}.done"
    with FileLock(str(shared / f"{name}.lock")):
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            build(folder)
            done.touch()
    return folder


# `nasc train`'s smallest real run: NASNet-A, N = 1, P = 96, three epochs of digits, 32 a batch.
DIGITS_RUN = {"dataset": "digits", "scale": (1, 96), "epochs": 3, "batch_size": 32, "quiet": True}


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder of that run, trained once for every test that reads a trained network. What
    `train` returned is kept beside it (DIGITS_RETURNED), so the folder holds only the run's files."""

    def build(folder: Path) -> None:
        import dataclasses
        import json

        import nasc
        from nasc.runtime.train import TrainConfig, train

        result = train(nasc.load(GENOTYPES / "nasnet_a.cell"), TrainConfig(out=str(folder), **DIGITS_RUN))
        returned = {k: v for k, v in dataclasses.asdict(result).items() if k != "history"}
        (folder.parent / DIGITS_RETURNED).write_text(json.dumps(returned))

    return built_once(tmp_path_factory, "digits-run", build)


DIGITS_RETURNED = "digits-run.returned.json"
