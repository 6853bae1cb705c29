"""Aging (regularized) evolution: Real, Aggarwal, Huang, Le, "Regularized Evolution for Image
Classifier Architecture Search", AAAI 2019, Algorithm 1.

A population of P architectures with their rewards, oldest first. The first P samples are random
(or seeded from .cell files); after that each sample is a mutation of the best of S members drawn
at random from the population, and each result joins the population while its oldest member dies
(aging: an architecture survives only by being re-found, which regularizes against lucky rewards).
Defaults are the paper's CIFAR-10 search: P = 100, S = 25.

Mutations (the paper's Figure 2), on one cell chosen uniformly:
  hidden-state  one block's input (left or right) now reads another state of the cell (an input
                or an earlier block), so the cell stays acyclic;
  op            one block's op (left or right) becomes another op of the space;
  identity      the child is its parent (probability `identity_prob`, 0.05 here: the paper allows it
                but gives no figure). nasc trains an architecture once, so the copy reuses its
                parent's reward and re-enters the population young, as a re-found architecture does.
Combines are inherited (the paper's cells always add).

Asynchronous like the other strategies: a worker asking for a child never waits for a generation;
while the initial population is still training, later requests are random too.
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass

from nasc.compiler import api
from nasc.compiler.api import cell_files
from nasc.compiler.hashing import structural_hash
from nasc.compiler.space import SearchSpace
from nasc.diagnostics import NascError
from nasc.runtime.controller import Sample

POPULATION = 100  # P, Real et al.'s CIFAR-10 search
TOURNAMENT = 25  # S
IDENTITY_PROB = 0.05


@dataclass
class Member:
    choices: list[int]
    reward: float
    hash: str


@dataclass(frozen=True)
class Seed:
    choices: list[int]
    path: str


class AgingEvolution:
    name = "evolution"

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        population: int = POPULATION,
        sample: int = TOURNAMENT,
        seeds: list[Seed] | tuple[Seed, ...] = (),
        identity_prob: float = IDENTITY_PROB,
    ) -> None:
        if population < 1 or not 1 <= sample <= population:
            raise ValueError(f"need 1 <= sample ({sample}) <= population ({population})")
        self.space = space
        self.population_size, self.tournament = population, sample
        self.identity_prob = identity_prob
        self.rng = random.Random(seed)
        self.population: list[Member] = []  # oldest first
        self.seeds = list(seeds)  # the initial members still to hand out, in order
        self.initial_drawn = 0
        self.version = 0  # results taken into the population

    # -- sampling -----------------------------------------------------------------------------------

    def sample(self) -> Sample:
        if self.initial_drawn < self.population_size or not self.population:
            self.initial_drawn += 1
            if self.seeds:
                seed = self.seeds.pop(0)
                return Sample(list(seed.choices), None, self.version, seeded_from=seed.path)
            return Sample(self.space.random_choices(self.rng), None, self.version)
        contenders = self.rng.sample(self.population, min(self.tournament, len(self.population)))
        parent = max(contenders, key=lambda member: member.reward)
        choices, mutation = self.mutate(parent.choices)
        return Sample(choices, None, self.version, parent=parent.hash, mutation=mutation)

    def mutate(self, choices: list[int]) -> tuple[list[int], str]:
        """One mutation of `choices`, and its description in the cell's own names."""
        if self.rng.random() < self.identity_prob:
            return list(choices), "identity"
        return self.space.mutate(choices, self.rng)

    # -- learning -----------------------------------------------------------------------------------

    def observe(self, sample: Sample, reward: float) -> bool:
        """The result joins the population; past P members, the oldest dies."""
        digest = structural_hash(self.space.decode(sample.choices))
        self.population.append(Member(list(sample.choices), float(reward), digest))
        if len(self.population) > self.population_size:
            self.population.pop(0)
        self.version += 1
        return True

    # -- resuming -----------------------------------------------------------------------------------

    def state_dict(self) -> dict:
        return {
            "population": [dataclasses.asdict(member) for member in self.population],
            "seeds": [dataclasses.asdict(seed) for seed in self.seeds],
            "initial_drawn": self.initial_drawn,
            "rng": self.rng.getstate(),
            "version": self.version,
        }

    def load_state_dict(self, state: dict) -> None:
        self.population = [Member(**member) for member in state["population"]]
        self.seeds = [Seed(**seed) for seed in state["seeds"]]
        self.initial_drawn, self.version = state["initial_drawn"], state["version"]
        self.rng.setstate(state["rng"])


def load_seeds(paths: list[str] | tuple[str, ...], space: SearchSpace) -> tuple[list[Seed], list[str]]:
    """The seed cells among `paths` (files, or directories of .cell files) that fit the search space,
    and one note per file: what decoding drops from it, or why it cannot seed at all."""
    seeds, notes = [], []
    for file, problem in cell_files(paths):
        if problem is not None:
            notes.append(f"{file}: {problem.diagnostics[0].message}")
            continue
        try:
            choices, dropped = space.encode(api.load(file))
        except NascError as error:
            notes.append(f"{file}: skipped, it does not check ({error.diagnostics[0].message})")
            continue
        except ValueError as error:
            notes.append(f"{file}: skipped, {error}")
            continue
        seeds.append(Seed(choices, file))
        if dropped:
            notes.append(f"{file}: seeds its blocks; {'; '.join(dropped)}")
    return seeds, notes
