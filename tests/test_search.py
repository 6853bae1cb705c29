"""Architecture search: the controller learns, every sampled cell is a checked file matching the
ledger, a killed search resumes with every finished result exactly once, Ray runs the same search,
failures are recorded."""

from __future__ import annotations

import io
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

import nasc
from nasc.cli import main
from nasc.compiler.space import NASNET_SPACE
from nasc.runtime.controller import serialize
from nasc.runtime.search import ChildJob, LocalExecutor, Search, SearchConfig, read_ledger
from nasc.runtime.strategies import make_strategy

from .conftest import ROOT

# The smallest real search: children of F0 = 2, one epoch of digits in 11 steps of 128.
# One worker: a second would only add its start-up on the one CPU each test runner worker is pinned
# to; a worker is a process of the search's group all the same, which the stop tests need.
TINY = {"budget": 3, "workers": 1, "proxy_cells": 1, "proxy_filters": 2, "proxy_batch_size": 128}
TINY_ARGS = ["--workers", "1", "--proxy-filters", "2", "--proxy-batch-size", "128"]


def tiny(out: Path, **changes) -> SearchConfig:
    return SearchConfig(**{"out": str(out), **TINY, **changes})


# -- the controller, on a reward that costs nothing ---------------------------------------------------


def top5_on_hidden_target(strategy: str, seed: int, samples: int = 300, options: dict | None = None) -> float:
    """Reward = the fraction of decisions that agree with a hidden target cell."""
    decisions = NASNET_SPACE.decisions()
    rng = random.Random(1000 + seed)
    target = [rng.randrange(d.choices) for d in decisions]
    if options is None:  # a larger step than the paper's 0.00035, which is tuned for 20,000 samples
        options = {} if strategy == "random" else {"lr": 0.01}
    policy = make_strategy(strategy, NASNET_SPACE, seed, **options)
    rewards = []
    for _ in range(samples):
        sample = policy.sample()
        reward = sum(a == b for a, b in zip(sample.choices, target, strict=True)) / len(target)
        rewards.append(reward)
        policy.observe(sample, reward)
    return statistics.mean(sorted(rewards)[-5:])


def test_ppo_beats_random_search_on_a_hidden_target() -> None:
    seeds = range(3)
    ppo = [top5_on_hidden_target("ppo", seed) for seed in seeds]
    rand = [top5_on_hidden_target("random", seed) for seed in seeds]
    assert all(p > r for p, r in zip(ppo, rand, strict=True)), (ppo, rand)
    assert statistics.mean(ppo) > statistics.mean(rand) + 0.05


def test_sampled_architectures_are_valid_cells() -> None:
    policy = make_strategy("ppo", NASNET_SPACE, 0)
    for step in range(50):
        genotype = NASNET_SPACE.decode(policy.sample().choices, name=f"step_{step}")
        text = nasc.format(genotype)
        assert nasc.parse(text) == genotype


# -- a real search ---------------------------------------------------------------------------------


def check_search_directory(out: Path, budget: int) -> list[dict]:
    ledger = read_ledger(out)
    assert len(ledger) == budget and len({row["step"] for row in ledger}) == budget
    files = sorted(p.relative_to(out).as_posix() for p in (out / "cells").glob("*.cell"))
    assert files == sorted(row["file"] for row in ledger)
    for row in ledger:
        genotype = nasc.load(out / row["file"])  # passes the checker
        assert nasc.structural_hash(genotype) == row["hash"]
        assert Path(row["file"]).name == f"{row['step']:05d}-{row['hash'][:8]}.cell"
        assert genotype.meta("step") == row["step"] and genotype.meta("status") == row["status"]
        if row["status"] in ("ok", "duplicate"):
            assert genotype.meta("reward") == pytest.approx(row["reward"], abs=1e-6)
        for key in (
            "strategy",
            "seed",
            "policy_version",
            "search_space_hash",
            "nasc_version",
            "training_budget",
        ):
            assert genotype.meta(key) is not None
    return ledger


@pytest.mark.slow
def test_a_real_search_on_digits_writes_checked_cells_matching_the_ledger(tmp_path) -> None:
    """PPO's (random search's runs end to end in the tests of duplicates and of the mnas objective),
    with the accuracy objective: each child's parameters and mult-adds are counted, nothing timed."""
    out = tmp_path / "ppo"
    summary = Search(tiny(out, strategy="ppo")).run(progress=False)
    ledger = check_search_directory(out, 3)
    assert summary["finished"] == 3 and summary["failed"] == 0
    assert all(0 <= row["reward"] <= 1 for row in ledger)
    for row in ledger:
        assert row["params"] > 0 and row["macs"] > 0 and row["latency_ms"] is None
        assert {"train", "evaluate", "build", "data", "write"} <= set(row["timings"])
    refused = CliRunner().invoke(main, ["top", str(out), "--pareto"])
    assert refused.exit_code == 1 and "measured no latency" in refused.stderr
    assert (out / "rewards.png").read_bytes()[:4] == b"\x89PNG"
    best = max(ledger, key=lambda r: r["reward"])
    assert (out / "best.cell").read_text() == (out / best["file"]).read_text()
    result = CliRunner().invoke(main, ["top", str(out), "-k", "2"])
    assert result.exit_code == 0 and f"{best['reward']:8.4f}" in result.stdout.splitlines()[1]


