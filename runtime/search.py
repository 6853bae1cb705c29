"""`nasc search`: architecture search on a work queue, every sampled cell written as a .cell file.

The loop (paper §3, A.3): the strategy samples architectures into a queue; free workers pull one,
compile it in process, train it on the proxy task and report its validation accuracy; the strategy
learns from the results (PPO every 20). Identical architectures (by structural hash) are trained
once: a repeat reuses the reward and is counted as a duplicate.

Files under --out (nothing finished is ever lost):
  cells/<step>-<hash8>.cell   one canonical cell per sampled architecture, metadata = provenance
  ledger.jsonl                one line per finished result, appended, flushed and fsynced
  search.json                 the settings (read back by --resume; the directory itself is not
                              among them: a copied or moved search resumes where it now is)
  state.pt                    the strategy and the queue, replaced atomically after every event
  best.cell, rewards.png      the best architecture so far; reward vs models sampled (Figure 6)

Order of writes for a result: cell file (atomic) → ledger line (fsync) → state. After a kill, the
ledger is the truth: a queued child that has a ledger line is finished (its reward is replayed into
the strategy), one without is trained again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import multiprocessing
import os
import re
import signal
import sys
import time
import traceback
import types
import typing
from dataclasses import dataclass, field
from multiprocessing.connection import wait as wait_for
from pathlib import Path

from nasc.compiler import api, ir
from nasc.compiler.api import cell_files
from nasc.compiler.conventions import DEFAULT as DEFAULT_CONVENTION
from nasc.compiler.hashing import structural_hash
from nasc.compiler.space import SearchSpace
from nasc.diagnostics import NascError, first_line
from nasc.fileio import atomic_write_bytes, atomic_write_text
from nasc.runtime.controller import Sample, serialize
from nasc.runtime.evolution import POPULATION, TOURNAMENT, load_seeds
from nasc.runtime.latency import DEFAULT_DEPLOY, Deployment, count
from nasc.runtime.objectives import LATENCY_WEIGHT, OBJECTIVES, latency_weight, pareto_front, reward
from nasc.runtime.plots import plot_pareto, plot_rewards
from nasc.runtime.progress import eta, format_duration
from nasc.runtime.signals import stop_requests
from nasc.runtime.strategies import STRATEGIES, make_strategy
from nasc.runtime.tensorfile import TensorFileError, read_tensor_file
from nasc.version import __version__


class SearchError(Exception):
    """A user-facing problem with a search's settings or directory."""


class SettingsError(SearchError):
    """Settings that cannot work together (the command line's usage errors)."""


RECYCLE_EVERY = 100  # children a warm worker trains before a fresh process replaces it
PLOT_INTERVAL = 30.0  # seconds between redrawing rewards.png and pareto.png during a search


@dataclass
class SearchConfig:
    out: str
    strategy: str = "ppo"
    budget: int = 40
    dataset: str = "digits"
    data_dir: str | None = None
    proxy_cells: int = 1  # N: normal cells per stage (the paper's search: 2)
    proxy_filters: int = 4  # F0: first-stage filters (P follows from each child's output width)
    proxy_epochs: int = 1
    proxy_batch_size: int = 32
    workers: int = 1
    executor: str = "local"
    address: str | None = None
    seed: int = 0
    num_blocks: int = 5
    ops: tuple[str, ...] | None = None
    combines: tuple[str, ...] = ("add", "concat")
    controller_lr: float = 0.00035
    minibatch: int = 20
    # evolution (Real et al. 2019): population P, tournament sample S, initial members from files
    population: int = POPULATION
    sample: int = TOURNAMENT
    seed_cells: tuple[str, ...] = ()
    # what is rewarded (runtime/objectives.py) and where latency is measured (runtime/latency.py)
    objective: str = "accuracy"
    target_latency_ms: float | None = None
    latency_weight: float = LATENCY_WEIGHT
    latency: str | None = None  # "onnx", "table" or "none"; None: onnx where the objective needs it
    deploy: str = DEFAULT_DEPLOY
    deploy_image_size: int | None = None
    latency_runs: int = 20
    reference: tuple[str, ...] = ()  # published cells to evaluate alike, for pareto.png
    recycle_every: int = RECYCLE_EVERY

    def space(self) -> SearchSpace:
        from nasc.compiler.registry import PAPER_OPS

        return SearchSpace(
            num_blocks=self.num_blocks, ops=tuple(self.ops or PAPER_OPS), combines=tuple(self.combines)
        )

    def latency_method(self) -> str:
        return self.latency or ("none" if self.objective == "accuracy" else "onnx")

    def measures_latency(self) -> bool:
        return self.latency_method() != "none"

    def deployment(self) -> Deployment:
        return Deployment.parse(self.deploy, self.deploy_image_size)

    def validate(self) -> None:
        """Settings that cannot work, refused (SettingsError) before anything is written."""
        try:
            self._validate()
        except ValueError as error:  # the search space's and the deployment's own checks
            raise SettingsError(str(error)) from None

    def _validate(self) -> None:
        if self.strategy not in STRATEGIES:
            raise SettingsError(f"unknown strategy {self.strategy!r}; strategies: {', '.join(STRATEGIES)}")
        if self.objective not in OBJECTIVES:
            raise SettingsError(f"unknown objective {self.objective!r}; objectives: {', '.join(OBJECTIVES)}")
        if self.objective == "mnas" and self.target_latency_ms is None:
            raise SettingsError("--objective mnas needs --target-latency-ms T (MnasNet's target latency)")
        if self.objective != "accuracy" and not self.measures_latency():
            raise SettingsError(
                f"--objective {self.objective} rewards latency: it cannot run with --latency none"
            )
        if self.target_latency_ms is not None and self.target_latency_ms <= 0:
            raise SettingsError("--target-latency-ms must be positive")
        if self.seed_cells and self.strategy != "evolution":
            raise SettingsError("--seed-cells seeds an evolution's population: add --strategy evolution")
        if not 1 <= self.sample <= self.population:
            raise SettingsError(
                f"--sample {self.sample} must be between 1 and --population {self.population}"
            )
        space = self.space()
        # an unknown preset or an impossible width shows on any child: refuse it now, not per child
        count(space.decode([0] * len(space.decisions())), self.deployment())

    def training_budget(self) -> str:
        return (
            f"{self.dataset}, N={self.proxy_cells} F={self.proxy_filters}, {self.proxy_epochs} epochs, "
            f"batch {self.proxy_batch_size}, cosine"
        )


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


