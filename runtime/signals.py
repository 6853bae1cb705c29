"""Stopping long jobs cleanly on Ctrl-C (SIGINT) and on SIGTERM, what SLURM, Kubernetes and
`timeout` send.

The first signal asks the job to stop at its next safe point (a training step boundary; between
search results) and save what `--resume` needs; a second one interrupts at once. The handlers are
installed whatever disposition the process inherited: under `nohup`, in a background job or a CI
runner SIGINT starts out ignored, and a job that relied on Python's default handler would then never
stop cleanly.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
NAMES = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM"}


@contextlib.contextmanager
def stop_requests(on_request: Callable[[str], None]) -> Iterator[None]:
    """While inside, the first SIGINT/SIGTERM calls `on_request(name)`; the second raises
    KeyboardInterrupt. Only the main thread can own signals; elsewhere this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    requested = {"count": 0}

    def handler(signum: int, _frame) -> None:
        requested["count"] += 1
        if requested["count"] > 1:
            raise KeyboardInterrupt
        on_request(NAMES.get(signum, f"signal {signum}"))

    previous = {number: signal.signal(number, handler) for number in STOP_SIGNALS}
    try:
        yield
    finally:
        for number, old in previous.items():
            signal.signal(number, old)


def interrupt_on_sigterm() -> None:
    """Until a job installs its own handlers, SIGTERM interrupts like Ctrl-C does (KeyboardInterrupt:
    the CLI says "interrupted" and exits 130), rather than ending the process silently with 143
    while it is still importing torch or loading data."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise_interrupt)


def _raise_interrupt(_signum: int, _frame) -> None:
    raise KeyboardInterrupt
