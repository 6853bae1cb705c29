"""Strategies replayed on a tabular benchmark: each child answered from the table, the clock the
table's training time; and multi-fidelity search on the same table. The table here is complete and
made by the test: an architecture's final accuracy is the share of its edges that are `conv_3x3`,
reached over four epochs (each epoch ranks the architectures as the last does), its training time a
function of its hash."""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

import nasc
from nasc.compiler.api import load_space
from nasc.compiler.hashing import space_hash, structural_hash
from nasc.compiler.nb201_format import read_nb201
from nasc.compiler.space import NB201_SPACE
from nasc.runtime.multifidelity import LiveFidelity, TableFidelity, epochs_to_reach, search
from nasc.runtime.replay import regret_curves, replay
from nasc.runtime.tabular import (
    EPOCH_FIELDS,
    FORMAT,
    Table,
    TableError,
    TableSettings,
    distinct_architectures,
    space_architectures,
)

from .conftest import ROOT
from .test_cli import run


def _accuracy(arch: str) -> float:
    return arch.count("nor_conv_3x3") / 6


@pytest.fixture(scope="module")
def table_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("replay") / "complete.jsonl"
    settings = TableSettings(epochs=4)
    distinct = distinct_architectures("nb201")
    header = {"format": FORMAT, "space": "nb201", "dataset": "digits", "settings": asdict(settings)}
    lines = [
        json.dumps({**header, "architectures": len(space_architectures("nb201")), "distinct": len(distinct)})
    ]
    for digest, arch in distinct.items():
        accuracy, seconds = _accuracy(arch), 1 + int(digest[:2], 16) / 255
        curves = {name: [accuracy * (0.5 + epoch / 8) for epoch in range(1, 5)] for name in EPOCH_FIELDS}
        curves["seconds"] = [seconds / 4] * 4
        lines.append(json.dumps({"hash": digest, "arch": arch, "params": 1, "macs": 1, "curves": curves}))
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def table(table_file: Path) -> Table:
    return Table.load(table_file)


def test_each_child_is_answered_from_the_table_and_charged_its_training_time(table: Table) -> None:
    run = replay(table, "random", seed=3, budget_seconds=200)
    assert run.seconds[-1] >= 200 > run.seconds[-2]
    again = _random_archs(seed=3, count=len(run.seconds))  # the same strategy draws the same children
    costs = [table.training_seconds()[table.index[digest]] for digest in again]
    assert np.allclose(run.seconds, np.cumsum(costs))
    best = np.maximum.accumulate([table.metric("test_accuracy")[table.index[d]] for d in again])
    assert np.allclose(run.best_test, best)  # here validation and test agree


@pytest.mark.parametrize("strategy", ["random", "evolution", "ppo", "reinforce"])
def test_every_strategy_runs_unchanged_on_a_table(table: Table, strategy: str) -> None:
    options = {"population": 10, "sample": 3} if strategy == "evolution" else {}
    run = replay(table, strategy, seed=0, budget_seconds=150, **options)
    assert len(run.seconds) > 50 and np.all(np.diff(run.best_test) >= 0)
    assert math.isnan(run.at(0.0)) and run.at(150.0) == run.best_test[-1]  # nan before the first


def test_any_isomorph_of_an_architecture_finds_its_row(table: Table) -> None:
    """Strings that differ only where `none` makes edges dead, or in skip connections read as the
    state itself, are one architecture: one row, found by each."""
    zero = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
    isomorphs = [
        "|nor_conv_3x3~0|+|none~0|avg_pool_3x3~1|+|none~0|none~1|none~2|",  # all of it feeds nothing
        "|none~0|+|none~0|nor_conv_1x1~1|+|none~0|none~1|avg_pool_3x3~2|",  # ops on zero are zero
    ]
    assert all(table.position(arch) == table.position(zero) for arch in isomorphs)
    chain = "|skip_connect~0|+|none~0|skip_connect~1|+|none~0|none~1|nor_conv_3x3~2|"
    direct = "|none~0|+|none~0|none~1|+|nor_conv_3x3~0|none~1|none~2|"
    assert table.position(chain) == table.position(direct) != table.position(zero)
    kept = table.archs[table.position(direct)]  # the row's own string is one of the class
    assert table.hashes[table.position(direct)] == structural_hash(read_nb201(kept, name="a"))


def test_regret_is_the_tables_best_minus_the_best_so_far(table: Table) -> None:
    curves = regret_curves(table, ["random"], seeds=3, budget_seconds=100, points=11)
    assert curves["times"].shape == (11,) and curves["random"].shape == (3, 11)
    regret = curves["random"]
    assert curves["times"][-1] == 100 and np.all(regret >= 0) and np.all(np.diff(regret, axis=1) <= 0)


def test_a_partial_table_is_refused_with_how_far_it_is(tmp_path: Path, table: Table) -> None:
    from nasc.runtime import tabular

    path = tmp_path / "partial.jsonl"
    kept = [line for line in _lines(table)[:11]]
    path.write_text("\n".join(kept) + "\n")
    with pytest.raises(TableError, match=r"10 of 4,930 trained\): complete it"):
        replay(tabular.Table.load(path), "random", seed=0, budget_seconds=100)