def test_duplicates_are_trained_once_and_counted(tmp_path) -> None:
    # A space with few architectures: identity only, add only, one block.
    out = tmp_path / "dup"
    config = tiny(out, strategy="random", budget=6, num_blocks=1, ops=("identity",), combines=("add",))
    summary = Search(config).run(progress=False)
    ledger = check_search_directory(out, 6)
    distinct = {row["hash"] for row in ledger}
    assert summary["trained"] == len(distinct) < 6
    assert summary["duplicates"] == 6 - len(distinct)
    first = {row["hash"]: row for row in reversed(ledger) if row["status"] == "ok"}
    for row in ledger:
        if row["status"] == "duplicate":
            assert (
                row["reward"] == first[row["hash"]]["reward"]
                and row["duplicate_of"] == first[row["hash"]]["step"]
            )


@pytest.mark.slow
def test_ray_executor_runs_the_same_search(tmp_path) -> None:
    pytest.importorskip("ray")
    local = Search(tiny(tmp_path / "local", budget=1)).run(progress=False)
    with_ray = Search(tiny(tmp_path / "ray", budget=1, executor="ray")).run(progress=False)
    import ray

    ray.shutdown()
    assert with_ray["finished"] == local["finished"] == 1
    by_hash = {r["hash"]: r["reward"] for r in read_ledger(tmp_path / "local")}
    for row in check_search_directory(tmp_path / "ray", 1):
        assert row["reward"] == pytest.approx(by_hash[row["hash"]])  # children are deterministic


# -- failures ---------------------------------------------------------------------------------------


def test_failing_children_are_recorded_and_the_search_completes(tmp_path) -> None:
    out = tmp_path / "failing"
    summary = Search(tiny(out, dataset="cifar10", data_dir=str(tmp_path / "no-such-data"))).run(
        progress=False
    )
    assert summary["finished"] == 3 and summary["failed"] == 3 and summary["best_reward"] is None
    for row in check_search_directory(out, 3):
        assert row["status"] == "failed" and "DataError" in row["reason"]
        assert nasc.load(out / row["file"]).meta("reason").startswith("DataError")


def test_a_child_whose_worker_dies_is_reported_as_failed() -> None:
    executor = LocalExecutor(workers=1)
    text = nasc.format(NASNET_SPACE.sample(random.Random(0), "victim"))
    executor.submit(ChildJob(7, text, "h", "digits", None, 1, 2, 50, 32, 0, 1))
    worker = executor.running[7]
    time.sleep(1.0)
    os.kill(worker.process.pid, signal.SIGKILL)
    results = []
    while not results:
        results = executor.wait(timeout=30)
    executor.shutdown()
    assert results == [
        {
            "step": 7,
            "status": "failed",
            "seconds": 0.0,
            "reason": "the worker died (exit code -9)",
            "died": True,
        }
    ]


def test_search_space_options_are_checked() -> None:
    result = CliRunner().invoke(main, ["search", "--ops", "sep_conv_3x3,warp_drive", "--out", "/tmp/never"])
    assert result.exit_code == 2 and "warp_drive" in result.stderr


def test_a_restored_controller_samples_what_the_original_would_have() -> None:
    original = make_strategy("ppo", NASNET_SPACE, 3)
    for step in range(25):  # past one update, mid-way through a drawn batch
        sample = original.sample()
        original.observe(sample, step / 25)
    restored = make_strategy("ppo", NASNET_SPACE, 99)
    saved = io.BytesIO(serialize(original.state_dict()))  # as state.pt stores it
    restored.load_state_dict(torch.load(saved, weights_only=True))
    for _ in range(30):
        a, b = original.sample(), restored.sample()
        assert a == b
        original.observe(a, 0.5)
        restored.observe(b, 0.5)


def test_reward_curves_are_the_top_k_means_of_distinct_architectures() -> None:
    from nasc.runtime.plots import reward_curves

    rng = random.Random(0)
    ledger = [
        {
            "status": rng.choice(["ok", "ok", "ok", "failed", "duplicate"]),
            "hash": f"h{rng.randrange(60)}",
            "reward": rng.random(),
        }
        for _ in range(300)
    ]
    xs, curves = reward_curves(ledger)
    first = {}
    for count, row in enumerate(ledger, start=1):  # brute force: every prefix, sorted
        if row["status"] == "ok":
            first.setdefault(row["hash"], row["reward"])
        if first:
            ranked = sorted(first.values(), reverse=True)
            index = xs.index(count)
            for k in (1, 5, 25):
                assert curves[k][index] == pytest.approx(statistics.mean(ranked[:k]))
    assert xs[-1] == 300


