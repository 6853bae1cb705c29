"""ENAS and SPOS: a supernet's weights trained on sampled paths, one candidate per edge.

A path is what the multi-trial searches sample (compiler/space.py: per block two inputs, two ops, a
combine) run on the supernet: each block's edge reads its chosen state through the weights kept
for that state (ENAS's sharing), every other edge of the block is off.

- ENAS (Pham et al. 2018, micro search): per step of the weights the LSTM controller samples a
  path; then the controller learns by REINFORCE from the shared-weight model's accuracy on batches
  of the second half, with ENAS's settings: Adam at 0.0035, 30 updates per epoch of 10 sampled
  paths each, the sample's entropy × 1e-4 added to its reward, a moving-average baseline (0.99).
  An epoch derives the best of `derive_samples` paths the controller samples.
- SPOS (Guo et al. 2020, single-path one-shot): the weights train on uniformly sampled paths; an
  epoch derives the best of `derive_samples` uniform paths, and the last epoch runs aging evolution
  (Real et al. 2019: a population, tournaments of `spos_sample`, the oldest member dies) over
  paths.

Every path is scored with the weights it inherits, its batch-norm statistics first recomputed on
`bn_batches` batches of the first half (SPOS: statistics gathered under other paths mislead), on
batches of the second half; the derived path's supernet accuracy is on the held-out split.
"""

from __future__ import annotations

import json
import random
from collections import deque
from collections.abc import Iterable

import torch

from nasc.compiler import ir
from nasc.compiler.space import Nb201Space, SearchSpace, sampler
from nasc.runtime.controller import LSTMController
from nasc.runtime.data import DataSplits
from nasc.runtime.oneshot import PARAMETER_FREE, OneShotConfig, OneShotError, OneShotSearch, _space_cells

OFF = -1  # the supernet's index for an edge a path does not run
SCORE_BATCHES = 8  # batches of the second half that score a path


def supernet_path(cells: dict, space: SearchSpace | Nb201Space, choices: list[int]) -> dict[str, list[int]]:
    """The supernet path of a sampler's choices: per cell kind, per row of the architecture weights
    (an edge and a state it may read), the op it runs, or OFF. NAS-Bench-201's choices are already
    one op per edge, in the rows' order."""
    if isinstance(space, Nb201Space):
        return {"normal": list(choices)}
    path, per_cell = {}, 5 * space.num_blocks
    for k, kind in enumerate(space.cell_kinds):
        chunk = choices[k * per_cell : (k + 1) * per_cell]
        states, rows = list(cells[kind]["inputs"]), []
        for b, (target, reads, slots, _) in enumerate(cells[kind]["nodes"]):
            first, second, op1, op2, _combine = chunk[5 * b : 5 * b + 5]
            row = [OFF] * len(reads)
            for slot, (state, op) in enumerate(((states[first], op1), (states[second], op2))):
                row[list(zip(slots, reads, strict=True)).index((slot, state))] = op
            rows += row
            states.append(target)
        path[kind] = rows
    return path


class PathSearch(OneShotSearch):
    """What ENAS and SPOS share: the sampler's paths on the supernet, their scoring, the derived cell."""

    def __init__(self, config: OneShotConfig, data: DataSplits | None = None) -> None:
        super().__init__(config, data)
        self.sampler = sampler(self.space)  # NascError at a node the sampler cannot take
        self.cells = _space_cells(self.net)
        for kind in self.sampler.cell_kinds:
            if tuple(self.cells[kind]["ops"]) != self.sampler.ops:
                raise OneShotError(f"the {kind} cell's candidate ops differ from the space's sets")
        self.choices: list[int] = self.sampler.random_choices(random.Random(config.seed))

    def path(self, choices: list[int]) -> dict[str, list[int]]:
        return supernet_path(self.cells, self.sampler, choices)

    def train_paths(self, epoch: int, paths: Iterable[list[int]]) -> dict:
        """An epoch of the weights, each batch of the first half on the next path."""
        lr = self.start_epoch(epoch)
        self.net.train()
        weight_batches, _ = self.batches(epoch)
        losses, correct, seen = [], 0, 0
        for indices, choices in zip(weight_batches, paths, strict=True):
            x, y = self.batch(indices)
            logits = self.net(x, path=self.path(choices))
            losses.append(self.weight_step(y, logits))
            correct += int((logits.argmax(-1) == y).sum())
            seen += len(y)
        return {"train_loss": sum(losses) / len(losses), "train_accuracy": correct / seen, "lr": lr}

    @torch.no_grad()
    def score(self, choices: list[int]) -> float:
        """A path's accuracy with inherited weights on batches of the second half."""
        path = self.path(choices)
        self.recalibrate(path)
        _, score_batches = self.batches(self.epoch)
        correct, seen = 0, 0
        for indices in score_batches[:SCORE_BATCHES]:
            x, y = self.batch(indices)
            correct += int((self.net(x, path=path).argmax(-1) == y).sum())
            seen += len(y)
        return correct / seen

    def settle(self, candidates: list[list[int]]) -> float:
        """The best-scoring of `candidates` becomes the derived path; its held-out accuracy."""
        scored = [(self.score(choices), index) for index, choices in enumerate(candidates)]
        self.choices = candidates[_best(scored)]
        path = self.path(self.choices)
        self.recalibrate(path)
        return self.accuracy(path)

    def derived(self) -> ir.Genotype:
        return self.sampler.decode(self.choices)


