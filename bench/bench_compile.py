"""What `nasc compile` costs for each file of the zoo: in process (compile once, count, emit; the best
of --repeats) and as a command (a fresh interpreter, `python -m nasc compile`), and whether the
command imported torch.

    python bench/bench_compile.py [--repeats 10]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nasc
from nasc.compiler.compilation import compile_genotype

ROOT = Path(__file__).resolve().parent.parent
PROBE = """
import sys, time
started = time.perf_counter()
from nasc.cli import main
try:
    main(["compile", sys.argv[1], "-o", sys.argv[2]])
except SystemExit:
    pass
print(f"{time.perf_counter() - started:.3f}", "torch" in sys.modules)
"""


def in_process(path: Path, repeats: int) -> float:
    genotype = nasc.load(path)
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        compilation = compile_genotype(genotype)
        compilation.count()
        compilation.emit()
        best = min(best, time.perf_counter() - started)
    return best


def as_command(path: Path, out: Path) -> tuple[float, bool]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, str(path), str(out)], capture_output=True, text=True, check=True
    )
    seconds, torch = result.stdout.split()[-2:]
    return float(seconds), torch == "True"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        print(f"{'file':24s} {'in process':>11s} {'command':>9s}  torch imported")
        for path in sorted((ROOT / "genotypes").glob("*.cell")):
            seconds, torch = as_command(path, Path(folder) / "m.py")
            print(f"{path.name:24s} {in_process(path, args.repeats):10.3f}s {seconds:8.3f}s  {torch}")


if __name__ == "__main__":
    main()
