"""DARTS and GDAS: α trained by gradient on the second half of the training set, the architecture
read from α (runtime/oneshot.py has what every one-shot strategy shares).

DARTS runs the loop of quark0/darts cnn/train_search.py: per step an architecture step on a batch of
the second half — first order, or the second-order unrolled step of cnn/architect.py — then a
weight step on a batch of the first. GDAS (Dong and Yang 2019) runs both steps on Gumbel-softmax
hard samples, one candidate per edge, with straight-through gradients to α, τ annealed 10 → 0.1.
With `--objective mnas`, α's loss adds MnasNet's soft constraint on FBNet's expected latency.
"""

from __future__ import annotations

import math
import sys

import torch
from torch import nn

from nasc.compiler import ir
from nasc.compiler.api import parse
from nasc.runtime.data import DataSplits
from nasc.runtime.latency import LatencyTable
from nasc.runtime.oneshot import OneShotConfig, OneShotSearch, _space_cells


def candidate_latencies(net: nn.Module, table: LatencyTable, image_size: int) -> dict[str, torch.Tensor]:
    """FBNet's lookup table over the supernet: per cell kind, each edge's candidates' latency in ms
    (rows × ops, as α), summed over the network's cells of that kind. Each candidate is timed alone
    at its input shape (a batch of one); `none` and a stride-1 `identity` cost nothing."""
    module = sys.modules[type(net).__module__]
    timed: dict[str, tuple[str, int, int, nn.Module]] = {}
    for cell_name, cell in net.named_children():
        if not isinstance(cell, module.Cell):
            continue
        edges = [child for child in cell.children() if isinstance(child, module.MixedOp)]
        for row, edge in enumerate(edges):
            for column, candidate in enumerate(edge.candidates):
                if not isinstance(candidate, module.Zero | nn.Identity):
                    timed[f"{cell_name}.{row}.{column}"] = (cell.kind, row, column, candidate)
    shapes: dict[str, tuple[int, ...]] = {}

    def recorder(name: str):
        def record(_module, args) -> None:
            shapes.setdefault(name, tuple(args[0].shape))

        return record

    hooks = [candidate.register_forward_pre_hook(recorder(n)) for n, (*_, candidate) in timed.items()]
    was_training = net.training
    with torch.no_grad():
        net.eval()(torch.zeros(1, 3, image_size, image_size))  # the mixture runs every candidate
    net.train(was_training)
    for hook in hooks:
        hook.remove()
    ms = table.module_ms({name: entry[3] for name, entry in timed.items()}, shapes)
    tables = {kind: torch.zeros_like(getattr(net.architecture, kind)) for kind in _space_cells(net)}
    for name, (kind, row, column, _) in timed.items():
        tables[kind][row, column] += ms[name]
    return {kind: t.detach() for kind, t in tables.items()}


def gumbel_hard(alpha: torch.Tensor, tau: float) -> tuple[torch.Tensor, list[int]]:
    """GDAS's sample: per edge one candidate drawn from softmax(α) by the Gumbel-max trick; the
    hard one-hot weights carry the gradient of softmax((log_softmax(α) + g) / τ)."""
    while True:
        gumbels = -torch.empty_like(alpha).exponential_().log()
        probs = torch.softmax((alpha.log_softmax(dim=-1) + gumbels) / tau, dim=-1)
        if torch.isfinite(probs).all():
            break
    index = probs.argmax(dim=-1)
    hard = torch.zeros_like(probs).scatter_(1, index[:, None], 1.0)
    return hard - probs.detach() + probs, index.tolist()


# -- the search ---------------------------------------------------------------------------------------


