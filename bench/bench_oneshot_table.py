"""The one-shot strategies on digits against random cells and the multi-trial searches (issue: the
README's one-shot table). A long job, resumable: every finished piece is a line of OUT (JSONL) and a
rerun skips what OUT holds.

1. search: darts and gdas on spaces/darts.space, enas and spos on spaces/enas.space, each a
   `nasc search` on a 5-cell supernet of C = 8 given about five minutes of this machine (SETTINGS:
   the epochs that fill them; their wall and CPU seconds kept);
   then evolution (population 20, tournaments of 5), PPO and random search on spaces/enas.space,
   each stopped (SIGTERM, finished children kept) after the median wall time of the one-shot
   searches, its best child by the search's own reward the cell it found.
2. retrain: each found cell and 20 random cells of each space (compiler/space.random_cell),
   3 seeds each, trained alike as the multi-trial searches train their children
   (runtime/search/child.py: N = 1, F = 4, 8 epochs, batch 32); the test accuracy kept.
3. nb201: the four strategies on spaces/nb201.space, their derived cells looked up in the
   NAS-Bench-201 table nasc built on digits (benchmarks/nb201-digits.jsonl), as the NAS-Bench-201
   paper scores DARTS, GDAS and ENAS: the test accuracy, and the share of the table below it.

    python bench/bench_oneshot_table.py run [--out benchmarks/oneshot-digits.jsonl] [--workers 2]
    python bench/bench_oneshot_table.py report [--out ...]   # the README's table
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ONESHOT = {"darts": "darts", "gdas": "darts", "enas": "enas", "spos": "enas"}
# An epoch of digits is 11 weight steps at batch 64 (half the training set); a DARTS epoch takes
# ~29 s here, one of GDAS ~5 s (one path per step). ENAS's 30 controller updates of 10 paths match
# its ~350 weight steps of a CIFAR epoch; against 11 they would be ~90 % of the search, so the
# controller takes 5 (its ratio to the weight steps still 5x ENAS's). SPOS's evolution after
# training costs ~0.6 s a cycle here, so 200 cycles (population 50) instead of 500.
SETTINGS = {
    "darts": ["--epochs", "10"],
    "gdas": ["--epochs", "60"],
    "enas": ["--epochs", "50", "--controller-steps", "5"],
    "spos": ["--epochs", "30", "--spos-cycles", "200"],
}
MULTI_TRIAL = {"evolution": ["--population", "20", "--sample", "5"], "ppo": [], "random": []}
RANDOM_CELLS = 20
SEEDS = (0, 1, 2)
RETRAIN = {"cells": 1, "filters": 4, "epochs": 8, "batch_size": 32}


def read_rows(out: Path) -> list[dict]:
    if not out.exists():
        return []
    rows = []
    for line in out.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:  # a line cut by a kill: that piece runs again
            continue
    return rows


def append(out: Path, row: dict) -> None:
    with out.open("a") as handle:
        handle.write(json.dumps(row) + "\n")


def timed(argv: list[str], seconds: float | None, threads: int) -> tuple[float, float]:
    """Run a command, stopped by SIGTERM after `seconds` (a search then keeps every finished child
    and stops its workers); its wall and CPU seconds, its workers' included."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL)
    try:
        code = process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGTERM)
        code = process.wait()
    else:
        if code:
            raise subprocess.CalledProcessError(code, argv)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return time.monotonic() - started, cpu


def oneshot_search(strategy: str, runs: Path, threads: int) -> dict:
    out = runs / strategy
    shutil.rmtree(out, ignore_errors=True)
    argv = [sys.executable, "-m", "nasc", "search", "--strategy", strategy]
    argv += ["--space", str(ROOT / "spaces" / f"{ONESHOT[strategy]}.space"), *SETTINGS[strategy]]
    argv += ["--layers", "5", "--init-channels", "8", "--batch-size", "64", "--out", str(out)]
    wall, cpu = timed(argv, None, threads)
    row = {"kind": "search", "strategy": strategy, "space": ONESHOT[strategy], "wall_s": wall, "cpu_s": cpu}
    return {**row, "cell": (out / "best.cell").read_text()}


