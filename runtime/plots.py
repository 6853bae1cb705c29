"""The PNG plots runs write: training curves and the search's reward curves (the paper's Figure 6).
Written atomically, with matplotlib's non-interactive backend."""

from __future__ import annotations

import bisect
import io
from pathlib import Path

from nasc.fileio import atomic_write_bytes

TOP_K = (1, 5, 25)


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(figure, path: Path, dpi: int = 100) -> None:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    pyplot().close(figure)
    atomic_write_bytes(path, buffer.getvalue())


def reward_curves(
    ledger: list[dict], ks: tuple[int, ...] = TOP_K
) -> tuple[list[int], dict[int, list[float]]]:
    """For each count of models sampled (from the first trained one on): the mean reward of the top k
    distinct architectures so far. Keeps only the best max(ks) rewards, so a 20,000-row ledger costs
    20,000 small insertions, not 20,000 sorts."""
    keep = max(ks)
    best: list[float] = []  # ascending, at most `keep` long
    seen: set[str] = set()
    xs: list[int] = []
    curves: dict[int, list[float]] = {k: [] for k in ks}
    for count, row in enumerate(ledger, start=1):
        if row["status"] == "ok" and row["hash"] not in seen:
            seen.add(row["hash"])
            bisect.insort(best, row["reward"])
            del best[:-keep]
        if not best:
            continue
        xs.append(count)
        for k in ks:
            top = best[-k:]
            curves[k].append(sum(top) / len(top))
    return xs, curves


def plot_rewards(ledger: list[dict], path: Path, title: str) -> None:
    """Best, top-5 mean and top-25 mean distinct architectures vs models sampled."""
    xs, curves = reward_curves(ledger)
    figure, axis = pyplot().subplots(figsize=(7, 4.5))
    for k, values in curves.items():
        axis.plot(xs, values, label="best" if k == 1 else f"top-{k} mean")
    axis.set(xlabel="models sampled", ylabel="validation accuracy", title=title)
    axis.grid(alpha=0.3)
    axis.legend()
    figure.tight_layout()
    save_figure(figure, path)


def plot_curves(history: list[dict], path: Path, title: str) -> None:
    """Loss and accuracy per epoch, train and validation."""
    epochs = [row["epoch"] + 1 for row in history]
    figure, (loss_axis, accuracy_axis) = pyplot().subplots(1, 2, figsize=(10, 4))
    loss_axis.plot(epochs, [r["train_loss"] for r in history], label="train")
    loss_axis.plot(epochs, [r["val_loss"] for r in history], label="validation")
    loss_axis.set(xlabel="epoch", ylabel="loss", title="loss")
    accuracy_axis.plot(epochs, [r["train_accuracy"] for r in history], label="train")
    accuracy_axis.plot(epochs, [r["val_accuracy"] for r in history], label="validation")
    accuracy_axis.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    for axis in (loss_axis, accuracy_axis):
        axis.grid(alpha=0.3)
        axis.legend()
    figure.suptitle(title)
    figure.tight_layout()
    save_figure(figure, path)


def plot_pareto(
    ledger: list[dict], front: list[dict], references: list[dict], path: Path, title: str
) -> None:
    """Accuracy vs measured latency of every trained child, the front highlighted, and the
    --reference cells (trained and measured alike) as labelled points."""
    measured = [r for r in ledger if r["status"] == "ok" and r.get("latency_ms") is not None]
    figure, axis = pyplot().subplots(figsize=(7, 4.5))
    axis.scatter(
        [r["latency_ms"] for r in measured],
        [r["accuracy"] for r in measured],
        s=12,
        color="tab:gray",
        alpha=0.5,
        label=f"children ({len(measured)})",
    )
    if front:
        axis.step(
            [r["latency_ms"] for r in front],
            [r["accuracy"] for r in front],
            where="post",
            color="tab:red",
            marker="o",
            markersize=4,
            label=f"Pareto front ({len(front)})",
        )
    shown = [r for r in references if r.get("status") == "ok" and r.get("latency_ms") is not None]
    if shown:
        axis.scatter(
            [r["latency_ms"] for r in shown],
            [r["accuracy"] for r in shown],
            marker="*",
            s=90,
            color="tab:blue",
            label="published cells",
        )
        for row in shown:
            axis.annotate(
                row["name"],
                (row["latency_ms"], row["accuracy"]),
                fontsize=7,
                xytext=(4, 4),
                textcoords="offset points",
            )
    axis.set(xlabel="latency (ms, onnxruntime)", ylabel="validation accuracy", title=title)
    axis.title.set_fontsize(9)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    save_figure(figure, path)
