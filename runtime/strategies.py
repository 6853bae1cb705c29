"""The search strategies by name: adding one is one entry here."""

from __future__ import annotations

from nasc.compiler.space import SearchSpace
from nasc.runtime.controller import ControllerStrategy, RandomStrategy
from nasc.runtime.evolution import AgingEvolution

STRATEGIES = ("ppo", "reinforce", "random", "evolution")

Strategy = RandomStrategy | ControllerStrategy | AgingEvolution


def make_strategy(name: str, space: SearchSpace, seed: int = 0, **options) -> Strategy:
    """`options`: the controller's lr and minibatch (ppo, reinforce); population, sample, seeds
    and identity_prob (evolution). Options that do not apply to `name` are ignored."""
    if name == "random":
        return RandomStrategy(space, seed)
    if name == "evolution":
        keys = ("population", "sample", "seeds", "identity_prob")
        return AgingEvolution(space, seed, **{k: v for k, v in options.items() if k in keys})
    if name in ("ppo", "reinforce"):
        keys = ("lr", "minibatch")
        return ControllerStrategy(space, name, seed, **{k: v for k, v in options.items() if k in keys})
    raise ValueError(f"unknown strategy {name!r}; strategies: {', '.join(STRATEGIES)}")
