"""Search benchmarks (on demand):

    python bench/bench_search.py overhead              # strategy + printing cost per architecture
    python bench/bench_search.py breakdown             # where a child's time goes; 1 vs 2 workers
    python bench/bench_search.py compare --budget 300  # PPO, evolution, random: Figure-6 style plot
    python bench/bench_search.py plot DIR...           # the same plot and figures from finished runs

breakdown: the same children (random search, seed 0, digits, 1 epoch) with a fresh process per
child (`--recycle-every 1`: how every child ran before warm workers) and with warm workers, on 1
and 2 local workers and on 2 Ray actors. It prints the mean seconds per child in each phase, the
share of the workers' wall time spent in the training and evaluation loops (workers × wall time
of the search as the denominator, so the parent's own work and any idling count against it), and
children per hour.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import time
from pathlib import Path

import nasc
from nasc.compiler.hashing import structural_hash
from nasc.compiler.space import NASNET_SPACE
from nasc.runtime.plots import pyplot, reward_curves, save_figure
from nasc.runtime.search import Search, SearchConfig, read_ledger
from nasc.runtime.strategies import make_strategy

PHASES = ("wait", "imports", "data", "build", "train", "evaluate", "run", "count", "latency", "write")
COLOURS = {"ppo": "tab:red", "evolution": "tab:green", "random": "tab:blue", "reinforce": "tab:orange"}


def overhead(samples: int = 2000) -> None:
    for name in ("ppo", "evolution", "random"):
        strategy = make_strategy(name, NASNET_SPACE, 0)
        timings = {"sample": 0.0, "decode+print+hash": 0.0, "observe (incl. PPO updates)": 0.0}
        for step in range(samples):
            t0 = time.perf_counter()
            sample = strategy.sample()
            t1 = time.perf_counter()
            genotype = NASNET_SPACE.decode(sample.choices, name=f"step_{step}")
            nasc.format(genotype)
            structural_hash(genotype)
            t2 = time.perf_counter()
            strategy.observe(sample, (step % 7) / 7)
            t3 = time.perf_counter()
            timings["sample"] += t1 - t0
            timings["decode+print+hash"] += t2 - t1
            timings["observe (incl. PPO updates)"] += t3 - t2
        total = sum(timings.values())
        parts = ", ".join(f"{k} {1e3 * v / samples:.2f}" for k, v in timings.items())
        print(f"{name:7s} {1e3 * total / samples:6.2f} ms per architecture ({parts})")


def run_search(out: Path, **changes) -> tuple[dict, float]:
    shutil.rmtree(out, ignore_errors=True)
    config = SearchConfig(out=str(out), **changes)
    started = time.perf_counter()
    summary = Search(config).run(progress=False)
    return summary, time.perf_counter() - started


def breakdown(out: Path, children: int, epochs: int, filters: int) -> None:
    common = {"budget": children, "strategy": "random", "proxy_epochs": epochs, "proxy_filters": filters}
    cases = (
        ("fresh process per child, 1 worker", {"workers": 1, "recycle_every": 1}),
        ("warm, 1 worker", {"workers": 1}),
        ("warm, 2 workers", {"workers": 2}),
        ("ray actors, 2 workers", {"workers": 2, "executor": "ray"}),
    )
    print(f"{children} children each; seconds per child by phase (mean):")
    print(
        f"  {'':36s}"
        + "".join(f"{phase:>9s}" for phase in PHASES)
        + f"{'loop share':>12s}{'children/h':>12s}"
    )
    rates = {}
    for label, options in cases:
        run = out / label.replace(", ", "-").replace(" ", "_")
        try:
            summary, seconds = run_search(run, **common, **options)
        except Exception as error:  # Ray missing, say
            print(f"  {label:36s} skipped: {error}")
            continue
        rows = [r for r in read_ledger(run) if r["status"] == "ok"]
        means = {p: statistics.mean(r["timings"].get(p, 0.0) for r in rows) for p in PHASES}
        loop = sum(r["timings"]["train"] + r["timings"]["evaluate"] for r in rows)
        share = loop / (options["workers"] * seconds)
        rates[label] = summary["finished"] / seconds * 3600
        print(
            f"  {label:36s}"
            + "".join(f"{means[p]:9.2f}" for p in PHASES)
            + f"{share:11.0%} {rates[label]:11.0f}"
        )
    one = rates.get("warm, 1 worker")
    for label in ("warm, 2 workers", "ray actors, 2 workers"):
        if one and label in rates:
            print(f"  {label}: {rates[label] / one:.2f}x one warm worker")
    try:
        import ray

        ray.shutdown()
    except ImportError:
        pass


def _figures(ledger: list[dict]) -> tuple[float, float, float]:
    """Best, top-5 mean of distinct architectures, and the mean reward of the last 40 children."""
    _, curves = reward_curves(ledger)
    last = [r["reward"] for r in ledger[-40:] if r.get("reward") is not None]
    return curves[1][-1], curves[5][-1], statistics.mean(last) if last else float("nan")


def plot(runs: list[Path], out: Path, models: int | None = None) -> None:
    """The Figure-6-style plot of finished runs (cut at `models`, by default the fewest any run
    finished, so that every strategy is compared at the same budget) and their figures."""
    ledgers = {run: read_ledger(run) for run in runs}
    for run in [run for run, ledger in ledgers.items() if not ledger]:
        print(f"{run}: no finished child, left out")
        del ledgers[run]
    if not ledgers:
        return
    models = models or min(len(ledger) for ledger in ledgers.values())
    figure, axis = pyplot().subplots(figsize=(7, 4.5))
    print(f"at {models} models sampled: best, top-5 mean, mean of the last 40")
    for run, ledger in ledgers.items():
        ledger = ledger[:models]
        strategy = nasc.load(run / ledger[0]["file"]).meta("strategy")
        xs, curves = reward_curves(ledger)
        colour = COLOURS.get(strategy)
        for k, style in ((1, "-"), (5, "--"), (25, ":")):
            axis.plot(xs, curves[k], style, color=colour, label=f"{strategy} top-{k}")
        best, top5, last40 = _figures(ledger)
        print(f"  {strategy:10s} {best:.4f}  {top5:.4f}  {last40:.4f}   ({run})")
    axis.set(
        xlabel="models sampled",
        ylabel="validation accuracy (digits proxy)",
        title="PPO vs aging evolution vs random search (cf. the paper's Figure 6)",
    )
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7, ncol=3)
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    save_figure(figure, out, dpi=110)
    print(f"plot: {out}")


def compare(
    out: Path, budget: int, epochs: int, filters: int, workers: int, lr: float, population: int, sample: int
) -> None:
    for strategy in ("ppo", "evolution", "random"):
        summary, seconds = run_search(
            out / strategy,
            strategy=strategy,
            budget=budget,
            workers=workers,
            proxy_epochs=epochs,
            proxy_filters=filters,
            controller_lr=lr,
            population=population,
            sample=sample,
        )
        print(f"{strategy:10s} {summary['finished']} finished in {seconds / 60:.1f} min")
    plot([out / s for s in ("ppo", "evolution", "random")], out / "strategies.png")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=["overhead", "breakdown", "compare", "plot"])
    parser.add_argument("runs", nargs="*", type=Path, help="plot: finished search directories")
    parser.add_argument("--out", type=Path, default=Path("runs/bench-search"))
    parser.add_argument("--budget", type=int, default=300)
    parser.add_argument("--models", type=int, help="plot: cut every run at this many models")
    parser.add_argument("--children", type=int, default=12)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--filters", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--controller-lr", type=float, default=0.003)
    parser.add_argument("--population", type=int, default=50, help="evolution's P for a short budget")
    parser.add_argument("--sample", type=int, default=10, help="evolution's S for a short budget")
    args = parser.parse_args()
    if args.what == "overhead":
        overhead()
    elif args.what == "breakdown":
        breakdown(args.out, args.children, args.epochs, args.filters)
    elif args.what == "plot":
        plot(args.runs, args.out / "strategies.png", args.models)
    else:
        compare(
            args.out,
            args.budget,
            args.epochs,
            args.filters,
            args.workers,
            args.controller_lr,
            args.population,
            args.sample,
        )


if __name__ == "__main__":
    main()
