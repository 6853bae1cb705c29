"""One child of a search: its cell compiled, trained on the proxy task and costed, in whichever
process an executor gives it."""

from __future__ import annotations

import os
import time
import traceback
from dataclasses import dataclass

from nasc.compiler import api, ir
from nasc.runtime.latency import Deployment


@dataclass
class ChildJob:
    step: int
    text: str  # the canonical .cell text
    hash: str
    dataset: str
    data_dir: str | None
    cells: int
    filters: int
    epochs: int
    batch_size: int
    seed: int
    threads: int
    deployment: Deployment | None = None  # where parameters and mult-adds are counted
    latency: str = "none"  # and latency measured: "onnx", or "table" (runtime/latency.LatencyTable)
    latency_table: str | None = None  # the table's file
    latency_runs: int = 20
    submitted: float = 0.0  # time.time() when handed to a worker
    # A tabular benchmark's entry: each epoch's metrics (test accuracy included), and the trained
    # network's parameters and mult-adds, in the result
    record_epochs: bool = False
    # Multi-fidelity (runtime/multifidelity.py): "asha" or "hyperband" stop the child early, by the
    # search's study kept in the journal file
    scheduler: str = "none"
    journal: str | None = None


# A warm worker's datasets, loaded by its first child and kept for the next (one at a time), and
# its latency lookup table.
_DATASETS: dict[str, object] = {}
_TABLES: dict[str, object] = {}


class _Laps:
    """Where a worker's time went, lap by lap (`timings` in the ledger)."""

    def __init__(self, submitted: float | None) -> None:
        self.timings = {"wait": max(0.0, time.time() - submitted) if submitted else 0.0}
        self.started = self.clock = time.perf_counter()

    def __call__(self, name: str) -> None:
        now = time.perf_counter()
        self.timings[name] = self.timings.get(name, 0.0) + now - self.clock
        self.clock = now


def evaluate_child(job: ChildJob) -> dict:
    """Train one child on the proxy task (its reward is the validation accuracy) and count or
    measure its deployment cost. Never raises: a failure is a result with its reason. `timings`
    says where the worker's time went."""
    lap = _Laps(job.submitted)
    try:
        import torch

        from nasc.runtime.train import Trainer

        lap("imports")
        torch.set_num_threads(job.threads)
        genotype = api.parse(job.text, f"step-{job.step}.cell")
        config = train_config(job, genotype)
        data = worker_dataset(genotype, config)
        lap("data")
        trainer = Trainer(genotype, config, data)
        lap("build")
        row = _scheduled(job, trainer, lap) if job.scheduler != "none" else _trained(job, trainer, lap)
        if job.deployment is not None:
            row.update(_cost(job, genotype))
            lap("latency" if job.latency != "none" else "count")
        return {
            **row,
            "seconds": time.perf_counter() - lap.started,
            "timings": lap.timings,
            "worker": os.getpid(),
        }
    except Exception as error:  # the child's failure is data for the search, not a crash of it
        reason = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}".strip()
        return {
            "step": job.step,
            "status": "failed",
            "reason": reason,
            "seconds": time.perf_counter() - lap.started,
            "timings": lap.timings,
            "worker": os.getpid(),
            "traceback": traceback.format_exc(limit=5),
        }


def _trained(job: ChildJob, trainer, lap: _Laps) -> dict:
    """The child trained to its last epoch; its reward is the final validation accuracy."""
    result = trainer.run()
    lap("run")
    lap.timings["train"] = result.train_seconds
    lap.timings["evaluate"] = result.evaluate_seconds
    lap.timings["run"] -= result.train_seconds + result.evaluate_seconds  # the loop's own overhead
    row = {"step": job.step, "status": "ok", "accuracy": result.final_val_accuracy}
    if job.record_epochs:
        row.update(_recorded(trainer, result))
    return row


def _scheduled(job: ChildJob, trainer, lap: _Laps) -> dict:
    """The child trained epoch by epoch under the search's scheduler, stopped where it prunes; its
    reward is the validation accuracy there."""
    from nasc.runtime.multifidelity import run_trial, study

    def train(_epoch: int) -> tuple[float, float]:
        row = trainer.next_epoch()
        return float(row["val_accuracy"]), float(row["seconds"])

    trial = study(job.scheduler, job.epochs, job.seed, job.journal).ask()
    epochs, accuracy, seconds, _ = run_trial(trial, job.epochs, train)
    lap("run")
    lap.timings["train"] = seconds
    return {"step": job.step, "status": "ok", "accuracy": accuracy, "epochs": epochs}


def _recorded(trainer, result) -> dict:
    """What a benchmark table keeps of a trained network: per epoch, and its size."""
    from nasc.runtime.stats import measure
    from nasc.runtime.tabular import EPOCH_FIELDS

    figures = measure(trainer.model, trainer.data.image_size)
    epochs = [{field: row[field] for field in EPOCH_FIELDS} for row in result.history]
    return {"epochs": epochs, "params": figures.parameters, "macs": figures.mult_adds}


def train_config(job: ChildJob, genotype: ir.Genotype):
    from nasc.runtime.train import TrainConfig

    return TrainConfig(
        dataset=job.dataset,
        data_dir=job.data_dir,
        scale=(job.cells, None),
        first_filters=job.filters,  # the same F0 for every child; P follows from its cells
        epochs=job.epochs,
        batch_size=job.batch_size,
        seed=job.seed,
        quiet=True,
        artifacts=False,
        test=False,  # the reward is the validation accuracy
        test_every_epoch=job.record_epochs,
        device="cpu",
        out=os.devnull,
        stop_signals=False,  # the parent owns Ctrl-C and SIGTERM and stops its children
    ).resolved(genotype)


def worker_dataset(genotype: ir.Genotype, config):
    """The child's dataset, loaded once per worker while children ask for the same one."""
    from nasc.runtime.data import load_dataset
    from nasc.runtime.train import dataset_arguments

    arguments = dataset_arguments(genotype, config)
    key = repr(sorted(arguments.items()))
    if key not in _DATASETS:
        _DATASETS.clear()
        _DATASETS[key] = load_dataset(**arguments)
    return _DATASETS[key]


def _cost(job: ChildJob, genotype: ir.Genotype) -> dict:
    """Parameters and mult-adds, and the latency where the search measures it."""
    from nasc.runtime.latency import LatencyTable, count, measure

    if job.latency == "none":
        params, macs = count(genotype, job.deployment)
        return {"params": params, "macs": macs}
    if job.latency == "table":
        if job.latency_table not in _TABLES:
            _TABLES[job.latency_table] = LatencyTable(job.latency_table)
        cost = _TABLES[job.latency_table].estimate(genotype, job.deployment, job.latency_runs, threads=1)
    else:
        cost = measure(genotype, job.deployment, job.latency_runs, threads=1)
    return {
        "params": cost.params,
        "macs": cost.macs,
        "latency_ms": cost.latency_ms,
        "latency_method": cost.latency_method,
    }


def usable_cpus() -> int:
    """The CPUs this process may run on (taskset, cgroups' cpusets), not all the machine has."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS
        return os.cpu_count() or 1
