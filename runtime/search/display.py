"""What a running search shows: a live line on a terminal, one plain line per child elsewhere."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING

from nasc.runtime.progress import eta, format_duration

if TYPE_CHECKING:
    from nasc.runtime.search.loop import Search


class Display:
    """done/queued/failed, best reward and children per hour: live on a terminal, or one plain line
    per finished child (with elapsed time and ETA) where output goes to a file."""

    def __init__(self, search: Search, live: bool, lines: bool) -> None:
        from rich.live import Live

        self.search = search
        self.live = Live("", refresh_per_second=2, transient=False) if live else None
        self.lines = lines and not live

    def __enter__(self):
        if self.live:
            self.live.__enter__()
        return self

    def __exit__(self, *exc):
        if self.live:
            self.live.__exit__(*exc)

    def finished(self, row: dict, started: float, finished_at_start: int) -> None:
        if not self.lines:
            return
        config = self.search.config
        summary = self.search.summary()
        elapsed = time.perf_counter() - started
        done = summary["finished"] - finished_at_start
        reward = f"reward {row['reward']:.4f}" if row.get("reward") is not None else "no reward"
        best = f"{summary['best_reward']:.4f}" if summary["best_reward"] is not None else "–"
        print(
            f"[{summary['finished']}/{config.budget}] step {row['step']} {row['status']} {reward} · "
            f"best {best} · elapsed {format_duration(elapsed)} · "
            f"ETA {eta(elapsed, done, config.budget - summary['finished'])}",
            file=sys.stderr,
            flush=True,
        )

    def update(self, started: float, finished_at_start: int) -> None:
        if not self.live:
            return
        summary = self.search.summary()
        hours = max(time.perf_counter() - started, 1e-9) / 3600
        rate = (summary["finished"] - finished_at_start) / hours
        best = f"{summary['best_reward']:.4f}" if summary["best_reward"] is not None else "–"
        config = self.search.config
        self.live.update(
            f"[bold]{config.strategy}[/] · done {summary['finished']}/{config.budget} · "
            f"queued {summary['pending']} · failed {summary['failed']} · "
            f"duplicates {summary['duplicates']} · best {best} · {rate:,.0f} children/h"
        )
