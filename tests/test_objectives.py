"""Latency-aware search: the MnasNet reward, the Pareto front, measured costs in every ledger row,
and warm workers that keep their process from one child to the next."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from click.testing import CliRunner

import nasc
from nasc.cli import main
from nasc.compiler.space import NASNET_SPACE
from nasc.runtime.latency import Deployment, LatencyTable, count, measure
from nasc.runtime.objectives import latency_weight, pareto_front, reward
from nasc.runtime.search import ChildJob, LocalExecutor, Search, read_ledger

from .conftest import GENOTYPES
from .test_search import check_search_directory, tiny


def test_the_mnas_reward_is_accuracy_times_relative_latency_to_the_w() -> None:
    assert reward(0.8, 10.0, 5.0, -0.07) == pytest.approx(0.8 * 2**-0.07)
    assert reward(0.8, 5.0, 5.0, -0.07) == pytest.approx(0.8)  # at the target: the accuracy
    assert reward(0.8, 2.5, 5.0, -0.07) > 0.8  # faster than the target earns more
    assert reward(0.8, None, None, None) == 0.8  # accuracy alone
    assert latency_weight("mnas", -0.07, 0, 3) == -0.07
    drawn = [latency_weight("pareto", -0.07, 0, step) for step in range(200)]
    assert all(-0.14 <= w <= 0 for w in drawn) and len(set(drawn)) == 200
    assert drawn == [latency_weight("pareto", -0.07, 0, step) for step in range(200)]  # resumable


def test_the_pareto_front_is_what_nothing_else_beats_on_both() -> None:
    rng = random.Random(0)
    rows = [
        {
            "status": rng.choice(["ok", "ok", "failed"]),
            "hash": f"h{i}",
            "accuracy": rng.random(),
            "latency_ms": rng.uniform(1, 20),
        }
        for i in range(300)
    ]
    front = pareto_front(rows)
    ok = [r for r in rows if r["status"] == "ok"]
    for row in ok:  # brute force: on the front exactly when no row dominates it
        dominated = any(
            o["latency_ms"] <= row["latency_ms"] and o["accuracy"] >= row["accuracy"] and o is not row
            for o in ok
        )
        assert (row in front) == (not dominated)
    assert [r["latency_ms"] for r in front] == sorted(r["latency_ms"] for r in front)


def test_deployment_costs_are_counted_as_the_built_network_has_them() -> None:
    from nasc.runtime.build import build_network

    genotype = NASNET_SPACE.sample(random.Random(0))
    deployment = Deployment.parse("2@256")
    model = build_network(genotype, deployment.options(genotype), image_size=32).model
    params, macs = count(genotype, deployment)
    assert params == sum(p.numel() for p in model.parameters()) and macs > params
    cost = measure(genotype, deployment, runs=3)
    assert (cost.params, cost.macs) == (params, macs) and cost.latency_ms > 0
    # TorchScript's exporter, about ten times faster than dynamo's, takes every NASNet-space cell
    assert "onnxruntime" in cost.latency_method and "torchscript export" in cost.latency_method


def test_the_latency_table_times_each_cell_module_once_then_only_looks_up(tmp_path, monkeypatch) -> None:
    from nasc.runtime import latency

    choices = NASNET_SPACE.random_choices(random.Random(1))
    genotype = NASNET_SPACE.decode(choices)
    deployment = Deployment.parse("1@64")
    first = LatencyTable(tmp_path / "table.json").estimate(genotype, deployment, runs=3)
    entries = json.loads((tmp_path / "table.json").read_text())
    assert first.latency_ms > 0 and first.latency_method.startswith("lookup table")
    assert entries and all(entry["ms"] > 0 for entry in entries.values())
    assert (first.params, first.macs) == count(genotype, deployment)

    timed: list[tuple] = []
    monkeypatch.setattr(latency, "_median_ms", lambda *args: timed.append(args) or 1.0)
    again = LatencyTable(tmp_path / "table.json").estimate(genotype, deployment, runs=3)  # another worker
    assert again.latency_ms == first.latency_ms and timed == []
    choices[2] = (choices[2] + 1) % len(NASNET_SPACE.ops)  # the normal cell's first op, changed
    LatencyTable(tmp_path / "table.json").estimate(NASNET_SPACE.decode(choices), deployment, runs=3)
    assert len(timed) <= 3  # at most that op in the three normal cells (one per stage), nothing else


def _add_entries(path: str, writer: int, count: int) -> None:
    for index in range(count):  # each worker as it finds a module not yet timed: read, add, save
        table = LatencyTable(path)
        table.entries[f"{writer}-{index}"] = {"module": "Conv2d", "input": [1, 4, 8, 8], "ms": 0.01}
        table._save()


def test_workers_that_extend_the_latency_table_at_once_lose_no_entry(tmp_path) -> None:
    import multiprocessing

    path = str(tmp_path / "latency_table.json")
    context = multiprocessing.get_context("fork")
    writers = [context.Process(target=_add_entries, args=(path, writer, 60)) for writer in range(3)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()
    assert all(writer.exitcode == 0 for writer in writers)
    assert len(json.loads(Path(path).read_text())) == 3 * 60


def test_a_latency_table_entry_of_another_shape_is_left_out(tmp_path) -> None:
    path = tmp_path / "latency_table.json"
    path.write_text(json.dumps({"a": {"ms": 0.5}, "b": {"ms": "fast"}, "c": [1], "d": {"ms": -1}}))
    assert set(LatencyTable(path).entries) == {"a"}


@pytest.mark.slow
def test_an_mnas_search_measures_latency_and_rewards_it(tmp_path) -> None:
    out = tmp_path / "mnas"
    config = tiny(
        out,
        budget=2,
        strategy="random",
        objective="mnas",
        target_latency_ms=5.0,
        latency_runs=3,
        deploy="1@64",
        reference=(str(GENOTYPES / "nasnet_a.cell"),),
    )
    Search(config).run(progress=False)
    for row in check_search_directory(out, 2):
        assert row["latency_ms"] > 0 and row["params"] > 0 and row["macs"] > 0
        assert row["reward"] == pytest.approx(row["accuracy"] * (row["latency_ms"] / 5.0) ** -0.07)
        cell = nasc.load(out / row["file"])
        assert cell.meta("latency_ms") == pytest.approx(row["latency_ms"], abs=1e-4)
        assert cell.meta("objective") == "mnas" and cell.meta("accuracy") is not None
    front = json.loads((out / "pareto.json").read_text())
    assert front == pareto_front(read_ledger(out))
    assert (out / "pareto.png").read_bytes()[:4] == b"\x89PNG"
    references = [json.loads(line) for line in (out / "references.jsonl").read_text().splitlines()]
    assert [(r["name"], r["status"]) for r in references] == [("nasnet_a", "ok")]
    listed = CliRunner().invoke(main, ["top", str(out), "--pareto"])
    assert listed.exit_code == 0, listed.stderr
    assert len(listed.stdout.splitlines()) == 1 + len(front) + 1  # header, the front, the reference
    assert "nasnet_a.cell" in listed.stdout.splitlines()[-1]


def _job(step: int, dataset: str = "digits", data_dir: str | None = None) -> ChildJob:
    text = nasc.format(NASNET_SPACE.sample(random.Random(step), f"c{step}"))
    return ChildJob(step, text, "h", dataset, data_dir, 1, 2, 1, 128, 0, 1)


def _run(executor: LocalExecutor, job: ChildJob) -> dict:
    executor.submit(job)
    results: list[dict] = []
    while not results:
        results = executor.wait(timeout=60)
    return results[0]


@pytest.mark.slow
def test_warm_workers_keep_their_process_and_are_replaced_after_a_failure_or_m_children(tmp_path) -> None:
    executor = LocalExecutor(workers=1, recycle_every=2)
    try:
        first, second, third = (_run(executor, _job(step)) for step in range(3))
        assert all(r["status"] == "ok" for r in (first, second, third))
        assert first["worker"] == second["worker"] != third["worker"]  # M = 2
        assert second["timings"]["data"] < first["timings"]["data"]  # the dataset stayed loaded
        failed = _run(executor, _job(3, "cifar10", str(tmp_path / "missing")))
        assert failed["status"] == "failed" and failed["worker"] == third["worker"]
        after = _run(executor, _job(4))
        assert after["status"] == "ok" and after["worker"] != failed["worker"]  # a fresh process
    finally:
        executor.shutdown()
