"""`nasc search`: architecture search on a work queue, every sampled cell written as a .cell file.

The loop (paper §3, A.3): the strategy samples architectures into a queue; free workers pull one,
compile it in process, train it on the proxy task and report its validation accuracy; the strategy
learns from the results (PPO every 20). Identical architectures (by structural hash) are trained
once: a repeat reuses the reward and is counted as a duplicate.

Files under --out (nothing finished is ever lost):
  cells/<step>-<hash8>.cell   one canonical cell per sampled architecture, metadata = provenance
  ledger.jsonl                one line per finished result, appended, flushed and fsynced
  search.json                 the settings (read back by --resume)
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
import signal
import sys
import time
import traceback
from dataclasses import dataclass, field
from multiprocessing.connection import wait as wait_for
from pathlib import Path

import nasc
from nasc.compiler import ir
from nasc.compiler.hashing import structural_hash
from nasc.compiler.space import SearchSpace
from nasc.fileio import atomic_write_bytes, atomic_write_text
from nasc.runtime.controller import Sample, make_strategy, serialize
from nasc.runtime.plots import plot_rewards
from nasc.runtime.progress import eta, format_duration
from nasc.runtime.signals import stop_requests

STRATEGIES = ("ppo", "reinforce", "random")


class SearchError(Exception):
    """A user-facing problem with a search's settings or directory."""


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

    def space(self) -> SearchSpace:
        from nasc.compiler.registry import PAPER_OPS

        return SearchSpace(
            num_blocks=self.num_blocks, ops=tuple(self.ops or PAPER_OPS), combines=tuple(self.combines)
        )

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


def evaluate_child(job: ChildJob) -> dict:
    """Train one child on the proxy task; reward = validation accuracy. Never raises: a failure is a
    result with its reason."""
    started = time.perf_counter()
    try:
        import torch

        from nasc.runtime.train import TrainConfig, train

        torch.set_num_threads(job.threads)
        genotype = nasc.parse(job.text, f"step-{job.step}.cell")
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
            device="cpu",
            out=os.devnull,
            stop_signals=False,  # the parent owns Ctrl-C and SIGTERM and stops its children
        )
        result = train(genotype, config)
        return {
            "step": job.step,
            "status": "ok",
            "reward": result.final_val_accuracy,
            "seconds": time.perf_counter() - started,
        }
    except Exception as error:  # the child's failure is data for the search, not a crash of it
        reason = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}".strip()
        return {
            "step": job.step,
            "status": "failed",
            "reason": reason,
            "seconds": time.perf_counter() - started,
            "traceback": traceback.format_exc(limit=5),
        }


# -- executors ----------------------------------------------------------------------------------------


def _child_process(job: ChildJob, connection) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    connection.send(evaluate_child(job))
    connection.close()