def _wait_for_ledger(out: Path, rows: int, process: subprocess.Popen) -> None:
    deadline = time.time() + 300
    while time.time() < deadline and process.poll() is None:
        ledger = out / "ledger.jsonl"
        if ledger.exists() and len(ledger.read_text().splitlines()) >= rows:
            return
        time.sleep(0.2)
    raise AssertionError(f"the search did not finish {rows} children in time")


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # as under nohup, or in a background job


@pytest.mark.slow
def test_a_stopped_or_killed_search_resumes_wherever_it_is_with_every_finished_result_once(tmp_path) -> None:
    """Evolution, whose state (population, ages, seeds, RNG) is the most to lose, stopped three ways:
    SIGTERM to the whole process group, as `timeout` and batch schedulers send it (the workers leave
    it to the search, so the children they were training stay pending, not failed); Ctrl-C under an
    inherited ignored SIGINT, as under nohup; SIGKILL of the group, with no chance to clean up.
    The controller's state: test_a_restored_controller_samples_what_the_original_would_have."""
    out, budget = tmp_path / "stopped", 5
    strategy = ["--strategy", "evolution", "--population", "3", "--sample", "2", "--budget", str(budget)]
    # cells of two blocks: their children train in half the time, and stops are the subject here
    strategy += ["--blocks", "2"]
    start = [sys.executable, "-m", "nasc", "search", *strategy, *TINY_ARGS, "--out", str(out)]
    resume = [sys.executable, "-m", "nasc", "search", "--resume", str(out)]
    stops = [
        (start, signal.SIGTERM, "SIGTERM", None),
        (resume, signal.SIGINT, "Ctrl-C", _ignore_sigint),
        (resume, signal.SIGKILL, None, None),
    ]
    kept: dict[int, dict] = {}
    for argv, signum, name, setup in stops:
        process = subprocess.Popen(
            argv,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=setup,
            start_new_session=True,
        )
        _wait_for_ledger(out, len(kept) + 1, process)
        if signum == signal.SIGINT:
            process.send_signal(signum)
        else:
            os.killpg(process.pid, signum)
        _, err = process.communicate(timeout=120)
        if name is not None:
            assert process.returncode == 130, err
            assert f"{name}: stopped with" in err and f"Continue with: nasc search --resume {out}" in err
            assert "Traceback" not in err
            # output that is not a terminal gets one plain line per finished child, with an ETA
            assert any(f"/{budget}] step" in line and "ETA" in line for line in err.splitlines())
        rows = {row["step"]: row for row in read_ledger(out)}
        assert all(rows[step] == row for step, row in kept.items())  # nothing finished lost or redone
        kept = rows
    assert len(kept) < budget
    _finish_then_copy_and_move(out, budget, kept)


def _finish_then_copy_and_move(out: Path, budget: int, kept: dict[int, dict]) -> None:
    """The stopped search resumed to its end in a process of its own, which leaves no process of its
    group behind (fork server, trackers); then a copy with one more child trains it into the copy,
    leaving the original untouched, and a moved one resumes (nothing absolute was stored)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "nasc", "search", "--resume", str(out)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 0 and f"{budget} finished" in stdout, stderr
    with pytest.raises(ProcessLookupError):
        os.killpg(process.pid, 0)
    after = {row["step"]: row for row in check_search_directory(out, budget)}
    assert all(after[step] == row for step, row in kept.items())
    assert all(row["status"] == "ok" for row in after.values())
    assert "out" not in json.loads((out / "search.json").read_text())
    copy = out.parent / "copy"
    shutil.copytree(out, copy)
    settings = json.loads((copy / "search.json").read_text())
    (copy / "search.json").write_text(json.dumps({**settings, "budget": budget + 1}))
    before = {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    result = CliRunner().invoke(main, ["search", "--resume", str(copy)])
    assert result.exit_code == 0, result.stderr
    assert len((copy / "ledger.jsonl").read_text().splitlines()) == budget + 1
    assert {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    moved = out.parent / "moved"
    out.rename(moved)
    ledger = (moved / "ledger.jsonl").read_text()
    result = CliRunner().invoke(main, ["search", "--resume", str(moved)])  # finished: nothing to do
    assert result.exit_code == 0 and (moved / "ledger.jsonl").read_text() == ledger, result.stderr
    again = CliRunner().invoke(main, ["search", "--out", str(moved), "--budget", "2"])
    assert again.exit_code == 1 and "already holds a search" in again.stderr