def test_nasc_search_runs_on_a_table_and_writes_its_children_as_cells(
    table_file: Path, tmp_path: Path
) -> None:
    from nasc.runtime.search import read_ledger

    out = tmp_path / "s"
    argv = ["search", "--benchmark", str(table_file), "--strategy", "evolution", "--population", "8"]
    argv += ["--space", str(ROOT / "spaces" / "nb201.space")]
    code, _, err = run(*argv, "--sample", "3", "--budget", "25", "--out", str(out))
    assert code == 0, err
    table = Table.load(table_file)
    ledger = read_ledger(out)
    assert len(ledger) == 25
    for row in ledger:
        position = table.index[row["hash"]]
        assert row["accuracy"] == pytest.approx(float(table.metric("val_accuracy")[position]))
        if row["status"] == "ok":  # a duplicate is answered from its first, at no cost
            assert row["seconds"] == pytest.approx(float(table.training_seconds()[position]), abs=1e-3)
        genotype = nasc.load(out / row["file"])
        assert genotype.convention == "nb201" and genotype.meta("search_space") == "nb201"
        assert (
            genotype.meta("search_space_hash") == space_hash(load_space(ROOT / "spaces" / "nb201.space"))[:16]
        )
        assert nasc.structural_hash(genotype) == row["hash"]
    code, _, err = run(
        "search", "--benchmark", str(table_file), "--dataset", "cifar10", "--out", str(tmp_path / "x")
    )
    assert code == 2 and "is of nb201 on digits; this search is on cifar10" in err
    code, _, err = run(
        "search", "--benchmark", str(table_file), "--objective", "mnas", "--target-latency-ms", "5"
    )
    assert code == 2 and "--benchmark answers accuracy from the table" in err


def test_a_scheduler_stops_children_early_and_charges_only_their_epochs(
    table_file: Path, tmp_path: Path
) -> None:
    from nasc.runtime.search import read_ledger

    out = tmp_path / "asha"
    argv = ["search", "--benchmark", str(table_file), "--strategy", "random", "--scheduler", "asha"]
    code, _, err = run(*argv, "--budget", "40", "--out", str(out))
    assert code == 0, err
    table = Table.load(table_file)
    trained = [row for row in read_ledger(out) if row["status"] == "ok"]
    assert {row["epochs"] for row in trained} > {4} and min(row["epochs"] for row in trained) == 1
    for row in trained:
        position, epochs = table.index[row["hash"]], row["epochs"]
        assert row["accuracy"] == pytest.approx(float(table.metric("val_accuracy", epochs)[position]))
        assert row["seconds"] == pytest.approx(float(table.training_seconds(epochs)[position]), abs=1e-3)
    argv = ["search", "--scheduler", "asha", "--objective", "mnas", "--target-latency-ms", "5"]
    code, _, err = run(*argv, "--out", str(tmp_path / "live"))
    assert code == 2 and "--scheduler stops children by their accuracy" in err


def test_live_children_share_the_searchs_study_and_stop_where_it_prunes(tmp_path: Path) -> None:
    """A search's children train in worker processes: each asks the study kept in the search's
    journal file for its trial and reports every epoch there (here two children, one process)."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    from nasc.runtime.latency import Deployment
    from nasc.runtime.search.child import ChildJob, evaluate_child

    journal = str(tmp_path / "scheduler.journal")
    rows = []
    for step, choices in enumerate(([3, 3, 3, 3, 3, 3], [0, 1, 1, 0, 1, 1])):
        genotype = NB201_SPACE.decode(choices)
        text, digest = nasc.format(genotype), nasc.structural_hash(genotype)
        job = ChildJob(
            step, text, digest, "digits", None, 1, 2, 2, 32, 0, 1, scheduler="asha", journal=journal
        )
        job.deployment = Deployment.parse("1@16", 16)  # costed as every child is
        rows.append(evaluate_child(job))
    assert all(row["status"] == "ok" and 1 <= row["epochs"] <= 2 for row in rows), rows
    assert all(row["params"] > 0 and row["macs"] > 0 and row["timings"]["train"] > 0 for row in rows)
    trials = optuna.load_study(study_name="nasc", storage=JournalStorage(JournalFileBackend(journal))).trials
    assert len(trials) == 2 and [max(t.intermediate_values) for t in trials] == [r["epochs"] for r in rows]


def _random_archs(seed: int, count: int) -> list[str]:
    from nasc.runtime.strategies import make_strategy

    runner = make_strategy("random", NB201_SPACE, seed)
    return [structural_hash(NB201_SPACE.decode(runner.sample().choices)) for _ in range(count)]


def _lines(table: Table) -> list[str]:
    header = json.dumps(table.header)
    rows = []
    for position, digest in enumerate(table.hashes):
        curves = {name: table.metrics[name][position].tolist() for name in EPOCH_FIELDS}
        rows.append(
            json.dumps(
                {"hash": digest, "arch": table.archs[position], "params": 1, "macs": 1, "curves": curves}
            )
        )
    return [header, *rows]


def test_successive_halving_reaches_a_top_architecture_in_fewer_epochs(table: Table) -> None:
    """Where early epochs rank architectures as the last does, ASHA (random sampling, Optuna's
    pruner) stops most early and reaches a top-1 % architecture in fewer epochs than random search
    that trains every architecture fully; the same loop, with no pruner, is that random search."""
    fidelity = TableFidelity(table)
    top = float(np.quantile(table.metric("test_accuracy"), 0.99))
    runs = {name: [search(fidelity, name, seed, 800) for seed in range(6)] for name in ("asha", "none")}
    assert all(run.stopped > run.completed for run in runs["asha"])
    assert all(run.stopped == 0 and run.completed == 200 for run in runs["none"])
    median = {name: np.median([epochs_to_reach(run, top) for run in group]) for name, group in runs.items()}
    assert median["asha"] < median["none"]
    # this table's validation and test curves are one: by either, the incumbent arrives alike
    assert all(epochs_to_reach(run, top, "val") == epochs_to_reach(run, top) for run in runs["asha"])


def test_the_same_loop_trains_live() -> None:
    run = search(LiveFidelity(epochs=2, channels=2), "asha", seed=0, budget_epochs=2)
    assert run.completed == 1 and list(run.epochs) == [2] and 0.0 <= run.best_test[-1] <= 1.0