# A warm worker's datasets, loaded by its first child and kept for the next (one at a time), and
# its latency lookup table.
_DATASETS: dict[str, object] = {}
_TABLES: dict[str, object] = {}


def evaluate_child(job: ChildJob) -> dict:
    """Train one child on the proxy task (its reward is the validation accuracy) and count or
    measure its deployment cost. Never raises: a failure is a result with its reason. `timings`
    says where the worker's time went."""
    received = time.time()
    started = time.perf_counter()
    timings = {"wait": max(0.0, received - job.submitted) if job.submitted else 0.0}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = timings.get(name, 0.0) + now - clock
        clock = now

    try:
        import torch

        from nasc.runtime.data import load_dataset
        from nasc.runtime.latency import LatencyTable, count, measure
        from nasc.runtime.train import TrainConfig, Trainer, dataset_arguments

        lap("imports")
        torch.set_num_threads(job.threads)
        genotype = api.parse(job.text, f"step-{job.step}.cell")
        config = TrainConfig(
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
            device="cpu",
            out=os.devnull,
            stop_signals=False,  # the parent owns Ctrl-C and SIGTERM and stops its children
        ).resolved(genotype)
        arguments = dataset_arguments(genotype, config)
        key = repr(sorted(arguments.items()))
        if key not in _DATASETS:
            _DATASETS.clear()
            _DATASETS[key] = load_dataset(**arguments)
        lap("data")
        trainer = Trainer(genotype, config, _DATASETS[key])
        lap("build")
        result = trainer.run()
        lap("run")
        timings["train"] = result.train_seconds
        timings["evaluate"] = result.evaluate_seconds
        timings["run"] -= result.train_seconds + result.evaluate_seconds  # the loop's own overhead
        row = {"step": job.step, "status": "ok", "accuracy": result.final_val_accuracy}
        if job.deployment is not None:
            if job.latency != "none":
                if job.latency == "table":
                    if job.latency_table not in _TABLES:
                        _TABLES[job.latency_table] = LatencyTable(job.latency_table)
                    table = _TABLES[job.latency_table]
                    cost = table.estimate(genotype, job.deployment, job.latency_runs, threads=1)
                else:
                    cost = measure(genotype, job.deployment, job.latency_runs, threads=1)
                row.update(
                    params=cost.params,
                    macs=cost.macs,
                    latency_ms=cost.latency_ms,
                    latency_method=cost.latency_method,
                )
                lap("latency")
            else:
                row["params"], row["macs"] = count(genotype, job.deployment)
                lap("count")
        return {**row, "seconds": time.perf_counter() - started, "timings": timings, "worker": os.getpid()}
    except Exception as error:  # the child's failure is data for the search, not a crash of it
        reason = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}".strip()
        return {
            "step": job.step,
            "status": "failed",
            "reason": reason,
            "seconds": time.perf_counter() - started,
            "timings": timings,
            "worker": os.getpid(),
            "traceback": traceback.format_exc(limit=5),
        }


