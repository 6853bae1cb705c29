"""Front-end throughput: parse + check + print + hash of random NASNet-space genotypes.

    python bench/bench_language.py [--count 1000] [--processes 2]

The search writes one cell per child (20,000 in the paper); this path must never be its bottleneck.
"""

from __future__ import annotations

import argparse
import random
import time

import nasc
from nasc.compiler.space import NASNET_SPACE


def _round_trip(texts: list[str]) -> int:
    for text in texts:
        genotype = nasc.parse(text)
        nasc.format(genotype)
        nasc.structural_hash(genotype)
    return len(texts)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--processes", type=int, default=1, help="Also measure N processes sharing the work.")
    args = parser.parse_args()
    rng = random.Random(0)
    texts = [nasc.format(NASNET_SPACE.sample(rng, f"g{i}")) for i in range(args.count)]
    nasc.parse(texts[0])  # build the parser once, as a long-running search does
    stages = {"parse+check": 0.0, "print": 0.0, "hash": 0.0}
    best_total = float("inf")
    for _ in range(args.repeats):
        timings = dict.fromkeys(stages, 0.0)
        for text in texts:
            t0 = time.perf_counter()
            genotype = nasc.parse(text)
            t1 = time.perf_counter()
            nasc.format(genotype)
            t2 = time.perf_counter()
            nasc.structural_hash(genotype)
            t3 = time.perf_counter()
            timings["parse+check"] += t1 - t0
            timings["print"] += t2 - t1
            timings["hash"] += t3 - t2
        total = sum(timings.values())
        if total < best_total:
            best_total, stages = total, timings
    print(
        f"{args.count} genotypes, best of {args.repeats}: {args.count / best_total:,.0f} genotypes/s "
        f"({1e6 * best_total / args.count:.0f} µs each)"
    )
    if args.processes > 1:
        import multiprocessing

        chunks = [texts[i :: args.processes] for i in range(args.processes)]
        with multiprocessing.get_context("fork").Pool(args.processes) as pool:
            pool.map(_round_trip, [texts[:10]] * args.processes, chunksize=1)  # warm every worker
            start = time.perf_counter()
            pool.map(_round_trip, chunks, chunksize=1)  # one chunk per worker
            seconds = time.perf_counter() - start
        print(f"{args.processes} processes: {args.count / seconds:,.0f} genotypes/s")
    for stage, seconds in stages.items():
        share = 100 * seconds / best_total
        print(f"  {stage:12s} {1e6 * seconds / args.count:7.0f} µs/genotype ({share:4.1f}%)")


if __name__ == "__main__":
    main()
