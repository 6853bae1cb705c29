#!/usr/bin/env bash
# PPO, aging evolution and random search at the same seed, side by side on a many-core machine
# (each on its own group of cores, so that none slows another), and one latency-aware search; then
# the Figure-6-style plot and the figures, compared at the number of models every run reached.
#
#   bash bench/compare_strategies.sh [OUT] [SECONDS] [WORKERS] [MNAS_BUDGET]
#
# The three run for SECONDS (then SIGTERM: every finished child is kept; `nasc search --resume
# OUT/NAME` continues one); the mnas search stops at MNAS_BUDGET children (default 200) and then
# trains and measures the zoo's cells as reference points. Needs 4 x WORKERS cores.
set -euo pipefail
out=${1:-runs/compare}
seconds=${2:-1800}
workers=${3:-2}
mnas_budget=${4:-200}
here=$(cd "$(dirname "$0")" && pwd)
zoo=$(cd "$here/../genotypes" && pwd)
mkdir -p "$out"
cores=$(nproc)
width=$((workers < cores ? workers : cores))
if ((cores < 4 * workers)); then
  echo "note: $cores cores for 4 searches of $workers workers: they share cores (compare models, not times)"
fi
common=(--dataset digits --seed 0 --workers "$workers" --budget 100000)
evolution=(--population 50 --sample 10)
run() {  # NAME FIRST_CORE ARGS...
  local name=$1 first=$(($2 % cores))
  shift 2
  ((first + width > cores)) && first=0
  # Pinned, so that each search gives its workers one thread each: threads that outnumber their
  # cores spin against each other and can slow training a hundredfold.
  taskset -c "$first-$((first + width - 1))" timeout -s TERM "$seconds" \
    nasc search "${common[@]}" "$@" --out "$out/$name" >"$out/$name.log" 2>&1 || true
}
run ppo 0 --strategy ppo --controller-lr 0.003 &
run evolution "$workers" --strategy evolution "${evolution[@]}" &
run random $((2 * workers)) --strategy random &
run mnas $((3 * workers)) --strategy evolution "${evolution[@]}" --objective mnas --target-latency-ms 5 \
  --budget "$mnas_budget" --reference "$zoo" &
wait
"${PYTHON:-python3}" "$here/bench_search.py" plot "$out/ppo" "$out/evolution" "$out/random" --out "$out"
nasc top "$out/mnas" --pareto
