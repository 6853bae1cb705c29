"""Search strategies compared on a tabular benchmark (nasc bench build): each strategy replayed over
many seeds at equal simulated cost, the field's figure drawn — test-accuracy regret (the table's best
minus the best-so-far's, the best chosen by validation accuracy) against simulated training time,
mean with a 95 % band, one line per strategy.

    python bench/compare_tabular.py [TABLE] [--seeds 20] [--budget-children 150] [--out FIGURE.png]
                                    [--fidelity-budget-children 500]

The budget is simulated seconds: `--budget-children` times the table's median training time. Then
multi-fidelity: how well early epochs rank the final accuracies, and the epochs random sampling
needs under ASHA and Hyperband (runtime/multifidelity.py) to reach a top-1 % architecture, against
random search at full fidelity, within `--fidelity-budget-children` full trainings' epochs.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from nasc.runtime.replay import regret_curves
from nasc.runtime.tabular import Table

STRATEGIES = ["random", "evolution", "reinforce", "ppo"]
SCHEDULERS = ["none", "asha", "hyperband"]


def plot(curves: dict[str, np.ndarray], out: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4.2))
    times = curves["times"] / 3600
    for strategy in STRATEGIES:
        runs = curves[strategy]
        mean = np.nanmean(runs, axis=0)
        band = 1.96 * np.nanstd(runs, axis=0) / np.sqrt(np.sum(~np.isnan(runs), axis=0).clip(1))
        axes.plot(times, mean, label=strategy)
        axes.fill_between(times, mean - band, mean + band, alpha=0.2)
    axes.set_xlabel("simulated training time (hours)")
    axes.set_ylabel("test regret (best in table − best found)")
    axes.set_yscale("log")
    axes.set_title(title)
    axes.legend()
    figure.tight_layout()
    figure.savefig(out, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("table", nargs="?", default="benchmarks/nb201-digits.jsonl")
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--budget-children", type=float, default=150)
    parser.add_argument("--out", default="docs/regret_nb201_digits.png")
    parser.add_argument("--fidelity-budget-children", type=float, default=500, help="multi-fidelity budget")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)  # the controllers' small LSTMs: more threads only spin
    table = Table.load(args.table)
    budget = args.budget_children * float(np.median(table.training_seconds()))
    started = time.perf_counter()
    curves = regret_curves(table, STRATEGIES, args.seeds, budget, points=60, population=20, sample=5)
    seconds = time.perf_counter() - started
    print(f"{len(STRATEGIES)} strategies × {args.seeds} seeds replayed in {seconds:.1f} s")
    for strategy in STRATEGIES:
        final = curves[strategy][:, -1]
        print(
            f"  {strategy:10s} final regret {np.mean(final):.4f} "
            f"± {1.96 * np.std(final) / np.sqrt(len(final)):.4f} (95 %)"
        )
    header = table.header
    plot(curves, args.out, f"{header['space']} on {header['dataset']}, {args.seeds} seeds")
    print(f"wrote {args.out}")
    compare_fidelities(table, args.seeds, int(args.fidelity_budget_children * table.epochs))


def compare_fidelities(table: Table, seeds: int, budget_epochs: int) -> None:
    """Epochs to a top-1 % architecture: random sampling under ASHA and Hyperband against random
    search that trains every architecture fully; the top 1 % by the table's final test accuracy (what
    generalizes) and by its final validation accuracy (what a search sees and chooses by). First,
    how well each epoch's validation accuracy ranks the final ones: what a pruner has to go on."""
    from scipy.stats import spearmanr

    from nasc.runtime.multifidelity import TableFidelity, epochs_to_reach, search

    final_val, final_test = table.metric("val_accuracy"), table.metric("test_accuracy")
    print("Spearman rank correlation of epoch e's validation accuracy with the final validation / test:")
    for epoch in range(1, table.epochs + 1):
        early = table.metric("val_accuracy", epoch)
        val, test = spearmanr(early, final_val).correlation, spearmanr(early, final_test).correlation
        print(f"  epoch {epoch}: {val:.2f} / {test:.2f}")
    fidelity = TableFidelity(table)
    runs = {s: [search(fidelity, s, seed, budget_epochs) for seed in range(seeds)] for s in SCHEDULERS}
    for by, final in (("test", final_test), ("val", final_val)):
        top = float(np.quantile(final, 0.99))
        print(
            f"epochs until the incumbent is a top-1 % architecture by {by} accuracy (>= {top:.4f}), "
            f"median of {seeds} seeds, budget {budget_epochs} epochs:"
        )
        for scheduler, group in runs.items():
            reached = [epochs_to_reach(run, top, by) for run in group]
            stopped = np.mean([run.stopped / max(1, run.stopped + run.completed) for run in group])
            print(
                f"  {scheduler:10s} {np.median(reached):8.0f} epochs "
                f"({sum(np.isfinite(reached))}/{seeds} reached; {stopped:.0%} stopped early)"
            )


if __name__ == "__main__":
    main()