def multi_trial_search(strategy: str, runs: Path, seconds: float, threads: int) -> dict:
    from nasc.runtime.search import read_ledger

    out = runs / strategy
    shutil.rmtree(out, ignore_errors=True)
    argv = [sys.executable, "-m", "nasc", "search", "--strategy", strategy, *MULTI_TRIAL[strategy]]
    argv += ["--space", str(ROOT / "spaces" / "enas.space"), "--budget", "100000", "--out", str(out)]
    wall, cpu = timed(argv, seconds, threads)
    finished = [row for row in read_ledger(out) if row.get("status") == "ok"]
    best = max(finished, key=lambda row: row["accuracy"], default=None)
    cell = (out / best["file"]).read_text() if best else None  # None: no child finished in time
    row = {"kind": "search", "strategy": strategy, "space": "enas", "wall_s": wall, "cpu_s": cpu}
    return {**row, "children": len(finished), "cell": cell}


def retrain(job: dict) -> dict:
    from nasc.compiler.api import parse
    from nasc.compiler.hashing import structural_hash
    from nasc.runtime.search.child import ChildJob, evaluate_child

    genotype = parse(job["cell"])
    child = ChildJob(
        0, job["cell"], structural_hash(genotype), "digits", None, **RETRAIN, seed=job["seed"], threads=1
    )
    child.record_epochs = True
    result = evaluate_child(child)
    last = result["epochs"][-1] if result.get("epochs") else {}
    return {
        "kind": "retrain",
        "source": job["source"],
        "space": job["space"],
        "seed": job["seed"],
        "status": result["status"],
        "val_accuracy": result.get("accuracy"),
        "test_accuracy": last.get("test_accuracy"),
        "seconds": result.get("seconds"),
    }


def retrain_jobs(rows: list[dict]) -> list[dict]:
    from nasc.compiler.api import format, load_space
    from nasc.compiler.space import random_cell

    cells = {
        (row["strategy"], row["space"]): row["cell"]
        for row in rows
        if row["kind"] == "search" and row["cell"]
    }
    for space in ("darts", "enas"):
        loaded = load_space(ROOT / "spaces" / f"{space}.space")
        for index in range(RANDOM_CELLS):
            cells[(f"random-{index:02d}", space)] = format(random_cell(loaded, random.Random(index)))
    done = {(row["source"], row["space"], row["seed"]) for row in rows if row["kind"] == "retrain"}
    return [
        {"source": source, "space": space, "seed": seed, "cell": cell}
        for (source, space), cell in cells.items()
        for seed in SEEDS
        if (source, space, seed) not in done
    ]


def nb201_search(strategy: str, runs: Path, threads: int, table_path: Path) -> dict:
    """A search of NAS-Bench-201's space, its derived cell answered by the table."""
    from nasc.compiler.api import load
    from nasc.compiler.nb201_format import write_nb201
    from nasc.runtime.tabular import Table, TableError

    out = runs / f"{strategy}-nb201"
    shutil.rmtree(out, ignore_errors=True)
    argv = [sys.executable, "-m", "nasc", "search", "--strategy", strategy, *SETTINGS[strategy]]
    argv += ["--space", str(ROOT / "spaces" / "nb201.space"), "--layers", "5", "--init-channels", "8"]
    wall, cpu = timed([*argv, "--batch-size", "64", "--out", str(out)], None, threads)
    architecture = write_nb201(load(out / "best.cell"))
    table = Table.load(table_path)
    row = {"kind": "nb201", "strategy": strategy, "wall_s": wall, "cpu_s": cpu, "arch": architecture}
    try:
        accuracy = table.query(architecture)
    except TableError:  # the table is still being built: the row says so
        return {**row, "test_accuracy": None, "below": None}
    below = float((table.metric("test_accuracy") < accuracy).mean())
    return {**row, "test_accuracy": accuracy, "below": below, "table_rows": len(table)}


