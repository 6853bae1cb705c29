"""The search itself: the strategy samples children into a queue, executors train them, every
result is written (cell file, ledger line, state) before the strategy learns from it."""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from nasc.compiler import api, ir
from nasc.compiler.api import cell_files
from nasc.compiler.conventions import DEFAULT as DEFAULT_CONVENTION
from nasc.compiler.hashing import structural_hash
from nasc.diagnostics import NascError, first_line
from nasc.fileio import atomic_write_bytes, atomic_write_text
from nasc.runtime.controller import Sample, serialize
from nasc.runtime.evolution import load_seeds
from nasc.runtime.objectives import latency_weight, pareto_front, reward
from nasc.runtime.plots import plot_pareto, plot_rewards
from nasc.runtime.search.child import ChildJob, usable_cpus
from nasc.runtime.search.display import Display
from nasc.runtime.search.executors import LocalExecutor, RayExecutor
from nasc.runtime.search.ledger import append_line, cell_file, read_ledger, read_references
from nasc.runtime.search.settings import PLOT_INTERVAL, SearchConfig, SearchError
from nasc.runtime.signals import stop_requests
from nasc.runtime.strategies import make_strategy
from nasc.runtime.tensorfile import TensorFileError, read_tensor_file
from nasc.version import __version__


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
        genotype = ir.Genotype(
            genotype.name, genotype.cells, self._metadata(pending, result), convention=genotype.convention
        )
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
            "test_accuracy": result.get("test_accuracy"),  # a table's answer (--benchmark) has it
            "epochs": result.get("epochs"),  # where a scheduler stopped it (--scheduler)
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
        append_line(self.out / "ledger.jsonl", row)
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
            scheduler=config.scheduler,
            journal=str(self.out / "scheduler.journal"),
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
        if self.config.benchmark is not None:
            from nasc.runtime.replay import TableExecutor
            from nasc.runtime.tabular import Table

            return TableExecutor(Table.load(self.config.benchmark), self.config.scheduler)
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
        display = Display(self, live=progress, lines=lines)

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
                append_line(self.out / "references.jsonl", row)

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
