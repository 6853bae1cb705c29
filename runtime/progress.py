"""Progress for long jobs: a live display on a terminal, plain lines (one per finished epoch or child,
with elapsed time and ETA) everywhere else: a log file, nohup, a CI runner."""

from __future__ import annotations


def format_duration(seconds: float) -> str:
    """12s, 3m05s, 2h07m."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def eta(elapsed: float, done: int, remaining: int) -> str:
    """Time left at the rate so far, or `?` before anything finished."""
    return format_duration(elapsed / done * remaining) if done > 0 else "?"
