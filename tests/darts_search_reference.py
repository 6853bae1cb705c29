"""DARTS's search network as the DARTS repository builds it (quark0/darts cnn/model_search.py:
`MixedOp`, `Cell`, `Network`; cnn/operations.py with `affine=False`), typed out for the tests from its
description, with its module layout, so that its state_dict has the reference's names and order. No
package of it exists to install. The alphas are plain tensors, as the reference's Variables."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

PRIMITIVES = [
    "none",
    "max_pool_3x3",
    "avg_pool_3x3",
    "skip_connect",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dil_conv_3x3",
    "dil_conv_5x5",
]


class ReLUConvBN(nn.Module):
    def __init__(self, c_in: int, c_out: int, affine: bool) -> None:
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, 1, bias=False),
            nn.BatchNorm2d(c_out, affine=affine),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class FactorizedReduce(nn.Module):
    def __init__(self, c_in: int, c_out: int, affine: bool) -> None:
        super().__init__()
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.conv_2 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(c_out, affine=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(x[:, :, 1:, 1:])], dim=1))


class SepConv(nn.Module):
    def __init__(self, c: int, k: int, stride: int, padding: int, affine: bool) -> None:
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(c, c, k, stride, padding, groups=c, bias=False),
            nn.Conv2d(c, c, 1, bias=False),
            nn.BatchNorm2d(c, affine=affine),
            nn.ReLU(inplace=False),
            nn.Conv2d(c, c, k, 1, padding, groups=c, bias=False),
            nn.Conv2d(c, c, 1, bias=False),
            nn.BatchNorm2d(c, affine=affine),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class DilConv(nn.Module):
    def __init__(self, c: int, k: int, stride: int, padding: int, dilation: int, affine: bool) -> None:
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(c, c, k, stride, padding, dilation, groups=c, bias=False),
            nn.Conv2d(c, c, 1, bias=False),
            nn.BatchNorm2d(c, affine=affine),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class Identity(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class Zero(nn.Module):
    def __init__(self, stride: int) -> None:
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            return x.mul(0.0)
        return x[:, :, :: self.stride, :: self.stride].mul(0.0)


def make_op(name: str, c: int, stride: int) -> nn.Module:
    affine = False  # the search network's
    if name == "none":
        return Zero(stride)
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False)
    if name == "max_pool_3x3":
        return nn.MaxPool2d(3, stride=stride, padding=1)
    if name == "skip_connect":
        return Identity() if stride == 1 else FactorizedReduce(c, c, affine)
    if name.startswith("sep_conv_"):
        k = int(name[-1])
        return SepConv(c, k, stride, k // 2, affine)
    if name.startswith("dil_conv_"):
        k = int(name[-1])
        return DilConv(c, k, stride, k - 1, 2, affine)
    raise ValueError(name)


class MixedOp(nn.Module):
    def __init__(self, c: int, stride: int) -> None:
        super().__init__()
        self._ops = nn.ModuleList()
        for primitive in PRIMITIVES:
            op = make_op(primitive, c, stride)
            if "pool" in primitive:
                op = nn.Sequential(op, nn.BatchNorm2d(c, affine=False))
            self._ops.append(op)

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        return sum(w * op(x) for w, op in zip(weights, self._ops, strict=True))


class Cell(nn.Module):
    def __init__(
        self, steps: int, multiplier: int, c_pp: int, c_p: int, c: int, reduction: bool, reduction_prev: bool
    ) -> None:
        super().__init__()
        self.reduction = reduction
        if reduction_prev:
            self.preprocess0 = FactorizedReduce(c_pp, c, affine=False)
        else:
            self.preprocess0 = ReLUConvBN(c_pp, c, affine=False)
        self.preprocess1 = ReLUConvBN(c_p, c, affine=False)
        self._steps = steps
        self._multiplier = multiplier
        self._ops = nn.ModuleList()
        self._bns = nn.ModuleList()
        for i in range(self._steps):
            for j in range(2 + i):
                stride = 2 if reduction and j < 2 else 1
                self._ops.append(MixedOp(c, stride))

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        offset = 0
        for _ in range(self._steps):
            s = sum(self._ops[offset + j](h, weights[offset + j]) for j, h in enumerate(states))
            offset += len(states)
            states.append(s)
        return torch.cat(states[-self._multiplier :], dim=1)


class Network(nn.Module):
    def __init__(
        self,
        c: int,
        num_classes: int,
        layers: int,
        criterion: nn.Module,
        steps: int = 4,
        multiplier: int = 4,
        stem_multiplier: int = 3,
    ) -> None:
        super().__init__()
        self._C = c
        self._num_classes = num_classes
        self._layers = layers
        self._criterion = criterion
        self._steps = steps
        self._multiplier = multiplier
        c_curr = stem_multiplier * c
        self.stem = nn.Sequential(nn.Conv2d(3, c_curr, 3, padding=1, bias=False), nn.BatchNorm2d(c_curr))
        c_pp, c_p, c_curr = c_curr, c_curr, c
        self.cells = nn.ModuleList()
        reduction_prev = False
        for i in range(layers):
            if i in [layers // 3, 2 * layers // 3]:
                c_curr *= 2
                reduction = True
            else:
                reduction = False
            cell = Cell(steps, multiplier, c_pp, c_p, c_curr, reduction, reduction_prev)
            reduction_prev = reduction
            self.cells += [cell]
            c_pp, c_p = c_p, multiplier * c_curr
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_p, num_classes)
        self._initialize_alphas()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            alphas = self.alphas_reduce if cell.reduction else self.alphas_normal
            s0, s1 = s1, cell(s0, s1, F.softmax(alphas, dim=-1))
        out = self.global_pooling(s1)
        return self.classifier(out.view(out.size(0), -1))

    def _initialize_alphas(self) -> None:
        k = sum(1 for i in range(self._steps) for _ in range(2 + i))
        self.alphas_normal = (1e-3 * torch.randn(k, len(PRIMITIVES))).requires_grad_()
        self.alphas_reduce = (1e-3 * torch.randn(k, len(PRIMITIVES))).requires_grad_()

    def arch_parameters(self) -> list[torch.Tensor]:
        return [self.alphas_normal, self.alphas_reduce]

    def genotype(self) -> dict:
        """The reference's genotype(): per node the two edges whose strongest non-`none` op is
        strongest, each that op; the namedtuple's fields as a dict."""

        def _parse(weights) -> list[tuple[str, int]]:
            gene = []
            n, start = 2, 0
            none = PRIMITIVES.index("none")
            for _ in range(self._steps):
                end = start + n
                w = weights[start:end].copy()
                edges = sorted(
                    range(len(w)), key=lambda x: -max(w[x][k] for k in range(len(w[x])) if k != none)
                )[:2]
                for j in edges:
                    k_best = None
                    for k in range(len(w[j])):
                        if k != none and (k_best is None or w[j][k] > w[j][k_best]):
                            k_best = k
                    gene.append((PRIMITIVES[k_best], j))
                start = end
                n += 1
            return gene

        concat = list(range(2 + self._steps - self._multiplier, self._steps + 2))
        return {
            "normal": _parse(F.softmax(self.alphas_normal, dim=-1).data.cpu().numpy()),
            "normal_concat": concat,
            "reduce": _parse(F.softmax(self.alphas_reduce, dim=-1).data.cpu().numpy()),
            "reduce_concat": concat,
        }
