"""Optimizer pieces of the paper's recipes that PyTorch spells differently from TensorFlow."""

from __future__ import annotations

import copy

import torch
from torch import nn


class RMSpropTF(torch.optim.Optimizer):
    """RMSProp as TensorFlow computes it, which the ImageNet recipe's epsilon = 1.0 depends on:
    the mean square starts at 1, epsilon sits inside the square root, and the learning rate is
    applied inside the momentum buffer:

        ms  = decay·ms + (1 − decay)·g²
        mom = momentum·mom + lr·g / sqrt(ms + eps)
        w  -= mom
    (PyTorch's RMSprop divides by sqrt(ms) + eps with ms starting at 0: with eps = 1 that is a
    different optimizer.) Weight decay, if any, is added to the gradient (L2 regularization)."""

    def __init__(
        self,
        params,
        lr: float,
        decay: float = 0.9,
        momentum: float = 0.9,
        eps: float = 1.0,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(
            params, {"lr": lr, "decay": decay, "momentum": momentum, "eps": eps, "weight_decay": weight_decay}
        )

    @torch.no_grad()
    def step(self, closure=None):
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                if group["weight_decay"]:
                    grad = grad.add(p, alpha=group["weight_decay"])
                state = self.state[p]
                if not state:
                    state["square_avg"] = torch.ones_like(p)
                    state["momentum_buffer"] = torch.zeros_like(p)
                square_avg, buffer = state["square_avg"], state["momentum_buffer"]
                square_avg.mul_(group["decay"]).addcmul_(grad, grad, value=1 - group["decay"])
                update = grad / (square_avg + group["eps"]).sqrt()
                buffer.mul_(group["momentum"]).add_(update, alpha=group["lr"])
                p.sub_(buffer)
        return loss


class ExponentialMovingAverage:
    """TensorFlow's ExponentialMovingAverage of the weights with num_updates, as the ImageNet recipe
    evaluates: decay = min(decay, (1 + n) / (10 + n)), so short runs are not dominated by the init.
    Buffers (BN running statistics) are copied."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.updates = 0
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for ema, current in zip(self.model.parameters(), model.parameters(), strict=True):
            ema.mul_(decay).add_(current.detach(), alpha=1 - decay)
        for ema, current in zip(self.model.buffers(), model.buffers(), strict=True):
            ema.copy_(current)

    def state_dict(self) -> dict:
        return {"decay": self.decay, "updates": self.updates, "model": self.model.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.decay, self.updates = state["decay"], state["updates"]
        self.model.load_state_dict(state["model"])


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """L2 on convolution and linear weights only, as TF-slim's regularizers apply it (not on BN
    scales and shifts, nor on biases)."""
    decay, no_decay = [], []
    for module in model.modules():
        for name, parameter in module.named_parameters(recurse=False):
            is_weight = name == "weight" and isinstance(module, (nn.Conv2d, nn.Linear))
            (decay if is_weight else no_decay).append(parameter)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
