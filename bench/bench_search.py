"""Search benchmarks (on demand):

    python bench/bench_search.py overhead             # controller + printing cost per architecture
    python bench/bench_search.py throughput           # children/hour: local 1 and 2 workers, Ray 2
    python bench/bench_search.py compare --budget 300 # PPO vs random on digits, Figure-6 style plot

Each search runs with the same seed and proxy task; figures are printed, plots written to --out.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import nasc
from nasc.compiler.hashing import structural_hash
from nasc.compiler.space import NASNET_SPACE
from nasc.runtime.strategies import make_strategy
from nasc.runtime.plots import pyplot, reward_curves, save_figure
from nasc.runtime.search import Search, SearchConfig, read_ledger


def overhead(samples: int = 2000) -> None:
    for name in ("ppo", "random"):
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


def throughput(out: Path, children: int, epochs: int, filters: int) -> None:
    common = {"budget": children, "strategy": "random", "proxy_epochs": epochs, "proxy_filters": filters}
    rates = {}
    for label, options in (
        ("local, 1 worker", {"workers": 1}),
        ("local, 2 workers", {"workers": 2}),
        ("ray, 2 workers", {"workers": 2, "executor": "ray"}),
    ):
        try:
            summary, seconds = run_search(
                out / label.replace(", ", "-").replace(" ", ""), **common, **options
            )
        except Exception as error:  # Ray missing, say
            print(f"{label:18s} skipped: {error}")
            continue
        rates[label] = summary["finished"] / seconds * 3600
        print(f"{label:18s} {rates[label]:7.0f} children/h ({summary['finished']} in {seconds:.0f} s)")
    if "local, 1 worker" in rates:
        for label in ("local, 2 workers", "ray, 2 workers"):
            if label in rates:
                print(f"  scaling efficiency {label}: {rates[label] / (2 * rates['local, 1 worker']):.0%}")
    try:
        import ray

        ray.shutdown()
    except ImportError:
        pass


def compare(out: Path, budget: int, epochs: int, filters: int, workers: int, lr: float) -> None:
    figure, axis = pyplot().subplots(figsize=(7, 4.5))
    for strategy, colour in (("ppo", "tab:red"), ("random", "tab:blue")):
        summary, seconds = run_search(
            out / strategy,
            strategy=strategy,
            budget=budget,
            workers=workers,
            proxy_epochs=epochs,
            proxy_filters=filters,
            controller_lr=lr,
        )
        xs, curves = reward_curves(read_ledger(out / strategy))
        for k, style in ((1, "-"), (5, "--"), (25, ":")):
            axis.plot(xs, curves[k], style, color=colour, label=f"{strategy} top-{k}")
        print(
            f"{strategy:7s} {summary['finished']} finished in {seconds / 60:.1f} min "
            f"({summary['trained']} trained, {summary['duplicates']} duplicates, "
            f"{summary['failed']} failed): "
            f"best {curves[1][-1]:.4f}, top-5 mean {curves[5][-1]:.4f}, top-25 mean {curves[25][-1]:.4f}"
        )
    axis.set(
        xlabel="models sampled",
        ylabel="validation accuracy (digits proxy)",
        title="PPO controller vs random search (cf. the paper's Figure 6)",
    )
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    save_figure(figure, out / "ppo_vs_random.png", dpi=110)
    print(f"plot: {out / 'ppo_vs_random.png'}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=["overhead", "throughput", "compare"])
    parser.add_argument("--out", type=Path, default=Path("runs/bench-search"))
    parser.add_argument("--budget", type=int, default=300)
    parser.add_argument("--children", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--filters", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--controller-lr", type=float, default=0.003)
    args = parser.parse_args()
    if args.what == "overhead":
        overhead()
    elif args.what == "throughput":
        throughput(args.out, args.children, args.epochs, args.filters)
    else:
        compare(args.out, args.budget, args.epochs, args.filters, args.workers, args.controller_lr)


if __name__ == "__main__":
    main()
