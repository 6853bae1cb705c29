"""Multi-fidelity search: architectures sampled at random and trained epoch by epoch, the weak ones
stopped early by successive halving (ASHA: Li et al. 2020) or Hyperband (Li et al. 2018), Optuna's
pruners both. The same loop runs on a table (each epoch's validation accuracy and training time
read from it) and on live training (each epoch trained): only the `Fidelity` differs.

Its result, as for runtime/replay.py: per architecture finished, the epochs and the simulated or
measured seconds spent so far, and the test accuracy of the incumbent (the best by validation
accuracy among the architectures trained to the last epoch).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np

from nasc.compiler.hashing import structural_hash
from nasc.compiler.space import NB201_SPACE
from nasc.runtime.tabular import Table

SCHEDULERS = ("asha", "hyperband", "none")


class Fidelity(Protocol):
    """Where an architecture's epochs come from."""

    epochs: int

    def start(self, choices: list[int]) -> object: ...

    def epoch(self, run: object, epoch: int) -> tuple[float, float]:
        """Train (or look up) epoch `epoch` (1-based): (validation accuracy, seconds)."""
        ...

    def test_accuracy(self, run: object) -> float: ...


class TableFidelity:
    """Epochs read from a table (nasc bench build)."""

    def __init__(self, table: Table) -> None:
        self.table, self.epochs = table, table.epochs
        self.val, self.test = table.metrics["val_accuracy"], table.metrics["test_accuracy"]
        self.seconds = table.metrics["seconds"]

    def start(self, choices: list[int]) -> int:
        return self.table.row(structural_hash(NB201_SPACE.decode(choices)), "a sampled architecture")

    def epoch(self, run: int, epoch: int) -> tuple[float, float]:
        return float(self.val[run, epoch - 1]), float(self.seconds[run, epoch - 1])

    def test_accuracy(self, run: int) -> float:
        return float(self.test[run, -1])


class LiveFidelity:
    """Epochs trained here, one at a time, with a search child's settings and dataset cache
    (runtime/search/child.py: the proxy network, validation accuracy each epoch)."""

    def __init__(self, dataset: str = "digits", epochs: int = 8, cells: int = 1, channels: int = 4) -> None:
        from nasc.runtime.search.child import ChildJob

        self.epochs = epochs
        # what a search would hand a worker for each child, the architecture aside
        self.job = ChildJob(0, "", "", dataset, None, cells, channels, epochs, 32, 0, 1)

    def start(self, choices: list[int]):
        from nasc.runtime.search.child import train_config, worker_dataset
        from nasc.runtime.train import Trainer

        genotype = NB201_SPACE.decode(choices)
        config = train_config(self.job, genotype)
        return Trainer(genotype, config, worker_dataset(genotype, config))

    def epoch(self, run, epoch: int) -> tuple[float, float]:
        row = run.next_epoch()
        return float(row["val_accuracy"]), float(row["seconds"])

    def test_accuracy(self, run) -> float:
        return float(run.evaluate(run.data.test)[1])


@dataclass(frozen=True)
class MultiFidelityRun:
    scheduler: str
    seed: int
    epochs: np.ndarray  # epochs trained so far, after each architecture
    seconds: np.ndarray  # and seconds
    best_test: np.ndarray  # the incumbent's test accuracy then (nan before the first is complete)
    best_val: np.ndarray  # and its validation accuracy, the value it was chosen by (-inf before)
    completed: int  # architectures trained to the last epoch
    stopped: int  # architectures stopped early


def pruner(name: str, max_epochs: int, reduction_factor: int = 3):
    import optuna

    if name == "asha":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=reduction_factor)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(1, max_epochs, reduction_factor)
    if name == "none":
        return optuna.pruners.NopPruner()
    raise ValueError(f"unknown scheduler {name!r}; schedulers: {', '.join(SCHEDULERS)}")


def study(scheduler: str, max_epochs: int, seed: int = 0, journal: str | None = None):
    """An Optuna study that samples at random and stops trials by `scheduler`; kept in `journal` (a
    file every process of a search shares, Optuna's journal storage) where given."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(
        study_name="nasc",
        storage=JournalStorage(JournalFileBackend(journal)) if journal else None,
        load_if_exists=True,
        direction="maximize",
        sampler=optuna.samplers.RandomSampler(seed=seed),
        pruner=pruner(scheduler, max_epochs),
    )


def run_trial(
    trial, epochs: int, epoch: Callable[[int], tuple[float, float]]
) -> tuple[int, float, float, bool]:
    """Train (or read) a trial's epochs one by one, reporting each validation accuracy to its study,
    until the last or until the pruner stops it; (epochs trained, the last accuracy, the seconds
    spent, whether it was stopped early). Told to the study. The one loop of every multi-fidelity
    run: a table's, a live search child's, `search` here."""
    import optuna

    seconds = 0.0
    for index in range(1, epochs + 1):
        value, cost = epoch(index)
        seconds += cost
        trial.report(value, index)
        if index < epochs and trial.should_prune():
            trial.study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            return index, value, seconds, True
    trial.study.tell(trial, value)
    return epochs, value, seconds, False


def search(fidelity: Fidelity, scheduler: str, seed: int, budget_epochs: int) -> MultiFidelityRun:
    """Random sampling under `scheduler` until `budget_epochs` epochs are spent."""
    trials = study(scheduler, fidelity.epochs, seed)
    spent = seconds = completed = stopped = 0
    best_val, best_test = -np.inf, np.nan
    trace: list[tuple[int, float, float]] = []
    while spent < budget_epochs:
        trial = trials.ask()
        choices = [trial.suggest_int(f"edge_{i}", 0, len(NB201_SPACE.ops) - 1) for i in range(6)]
        run = fidelity.start(choices)
        trained, value, cost, pruned = run_trial(
            trial, fidelity.epochs, lambda e, run=run: fidelity.epoch(run, e)
        )
        spent, seconds = spent + trained, seconds + cost
        stopped, completed = stopped + pruned, completed + (not pruned)
        if not pruned and value > best_val:
            best_val, best_test = value, fidelity.test_accuracy(run)
        trace.append((spent, seconds, best_test, best_val))
    epochs, clock, bests, vals = (np.array(column) for column in zip(*trace, strict=True))
    return MultiFidelityRun(scheduler, seed, epochs, clock, bests, vals, completed, stopped)


def epochs_to_reach(run: MultiFidelityRun, threshold: float, by: Literal["test", "val"] = "test") -> float:
    """The epochs spent when the incumbent's test (or, `by="val"`, validation) accuracy first
    reached `threshold` (inf: never)."""
    accuracy = run.best_test if by == "test" else run.best_val
    reached = np.nonzero(np.nan_to_num(accuracy, nan=-np.inf) >= threshold)[0]
    return float(run.epochs[reached[0]]) if len(reached) else float("inf")
