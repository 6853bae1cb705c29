"""Search strategies: the paper's LSTM controller trained with PPO (or REINFORCE), and random search.

The controller (paper §3, appendix A.2): a one-layer LSTM with 100 hidden units reads, at each
step, the embedding of the previous decision and emits a softmax over the next one: per block, input
1, input 2, op 1, op 2, combine, for the normal cell and then the reduction cell (2 × 5B decisions).
Input choices grow with the block index (2 + b). Weights start uniform in (−0.1, 0.1).

Training (PPO, appendix A.2): after every minibatch of 20 results, a few epochs of clipped-ratio
updates with Adam (lr 0.00035), entropy bonus 0.00001, advantage = reward − baseline, where the
baseline is an exponential moving average of rewards (decay 0.95).

Stale results. Children finish out of order and the policy moves on while they train. Each sample
keeps the log-probability it had under the policy that drew it; PPO's ratio π_now(a)/π_then(a) is
taken against that stored value and clipped to [1 − ε, 1 + ε], so a result from an older policy
pulls the current one at most that far. REINFORCE has no such correction; it uses the current
log-probability (the on-policy approximation the original NAS work made).
"""

from __future__ import annotations

import dataclasses
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from nasc.compiler.space import SearchSpace


@dataclass
class Sample:
    choices: list[int]
    log_prob: float | None  # under the policy that drew it (evolution: None, it has no distribution)
    policy_version: int
    # Evolution: the structural hash of the parent and the mutation that made this child from it
    # ("op normal h4 right: sep_conv_3x3 -> avg_pool_3x3"), or where an initial member came from.
    parent: str | None = None
    mutation: str | None = None
    seeded_from: str | None = None  # the .cell file an initial member was read from


class LSTMController(nn.Module):
    """`temperature`, `tanh_constant`, `op_tanh_reduce` and `favoured_ops` shape the logits as ENAS's
    micro controller does (melodyguan/enas, src/cifar10/micro_controller.py; off by default, as in
    the NASNet paper): logits are divided by the temperature, then bounded by c·tanh, with
    c = tanh_constant for inputs and tanh_constant / op_tanh_reduce for ops and combines, so no
    choice's probability runs away while the shared weights are young. `favoured_ops` (one flag per
    op; ENAS's are its two convolutions) start the op heads' bias at 10 for those ops, and the
    normal cell's op logits add a fixed +0.25 for them and -0.25 for the others."""

    def __init__(
        self,
        space: SearchSpace,
        hidden: int = 100,
        init_range: float = 0.1,
        *,
        temperature: float | None = None,
        tanh_constant: float | None = None,
        op_tanh_reduce: float = 1.0,
        favoured_ops: Sequence[bool] | None = None,
    ) -> None:
        super().__init__()
        self.space = space
        self.decisions = space.decisions()
        self.hidden = hidden
        self.temperature, self.tanh_constant, self.op_tanh_reduce = temperature, tanh_constant, op_tanh_reduce
        self.lstm = nn.LSTM(hidden, hidden, batch_first=True)
        # One softmax head per kind of decision in each cell; inputs by block (their range grows).
        heads: dict[str, nn.Linear] = {}
        embeddings: dict[str, nn.Embedding] = {}
        self.keys = [self._key(decision) for decision in self.decisions]
        for key, decision in zip(self.keys, self.decisions, strict=True):
            if key not in heads:
                heads[key] = nn.Linear(hidden, decision.choices)
                embeddings[key] = nn.Embedding(decision.choices, hidden)
        self.heads = nn.ModuleDict(heads)
        self.embeddings = nn.ModuleDict(embeddings)
        self.start = nn.Parameter(torch.zeros(1, 1, hidden))
        # Decisions grouped by head, so scoring runs one head call per group, not one per decision.
        self.groups = {key: [i for i, k in enumerate(self.keys) if k == key] for key in heads}
        for parameter in self.parameters():
            nn.init.uniform_(parameter, -init_range, init_range)
        self.head_decision = {key: self.decisions[self.keys.index(key)] for key in heads}
        self.fixed_bias: dict[str, torch.Tensor] = {}
        if favoured_ops is not None:
            self._favour(torch.tensor([float(f) for f in favoured_ops]))

    def _favour(self, favoured: torch.Tensor) -> None:
        for key, decision in self.head_decision.items():
            if decision.role != "op":
                continue
            with torch.no_grad():
                self.heads[key].bias.copy_(10.0 * favoured)
            if decision.cell == "normal":
                self.fixed_bias[key] = 0.5 * favoured - 0.25

    def logits(self, key: str, hidden: torch.Tensor) -> torch.Tensor:
        """The head's logits for the LSTM outputs `hidden`, shaped as the class docstring says."""
        logits = self.heads[key](hidden)
        if self.temperature is not None:
            logits = logits / self.temperature
        if self.tanh_constant is not None:
            is_input = self.head_decision[key].role == "input"
            bound = self.tanh_constant if is_input else self.tanh_constant / self.op_tanh_reduce
            logits = bound * torch.tanh(logits)
        if key in self.fixed_bias:
            logits = logits + self.fixed_bias[key]
        return logits

    @staticmethod
    def _key(decision) -> str:
        return (
            f"{decision.cell}_{decision.role}_{decision.block}"
            if decision.role == "input"
            else f"{decision.cell}_{decision.role}"
        )

    @torch.no_grad()
    def sample(
        self, batch: int, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Draw `batch` sequences of decisions; returns them (B × D) and their log-probabilities."""
        state = None
        step_input = self.start.expand(batch, 1, -1)
        taken, log_probs = [], []
        for key in self.keys:
            output, state = self.lstm(step_input, state)
            log_softmax = torch.log_softmax(self.logits(key, output[:, 0]), dim=-1)
            choice = torch.multinomial(log_softmax.exp(), 1, generator=generator)
            taken.append(choice[:, 0])
            log_probs.append(log_softmax.gather(1, choice)[:, 0])
            step_input = self.embeddings[key](choice)
        return torch.stack(taken, 1), torch.stack(log_probs, 1).sum(1)

    def score(self, choices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-probability and entropy (summed over decisions) of given sequences (B × D), with
        gradients: the whole sequence in one LSTM call, since every input is known."""
        batch = choices.shape[0]
        inputs = torch.empty(batch, len(self.keys), self.hidden)
        inputs[:, 0] = self.start[:, 0]
        for key, positions in self.groups.items():
            following = [p + 1 for p in positions if p + 1 < len(self.keys)]
            if following:
                inputs[:, following] = self.embeddings[key](choices[:, [p - 1 for p in following]])
        outputs, _ = self.lstm(inputs)
        log_prob = torch.zeros(batch)
        entropy = torch.zeros(batch)
        for key, positions in self.groups.items():
            log_softmax = torch.log_softmax(self.logits(key, outputs[:, positions]), dim=-1)
            log_prob = log_prob + log_softmax.gather(2, choices[:, positions].unsqueeze(2)).sum((1, 2))
            entropy = entropy - (log_softmax.exp() * log_softmax).sum((1, 2))
        return log_prob, entropy


class RandomStrategy:
    """Random search: the same decisions, each uniform."""

    name = "random"

    def __init__(self, space: SearchSpace, seed: int = 0) -> None:
        self.space = space
        self.generator = torch.Generator().manual_seed(seed)
        self.version = 0

    def sample(self) -> Sample:
        choices = [
            int(torch.randint(d.choices, (), generator=self.generator)) for d in self.space.decisions()
        ]
        log_prob = -sum(math.log(d.choices) for d in self.space.decisions())
        return Sample(choices, log_prob, self.version)

    def observe(self, sample: Sample, reward: float) -> bool:
        return False

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state(), "version": self.version}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
        self.version = state["version"]


