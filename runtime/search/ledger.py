"""The search directory's JSON-lines files (ledger.jsonl, references.jsonl), read back as data:
a row nasc did not write is left out; `nasc top` and the Pareto front read them."""

from __future__ import annotations

import contextlib
import json
import os
import re
from pathlib import Path

from nasc.runtime.objectives import pareto_front
from nasc.runtime.search.settings import SearchError, is_number


def read_ledger(out: str | os.PathLike[str]) -> list[dict]:
    """The ledger's rows that have the shape nasc writes; a line cut short by a kill (or anything
    else) is left out. The ledger is read back from a directory that may not be the user's own, so
    a row's cell file is where nasc puts it, never a path taken from the row."""
    path = Path(out) / "ledger.jsonl"
    if not Path(out).exists():
        raise SearchError(f"no such directory: {out}")
    if not Path(out).is_dir():
        raise SearchError(f"{out} is not a directory (nasc top reads a search's --out directory)")
    if not path.is_file():
        raise SearchError(f"{out} holds no search (no ledger.jsonl)")
    return [row for row in _json_lines(path) if _well_formed(row)]


STATUSES = ("ok", "duplicate", "failed")
HEX = re.compile("[0-9a-f]{8,128}")


def _well_formed(row: dict) -> bool:
    step, digest = row.get("step"), row.get("hash")
    if not (isinstance(step, int) and step >= 0 and isinstance(digest, str) and HEX.fullmatch(digest)):
        return False
    numbers = ("reward", "accuracy", "latency_ms", "params", "macs")
    return (
        row.get("status") in STATUSES
        and row.get("file") == cell_file(step, digest)
        and all(row.get(key) is None or is_number(row[key]) for key in numbers)
    )


def cell_file(step: int, digest: str) -> str:
    """Where a child's cell is, relative to the search directory."""
    return f"cells/{step:05d}-{digest[:8]}.cell"


def _json_lines(path: Path) -> list[dict]:
    rows = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            row = json.loads(line)
            if isinstance(row, dict):
                rows.append(row)
    return rows


def append_line(path: Path, row: dict) -> None:
    """One JSON line, flushed and fsynced: a killed search keeps every line it finished."""
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(row) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def read_references(out: str | os.PathLike[str]) -> list[dict]:
    """The --reference cells evaluated so far (references.jsonl), one row each."""
    path = Path(out) / "references.jsonl"
    if not path.is_file():
        return []
    return [row for row in _json_lines(path) if isinstance(row.get("file"), str)]


def pareto(out: str | os.PathLike[str]) -> list[dict]:
    """The accuracy-latency front of a search, fastest first."""
    rows = read_ledger(out)
    if not any(row.get("latency_ms") is not None for row in rows):
        raise SearchError(
            f"{out} measured no latency: run the search with --objective mnas|pareto or --latency onnx"
        )
    return pareto_front(rows)


def top(out: str | os.PathLike[str], k: int = 10) -> list[dict]:
    """The k best distinct architectures of a search, with how often each was sampled."""
    rows = read_ledger(out)
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["hash"]] = counts.get(row["hash"], 0) + 1
    best = sorted((r for r in rows if r["status"] == "ok"), key=lambda r: (-r["reward"], r["step"]))
    return [{**row, "times_sampled": counts[row["hash"]]} for row in best[:k]]