class LocalExecutor:
    """A local process pool: one fresh process per child (forked from a server that has torch
    loaded), at most `workers` at a time. A child whose process dies is reported as failed."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.context = multiprocessing.get_context("forkserver")
        self.context.set_forkserver_preload(["torch", "nasc.runtime.train"])
        self.running: dict[int, tuple] = {}

    def submit(self, job: ChildJob) -> None:
        receive, send = self.context.Pipe(duplex=False)
        process = self.context.Process(target=_child_process, args=(job, send), daemon=True)
        process.start()
        send.close()
        self.running[job.step] = (process, receive)

    def in_flight(self) -> int:
        return len(self.running)

    def wait(self, timeout: float | None = None) -> list[dict]:
        if not self.running:
            return []
        handles = {}
        for step, (process, receive) in self.running.items():
            handles[receive] = step
            handles[process.sentinel] = step
        ready = wait_for(list(handles), timeout)
        done: list[dict] = []
        for step in sorted({handles[h] for h in ready}):
            process, receive = self.running[step]
            result = None
            if receive.poll():
                try:
                    result = receive.recv()
                except (EOFError, OSError):
                    result = None
            process.join(timeout=5)
            if result is None and process.is_alive():
                continue  # its pipe woke us before it exited; look again next time
            if result is None:
                result = {
                    "step": step,
                    "status": "failed",
                    "seconds": 0.0,
                    "reason": f"the worker died (exit code {process.exitcode})",
                }
            receive.close()
            del self.running[step]
            done.append(result)
        return done

    def shutdown(self) -> None:
        for process, receive in self.running.values():
            process.terminate()
            process.join(timeout=5)
            receive.close()
        self.running.clear()


class RayExecutor:
    """One Ray task per child, retried when its worker dies; Ray schedules them over the cluster."""

    def __init__(self, workers: int, address: str | None) -> None:
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
        self.remote = ray.remote(num_cpus=1, max_retries=2)(evaluate_child)
        self.running: dict = {}

    def submit(self, job: ChildJob) -> None:
        self.running[self.remote.remote(job)] = job.step

    def in_flight(self) -> int:
        return len(self.running)

    def wait(self, timeout: float | None = None) -> list[dict]:
        if not self.running:
            return []
        ready, _ = self.ray.wait(list(self.running), num_returns=1, timeout=timeout)
        done = []
        for ref in ready:
            step = self.running.pop(ref)
            try:
                done.append(self.ray.get(ref))
            except self.ray.exceptions.RayError as error:
                done.append(
                    {
                        "step": step,
                        "status": "failed",
                        "seconds": 0.0,
                        "reason": f"{type(error).__name__}: the worker died and retries ran out",
                    }
                )
        return done

    def shutdown(self) -> None:
        for ref in list(self.running):
            with contextlib.suppress(Exception):
                self.ray.cancel(ref, force=True)
        self.running.clear()


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
        self.config = config
        self.out = Path(config.out)
        self.space = config.space()
        self.strategy = make_strategy(
            config.strategy,
            self.space,
            config.seed,
            **(
                {}
                if config.strategy == "random"
                else {"lr": config.controller_lr, "minibatch": config.minibatch}
            ),
        )
        self.state = SearchState()
        self.ledger: list[dict] = []
        self.finished_by_hash: dict[str, dict] = {}  # the first finished result of each architecture
        self.stopped_by: str | None = None  # "Ctrl-C" or "SIGTERM" when a signal stopped the run
        self._executor = executor

    # -- files --------------------------------------------------------------------------------------

    def _cell_path(self, step: int, digest: str) -> Path:
        return self.out / "cells" / f"{step:05d}-{digest[:8]}.cell"

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
        if result.get("duplicate_of") is not None:
            entries.append(("duplicate_of", result["duplicate_of"]))
        if result.get("reason"):
            entries.append(("reason", result["reason"][:500]))
        entries += [
            ("strategy", config.strategy),
            ("seed", config.seed),
            ("policy_version", pending.sample.policy_version),
            ("search_space", self.space.name),
            ("search_space_hash", self.space.space_hash()[:16]),
            ("training_budget", config.training_budget()),
            ("nasc_version", nasc.__version__),
        ]
        return tuple(ir.MetaEntry(key, value) for key, value in entries)

    def _record(self, pending: Pending, result: dict) -> None:
        """A finished result: cell file, then ledger line, then the strategy, then the state."""
        genotype = nasc.parse(pending.text)
        genotype = ir.Genotype(genotype.name, genotype.cells, self._metadata(pending, result))
        path = self._cell_path(pending.step, pending.hash)
        atomic_write_text(path, nasc.format(genotype))
        row = {
            "step": pending.step,
            "hash": pending.hash,
            "file": str(path.relative_to(self.out)),
            "status": result["status"],
            "reward": result.get("reward"),
            "reason": result.get("reason"),
            "duplicate_of": result.get("duplicate_of"),
            "policy_version": pending.sample.policy_version,
            "log_prob": pending.sample.log_prob,
            "choices": pending.sample.choices,
            "seconds": round(result.get("seconds", 0.0), 3),
            "time": time.time(),
        }
        with open(self.out / "ledger.jsonl", "a", encoding="utf-8") as handle:
            handle.write(json.dumps(row) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
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
        sample = self.strategy.sample()
        step = self.state.next_step
        self.state.next_step += 1
        genotype = self.space.decode(sample.choices, name=f"step_{step:05d}")
        return Pending(sample, step, structural_hash(genotype), nasc.format(genotype))

    def _job(self, pending: Pending) -> ChildJob:
        config = self.config
        threads = max(1, (os.cpu_count() or 1) // max(1, config.workers))
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
            self._record(
                pending,
                {
                    "status": "duplicate" if first["status"] == "ok" else "failed",
                    "reward": first["reward"],
                    "reason": first.get("reason"),
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
        import torch

        for line in (self.out / "ledger.jsonl").read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut short by a kill: its child is trained again
            self._take(row)
        done = {row["step"] for row in self.ledger}
        atomic_write_text(self.out / "ledger.jsonl", "".join(json.dumps(r) + "\n" for r in self.ledger))
        state = torch.load(self.out / "state.pt", weights_only=False)
        self.strategy.load_state_dict(state["strategy"])
        self.state.next_step = state["next_step"]
        requeue = []
        for step, data in sorted(state["pending"].items()):
            pending = Pending(Sample(**data["sample"]), data["step"], data["hash"], data["text"])
            if step in done:  # finished after the state was written: replay it into the strategy
                self._observe(pending.sample, next(r for r in self.ledger if r["step"] == step))
            else:
                self.state.pending[step] = pending
                requeue.append(pending)
        self._write_state()
        return requeue

    # -- the loop -----------------------------------------------------------------------------------

    def _executor_for(self):
        if self._executor is not None:
            return self._executor
        if self.config.executor == "ray":
            return RayExecutor(self.config.workers, self.config.address)
        return LocalExecutor(self.config.workers)

    def run(self, resume: bool = False, progress: bool = True, lines: bool = False) -> dict:
        """Run to the budget, or until Ctrl-C / SIGTERM (then `summary()["stopped"]` names it).
        `progress`: a live display (a terminal); `lines`: one plain line per finished child."""
        (self.out / "cells").mkdir(parents=True, exist_ok=True)
        requeue = self._load() if resume else []
        if not resume:
            atomic_write_text(
                self.out / "search.json", json.dumps(dataclasses.asdict(self.config), indent=2) + "\n"
            )
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
                        self._record(first, result)
                        display.finished(self.ledger[-1], started, finished_at_start)
                        for twin in waiting.pop(first.hash, []):
                            self._dispatch(twin, executor, waiting)
                        self._after_result()
                    display.update(started, finished_at_start)
        finally:
            # Children still training are pending in state.pt: --resume trains them again.
            executor.shutdown()
        return self.summary()

    def _after_result(self) -> None:
        best = max((r for r in self.ledger if r["status"] == "ok"), key=lambda r: r["reward"], default=None)
        if best is not None:
            atomic_write_text(self.out / "best.cell", (self.out / best["file"]).read_text(encoding="utf-8"))
        plot_rewards(
            self.ledger, self.out / "rewards.png", f"{self.config.strategy} on {self.config.dataset}"
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
    path = Path(out) / "ledger.jsonl"
    if not Path(out).exists():
        raise SearchError(f"no such directory: {out}")
    if not Path(out).is_dir():
        raise SearchError(f"{out} is not a directory (nasc top reads a search's --out directory)")
    if not path.is_file():
        raise SearchError(f"{out} holds no search (no ledger.jsonl)")
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        with contextlib.suppress(json.JSONDecodeError):
            rows.append(json.loads(line))
    return rows


def top(out: str | os.PathLike[str], k: int = 10) -> list[dict]:
    """The k best distinct architectures of a search, with how often each was sampled."""
    rows = read_ledger(out)
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["hash"]] = counts.get(row["hash"], 0) + 1
    best = sorted((r for r in rows if r["status"] == "ok"), key=lambda r: (-r["reward"], r["step"]))
    return [{**row, "times_sampled": counts[row["hash"]]} for row in best[:k]]


def load_config(out: str | os.PathLike[str]) -> SearchConfig:
    path = Path(out) / "search.json"
    if not path.is_file():
        raise SearchError(f"{out} holds no search to resume (no search.json)")
    data = json.loads(path.read_text())
    for key in ("ops", "combines"):
        if data.get(key) is not None:
            data[key] = tuple(data[key])
    return SearchConfig(**data)