def usable_cpus() -> int:
    """The CPUs this process may run on (taskset, cgroups' cpusets), not all the machine has."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS
        return os.cpu_count() or 1


def _died(step: int, why: str) -> dict:
    return {"step": step, "status": "failed", "seconds": 0.0, "reason": why, "died": True}


# -- executors ----------------------------------------------------------------------------------------


def _worker_main(connection) -> None:
    """A warm worker: children one after another in one process, until told to stop (None)."""
    # Ctrl-C and SIGTERM are the parent's to handle, also when sent to the whole process group (a
    # terminal, `timeout`, a batch scheduler): the parent stops, and its children stay pending.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    while True:
        try:
            job = connection.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        connection.send(evaluate_child(job))


class _Worker:
    def __init__(self, context) -> None:
        self.connection, theirs = context.Pipe(duplex=True)
        self.process = context.Process(target=_worker_main, args=(theirs,), daemon=True)
        self.process.start()
        theirs.close()
        self.children = 0

    def retire(self) -> None:
        with contextlib.suppress(OSError):
            self.connection.send(None)
        self.process.join(timeout=5)
        if self.process.is_alive():
            self.kill()
        self.connection.close()

    def kill(self) -> None:
        """SIGKILL (a worker ignores SIGTERM), sent by pid: when the fork server has died (a signal
        to the process group), multiprocessing believes the worker gone and would send nothing."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.join(timeout=5)
        self.connection.close()


class LocalExecutor:
    """Warm worker processes here, at most `workers` children at a time. Each keeps torch and the
    dataset loaded from one child to the next; a worker is replaced by a fresh process after a
    failed child (whatever it leaked goes with it) and after every `recycle_every` children. A
    worker that dies takes only its child with it: that child is reported as failed."""

    def __init__(self, workers: int, recycle_every: int = RECYCLE_EVERY) -> None:
        self.workers, self.recycle_every = workers, recycle_every
        self.context = multiprocessing.get_context("forkserver")
        # Imported once in the fork server, so a fresh worker starts without paying for them.
        self.context.set_forkserver_preload(["torch", "nasc.runtime.train", "sklearn.datasets"])
        self.idle: list[_Worker] = []
        self.running: dict[int, _Worker] = {}

    def submit(self, job: ChildJob) -> None:
        job.submitted = time.time()
        while self.idle:  # an idle worker may have been killed from outside since its last child
            worker = self.idle.pop()
            try:
                worker.connection.send(job)
            except OSError:
                worker.kill()
                continue
            self.running[job.step] = worker
            return
        worker = _Worker(self.context)
        worker.connection.send(job)
        self.running[job.step] = worker

    def in_flight(self) -> int:
        return len(self.running)

    def wait(self, timeout: float | None = None) -> list[dict]:
        if not self.running:
            return []
        handles = {}
        for step, worker in self.running.items():
            handles[worker.connection] = step
            handles[worker.process.sentinel] = step
        ready = wait_for(list(handles), timeout)
        done: list[dict] = []
        for step in sorted({handles[h] for h in ready}):
            worker = self.running[step]
            result = None
            if worker.connection.poll():
                try:
                    result = worker.connection.recv()
                except (EOFError, OSError):
                    result = None
            if result is None and worker.process.is_alive():
                continue  # woken before its result was whole; look again next time
            del self.running[step]
            if result is None:
                worker.kill()
                done.append(_died(step, f"the worker died (exit code {worker.process.exitcode})"))
                continue
            worker.children += 1
            if result["status"] != "ok" or worker.children >= self.recycle_every:
                worker.retire()
            else:
                self.idle.append(worker)
            done.append(result)
        return done

    def shutdown(self) -> None:
        for worker in self.running.values():
            worker.kill()
        for worker in self.idle:
            worker.retire()
        self.running.clear()
        self.idle.clear()
        _stop_helper_processes()


def _stop_helper_processes() -> None:
    """multiprocessing's fork server and resource tracker outlive the search by as long as they take
    to notice its end; stopped and reaped here, a search that has returned leaves no process behind.
    (The next executor in this process starts them again.)"""
    from multiprocessing import forkserver, resource_tracker

    for helper in (forkserver._forkserver, resource_tracker._resource_tracker):
        with contextlib.suppress(Exception):  # private API: if it changes, they end on their own
            helper._stop()


class _RayWorker:
    """A Ray actor: a warm worker on whichever machine Ray places it."""

    def evaluate(self, job: ChildJob) -> dict:
        return evaluate_child(job)


