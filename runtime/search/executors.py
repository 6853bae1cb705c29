"""Where children train: warm worker processes here (LocalExecutor) or Ray actors (RayExecutor),
replaced after a failure or every `recycle_every` children; a worker that dies fails only its child."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import time
from multiprocessing.connection import wait as wait_for

from nasc.runtime.search.child import ChildJob, evaluate_child
from nasc.runtime.search.settings import RECYCLE_EVERY, SearchError


def _died(step: int, why: str) -> dict:
    return {"step": step, "status": "failed", "seconds": 0.0, "reason": why, "died": True}


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
        # Imported once in the fork server, so a fresh worker starts without paying for them
        # (torch._dynamo: torch's optimizers import it on first use, ~2 s in every new worker).
        preload = ["torch", "torch._dynamo", "nasc.runtime.train", "sklearn.datasets"]
        self.context.set_forkserver_preload(preload)
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


def stop_helper_processes() -> None:
    """multiprocessing's fork server and resource tracker outlive their process by as long as they
    take to notice its end; stopped and reaped here (`nasc search` does it as it exits), no process
    is left behind. A program that runs several searches keeps them warm until then: the fork
    server has torch imported, which costs a fresh one seconds."""
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
