"""`nasc train`: compile a genotype in process, train it with the paper's recipe, and keep every
artifact safe: atomic checkpoints each epoch, bit-for-bit resume on the CPU, a clean stop on NaN or
Ctrl-C, and DistributedDataParallel under torchrun.

Files under --out: checkpoint.pt (latest), best.pt (best validation accuracy), metrics.jsonl (one
line per epoch), curves.png, model.py (the compiled module the checkpoints load into), config.json,
result.json (final test accuracy).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from nasc.compiler import api, ir
from nasc.compiler.conventions import convention_of
from nasc.compiler.options import EmitOptions
from nasc.diagnostics import first_line
from nasc.fileio import atomic_write_bytes, atomic_write_text
from nasc.runtime.build import AuxHeadUnavailable, BuildError, Built, build_network
from nasc.runtime.checkpoint import CHECKPOINT_FORMAT, NUMPY_RNG_TYPES, rng_state, set_rng_state
from nasc.runtime.data import DataSplits, collate, load_dataset
from nasc.runtime.distributed import Distributed, all_sum, join_process_group
from nasc.runtime.optim import ExponentialMovingAverage, RMSpropTF, parameter_groups
from nasc.runtime.plots import plot_curves
from nasc.runtime.progress import format_duration
from nasc.runtime.recipes import RECIPES, NonFiniteLoss, TrainConfig, TrainingError
from nasc.runtime.signals import stop_requests
from nasc.runtime.tensorfile import TensorFileError, read_tensor_file


class _StopRequested(Exception):
    """Ctrl-C was pressed: stop at the next step boundary, where the state is whole."""


@dataclass
class TrainResult:
    out: str
    epochs: int
    steps: int
    test_accuracy: float | None
    test_loss: float | None
    best_val_accuracy: float
    final_val_accuracy: float
    parameters: int
    seconds: float
    images_per_second: float
    stopped: str | None = None  # None: finished; "interrupted"
    history: list[dict] = field(default_factory=list)
    # Wall seconds in the training loop and in evaluation passes (validation and test)
    train_seconds: float = 0.0
    evaluate_seconds: float = 0.0


# -- the run -------------------------------------------------------------------------------------------


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise TrainingError("--device cuda: no CUDA device is available here")
    if name not in ("cpu", "cuda"):
        raise TrainingError(f"--device must be auto, cpu or cuda, not {name!r}")
    return torch.device(name)


def _json_rows(text: str) -> list[dict]:
    """The JSON objects of a JSON-lines file; a line cut short by a kill (or anything else) is skipped."""
    rows = []
    for line in text.splitlines():
        with contextlib.suppress(ValueError):
            row = json.loads(line)
            if isinstance(row, dict):
                rows.append(row)
    return rows


def _epoch_order(size: int, seed: int, epoch: int, env: Distributed) -> list[int]:
    """This rank's sample order for an epoch: a permutation fixed by (seed, epoch), sharded by rank
    and padded so every rank runs the same number of steps (as DistributedSampler does)."""
    order = torch.randperm(size, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch)).tolist()
    per_rank = math.ceil(size / env.world)
    order += order[: per_rank * env.world - size]
    return order[env.rank :: env.world]


def dataset_arguments(genotype: ir.Genotype, config: TrainConfig) -> dict:
    """What `load_dataset` is called with for this run (a resolved config)."""
    convention = convention_of(genotype)
    return {
        "name": config.dataset,
        "data_dir": config.data_dir,
        "image_size": config.image_size,
        "cutout": config.cutout,
        # image folders are evaluated as the preset's pretrained_cfg prepares images
        "evaluation": convention.data[config.preset or next(iter(convention.presets))],
    }


class Trainer:
    def __init__(self, genotype: ir.Genotype, config: TrainConfig, data: DataSplits | None = None) -> None:
        self.config = config = config.resolved(genotype)
        self.genotype = genotype
        self.device = _device(config.device)
        if config.amp and self.device.type != "cuda":
            raise TrainingError("--amp is for CUDA devices; this run is on the CPU")
        self.env = join_process_group(self.device)
        if self.device.type == "cuda":
            self.device = torch.device("cuda", self.env.local_rank)
            torch.cuda.set_device(self.device)
        self.out = Path(config.out)
        self.data = data or load_dataset(**dataset_arguments(genotype, config))
        cells, filters = config.scale or (None, None)
        self.options = EmitOptions(
            preset=config.preset,
            cells_per_stage=cells,
            penultimate_filters=filters,
            first_filters=config.first_filters,
            num_classes=config.num_classes or self.data.num_classes,
            source_file=genotype.filename,
        )
        torch.manual_seed(config.seed)  # the same initial weights on every rank
        self.aux_head = config.aux_head and config.aux_weight > 0
        try:
            built = self._build(self.aux_head)
            if built is None:  # the images are too small for the aux head: train without it
                self.aux_head = False
                torch.manual_seed(config.seed)
                built = self._build(False)
        except BuildError as error:
            raise TrainingError(str(error)) from None
        self.source, self.preset_name = built.source, built.preset
        self.model = built.model.to(self.device)
        if config.channels_last:  # parameters now, the input at the stem: every activation follows
            self.model.set_channels_last()
        self.ddp = (
            nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None
            )
            if self.env.active
            else self.model
        )
        self.steps_per_epoch = max(1, len(self.data.train) // self.env.world // config.batch_size)
        self.total_steps = config.epochs * self.steps_per_epoch
        self.optimizer = self._optimizer()
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self._lr_factor)
        self.ema = ExponentialMovingAverage(self.model, config.ema_decay) if config.ema_decay else None
        self.scaler = torch.amp.GradScaler("cuda") if config.amp else None
        self.epoch, self.batch_in_epoch, self.step = 0, 0, 0
        self.best_val_accuracy = -1.0
        self.history: list[dict] = []
        self._stop_requested = False

    def _build(self, aux_head: bool) -> Built | None:
        """The network to train; None where the aux head was asked for and the images are too small."""
        try:
            return build_network(
                self.genotype,
                self.options,
                image_size=self.data.image_size,
                aux_head=aux_head,
                drop_path_keep_prob=self.config.drop_path_keep_prob,
            )
        except AuxHeadUnavailable:
            if aux_head:
                return None
            raise

    def _optimizer(self) -> torch.optim.Optimizer:
        config, recipe = self.config, RECIPES[self.config.recipe]
        groups = parameter_groups(self.model, config.weight_decay)
        if recipe.optimizer == "rmsprop_tf":
            return RMSpropTF(groups, lr=config.lr, decay=0.9, momentum=config.momentum, eps=1.0)
        return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum)

    def _lr_factor(self, step: int) -> float:
        recipe = RECIPES[self.config.recipe]
        if recipe.schedule == "cosine":
            return 0.5 * (1 + math.cos(math.pi * min(step, self.total_steps) / self.total_steps))
        return recipe.decay_rate ** (step // max(1, round(recipe.decay_epochs * self.steps_per_epoch)))

    # -- checkpoints ------------------------------------------------------------------------------------

    def _checkpoint(self) -> dict:
        return {
            "format": CHECKPOINT_FORMAT,
            "config": dataclasses.asdict(self.config),
            "structural_hash": api.structural_hash(self.genotype),
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
            "step": self.step,
            "best_val_accuracy": self.best_val_accuracy,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "ema": self.ema.state_dict() if self.ema else None,
            "scaler": self.scaler.state_dict() if self.scaler else None,
            "rng": rng_state(),
        }

    def save(self, name: str = "checkpoint.pt") -> None:
        if not self.env.main or not self.config.artifacts:
            return
        buffer = io.BytesIO()
        torch.save(self._checkpoint(), buffer)
        atomic_write_bytes(self.out / name, buffer.getvalue())

    def restore(self) -> None:
        path = self.out / "checkpoint.pt"
        if not path.exists():
            raise TrainingError(f"nothing to resume: {path} does not exist")
        try:
            state = read_tensor_file(path, allowed=NUMPY_RNG_TYPES)
        except TensorFileError as error:
            raise TrainingError(f"{path}: {error}") from None
        if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
            raise TrainingError(f"{path} is not a nasc training checkpoint")
        if state.get("structural_hash") != api.structural_hash(self.genotype):
            raise TrainingError(
                f"{path} was trained from another architecture (structural hash "
                f"{str(state.get('structural_hash'))[:12]}); resume with the same .cell file"
            )
        try:
            self._apply(state)
        except (KeyError, TypeError, ValueError, RuntimeError, IndexError) as error:
            raise TrainingError(f"{path} is damaged: {type(error).__name__}: {first_line(error)}") from None

    def _apply(self, state: dict) -> None:
        """A checkpoint's state into this run: settings compared, then every part restored."""
        saved = state["config"]
        for key in ("dataset", "preset", "scale", "epochs", "batch_size", "recipe", "image_size", "seed"):
            before, now = json.dumps(saved.get(key)), json.dumps(getattr(self.config, key))  # tuples = lists
            if before != now:
                raise TrainingError(f"--resume with different settings: {key} was {before}, now {now}")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if self.ema and state["ema"]:
            self.ema.load_state_dict(state["ema"])
        if self.scaler and state["scaler"]:
            self.scaler.load_state_dict(state["scaler"])
        self.epoch, self.batch_in_epoch, self.step = state["epoch"], state["batch_in_epoch"], state["step"]
        self.best_val_accuracy = state["best_val_accuracy"]
        set_rng_state(state["rng"])

    def _trim_metrics(self) -> None:
        # Metrics written after this checkpoint (a crash between the two) would be replayed: drop them.
        metrics = self.out / "metrics.jsonl"
        if metrics.is_file():
            kept = _json_rows(metrics.read_text(encoding="utf-8", errors="replace"))
            self.history = [
                row for row in kept if isinstance(row.get("epoch"), int) and row["epoch"] < self.epoch
            ]
            if self.env.main:
                atomic_write_text(metrics, "".join(json.dumps(row) + "\n" for row in self.history))

    # -- steps ------------------------------------------------------------------------------------------

    def _batches(self, dataset, order: list[int], start: int, batch_size: int) -> Iterator:
        batches = [
            order[i : i + batch_size]
            for i in range(start * batch_size, len(order) - batch_size + 1, batch_size)
        ]
        if self.config.workers > 0:
            loader = torch.utils.data.DataLoader(
                dataset, batch_sampler=batches, num_workers=self.config.workers, collate_fn=collate
            )
            yield from loader
        else:
            for batch in batches:
                yield collate([dataset[i] for i in batch])

    def _to_device(self, images: torch.Tensor, labels: torch.Tensor):
        images = images.to(self.device, non_blocking=True)
        return images, labels.to(self.device, non_blocking=True)

    def _loss(self, images, labels):
        with torch.autocast("cuda", enabled=self.config.amp):
            out = self.ddp(images)
            logits, aux = out if isinstance(out, tuple) else (out, None)
            criterion = nn.functional.cross_entropy
            loss = criterion(logits, labels, label_smoothing=self.config.label_smoothing)
            if aux is not None:
                loss = loss + self.config.aux_weight * criterion(
                    aux, labels, label_smoothing=self.config.label_smoothing
                )
        return loss, logits

    def train_epoch(self, progress) -> dict:
        config = self.config
        self.ddp.train()
        order = _epoch_order(len(self.data.train), config.seed, self.epoch, self.env)
        totals = {"loss": 0.0, "correct": 0.0, "count": 0.0}
        started, images_seen = time.perf_counter(), 0
        task = progress.add_task(
            f"epoch {self.epoch + 1}/{config.epochs}",
            total=self.steps_per_epoch,
            completed=self.batch_in_epoch,
            metrics="",
        )
        batches = self._batches(self.data.train, order, self.batch_in_epoch, config.batch_size)
        while self.batch_in_epoch < self.steps_per_epoch:
            # Stop only between steps, before the next batch draws its augmentation: the checkpoint
            # then holds exactly the state an uninterrupted run has here. All ranks stop together.
            (stop,) = all_sum([float(self._stop_requested)], self.env, self.device)
            if stop:
                raise _StopRequested
            images, labels = next(batches)
            images, labels = self._to_device(images, labels)
            # Progress after this step: the last step trains at the schedule's final keep probability.
            self.model.set_drop_path_progress((self.step + 1) / self.total_steps)
            loss, logits = self._loss(images, labels)
            (check,) = all_sum([loss.item()], self.env, self.device)
            if not math.isfinite(check):
                raise NonFiniteLoss(
                    f"the loss became {check} at step {self.step} (epoch {self.epoch + 1}); "
                    f"stopped. The last good checkpoint is kept in {self.out / 'checkpoint.pt'}; "
                    "try a lower --lr"
                )
            self.optimizer.zero_grad(set_to_none=True)
            if self.scaler:
                self.scaler.scale(loss).backward()
                self.scaler.step(self.optimizer)
                self.scaler.update()
            else:
                loss.backward()
                self.optimizer.step()
            self.scheduler.step()
            if self.ema:
                self.ema.update(self.model)
            self.step += 1
            self.batch_in_epoch += 1
            totals["loss"] += loss.item() * len(labels)
            totals["correct"] += (logits.argmax(1) == labels).sum().item()
            totals["count"] += len(labels)
            images_seen += len(labels) * self.env.world
            rate = images_seen / max(time.perf_counter() - started, 1e-9)
            progress.update(
                task,
                advance=1,
                metrics=f"loss {totals['loss'] / totals['count']:.3f} · "
                f"acc {totals['correct'] / totals['count']:.3f} · {rate:,.0f} img/s",
            )
        progress.remove_task(task)
        loss_sum, correct, count = all_sum(
            [totals["loss"], totals["correct"], totals["count"]], self.env, self.device
        )
        seconds = time.perf_counter() - started
        return {
            "train_loss": loss_sum / max(count, 1),
            "train_accuracy": correct / max(count, 1),
            "images_per_second": images_seen / max(seconds, 1e-9),
            "epoch_seconds": seconds,
        }

    @torch.no_grad()
    def evaluate(self, dataset) -> tuple[float, float]:
        """(loss, accuracy) on a split, with the EMA weights when the recipe keeps them."""
        model = self.ema.model if self.ema else self.model
        model.eval()
        order = list(range(len(dataset)))[self.env.rank :: self.env.world]
        loss_sum = correct = count = 0.0
        batch = max(64, 2 * self.config.batch_size)
        for start in range(0, len(order), batch):
            images, labels = collate([dataset[i] for i in order[start : start + batch]])
            images, labels = self._to_device(images, labels)
            with torch.autocast("cuda", enabled=self.config.amp):
                logits = model(images)
            loss_sum += nn.functional.cross_entropy(logits.float(), labels, reduction="sum").item()
            correct += (logits.argmax(1) == labels).sum().item()
            count += len(labels)
        loss_sum, correct, count = all_sum([loss_sum, correct, count], self.env, self.device)
        return loss_sum / max(count, 1), correct / max(count, 1)

    # -- artifacts --------------------------------------------------------------------------------------

    def _record(self, row: dict) -> None:
        self.history.append(row)
        if not self.env.main or not self.config.artifacts:
            return
        with open(self.out / "metrics.jsonl", "a", encoding="utf-8") as handle:
            handle.write(json.dumps(row) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        plot_curves(self.history, self.out / "curves.png", f"{self.genotype.name} on {self.config.dataset}")

    def _prepare_out(self) -> None:
        if not self.env.main or not self.config.artifacts:
            return
        if self.out.exists() and not self.out.is_dir():
            raise TrainingError(f"--out {self.out} exists and is not a directory")
        if not self.config.resume and (self.out / "checkpoint.pt").exists():
            raise TrainingError(
                f"{self.out} already holds a training run; continue it with --resume or choose another --out"
            )
        try:
            self.out.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise TrainingError(f"cannot create {self.out}: {error.strerror or error}") from None
        if not self.config.resume:
            (self.out / "metrics.jsonl").unlink(missing_ok=True)
        atomic_write_text(self.out / "model.py", self.source)
        config = dataclasses.asdict(self.config)
        atomic_write_text(self.out / "config.json", json.dumps(config, indent=2, default=str) + "\n")

    def request_stop(self) -> None:
        """Ask the run to save and stop at the next step boundary (what Ctrl-C does)."""
        self._stop_requested = True

    def _stop_on_signals(self):
        """Ctrl-C or SIGTERM asks for a clean stop at the next step boundary; a second one aborts.
        A search child leaves signals to its parent (`stop_signals=False`)."""
        if not self.config.stop_signals:
            return contextlib.nullcontext()

        def on_request(name: str) -> None:
            self.request_stop()
            if self.env.main and not self.config.quiet:
                print(
                    f"\n{name}: stopping after this step and saving a checkpoint (again to abort)", flush=True
                )

        return stop_requests(on_request)

    def run(self) -> TrainResult:
        self._prepare_out()
        if self.env.active:
            dist.barrier()
        if self.config.resume:
            self.restore()
            self._trim_metrics()
        started = time.perf_counter()
        clock = _Clock()
        with self._progress() as progress, self._stop_on_signals():
            stopped = self._epochs(progress, clock, started)
        test_loss = test_accuracy = None
        if stopped is None and self.config.test:
            began = time.perf_counter()
            test_loss, test_accuracy = self.evaluate(self.data.test)
            clock.evaluate_seconds += time.perf_counter() - began
        result = TrainResult(
            out=str(self.out),
            epochs=self.epoch,
            steps=self.step,
            test_accuracy=test_accuracy,
            test_loss=test_loss,
            best_val_accuracy=self.best_val_accuracy,
            final_val_accuracy=self.history[-1]["val_accuracy"] if self.history else float("nan"),
            parameters=sum(p.numel() for p in self.model.parameters()),
            seconds=time.perf_counter() - started,
            images_per_second=float(np.median(clock.rates)) if clock.rates else 0.0,
            stopped=stopped,
            history=self.history,
            train_seconds=clock.train_seconds,
            evaluate_seconds=clock.evaluate_seconds,
        )
        if self.env.main and stopped is None and self.config.artifacts:
            self._write_result(result)
        return result

    def next_epoch(self) -> dict:
        """One more epoch trained and validated: its metrics row (a multi-fidelity scheduler's step)."""
        with self._progress() as progress:
            return self._epoch(progress, _Clock())

    def _progress(self):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        return Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[metrics]}"),
            TimeElapsedColumn(),
            disable=self.config.quiet or not self.env.main,
            transient=True,
        )

    def _epochs(self, progress, clock: _Clock, started: float) -> str | None:
        """Train to the last epoch; "interrupted" where a signal stopped it (a checkpoint saved)."""
        first_epoch = self.epoch
        try:
            while self.epoch < self.config.epochs:
                row = self._epoch(progress, clock)
                if not self.config.quiet and self.env.main:
                    self._print_epoch(row, progress, time.perf_counter() - started, self.epoch - first_epoch)
        except _StopRequested:
            self.save()  # mid-epoch: --resume continues at the next batch
            return "interrupted"
        return None

    def _epoch(self, progress, clock: _Clock) -> dict:
        """One epoch trained and validated, recorded and checkpointed; its metrics row."""
        began = time.perf_counter()
        row = self.train_epoch(progress)
        trained = time.perf_counter()
        val_loss, val_accuracy = self.evaluate(self.data.val)
        clock.train_seconds += trained - began
        clock.evaluate_seconds += time.perf_counter() - trained
        clock.rates.append(row["images_per_second"])
        self.best_val_accuracy = max(self.best_val_accuracy, val_accuracy)
        if self.config.test_every_epoch:
            row["test_loss"], row["test_accuracy"] = self.evaluate(self.data.test)
        row = {
            "epoch": self.epoch,
            "step": self.step,
            "seconds": trained - began,  # training alone, as NAS-Bench-201 records an epoch's time
            **row,
            "val_loss": val_loss,
            "val_accuracy": val_accuracy,
            "lr": self.scheduler.get_last_lr()[0],
            "drop_path_keep_prob_last_cell": self.model.drop_path_keep_probs()[-1],
        }
        self.epoch, self.batch_in_epoch = self.epoch + 1, 0
        self._record(row)
        self.save()
        if val_accuracy >= self.best_val_accuracy:
            self.save("best.pt")
        return row

    def _print_epoch(self, row: dict, progress, elapsed: float, done: int) -> None:
        """One plain line per epoch: what a log file, nohup or a CI runner keeps."""
        eta = elapsed / max(done, 1) * (self.config.epochs - self.epoch)
        progress.console.print(
            f"epoch {self.epoch}/{self.config.epochs}: train loss {row['train_loss']:.3f} "
            f"acc {row['train_accuracy']:.3f} · val loss {row['val_loss']:.3f} "
            f"acc {row['val_accuracy']:.3f} · {row['images_per_second']:,.0f} img/s · "
            f"elapsed {format_duration(elapsed)} · ETA {format_duration(eta)}",
            highlight=False,
            soft_wrap=True,  # one line per epoch, whatever the width
        )

    def _write_result(self, result: TrainResult) -> None:
        summary = {k: v for k, v in dataclasses.asdict(result).items() if k != "history"}
        summary.update(
            genotype=self.genotype.name,
            structural_hash=api.structural_hash(self.genotype),
            dataset=self.config.dataset,
            preset=self.preset_name,
            aux_head=self.aux_head,
        )
        atomic_write_text(self.out / "result.json", json.dumps(summary, indent=2) + "\n")


@dataclass
class _Clock:
    """Where a run's time went: the training loop, evaluation passes, and each epoch's images/s."""

    train_seconds: float = 0.0
    evaluate_seconds: float = 0.0
    rates: list[float] = field(default_factory=list)


def train(genotype: ir.Genotype, config: TrainConfig, data: DataSplits | None = None) -> TrainResult:
    """Train a genotype; the one entry point for `nasc train` and the search's children."""
    trainer = Trainer(genotype, config, data)
    try:
        return trainer.run()
    finally:
        if trainer.env.active and dist.is_initialized():
            dist.destroy_process_group()