class RayExecutor:
    """Warm workers as Ray actors, placed by Ray over the cluster, replaced as local workers are
    (after a failed child, after `recycle_every` children; a dead actor fails only its child)."""

    def __init__(self, workers: int, address: str | None, recycle_every: int = RECYCLE_EVERY) -> None:
        try:
            import ray
        except ImportError:
            raise SearchError(
                "--executor ray needs Ray: pip install 'nasc[ray]' (or pip install ray)"
            ) from None
        self.ray = ray
        if not ray.is_initialized():
            options = {"address": address} if address else {"num_cpus": workers}
            ray.init(**options, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
        self.actor = ray.remote(num_cpus=1, max_restarts=0)(_RayWorker)
        self.recycle_every = recycle_every
        self.idle: list = []
        self.children: dict = {}  # actor -> children it has trained
        self.running: dict = {}  # result ref -> (step, actor)

    def submit(self, job: ChildJob) -> None:
        actor = self.idle.pop() if self.idle else self.actor.remote()
        job.submitted = time.time()
        self.running[actor.evaluate.remote(job)] = (job.step, actor)

    def in_flight(self) -> int:
        return len(self.running)

    def wait(self, timeout: float | None = None) -> list[dict]:
        if not self.running:
            return []
        ready, _ = self.ray.wait(list(self.running), num_returns=1, timeout=timeout)
        done = []
        for ref in ready:
            step, actor = self.running.pop(ref)
            try:
                result = self.ray.get(ref)
            except self.ray.exceptions.RayError as error:
                self._retire(actor)
                done.append(_died(step, f"{type(error).__name__}: the worker died"))
                continue
            self.children[actor] = self.children.get(actor, 0) + 1
            if result["status"] != "ok" or self.children[actor] >= self.recycle_every:
                self._retire(actor)
            else:
                self.idle.append(actor)
            done.append(result)
        return done

    def _retire(self, actor) -> None:
        self.children.pop(actor, None)
        with contextlib.suppress(Exception):
            self.ray.kill(actor)

    def shutdown(self) -> None:
        for ref, (_step, actor) in list(self.running.items()):
            with contextlib.suppress(Exception):
                self.ray.cancel(ref, force=True)
            self._retire(actor)
        for actor in self.idle:
            self._retire(actor)
        self.running.clear()
        self.idle.clear()


# -- the search ---------------------------------------------------------------------------------------


@dataclass
class Pending:
    sample: Sample
    step: int
    hash: str
    text: str  # the canonical cell, without the result's metadata


@dataclass
class SearchState:
    next_step: int = 0
    pending: dict[int, Pending] = field(default_factory=dict)  # sampled, result not yet in the ledger


class Search:
    def __init__(self, config: SearchConfig, executor=None) -> None:
        config.validate()
        self.config = config
        self.out = Path(config.out)
        self.space = config.space()
        self.notes: list[str] = []  # what the user should know before it starts
        seeds = []
        if config.strategy == "evolution" and config.seed_cells:
            seeds, self.notes = load_seeds(config.seed_cells, self.space)
            if not seeds:
                raise SearchError("no --seed-cells file fits the search space:\n  " + "\n  ".join(self.notes))
        if config.strategy == "evolution" and config.population >= config.budget:
            self.notes.append(
                f"the population ({config.population}) is not smaller than the budget ({config.budget}): "
                "every child is an initial member, none a mutation; pass a smaller --population (and "
                "--sample) to evolve"
            )
        self.strategy = make_strategy(
            config.strategy,
            self.space,
            config.seed,
            lr=config.controller_lr,
            minibatch=config.minibatch,
            population=config.population,
            sample=config.sample,
            seeds=seeds,
        )
        self.deployment = config.deployment()
        self.references: list[tuple[str, ir.Genotype]] = []  # (file, cell as the children are read)
        for file, problem in cell_files(config.reference):
            try:
                if problem is not None:
                    raise problem
                self.references.append((file, _as_children_are(api.load(file))))
            except NascError as error:
                self.notes.append(f"{file}: not a reference, {error.diagnostics[0].message}")
        self.state = SearchState()
        self.ledger: list[dict] = []
        self.finished_by_hash: dict[str, dict] = {}  # the first finished result of each architecture
        self.stopped_by: str | None = None  # "Ctrl-C" or "SIGTERM" when a signal stopped the run
        self._plotted = float("-inf")  # when the plots were last drawn (time.monotonic)
        self._executor = executor

    # -- files --------------------------------------------------------------------------------------

    def _cell_path(self, step: int, digest: str) -> Path:
        return self.out / cell_file(step, digest)

    def _write_state(self) -> None:
        pending = {step: dataclasses.asdict(p) for step, p in self.state.pending.items()}
        state = {
            "next_step": self.state.next_step,
            "pending": pending,
            "strategy": self.strategy.state_dict(),
        }
        atomic_write_bytes(self.out / "state.pt", serialize(state))

    def _metadata(self, pending: Pending, result: dict) -> tuple[ir.MetaEntry, ...]:
        config = self.config
        entries: list[tuple[str, object]] = [
            ("step", pending.step),
            ("status", result["status"]),
        ]
        if result.get("reward") is not None:
            entries.append(("reward", round(float(result["reward"]), 6)))
        if config.objective != "accuracy" and result.get("accuracy") is not None:
            entries.append(("accuracy", round(float(result["accuracy"]), 6)))
        for key in ("latency_ms", "params", "macs"):
            if result.get(key) is not None:
                entries.append((key, round(result[key], 4) if key == "latency_ms" else result[key]))
        if result.get("duplicate_of") is not None:
            entries.append(("duplicate_of", result["duplicate_of"]))
        if result.get("reason"):
            entries.append(("reason", result["reason"][:500]))
        sample = pending.sample
        if sample.parent is not None:
            parent = self.finished_by_hash.get(sample.parent)
            entries.append(("parent", sample.parent))
            if parent is not None:
                entries += [("parent_step", parent["step"]), ("parent_file", parent["file"])]
            entries.append(("mutation", sample.mutation or "identity"))
        if sample.seeded_from is not None:
            entries.append(("seeded_from", sample.seeded_from))
        entries += [
            ("strategy", config.strategy),
            ("objective", config.objective),
            ("seed", config.seed),
            ("policy_version", pending.sample.policy_version),
            ("search_space", self.space.name),
            ("search_space_hash", self.space.space_hash()[:16]),
            ("training_budget", config.training_budget()),
            ("nasc_version", __version__),
        ]
        return tuple(ir.MetaEntry(key, value) for key, value in entries)

    def _target_latency(self, result: dict) -> float | None:
        """T: as given, or (pareto) the first measured latency of the search."""
        if self.config.target_latency_ms is not None:
            return self.config.target_latency_ms
        first = next((r["latency_ms"] for r in self.ledger if r.get("latency_ms") is not None), None)
        return first if first is not None else result.get("latency_ms")

    def _rewarded(self, pending: Pending, result: dict) -> dict:
        """The result with its objective's reward (and the latency weight that reward used)."""
        if result["status"] not in ("ok", "duplicate") or result.get("accuracy") is None:
            return {**result, "reward": None}
        config = self.config
        weight = latency_weight(config.objective, config.latency_weight, config.seed, pending.step)
        target = self._target_latency(result) if weight is not None else None
        value = reward(result["accuracy"], result.get("latency_ms"), target, weight)
        return {**result, "reward": value, "latency_weight": weight, "target_latency_ms": target}

    def _record(self, pending: Pending, result: dict) -> None:
        """A finished result: cell file, then ledger line, then the strategy, then the state."""
        began = time.perf_counter()
        result = self._rewarded(pending, result)
        genotype = api.parse(pending.text)
        genotype = ir.Genotype(genotype.name, genotype.cells, self._metadata(pending, result))
        path = self._cell_path(pending.step, pending.hash)
        atomic_write_text(path, api.format(genotype))
        timings = {k: round(v, 4) for k, v in result.get("timings", {}).items()}
        timings["write"] = round(time.perf_counter() - began, 4)
        sample = pending.sample
        row = {
            "step": pending.step,
            "hash": pending.hash,
            "file": cell_file(pending.step, pending.hash),
            "status": result["status"],
            "reward": result.get("reward"),
            "accuracy": result.get("accuracy"),
            "params": result.get("params"),
            "macs": result.get("macs"),
            "latency_ms": result.get("latency_ms"),
            "latency_method": result.get("latency_method"),
            "latency_weight": result.get("latency_weight"),
            "target_latency_ms": result.get("target_latency_ms"),
            "reason": result.get("reason"),
            "duplicate_of": result.get("duplicate_of"),
            "policy_version": sample.policy_version,
            "log_prob": sample.log_prob,
            "choices": sample.choices,
            "parent": sample.parent,
            "mutation": sample.mutation,
            "seeded_from": sample.seeded_from,
            "seconds": round(result.get("seconds", 0.0), 3),
            "timings": timings,
            "worker": result.get("worker"),  # the process that trained it
            "time": time.time(),
        }
        _append_line(self.out / "ledger.jsonl", row)
        self._take(row)
        self.state.pending.pop(pending.step, None)
        self._observe(pending.sample, row)
        self._write_state()

    def _take(self, row: dict) -> None:
        self.ledger.append(row)
        # The first outcome of an architecture, success or failure, is what its repeats reuse.
        if row["status"] in ("ok", "failed") and not row.get("duplicate_of"):
            self.finished_by_hash.setdefault(row["hash"], row)

    def _observe(self, sample: Sample, row: dict) -> None:
        # A failed child teaches the controller that this architecture is worthless: reward 0.
        reward = row["reward"] if row["status"] in ("ok", "duplicate") and row["reward"] is not None else 0.0
        self.strategy.observe(sample, reward)

    # -- sampling -----------------------------------------------------------------------------------

    def _sample(self) -> Pending:
        step = self.state.next_step
        self.state.next_step += 1
        return self._pending(self.strategy.sample(), step)

    def _pending(self, sample: Sample, step: int) -> Pending:
        genotype = self.space.decode(sample.choices, name=f"step_{step:05d}")
        return Pending(sample, step, structural_hash(genotype), api.format(genotype))

    def _job(self, pending: Pending) -> ChildJob:
        config = self.config
        threads = max(1, usable_cpus() // max(1, config.workers))
        return ChildJob(
            pending.step,
            pending.text,
            pending.hash,
            config.dataset,
            config.data_dir,
            config.proxy_cells,
            config.proxy_filters,
            config.proxy_epochs,
            config.proxy_batch_size,
            config.seed,
            threads,
            deployment=self.deployment,
            latency=config.latency_method(),
            latency_table=str(self.out / "latency_table.json"),
            latency_runs=config.latency_runs,
        )

    def _schedule(self, executor, waiting: dict[str, list[Pending]]) -> None:
        """Keep every worker busy while budget remains; settle duplicates on the spot."""
        while (
            executor.in_flight() < self.config.workers
            and len(self.ledger) + len(self.state.pending) < self.config.budget
        ):
            pending = self._sample()
            self.state.pending[pending.step] = pending
            self._write_state()
            self._dispatch(pending, executor, waiting)

    def _dispatch(self, pending: Pending, executor, waiting: dict[str, list[Pending]]) -> None:
        first = self.finished_by_hash.get(pending.hash)
        if first is not None:
            reused = ("accuracy", "params", "macs", "latency_ms", "latency_method", "reason")
            self._record(
                pending,
                {
                    "status": "duplicate" if first["status"] == "ok" else "failed",
                    **{key: first.get(key) for key in reused},
                    "duplicate_of": first["step"],
                    "seconds": 0.0,
                },
            )
        elif pending.hash in waiting:
            waiting[pending.hash].append(pending)  # the same architecture is training now
        else:
            waiting[pending.hash] = []
            executor.submit(self._job(pending))

    # -- resume -------------------------------------------------------------------------------------

    def _load(self) -> list[Pending]:
        for row in read_ledger(self.out):  # a line cut short by a kill is left out: trained again
            self._take(row)
        done = {row["step"] for row in self.ledger}
        atomic_write_text(self.out / "ledger.jsonl", "".join(json.dumps(r) + "\n" for r in self.ledger))
        path = self.out / "state.pt"
        try:
            state = read_tensor_file(path)
            self.strategy.load_state_dict(state["strategy"])
            self.state.next_step = int(state["next_step"])
            # Only the choices are taken from the file: the cell text and its hash are derived again.
            pending = {
                int(step): self._pending(Sample(**data["sample"]), int(step))
                for step, data in state["pending"].items()
            }
        except TensorFileError as error:
            raise SearchError(f"{path}: {error}") from None
        except (KeyError, TypeError, ValueError, IndexError, AttributeError, RuntimeError) as error:
            raise SearchError(f"{path} is damaged: {type(error).__name__}: {first_line(error)}") from None
        requeue = []
        for step, entry in sorted(pending.items()):
            if step in done:  # finished after the state was written: replay it into the strategy
                self._observe(entry.sample, next(r for r in self.ledger if r["step"] == step))
            else:
                self.state.pending[step] = entry
                requeue.append(entry)
        self._write_state()
        return requeue

    # -- the loop -----------------------------------------------------------------------------------

    def _executor_for(self):
        if self._executor is not None:
            return self._executor
        if self.config.executor == "ray":
            return RayExecutor(self.config.workers, self.config.address, self.config.recycle_every)
        return LocalExecutor(self.config.workers, self.config.recycle_every)

    def run(self, resume: bool = False, progress: bool = True, lines: bool = False) -> dict:
        """Run to the budget, or until Ctrl-C / SIGTERM (then `summary()["stopped"]` names it).
        `progress`: a live display (a terminal); `lines`: one plain line per finished child."""
        (self.out / "cells").mkdir(parents=True, exist_ok=True)
        requeue = self._load() if resume else []
        if not resume:
            settings = {k: v for k, v in dataclasses.asdict(self.config).items() if k != "out"}
            atomic_write_text(self.out / "search.json", json.dumps(settings, indent=2) + "\n")
            (self.out / "ledger.jsonl").touch()
            self._write_state()
        executor = self._executor_for()
        waiting: dict[str, list[Pending]] = {}
        started = time.perf_counter()
        finished_at_start = len(self.ledger)
        display = _Display(self, live=progress, lines=lines)

        def stop(name: str) -> None:
            self.stopped_by = name

        try:
            with display, stop_requests(stop):
                for pending in requeue:
                    self._dispatch(pending, executor, waiting)
                while self.stopped_by is None:
                    self._schedule(executor, waiting)
                    if executor.in_flight() == 0:
                        break
                    for result in executor.wait(timeout=1.0):
                        first = self.state.pending.get(result["step"])
                        if first is None:
                            continue
                        if result.get("died") and self.stopped_by is not None:
                            continue  # killed by the same signal that stops us: pending, not failed
                        self._record(first, result)
                        display.finished(self.ledger[-1], started, finished_at_start)
                        for twin in waiting.pop(first.hash, []):
                            self._dispatch(twin, executor, waiting)
                        if self.stopped_by is None:  # the worker's next child before the plots
                            self._schedule(executor, waiting)
                        self._after_result()
                    display.update(started, finished_at_start)
                if self.stopped_by is None and self.config.reference:
                    self._evaluate_references(executor)
        finally:
            # Children still training are pending in state.pt: --resume trains them again.
            executor.shutdown()
        self._after_result(final=True)
        return self.summary()

    def _evaluate_references(self, executor) -> None:
        """Train and cost the --reference cells as the children were (once: a resumed search skips
        those in references.jsonl), for pareto.png. They neither count against the budget nor
        teach the strategy."""
        done = {row["file"] for row in read_references(self.out)}
        # Negative steps: a reference's job is told apart from a child's by its step alone.
        remaining = [reference for reference in self.references if reference[0] not in done]
        todo = {-number: reference for number, reference in enumerate(remaining, start=1)}
        jobs = [
            self._job(Pending(Sample([], None, 0), step, structural_hash(g), api.format(g)))
            for step, (_file, g) in todo.items()
        ]
        while (jobs or executor.in_flight()) and self.stopped_by is None:
            while jobs and executor.in_flight() < self.config.workers:
                executor.submit(jobs.pop(0))
            for result in executor.wait(timeout=1.0):
                if result.get("died") and self.stopped_by is not None:
                    continue  # stopped by the signal that killed it: evaluated on --resume
                file, genotype = todo[result["step"]]
                row = {
                    "file": file,
                    "name": genotype.name,
                    "convention": genotype.convention,
                    **{k: result.get(k) for k in ("status", "accuracy", "params", "macs", "latency_ms")},
                    "reason": result.get("reason"),
                }
                _append_line(self.out / "references.jsonl", row)

    def _after_result(self, final: bool = False) -> None:
        """best.cell after every result; the plots (a few hundred ms of the cores the workers
        train on) at most every PLOT_INTERVAL seconds, and once more at the end of the run."""
        best = max((r for r in self.ledger if r["status"] == "ok"), key=lambda r: r["reward"], default=None)
        if best is not None:
            atomic_write_text(self.out / "best.cell", (self.out / best["file"]).read_text(encoding="utf-8"))
        if not self.ledger or (not final and time.monotonic() - self._plotted < PLOT_INTERVAL):
            return
        self._plotted = time.monotonic()
        plot_rewards(
            self.ledger, self.out / "rewards.png", f"{self.config.strategy} on {self.config.dataset}"
        )
        if self.config.measures_latency():
            self._write_pareto()

    def _write_pareto(self) -> None:
        front = pareto_front(self.ledger)
        atomic_write_text(self.out / "pareto.json", json.dumps(front, indent=1) + "\n")
        plot_pareto(
            self.ledger,
            front,
            read_references(self.out),
            self.out / "pareto.png",
            f"{self.config.strategy}, {self.config.objective} on {self.config.dataset}: "
            f"deployed as {self.deployment.describe()}",
        )

    def summary(self) -> dict:
        ok = [r for r in self.ledger if r["status"] in ("ok", "duplicate")]
        return {
            "finished": len(self.ledger),
            "trained": sum(r["status"] == "ok" for r in self.ledger),
            "duplicates": sum(r["status"] == "duplicate" for r in self.ledger),
            "failed": sum(r["status"] == "failed" for r in self.ledger),
            "pending": len(self.state.pending),
            "stopped": self.stopped_by,
            "best_reward": max((r["reward"] for r in ok), default=None),
            "best_file": max(ok, key=lambda r: r["reward"])["file"] if ok else None,
        }


class _Display:
    """done/queued/failed, best reward and children per hour: live on a terminal, or one plain line
    per finished child (with elapsed time and ETA) where output goes to a file."""

    def __init__(self, search: Search, live: bool, lines: bool) -> None:
        from rich.live import Live

        self.search = search
        self.live = Live("", refresh_per_second=2, transient=False) if live else None
        self.lines = lines and not live

    def __enter__(self):
        if self.live:
            self.live.__enter__()
        return self

    def __exit__(self, *exc):
        if self.live:
            self.live.__exit__(*exc)

    def finished(self, row: dict, started: float, finished_at_start: int) -> None:
        if not self.lines:
            return
        config = self.search.config
        summary = self.search.summary()
        elapsed = time.perf_counter() - started
        done = summary["finished"] - finished_at_start
        reward = f"reward {row['reward']:.4f}" if row.get("reward") is not None else "no reward"
        best = f"{summary['best_reward']:.4f}" if summary["best_reward"] is not None else "–"
        print(
            f"[{summary['finished']}/{config.budget}] step {row['step']} {row['status']} {reward} · "
            f"best {best} · elapsed {format_duration(elapsed)} · "
            f"ETA {eta(elapsed, done, config.budget - summary['finished'])}",
            file=sys.stderr,
            flush=True,
        )

    def update(self, started: float, finished_at_start: int) -> None:
        if not self.live:
            return
        summary = self.search.summary()
        hours = max(time.perf_counter() - started, 1e-9) / 3600
        rate = (summary["finished"] - finished_at_start) / hours
        best = f"{summary['best_reward']:.4f}" if summary["best_reward"] is not None else "–"
        config = self.search.config
        self.live.update(
            f"[bold]{config.strategy}[/] · done {summary['finished']}/{config.budget} · "
            f"queued {summary['pending']} · failed {summary['failed']} · "
            f"duplicates {summary['duplicates']} · best {best} · {rate:,.0f} children/h"
        )


def read_ledger(out: str | os.PathLike[str]) -> list[dict]:
    """The ledger's rows that have the shape nasc writes; a line cut short by a kill (or anything
    else) is left out. The ledger is read back from a directory that may not be the user's own, so
    a row's cell file is where nasc puts it, never a path taken from the row."""
    path = Path(out) / "ledger.jsonl"
    if not Path(out).exists():
        raise SearchError(f"no such directory: {out}")
    if not Path(out).is_dir():
        raise SearchError(f"{out} is not a directory (nasc top reads a search's --out directory)")
    if not path.is_file():
        raise SearchError(f"{out} holds no search (no ledger.jsonl)")
    return [row for row in _json_lines(path) if _well_formed(row)]


STATUSES = ("ok", "duplicate", "failed")
HEX = re.compile("[0-9a-f]{8,128}")


def _well_formed(row: dict) -> bool:
    step, digest = row.get("step"), row.get("hash")
    if not (isinstance(step, int) and step >= 0 and isinstance(digest, str) and HEX.fullmatch(digest)):
        return False
    numbers = ("reward", "accuracy", "latency_ms", "params", "macs")
    return (
        row.get("status") in STATUSES
        and row.get("file") == cell_file(step, digest)
        and all(row.get(key) is None or _is_number(row[key]) for key in numbers)
    )


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def cell_file(step: int, digest: str) -> str:
    """Where a child's cell is, relative to the search directory."""
    return f"cells/{step:05d}-{digest[:8]}.cell"


def _json_lines(path: Path) -> list[dict]:
    rows = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            row = json.loads(line)
            if isinstance(row, dict):
                rows.append(row)
    return rows


def _as_children_are(genotype: ir.Genotype) -> ir.Genotype:
    """A reference cell in the children's network (the default NASNet convention) where its cells
    are valid there (AmoebaNet-A's are): the comparison is then of cells, not of skeletons, and
    the ImageNet-only skeletons of AmoebaNet and PNASNet would shrink a digit to 2 pixels. Other
    cells (DARTS's ops, PNASNet's single kind) keep their own convention."""
    if genotype.convention == DEFAULT_CONVENTION:
        return genotype
    try:
        return api.parse(api.format(dataclasses.replace(genotype, convention=DEFAULT_CONVENTION)))
    except NascError:
        return genotype


def _append_line(path: Path, row: dict) -> None:
    """One JSON line, flushed and fsynced: a killed search keeps every line it finished."""
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(row) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def read_references(out: str | os.PathLike[str]) -> list[dict]:
    """The --reference cells evaluated so far (references.jsonl), one row each."""
    path = Path(out) / "references.jsonl"
    if not path.is_file():
        return []
    return [row for row in _json_lines(path) if isinstance(row.get("file"), str)]


def pareto(out: str | os.PathLike[str]) -> list[dict]:
    """The accuracy-latency front of a search, fastest first."""
    rows = read_ledger(out)
    if not any(row.get("latency_ms") is not None for row in rows):
        raise SearchError(
            f"{out} measured no latency: run the search with --objective mnas|pareto or --latency onnx"
        )
    return pareto_front(rows)


def top(out: str | os.PathLike[str], k: int = 10) -> list[dict]:
    """The k best distinct architectures of a search, with how often each was sampled."""
    rows = read_ledger(out)
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["hash"]] = counts.get(row["hash"], 0) + 1
    best = sorted((r for r in rows if r["status"] == "ok"), key=lambda r: (-r["reward"], r["step"]))
    return [{**row, "times_sampled": counts[row["hash"]]} for row in best[:k]]


def load_config(out: str | os.PathLike[str]) -> SearchConfig:
    """The settings of the search in `out`, to resume it there: wherever the directory has been
    copied or moved to, it is the search (an `out` in the file, from an earlier version, is ignored)."""
    path = Path(out) / "search.json"
    if not path.is_file():
        raise SearchError(f"{out} holds no search to resume (no search.json)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError) as error:
        raise SearchError(f"{path} is damaged: {first_line(error)}") from None
    if not isinstance(data, dict):
        raise SearchError(f"{path} is damaged: not a JSON object")
    data.pop("out", None)
    hints = typing.get_type_hints(SearchConfig)
    for key, value in data.items():
        if key not in hints:
            raise SearchError(f"{path}: unknown setting {key!r} (written by another version of nasc?)")
        if isinstance(value, list):
            value = data[key] = tuple(value)
        if not _has_type(value, hints[key]):
            wanted = getattr(hints[key], "__name__", hints[key])
            raise SearchError(f"{path}: setting {key!r} is {type(value).__name__}, not {wanted}")
    return SearchConfig(out=os.fspath(out), **data)


def _has_type(value: object, hint: object) -> bool:
    """isinstance for the settings' hints: plain types, `X | None` and `tuple[str, ...]`."""
    if isinstance(hint, types.UnionType):
        return any(_has_type(value, member) for member in typing.get_args(hint))
    if typing.get_origin(hint) is tuple:
        return isinstance(value, tuple) and all(isinstance(item, str) for item in value)
    if hint is type(None):
        return value is None
    if hint is float:
        return _is_number(value)
    return isinstance(value, hint) and not (hint is int and isinstance(value, bool))
