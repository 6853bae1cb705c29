"""One-shot search: a space's supernet trained once, its architecture read from it.

`OneShotSearch` is what every strategy shares: the supernet, the two halves of the training set,
the weights' optimizer, the files an epoch writes, the checkpoint. DARTS and GDAS, which train α by
gradient, are runtime/differentiable.py; ENAS and SPOS, which train the weights on sampled paths,
runtime/sampled_paths.py.

The weights train as cnn/train_search.py trains them: SGD with a cosine learning rate and
gradient clipping on the first half of the training set; the second half is the architecture's.

Every epoch writes the derived architecture as `cells/epoch-NNN-<hash8>.cell` and a checkpoint
(`state.pt`, written atomically, read back with weights_only); `--resume` continues after the last
finished epoch with the same random streams, so a killed search loses at most the epoch in flight.
"""

from __future__ import annotations

import abc
import dataclasses
import io
import json
import math
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from nasc.compiler import ir
from nasc.compiler.api import format, parse_space
from nasc.compiler.compilation import compile_space
from nasc.compiler.hashing import space_hash, structural_hash
from nasc.compiler.options import EmitOptions
from nasc.compiler.space_ir import Space
from nasc.fileio import atomic_write_bytes, atomic_write_text
from nasc.runtime.build import import_source
from nasc.runtime.data import DataSplits, load_dataset
from nasc.runtime.tensorfile import TensorFileError, read_tensor_file
from nasc.version import __version__

STRATEGIES = ("darts", "gdas", "enas", "spos")
DIFFERENTIABLE = ("darts", "gdas")
PARAMETER_FREE = ("identity", "max_pool_3x3", "avg_pool_3x3", "none")
BACKWARD_OVERHEAD = 1.15


class OneShotError(Exception):
    """A one-shot search that cannot start or resume: one line for the user."""


@dataclass
class OneShotConfig:
    """The reference's settings (cnn/train_search.py; GDAS's temperature) as defaults."""

    out: str
    space_source: str  # the space file's canonical text: the directory holds its space
    strategy: str = "darts"
    dataset: str = "digits"
    data_dir: str | None = None
    epochs: int = 50
    batch_size: int = 64
    cells_per_stage: int = 2  # N: 3N + 2 cells (the reference's 8)
    init_channels: int = 16
    learning_rate: float = 0.025
    learning_rate_min: float = 0.001
    momentum: float = 0.9
    weight_decay: float = 3e-4
    grad_clip: float = 5.0
    arch_learning_rate: float = 3e-4
    arch_weight_decay: float = 1e-3
    train_portion: float = 0.5
    order: int = 1  # DARTS: 1 first order, 2 the unrolled second-order step
    tau_max: float = 10.0  # GDAS's temperature, annealed linearly to tau_min
    tau_min: float = 0.1
    max_skip: int | None = None  # P-DARTS: at most this many identity edges per derived cell
    partial_channels: int = 1  # PC-DARTS: each edge's candidates see 1/K of the channels
    # the supernet in channels-last memory, as `nasc train` runs on a CPU: 0.6x the step time
    channels_last: bool = True
    # darts, gdas with "mnas": α's loss adds MnasNet's soft constraint on FBNet's expected latency
    objective: str = "accuracy"
    latency_weight: float = -0.07
    target_latency_ms: float | None = None
    # ENAS (Pham et al. 2018, micro search): the controller's REINFORCE on sampled paths' accuracy
    controller_steps: int = 30  # controller updates per epoch...
    controller_aggregate: int = 10  # ...each over this many sampled paths
    controller_learning_rate: float = 0.0035
    entropy_weight: float = 1e-4
    baseline_decay: float = 0.99
    # ...its logits as the micro controller shapes them (see LSTMController; tanh constant 0: unbounded)
    controller_temperature: float = 5.0
    controller_tanh_constant: float = 1.1
    controller_op_tanh_reduce: float = 2.5
    controller_favour_convs: bool = True
    # ENAS and SPOS: an epoch's derived cell is the best of this many sampled paths
    derive_samples: int = 10
    # SPOS (Guo et al. 2020): after the last epoch, aging evolution over paths scored with inherited
    # weights, batch norms recomputed per path on a few batches
    spos_population: int = 50
    spos_sample: int = 10
    spos_cycles: int = 500
    bn_batches: int = 4
    seed: int = 0

    def validate(self) -> None:
        if self.strategy not in STRATEGIES:
            raise OneShotError(f"unknown one-shot strategy {self.strategy!r}; choose {', '.join(STRATEGIES)}")
        counts = ("controller_steps", "controller_aggregate", "derive_samples", "bn_batches")
        positive = all(getattr(self, name) >= 1 for name in (*counts, "spos_population", "spos_sample"))
        if not positive or self.spos_cycles < 0:
            raise OneShotError("the controller's and evolution's counts must be positive")
        if self.controller_temperature <= 0 or self.controller_op_tanh_reduce <= 0:
            raise OneShotError("--controller-temperature and --controller-op-tanh-reduce must be positive")
        if self.controller_tanh_constant < 0:
            raise OneShotError("--controller-tanh-constant must be positive (0: unbounded logits)")
        if self.spos_sample > self.spos_population:
            raise OneShotError("--spos-sample must not exceed --spos-population")
        if self.objective not in ("accuracy", "mnas"):
            raise OneShotError("a one-shot search's --objective is accuracy or mnas")
        if self.objective == "mnas" and self.strategy not in DIFFERENTIABLE:
            raise OneShotError("--objective mnas adds a latency term to α's loss: use it with darts or gdas")
        if self.objective == "mnas" and not (self.target_latency_ms or 0) > 0:
            raise OneShotError("--objective mnas needs --target-latency-ms T (the reward's latency target)")
        if self.order not in (1, 2) or (self.order == 2 and self.strategy != "darts"):
            raise OneShotError("--order 2 is DARTS's unrolled step: use it with --strategy darts")
        if not 0 < self.train_portion < 1:
            raise OneShotError("--train-portion must be between 0 and 1")
        if self.init_channels % 2:
            raise OneShotError("--init-channels must be even (a factorized reduction halves it)")
        if self.partial_channels < 1 or self.init_channels % self.partial_channels:
            raise OneShotError(f"--partial-channels {self.partial_channels} must divide --init-channels")