class DifferentiableSearch(OneShotSearch):
    """DARTS and GDAS: α trained by gradient on the second half, the architecture read from α."""

    def __init__(self, config: OneShotConfig, data: DataSplits | None = None) -> None:
        super().__init__(config, data)
        self.a_optimizer = torch.optim.Adam(
            self.net.arch_parameters(),
            lr=config.arch_learning_rate,
            betas=(0.5, 0.999),
            weight_decay=config.arch_weight_decay,
        )
        self.latencies: dict[str, torch.Tensor] | None = None
        if config.objective == "mnas":
            self.out.mkdir(parents=True, exist_ok=True)
            table = LatencyTable(self.out / "latency-table.json")
            self.latencies = candidate_latencies(self.net, table, self.data.image_size)

    def expected_latency(self) -> torch.Tensor:
        """FBNet's LAT(α) (Wu et al. 2019, eq. 4): the table latencies weighted by softmax(α), the
        distribution DARTS mixes and GDAS samples from."""
        return sum(
            (torch.softmax(alpha, dim=-1) * self.latencies[kind]).sum()
            for kind, alpha in zip(self.kinds, self.net.arch_parameters(), strict=True)
        )

    def latency_loss(self) -> torch.Tensor:
        """MnasNet's soft constraint, as the multi-trial mnas reward weighs it, in log form: that
        reward is acc · (LAT / T)^w, so α's loss adds −w · log(LAT(α) / T)."""
        c = self.config
        return -c.latency_weight * torch.log(self.expected_latency() / c.target_latency_ms)

    def strategy_state(self) -> dict:
        return {"a_optimizer": self.a_optimizer.state_dict()}

    def load_strategy_state(self, state: dict) -> None:
        self.a_optimizer.load_state_dict(state["a_optimizer"])

    def tau(self, epoch: int) -> float:
        c = self.config
        return c.tau_max - (c.tau_max - c.tau_min) * epoch / max(1, c.epochs - 1)

    def forward(self, x: torch.Tensor, tau: float) -> torch.Tensor:
        if self.config.strategy == "gdas":
            weights, path = {}, {}
            for kind, alpha in zip(self.kinds, self.net.arch_parameters(), strict=True):
                weights[kind], path[kind] = gumbel_hard(alpha, tau)
            return self.net(x, path=path, weights=weights)
        return self.net(x)

    def train_epoch(self, epoch: int) -> dict:
        lr = self.start_epoch(epoch)
        tau = self.tau(epoch)
        self.net.train()
        weight_batches, arch_batches = self.batches(epoch)
        losses, correct, seen = [], 0, 0
        for step, indices in enumerate(weight_batches):
            x_val, y_val = self.batch(arch_batches[step % len(arch_batches)])
            x, y = self.batch(indices)
            self.arch_step(x, y, x_val, y_val, lr, tau)
            logits = self.forward(x, tau)
            losses.append(self.weight_step(y, logits))
            correct += int((logits.argmax(-1) == y).sum())
            seen += len(y)
        row = {"train_loss": sum(losses) / len(losses), "train_accuracy": correct / seen}
        row.update(lr=lr, tau=tau)
        if self.latencies is not None:
            row["expected_latency_ms"] = float(self.expected_latency().detach())
        return row

    def arch_step(self, x, y, x_val, y_val, lr: float, tau: float) -> None:
        self.a_optimizer.zero_grad()
        if self.config.order == 2:
            self.unrolled_gradients(x, y, x_val, y_val, lr)
        else:
            nn.functional.cross_entropy(self.forward(x_val, tau), y_val).backward()
        if self.latencies is not None:
            self.latency_loss().backward()  # no weight in it: the same term for either order
        self.a_optimizer.step()
        self.w_optimizer.zero_grad()  # the weight step computes its own

    def unrolled_gradients(self, x, y, x_val, y_val, lr: float) -> None:
        """DARTS's second-order step (cnn/architect.py): ∇α L_val(w', α) − ξ ∇²α,w L_train(w, α) ·
        ∇w' L_val(w', α), w' = w − ξ (momentum + ∇w L_train + wd·w), the Hessian-vector product by
        central differences at w ± R·v, R = 0.01 / ‖v‖."""
        from torch.func import functional_call

        c, net = self.config, self.net
        names = [n for n, _ in net.named_parameters() if not n.startswith("architecture.")]
        weights = self.weights  # in the same order: the parameters other than α
        alphas = net.arch_parameters()
        grads = torch.autograd.grad(nn.functional.cross_entropy(net(x), y), weights)
        unrolled = {}
        for name, w, g in zip(names, weights, grads, strict=True):
            buffer = self.w_optimizer.state.get(w, {}).get("momentum_buffer")
            moment = c.momentum * buffer if buffer is not None else torch.zeros_like(w)
            unrolled[name] = (w - lr * (moment + g + c.weight_decay * w)).detach().requires_grad_()
        arch = {n: p for n, p in net.named_parameters() if n.startswith("architecture.")}
        loss = nn.functional.cross_entropy(functional_call(net, {**unrolled, **arch}, (x_val,)), y_val)
        dalpha = torch.autograd.grad(loss, alphas, retain_graph=True)
        vector = torch.autograd.grad(loss, list(unrolled.values()))
        r = 0.01 / torch.cat([v.flatten() for v in vector]).norm()
        with torch.no_grad():
            for w, v in zip(weights, vector, strict=True):
                w.add_(v, alpha=float(r))
        grads_p = torch.autograd.grad(nn.functional.cross_entropy(net(x), y), alphas)
        with torch.no_grad():
            for w, v in zip(weights, vector, strict=True):
                w.sub_(v, alpha=2 * float(r))
        grads_n = torch.autograd.grad(nn.functional.cross_entropy(net(x), y), alphas)
        with torch.no_grad():
            for w, v in zip(weights, vector, strict=True):
                w.add_(v, alpha=float(r))
        for alpha, d, p, n in zip(alphas, dalpha, grads_p, grads_n, strict=True):
            alpha.grad = d - lr * (p - n) / (2 * r)

    def validation_accuracy(self) -> float:
        """The supernet's accuracy on the held-out split: the mixture (DARTS), or α's argmax path
        (GDAS) with its own batch-norm statistics, since the running ones mix every sampled path."""
        if self.config.strategy != "gdas":
            return self.accuracy()
        path = {k: a.argmax(-1).tolist() for k, a in zip(self.kinds, self.net.arch_parameters(), strict=True)}
        self.recalibrate(path)
        return self.accuracy(path)

    def derived(self) -> ir.Genotype:
        """The derived cell, with at most `max_skip` identity edges per cell (P-DARTS: the weakest
        kept identity edge loses its identity until few enough remain)."""
        alphas = {k: a.detach().clone() for k, a in zip(self.kinds, self.net.arch_parameters(), strict=True)}
        while True:
            genotype = parse(self.net.derive("derived", alphas))
            excess = self._excess_identity(genotype, alphas)
            if excess is None:
                return genotype
            kind, row, column = excess
            alphas[kind][row, column] = -math.inf

    def _excess_identity(self, genotype: ir.Genotype, alphas) -> tuple[str, int, int] | None:
        if self.config.max_skip is None:
            return None
        cells = _space_cells(self.net)
        for kind in self.kinds:
            ops = cells[kind]["ops"]
            if "identity" not in ops:
                continue
            column = ops.index("identity")
            kept = []
            row = 0
            for target, reads, _, _ in cells[kind]["nodes"]:
                block = genotype.cell(kind).block(target)
                for offset, state in enumerate(reads):
                    if any(o.op == "identity" and o.input == state for o in block.operands):
                        kept.append(row + offset)
                row += len(reads)
            if len(kept) > self.config.max_skip:
                strengths = torch.softmax(alphas[kind], dim=-1)
                weakest = min(kept, key=lambda r: float(strengths[r, column]))
                return kind, weakest, column
        return None