def run(out: Path, runs: Path, workers: int, threads: int) -> None:
    rows = read_rows(out)
    searched = {row["strategy"] for row in rows if row["kind"] == "search"}
    for strategy in ONESHOT:
        if strategy not in searched:
            print(f"search {strategy} ...", flush=True)
            append(out, {**oneshot_search(strategy, runs, threads), "settings": SETTINGS[strategy]})
    rows = read_rows(out)
    seconds = statistics.median(
        r["wall_s"] for r in rows if r["kind"] == "search" and r["strategy"] in ONESHOT
    )
    for strategy in MULTI_TRIAL:
        if strategy not in searched:
            print(f"search {strategy} for {seconds:.0f} s ...", flush=True)
            append(out, multi_trial_search(strategy, runs, seconds, threads))
    jobs = retrain_jobs(read_rows(out))
    print(f"retrain {len(jobs)} cells ...", flush=True)
    with ProcessPoolExecutor(workers) as pool:
        for row in pool.map(retrain, jobs):
            append(out, row)
            print(f"  {row['source']} {row['space']} seed {row['seed']}: {row['test_accuracy']}", flush=True)
    # Last, so that the table has grown as far as it will; a lookup that missed reruns.
    looked_up = {row["strategy"] for row in read_rows(out) if row["kind"] == "nb201" and row["test_accuracy"]}
    table = ROOT / "benchmarks" / "nb201-digits.jsonl"
    for strategy in ONESHOT:
        if strategy not in looked_up:
            print(f"search {strategy} on nb201 ...", flush=True)
            append(out, {**nb201_search(strategy, runs, threads, table), "settings": SETTINGS[strategy]})


def report(out: Path) -> None:
    rows = read_rows(out)
    latest = {row["strategy"]: row for row in rows if row["kind"] == "nb201"}  # a rerun lookup replaces
    report_nb201(list(latest.values()))
    report_retrained(rows)


def report_nb201(rows: list[dict]) -> None:
    print("| strategy on nb201.space | settings | search (min) | derived cell | table test accuracy ", end="")
    print("| share below |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        found = row["test_accuracy"]
        accuracy = "not in the table yet" if found is None else f"{found:.4f}"
        below = "—" if row["below"] is None else f"{100 * row['below']:.1f} %"
        arch = row["arch"].replace("|", "\\|")  # a Markdown cell
        settings = " ".join(row["settings"])
        minutes = row["wall_s"] / 60
        print(f"| {row['strategy']} | `{settings}` | {minutes:.1f} | `{arch}` | {accuracy} | {below} |")


def report_retrained(rows: list[dict]) -> None:
    trained: dict[tuple[str, str], list[float]] = {}
    for row in rows:
        if row["kind"] == "retrain" and row["status"] == "ok":
            trained.setdefault((row["source"], row["space"]), []).append(row["test_accuracy"])
    medians = {}
    for space in ("darts", "enas"):
        means = [
            statistics.mean(scores)
            for (source, of), scores in trained.items()
            if of == space and source.startswith("random-")
        ]
        if means:
            medians[space] = statistics.median(means)
            print(
                f"random cells of {space}.space: {len(means)}; their 3-seed means {min(means):.4f} "
                f"(worst), {medians[space]:.4f} (median), {max(means):.4f} (best)"
            )
    print(
        "| strategy | settings | space | search wall (min) | search CPU-min "
        "| retrained test accuracy (3 seeds) | ≥ random median |"
    )
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        if row["kind"] != "search":
            continue
        scores = trained.get((row["strategy"], row["space"]), [])
        shown = f"{statistics.mean(scores):.4f} ± {statistics.pstdev(scores):.4f}" if scores else "—"
        above = "yes" if scores and statistics.mean(scores) >= medians.get(row["space"], 2) else "no"
        settings = " ".join(row.get("settings", MULTI_TRIAL.get(row["strategy"], [])))
        settings = f"`{settings}`" if settings else "defaults"
        print(
            f"| {row['strategy']} | {settings} | {row['space']} | {row['wall_s'] / 60:.1f} | "
            f"{row['cpu_s'] / 60:.1f} | {shown} | {above if scores else '—'} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["run", "report"])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "oneshot-digits.jsonl")
    parser.add_argument("--runs", type=Path, default=ROOT / "runs" / "bench-oneshot")
    parser.add_argument("--workers", type=int, default=2, help="retraining processes")
    parser.add_argument("--threads", type=int, default=2, help="each search's threads")
    args = parser.parse_args()
    if args.command == "run":
        run(args.out, args.runs, args.workers, args.threads)
    report(args.out)


if __name__ == "__main__":
    main()