# settings that are None where unset, and their type
OPTIONAL = {"data_dir": str, "max_skip": int, "target_latency_ms": float}


def _fits(value: object, default: object, optional: type | None) -> bool:
    if value is None:
        return optional is not None
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(default, bool) and isinstance(value, bool)
    if isinstance(default, float) or optional is float:
        return isinstance(value, int | float) and math.isfinite(value)
    return isinstance(value, optional or type(default))


def save_config(config: OneShotConfig) -> None:
    data = dataclasses.asdict(config)
    data.pop("out")
    atomic_write_text(Path(config.out) / "oneshot.json", json.dumps(data, indent=2) + "\n")


def load_config(out: str) -> OneShotConfig:
    """The settings of the search in `out`; untrusted: every field type-checked, the space parsed."""
    path = Path(out) / "oneshot.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise OneShotError(f"{out} holds no one-shot search to resume ({error})") from None
    known = {f.name for f in dataclasses.fields(OneShotConfig)} - {"out"}
    if not isinstance(data, dict) or not set(data) <= known or "space_source" not in data:
        raise OneShotError(f"{path} is damaged: unknown or missing settings")
    defaults = OneShotConfig(out=out, space_source="")
    for key, value in data.items():
        if not _fits(value, getattr(defaults, key), OPTIONAL.get(key)):
            raise OneShotError(f"{path}: setting {key!r} is {type(value).__name__}, which does not fit")
    config = OneShotConfig(out=out, **data)
    config.validate()
    return config


# -- the supernet -----------------------------------------------------------------------------------


def build_supernet(config: OneShotConfig, space: Space, num_classes: int) -> nn.Module:
    options = EmitOptions(
        cells_per_stage=config.cells_per_stage,
        first_filters=config.init_channels,
        num_classes=num_classes,
        partial_channels=config.partial_channels,
    )
    try:
        compilation = compile_space(space, options)
    except ValueError as error:  # a convention without a supernet, an option it cannot honour
        raise OneShotError(str(error)) from None
    module = import_source(compilation.emit())
    return module.create_model(compilation.preset_name)


