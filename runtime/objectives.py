"""What a search rewards: accuracy alone, or accuracy and measured latency (MnasNet).

  accuracy  reward = validation accuracy (the paper).
  mnas      reward = accuracy × (latency / T)^w: MnasNet's soft constraint (Tan et al. 2019, eq. 2
            with α = β = w, default −0.07: twice the latency costs about 5 % of the reward).
  pareto    the same product, with w drawn per child uniformly from [2w, 0] (a random
            scalarization): each child weighs latency differently, so the search spreads along the
            accuracy–latency front instead of converging on one trade-off; the front itself, every
            result that no other beats on both, is listed by `nasc top --pareto` and plotted in
            pareto.png. T defaults to the first measured latency (for `mnas` it must be given).
A failed child's reward is 0, whatever the objective.
"""

from __future__ import annotations

import random

OBJECTIVES = ("accuracy", "mnas", "pareto")
LATENCY_WEIGHT = -0.07  # MnasNet's w


def latency_weight(objective: str, weight: float, seed: int, step: int) -> float | None:
    """The w a child's reward uses: fixed for mnas, drawn from the (seed, step) for pareto (so a
    resumed search draws the same), None where latency does not count."""
    if objective == "mnas":
        return weight
    if objective == "pareto":
        return random.Random(f"pareto-{seed}-{step}").uniform(2 * weight, 0.0)
    return None


def reward(accuracy: float, latency_ms: float | None, target_ms: float | None, weight: float | None) -> float:
    if weight is None:
        return accuracy
    if latency_ms is None or target_ms is None or latency_ms <= 0:
        raise ValueError("a latency objective needs the child's latency and a target")
    return accuracy * (latency_ms / target_ms) ** weight


def pareto_front(rows: list[dict]) -> list[dict]:
    """The rows no other row beats on both accuracy (higher) and latency (lower), fastest first;
    one row per architecture."""
    candidates: dict[str, dict] = {}
    for row in rows:
        if row.get("status") == "ok" and row.get("latency_ms") is not None:
            candidates.setdefault(row["hash"], row)
    front: list[dict] = []
    best = float("-inf")
    for row in sorted(candidates.values(), key=lambda r: (r["latency_ms"], -r["accuracy"])):
        if row["accuracy"] > best:
            front.append(row)
            best = row["accuracy"]
    return front
