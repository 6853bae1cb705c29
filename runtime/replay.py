"""Search strategies replayed on a tabular benchmark: each child answered from the table, time
simulated as the table's recorded training time, so strategies compare at equal cost over many
seeds in seconds (NAS-Bench-201's protocol).

A child's reward is its validation accuracy after the table's last epoch (or `epoch`); what is
reported is the test accuracy of the best child so far by that reward, and its regret: the table's
best test accuracy minus it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nasc.compiler.hashing import structural_hash
from nasc.compiler.space import NB201_SPACE
from nasc.runtime.tabular import Table, TableError


@dataclass(frozen=True)
class Trajectory:
    """One replayed search: per child, the simulated clock after it and the best-so-far's test
    accuracy (the best by validation accuracy among the children up to it)."""

    strategy: str
    seed: int
    seconds: np.ndarray
    best_test: np.ndarray

    def at(self, seconds: float) -> float:
        """The best-so-far's test accuracy at a simulated time (nan before the first child)."""
        index = int(np.searchsorted(self.seconds, seconds, side="right")) - 1
        return float(self.best_test[index]) if index >= 0 else float("nan")


def replay(
    table: Table,
    strategy: str,
    seed: int,
    budget_seconds: float,
    epoch: int | None = None,
    **options,
) -> Trajectory:
    """Run `strategy` (any of runtime.strategies, unchanged) until the simulated clock passes the
    budget; TableError where it samples an architecture the table has no row for."""
    from nasc.runtime.strategies import make_strategy

    if table.header.get("space") != NB201_SPACE.name:
        raise TableError(f"the table is of the {table.header.get('space')} space; replay knows nb201")
    runner = make_strategy(strategy, NB201_SPACE, seed, **options)
    reward, test = table.metric("val_accuracy", epoch), table.metric("test_accuracy", epoch)
    cost = table.training_seconds(epoch)
    clock, best_reward, best_test = 0.0, -np.inf, np.nan
    seconds, bests = [], []
    while clock < budget_seconds:
        sample = runner.sample()
        row = table.row(structural_hash(NB201_SPACE.decode(sample.choices)), "a sampled architecture")
        clock += float(cost[row])
        if reward[row] > best_reward:
            best_reward, best_test = float(reward[row]), float(test[row])
        runner.observe(sample, float(reward[row]))
        seconds.append(clock)
        bests.append(best_test)
    return Trajectory(strategy, seed, np.array(seconds), np.array(bests))


def regret_curves(
    table: Table, strategies: list[str], seeds: int, budget_seconds: float, points: int = 50, **options
) -> dict[str, np.ndarray]:
    """Per strategy, the test-accuracy regret (the table's best minus the best-so-far's) at `points`
    simulated times up to the budget, one row per seed (nan before a run's first child)."""
    best = float(table.metric("test_accuracy").max())
    times = np.linspace(budget_seconds / points, budget_seconds, points)
    curves = {}
    for strategy in strategies:
        runs = [replay(table, strategy, seed, budget_seconds, **options) for seed in range(seeds)]
        curves[strategy] = np.array([[best - run.at(t) for t in times] for run in runs])
    return {"times": times, **curves}


class TableExecutor:
    """An executor (runtime/search/executors.py's interface) that answers each child from a table:
    its validation accuracy as `accuracy`, its test accuracy and size, and its recorded training
    time as `seconds` (the simulated cost). Under a scheduler (ASHA, Hyperband) a child's epochs are
    read one by one and the pruner may stop it early: its accuracy and cost are then those of the
    epochs it trained. `nasc search --benchmark [--scheduler]` runs on it."""

    def __init__(self, table: Table, scheduler: str = "none") -> None:
        from nasc.runtime.multifidelity import study

        self.table = table
        self.done: list[dict] = []
        self.val, self.test = table.metrics["val_accuracy"], table.metrics["test_accuracy"]
        self.seconds = table.metrics["seconds"]
        self.study = study(scheduler, table.epochs) if scheduler != "none" else None

    def submit(self, job) -> None:
        try:
            row = self.table.row(job.hash, "this architecture")
        except TableError as error:
            self.done.append({"step": job.step, "status": "failed", "reason": str(error), "seconds": 0.0})
            return
        epochs = self._epochs(row)
        seconds = float(self.seconds[row, :epochs].sum())
        self.done.append(
            {
                "step": job.step,
                "status": "ok",
                "accuracy": float(self.val[row, epochs - 1]),
                "test_accuracy": float(self.test[row, epochs - 1]),
                "epochs": epochs,
                "params": int(self.table.params[row]),
                "macs": int(self.table.macs[row]),
                "seconds": seconds,
                "timings": {"simulated": seconds},
            }
        )

    def _epochs(self, row: int) -> int:
        """How many epochs the child trains: all of them, or until the scheduler stops it."""
        if self.study is None:
            return self.table.epochs
        from nasc.runtime.multifidelity import run_trial

        def read(epoch: int) -> tuple[float, float]:
            return float(self.val[row, epoch - 1]), float(self.seconds[row, epoch - 1])

        return run_trial(self.study.ask(), self.table.epochs, read)[0]

    def in_flight(self) -> int:
        return len(self.done)

    def wait(self, timeout: float | None = None) -> list[dict]:
        done, self.done = self.done, []
        return done

    def shutdown(self) -> None:
        self.done.clear()
