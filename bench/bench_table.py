"""How fast a tabular benchmark loads: a table of N rows (default 15,625, NAS-Bench-201's size) at E
epochs, written in nasc's format with random metrics, then read with `Table.load`; wall time, the process's
peak resident set size before and after (the first load), and the peak of Python's allocations
while loading (tracemalloc, a second load).

    python bench/bench_table.py [--rows 15625] [--epochs 12]
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import tempfile
import time
import tracemalloc
from dataclasses import asdict
from pathlib import Path

from nasc.runtime.tabular import EPOCH_FIELDS, FORMAT, Table, TableSettings, space_architectures


def write_table(path: Path, rows: int, epochs: int) -> None:
    rng = random.Random(0)
    settings = TableSettings(epochs=epochs)
    archs = space_architectures("nb201")
    header = {"format": FORMAT, "space": "nb201", "dataset": "digits", "settings": asdict(settings)}
    with open(path, "w") as handle:
        handle.write(json.dumps({**header, "architectures": len(archs), "distinct": rows}) + "\n")
        for index in range(rows):
            curves = {name: [round(rng.random(), 6) for _ in range(epochs)] for name in EPOCH_FIELDS}
            row = {"hash": f"{rng.getrandbits(256):064x}", "arch": archs[index % len(archs)]}
            handle.write(json.dumps({**row, "params": 1000, "macs": 100000, "curves": curves}) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=15625)
    parser.add_argument("--epochs", type=int, default=12)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "table.jsonl"
        write_table(path, args.rows, args.epochs)
        size = path.stat().st_size
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        started = time.perf_counter()
        table = Table.load(path)
        seconds = time.perf_counter() - started
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        tracemalloc.start()  # a second load, traced (tracing slows it several times)
        Table.load(path)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    print(
        f"{len(table):,} rows × {args.epochs} epochs ({size / 2**20:.1f} MiB file): "
        f"loaded in {seconds:.2f} s, peak allocations while loading {peak / 2**20:.0f} MiB, "
        f"process max RSS {before:.0f} MiB before, {rss:.0f} MiB after"
    )


if __name__ == "__main__":
    main()