def training_memory(net: nn.Module, batch: int, image_size: int, channels: int = 3) -> int:
    """Bytes a training step of the mixture needs at `batch`: the tensors autograd saves for the
    backward pass (counted once per storage, on a batch of 2, scaled) and the weights with their
    gradients and momentum."""
    saved: dict[int, int] = {}

    def keep(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        saved[storage.data_ptr()] = storage.nbytes()
        return tensor

    was_training = net.training
    net.train()
    with torch.autograd.graph.saved_tensors_hooks(keep, lambda tensor: tensor):
        net(torch.zeros(2, channels, image_size, image_size))
    net.train(was_training)
    weights = sum(p.numel() * p.element_size() for p in net.parameters())
    # The backward pass's own buffers come on top: at C = 16, 8 cells, batch 32 the peak measured
    # by bench/bench_oneshot.py is 1.14x the saved tensors.
    return int(sum(saved.values()) * batch / 2 * BACKWARD_OVERHEAD) + 3 * weights


def available_memory() -> int | None:
    """What this machine can still give (Linux's MemAvailable); None where it cannot say."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def create_search(config: OneShotConfig, data: DataSplits | None = None) -> OneShotSearch:
    """The search `config.strategy` names."""
    config.validate()
    if config.strategy in DIFFERENTIABLE:
        from nasc.runtime.differentiable import DifferentiableSearch

        return DifferentiableSearch(config, data)
    from nasc.runtime.sampled_paths import EnasSearch, SposSearch

    return {"enas": EnasSearch, "spos": SposSearch}[config.strategy](config, data)


class OneShotSearch(abc.ABC):
    """What every one-shot strategy shares. A strategy gives `train_epoch`, `validation_accuracy`
    (which also settles the epoch's architecture), `derived` and its own checkpoint state."""

    def __init__(self, config: OneShotConfig, data: DataSplits | None = None) -> None:
        config.validate()
        self.config = config
        self.out = Path(config.out)
        self.data = data or load_dataset(config.dataset, config.data_dir)
        torch.manual_seed(config.seed)
        random.seed(config.seed)
        # oneshot.json is read back like any file: its space is parsed and checked again, once
        self.space = parse_space(config.space_source, "oneshot.json (space)")
        self.net = build_supernet(config, self.space, self.data.num_classes)
        self.net.set_channels_last(config.channels_last)
        self.check_memory()
        self.kinds = [kind for kind, _ in self.net.architecture.named_parameters()]
        self.weights = self.net.weights()
        self.w_optimizer = torch.optim.SGD(
            self.weights,
            config.learning_rate,
            momentum=config.momentum,
            weight_decay=config.weight_decay,
        )
        self.epoch = 0
        self.space_hash = space_hash(self.space)
        self.log: list[dict] = []

    def check_memory(self) -> None:
        """Refuse, before any training, a supernet that cannot train here at its batch size."""
        available = available_memory()
        if available is None:
            return
        needed = training_memory(self.net, self.config.batch_size, self.data.image_size)
        if needed <= available:
            return
        per_example = needed / self.config.batch_size  # weights included: a slight underestimate of fits
        fits = int(available // per_example)
        batch = self.config.batch_size
        raise OneShotError(
            f"the supernet needs about {needed / 2**30:.1f} GiB to train at batch {batch}; "
            f"this machine has {available / 2**30:.1f} GiB available: lower --batch-size "
            f"(about {fits} fits), --partial-channels 4 (PC-DARTS), --init-channels or --layers"
        )

    # -- one epoch --------------------------------------------------------------------------------

    def learning_rate(self, epoch: int) -> float:
        """CosineAnnealingLR(epochs, eta_min) at `epoch`, as the reference steps it per epoch."""
        c = self.config
        return (
            c.learning_rate_min
            + (c.learning_rate - c.learning_rate_min) * (1 + math.cos(math.pi * epoch / c.epochs)) / 2
        )

    def batches(self, epoch: int) -> tuple[list[list[int]], list[list[int]]]:
        """The epoch's batches of the two halves of the training set, in an order fixed by the seed."""
        size = len(self.data.train)
        split = math.floor(self.config.train_portion * size)
        generator = torch.Generator().manual_seed(self.config.seed * 1_000_003 + epoch)
        first = torch.randperm(split, generator=generator).tolist()
        second = (split + torch.randperm(size - split, generator=generator)).tolist()
        b = self.config.batch_size
        return [first[i : i + b] for i in range(0, len(first), b)], [
            second[i : i + b] for i in range(0, len(second), b)
        ]

    def batch(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        samples = [self.data.train[i] for i in indices]
        return torch.stack([s[0] for s in samples]), torch.tensor([s[1] for s in samples])

    def start_epoch(self, epoch: int) -> float:
        """The weights' learning rate this epoch, set."""
        lr = self.learning_rate(epoch)
        for group in self.w_optimizer.param_groups:
            group["lr"] = lr
        return lr

    def weight_step(self, y: torch.Tensor, logits: torch.Tensor) -> float:
        """One step of the weights on a batch's logits; returns the loss."""
        loss = nn.functional.cross_entropy(logits, y)
        self.w_optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(self.weights, self.config.grad_clip)
        self.w_optimizer.step()
        return float(loss.detach())

    @torch.no_grad()
    def recalibrate(self, path: dict[str, list[int]]) -> None:
        """Batch-norm statistics of `path` alone: reset, then averaged over `bn_batches` batches of
        the first half (SPOS), and the network left in eval mode."""
        norms = [m for m in self.net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        momenta = [m.momentum for m in norms]
        for norm in norms:
            norm.reset_running_stats()
            norm.momentum = None  # a cumulative average
        self.net.train()
        weight_batches, _ = self.batches(self.epoch)
        for indices in weight_batches[: self.config.bn_batches]:
            self.net(self.batch(indices)[0], path=path)
        for norm, momentum in zip(norms, momenta, strict=True):
            norm.momentum = momentum
        self.net.eval()

    @torch.no_grad()
    def accuracy(self, path: dict[str, list[int]] | None = None) -> float:
        """The supernet's accuracy on the held-out split, on `path` (None: the mixture), as it is."""
        self.net.eval()
        correct = 0
        for start in range(0, len(self.data.val), 256):
            samples = [self.data.val[i] for i in range(start, min(start + 256, len(self.data.val)))]
            x, y = torch.stack([s[0] for s in samples]), torch.tensor([s[1] for s in samples])
            correct += int((self.net(x, path=path).argmax(-1) == y).sum())
        return correct / len(self.data.val)

    @abc.abstractmethod
    def train_epoch(self, epoch: int) -> dict:
        """One epoch of training: the row the log keeps (train_loss, train_accuracy, lr, …)."""

    @abc.abstractmethod
    def validation_accuracy(self) -> float:
        """The supernet's held-out accuracy, on the architecture the epoch derives."""

    @abc.abstractmethod
    def derived(self) -> ir.Genotype:
        """The architecture the search stands at."""

    @abc.abstractmethod
    def strategy_state(self) -> dict:
        """What the strategy adds to the checkpoint: tensors, state dicts, or JSON text."""

    @abc.abstractmethod
    def load_strategy_state(self, state: dict) -> None:
        """Restore `strategy_state()`'s dict, read back from an untrusted file."""

    # -- what an epoch writes -----------------------------------------------------------------------

    def write_epoch(self, row: dict) -> Path:
        genotype = self.derived()
        free = sum(o.op in PARAMETER_FREE for c in genotype.cells for b in c.blocks for o in b.operands)
        row["parameter_free_ops"] = free
        meta = [
            ("strategy", self.config.strategy),
            ("epoch", row["epoch"]),
            ("search_space", self.space.name),
            ("search_space_hash", self.space_hash[:16]),
            ("supernet_val_accuracy", round(row["val_accuracy"], 6)),
            ("parameter_free_ops", free),
        ]
        if "expected_latency_ms" in row:
            meta.append(("expected_latency_ms", round(row["expected_latency_ms"], 6)))
        meta.append(("nasc_version", __version__))
        named = dataclasses.replace(
            genotype,
            name=f"epoch_{row['epoch']:03d}",
            metadata=tuple(ir.MetaEntry(k, v) for k, v in meta),
        )
        text = format(named)
        digest = structural_hash(named)
        path = self.out / "cells" / f"epoch-{row['epoch']:03d}-{digest[:8]}.cell"
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, text)
        atomic_write_text(self.out / "best.cell", text)
        row.update(file=str(path.relative_to(self.out)), hash=digest)
        return path

    def save_state(self) -> None:
        state = {
            "epoch": self.epoch,
            "net": self.net.state_dict(),
            "w_optimizer": self.w_optimizer.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "log": json.dumps(self.log),
            "strategy": self.strategy_state(),
        }
        buffer = io.BytesIO()
        torch.save(state, buffer)
        atomic_write_bytes(self.out / "state.pt", buffer.getvalue())

    def load_state(self) -> None:
        try:
            state = read_tensor_file(self.out / "state.pt")
            self.net.load_state_dict(state["net"])
            self.w_optimizer.load_state_dict(state["w_optimizer"])
            self.load_strategy_state(state["strategy"])
            torch.set_rng_state(state["torch_rng"])
            self.epoch = int(state["epoch"])
            self.log = json.loads(state["log"])
        except (TensorFileError, KeyError, TypeError, ValueError, RuntimeError) as error:
            raise OneShotError(f"{self.out / 'state.pt'} cannot be resumed: {error}") from None

    def run(self, resume: bool = False, on_epoch: Callable[[dict], None] | None = None) -> dict:
        self.out.mkdir(parents=True, exist_ok=True)
        if resume and (self.out / "state.pt").exists():
            self.load_state()
        else:
            save_config(self.config)
        while self.epoch < self.config.epochs:
            row = {"epoch": self.epoch, **self.train_epoch(self.epoch)}
            row["val_accuracy"] = self.validation_accuracy()
            self.write_epoch(row)
            self.log.append(row)
            self.epoch += 1
            self.save_state()
            if on_epoch is not None:
                on_epoch(row)
        return self.log[-1] if self.log else {}


def _space_cells(net: nn.Module) -> dict:
    """The emitted module's SPACE_CELLS (the space as data), read from the network's module."""
    return sys.modules[type(net).__module__].SPACE_CELLS