class ControllerStrategy:
    """The LSTM controller trained with PPO (default) or REINFORCE on minibatches of results."""

    def __init__(
        self,
        space: SearchSpace,
        algorithm: str = "ppo",
        seed: int = 0,
        lr: float = 0.00035,
        entropy_weight: float = 0.00001,
        baseline_decay: float = 0.95,
        minibatch: int = 20,
        clip: float = 0.2,
        ppo_epochs: int = 4,
    ) -> None:
        if algorithm not in ("ppo", "reinforce"):
            raise ValueError(f"unknown algorithm {algorithm!r}")
        self.name = algorithm
        self.space = space
        torch.manual_seed(seed)
        self.controller = LSTMController(space)
        self.optimizer = torch.optim.Adam(self.controller.parameters(), lr=lr)
        self.generator = torch.Generator().manual_seed(seed)
        self.entropy_weight, self.baseline_decay = entropy_weight, baseline_decay
        self.minibatch, self.clip, self.ppo_epochs = minibatch, clip, ppo_epochs
        self.baseline: float | None = None
        self.buffer: list[tuple[list[int], float, float]] = []  # (choices, log_prob then, advantage)
        self.ready: list[Sample] = []  # drawn from the current policy, not yet handed out
        self.version = 0

    def sample(self) -> Sample:
        # The policy only changes at an update, so draw a minibatch's worth at once: one LSTM pass
        # for many architectures. Draws made under an older version are discarded at the update.
        if not self.ready:
            choices, log_prob = self.controller.sample(self.minibatch, self.generator)
            self.ready = [
                Sample(c, float(lp), self.version)
                for c, lp in zip(choices.tolist(), log_prob.tolist(), strict=True)
            ][::-1]
        return self.ready.pop()

    def observe(self, sample: Sample, reward: float) -> bool:
        """Take one result; update the policy when a minibatch is full. Returns whether it updated."""
        if self.baseline is None:
            self.baseline = reward
        advantage = reward - self.baseline
        self.baseline = self.baseline_decay * self.baseline + (1 - self.baseline_decay) * reward
        self.buffer.append((sample.choices, sample.log_prob, advantage))
        if len(self.buffer) < self.minibatch:
            return False
        self._update()
        self.buffer.clear()
        self.ready.clear()
        self.version += 1
        return True

    def _update(self) -> None:
        choices = torch.tensor([c for c, _, _ in self.buffer])
        old_log_prob = torch.tensor([lp for _, lp, _ in self.buffer])
        advantage = torch.tensor([a for _, _, a in self.buffer])
        epochs = self.ppo_epochs if self.name == "ppo" else 1
        for _ in range(epochs):
            log_prob, entropy = self.controller.score(choices)
            if self.name == "ppo":
                ratio = torch.exp(log_prob - old_log_prob)
                clipped = torch.clamp(ratio, 1 - self.clip, 1 + self.clip)
                objective = torch.min(ratio * advantage, clipped * advantage)
            else:
                objective = log_prob * advantage
            loss = -objective.mean() - self.entropy_weight * entropy.mean()
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()

    def state_dict(self) -> dict:
        return {
            "controller": self.controller.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "baseline": self.baseline,
            "buffer": list(self.buffer),
            "ready": [dataclasses.asdict(sample) for sample in self.ready],
            "version": self.version,
        }

    def load_state_dict(self, state: dict) -> None:
        self.controller.load_state_dict(state["controller"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        self.baseline, self.buffer, self.version = state["baseline"], list(state["buffer"]), state["version"]
        self.ready = [Sample(**sample) for sample in state["ready"]]


def serialize(state: dict) -> bytes:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()