def _best(scored: list[tuple[float, int]]) -> int:
    """The index of the highest score, the earliest among equals."""
    return max(scored, key=lambda pair: (pair[0], -pair[1]))[1]


class EnasSearch(PathSearch):
    def __init__(self, config: OneShotConfig, data: DataSplits | None = None) -> None:
        super().__init__(config, data)
        self.controller = LSTMController(
            self.sampler,
            temperature=config.controller_temperature,
            tanh_constant=config.controller_tanh_constant or None,
            op_tanh_reduce=config.controller_op_tanh_reduce,
            favoured_ops=[op not in PARAMETER_FREE for op in self.sampler.ops]
            if config.controller_favour_convs
            else None,
        )
        self.c_optimizer = torch.optim.Adam(self.controller.parameters(), lr=config.controller_learning_rate)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.baseline: float | None = None

    def sample(self, count: int) -> list[list[int]]:
        choices, _ = self.controller.sample(count, self.generator)
        return choices.tolist()

    def train_epoch(self, epoch: int) -> dict:
        steps = len(self.batches(epoch)[0])
        row = self.train_paths(epoch, self.sample(steps))
        rewards = [self.controller_step(epoch, step) for step in range(self.config.controller_steps)]
        return {**row, "reward": sum(rewards) / len(rewards), "baseline": self.baseline}

    def controller_step(self, epoch: int, step: int) -> float:
        """REINFORCE on `controller_aggregate` sampled paths, each rewarded with its accuracy on a
        batch of the second half (batch-norm in training mode, as ENAS rewards) plus its entropy
        bonus; returns the mean reward."""
        c = self.config
        _, reward_batches = self.batches(epoch)
        choices = torch.tensor(self.sample(c.controller_aggregate))
        log_prob, entropy = self.controller.score(choices)
        rewards = []
        self.net.train()
        with torch.no_grad():
            for i, row in enumerate(choices.tolist()):
                x, y = self.batch(reward_batches[(step * c.controller_aggregate + i) % len(reward_batches)])
                accuracy = float((self.net(x, path=self.path(row)).argmax(-1) == y).float().mean())
                rewards.append(accuracy + c.entropy_weight * float(entropy[i]))
        advantages = []
        for reward in rewards:
            self.baseline = reward if self.baseline is None else self.baseline
            self.baseline -= (1 - c.baseline_decay) * (self.baseline - reward)
            advantages.append(reward - self.baseline)
        loss = -(log_prob * torch.tensor(advantages)).mean()
        self.c_optimizer.zero_grad()
        loss.backward()
        self.c_optimizer.step()
        return sum(rewards) / len(rewards)

    def validation_accuracy(self) -> float:
        return self.settle(self.sample(self.config.derive_samples))

    def strategy_state(self) -> dict:
        return {
            "controller": self.controller.state_dict(),
            "c_optimizer": self.c_optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "progress": json.dumps({"baseline": self.baseline, "choices": self.choices}),
        }

    def load_strategy_state(self, state: dict) -> None:
        self.controller.load_state_dict(state["controller"])
        self.c_optimizer.load_state_dict(state["c_optimizer"])
        self.generator.set_state(state["generator"])
        progress = json.loads(state["progress"])
        self.baseline, self.choices = progress["baseline"], _checked(progress["choices"], self.sampler)


class SposSearch(PathSearch):
    def train_epoch(self, epoch: int) -> dict:
        rng = random.Random(self.config.seed * 1_000_003 + epoch)
        steps = len(self.batches(epoch)[0])
        return self.train_paths(epoch, (self.sampler.random_choices(rng) for _ in range(steps)))

    def validation_accuracy(self) -> float:
        """The last epoch: aging evolution over paths; the others: the best of a few uniform paths."""
        c = self.config
        rng = random.Random(c.seed * 1_000_003 + self.epoch + 1)
        if self.epoch < c.epochs - 1:
            return self.settle([self.sampler.random_choices(rng) for _ in range(c.derive_samples)])
        return self.settle([self.evolve(rng)])

    def evolve(self, rng: random.Random) -> list[int]:
        """Aging evolution: `spos_population` uniform paths, then per cycle a tournament of `spos_sample`
        whose winner's mutant joins as the oldest member leaves; the best path ever scored."""
        c = self.config
        population: deque[tuple[float, list[int]]] = deque()
        history = []
        for _ in range(c.spos_population):
            choices = self.sampler.random_choices(rng)
            population.append((self.score(choices), choices))
            history.append(population[-1])
        for _ in range(c.spos_cycles):
            parent = max(rng.sample(list(population), c.spos_sample), key=lambda member: member[0])[1]
            child, _ = self.sampler.mutate(parent, rng)
            population.append((self.score(child), child))
            population.popleft()
            history.append(population[-1])
        return history[_best([(score, i) for i, (score, _) in enumerate(history)])][1]

    def strategy_state(self) -> dict:
        return {"progress": json.dumps({"choices": self.choices})}

    def load_strategy_state(self, state: dict) -> None:
        self.choices = _checked(json.loads(state["progress"])["choices"], self.sampler)


def _checked(choices: object, space: SearchSpace | Nb201Space) -> list[int]:
    """Choices read back from a checkpoint: a list the space decodes (ValueError otherwise)."""
    if not isinstance(choices, list) or not all(isinstance(c, int) for c in choices):
        raise ValueError("the derived path is not a list of choices")
    space.decode(choices)
    return choices
