"""Training: real data end to end, every artifact, exact resume, clean stops, torchrun."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from torch.utils.data import Subset

import nasc
from nasc.cli import main
from nasc.runtime import train as train_module
from nasc.runtime.data import DataError, DataSplits, load_cifar10, load_dataset, load_image_folder
from nasc.runtime.optim import ExponentialMovingAverage, RMSpropTF
from nasc.runtime.train import NonFiniteLoss, TrainConfig, TrainingError, train

from .conftest import DIGITS_RETURNED, GENOTYPES, ROOT
from .data_helpers import colour_images, write_cifar10, write_image_folder

NASNET_A = GENOTYPES / "nasnet_a.cell"
TINY = (1, 96)  # N = 1, P = 96: every code path, a fraction of the cost


@pytest.fixture(scope="module")
def genotype():
    return nasc.load(NASNET_A)


@pytest.fixture(scope="module")
def digits() -> DataSplits:
    """A slice of digits, 8 steps an epoch at batch 32: these tests are about the training loop
    (resume, stops, files), which runs the same on 256 images as on all of them."""
    full = load_dataset("digits")
    return dataclasses.replace(
        full,
        train=Subset(full.train, range(256)),
        val=Subset(full.val, range(64)),
        test=Subset(full.test, range(64)),
    )


def tiny_config(out: Path, **changes) -> TrainConfig:
    return TrainConfig(
        **{
            "dataset": "digits",
            "out": str(out),
            "scale": TINY,
            "epochs": 2,
            "batch_size": 32,
            "quiet": True,
            **changes,
        }
    )


@pytest.mark.slow
def test_digits_end_to_end_reaches_useful_accuracy_and_writes_every_artifact(digits_run, genotype) -> None:
    names = {p.name for p in digits_run.iterdir()}
    assert names == {
        "checkpoint.pt",
        "best.pt",
        "metrics.jsonl",
        "curves.png",
        "model.py",
        "config.json",
        "result.json",
    }
    returned = json.loads((digits_run.parent / DIGITS_RETURNED).read_text())  # what train() returned
    assert returned["test_accuracy"] >= 0.85 and returned["stopped"] is None
    saved = json.loads((digits_run / "result.json").read_text())
    assert saved["test_accuracy"] == returned["test_accuracy"] and saved["stopped"] is None
    assert saved["structural_hash"] == nasc.structural_hash(genotype)
    rows = [json.loads(line) for line in (digits_run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [0, 1, 2]
    assert {"train_loss", "val_accuracy", "lr", "images_per_second"} <= set(rows[0])
    assert (digits_run / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the checkpoint loads into the compiled module written beside it
    from nasc.runtime.build import import_source

    module = import_source((digits_run / "model.py").read_text())
    model = module.create_model(module.DEFAULT_PRESET, aux_head=True, image_size=16)
    model.load_state_dict(torch.load(digits_run / "checkpoint.pt", weights_only=True)["model"])


@pytest.mark.slow
def test_drop_path_progress_reaches_the_model_and_its_final_value(
    tmp_path, genotype, digits, monkeypatch
) -> None:
    seen: list[tuple[float, float]] = []
    original = train_module.Trainer.train_epoch

    def recording(self, progress):
        if "set_drop_path_progress" not in vars(self.model):  # wrap once per run
            setter = self.model.set_drop_path_progress

            def record(fraction):
                setter(fraction)
                seen.append((fraction, self.model.drop_path_keep_probs()[-1]))

            self.model.set_drop_path_progress = record
        return original(self, progress)

    monkeypatch.setattr(train_module.Trainer, "train_epoch", recording)
    result = train(genotype, tiny_config(tmp_path, drop_path_keep_prob=0.6, epochs=1), digits)
    fractions = [f for f, _ in seen]
    assert len(seen) == result.steps and fractions == sorted(fractions)
    assert fractions[0] == pytest.approx(1 / result.steps) and fractions[-1] == 1.0
    assert seen[-1][1] == pytest.approx(0.6)  # the last cell ends at the final keep probability


# Bit-for-bit resumption needs no accuracy: the narrowest network, no test-set pass.
RESUMABLE = {"scale": (1, 24), "test": False}


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory, genotype, digits) -> Path:
    straight = tmp_path_factory.mktemp("straight")
    train(genotype, tiny_config(straight, **RESUMABLE), digits)
    return straight


# SLURM, Kubernetes and `timeout` send SIGTERM; under nohup, in a background job or a CI runner,
# SIGINT starts out ignored. Both in one test, against one uninterrupted run.
STOPS = {
    "sigterm": (signal.SIGTERM, signal.SIG_DFL),
    "sigint-inherited-ignored": (signal.SIGINT, signal.SIG_IGN),
}


@pytest.mark.slow
def test_interrupted_run_resumes_bit_for_bit(tmp_path, genotype, digits, monkeypatch, straight_run) -> None:
    for name, (signum, inherited) in STOPS.items():
        _interrupt_and_resume(tmp_path / name, genotype, digits, monkeypatch, straight_run, signum, inherited)


def _interrupt_and_resume(resumed, genotype, digits, monkeypatch, straight, signum, inherited) -> None:
    calls = {"n": 0}
    original = train_module.Trainer._loss

    def signal_during_step_7(self, images, labels):
        calls["n"] += 1
        if calls["n"] == 7:  # mid-epoch: a real signal, delivered to this process
            os.kill(os.getpid(), signum)
        return original(self, images, labels)

    monkeypatch.setattr(train_module.Trainer, "_loss", signal_during_step_7)
    previous = signal.signal(signal.SIGINT, inherited)
    try:
        first = train(genotype, tiny_config(resumed, **RESUMABLE), digits)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert first.stopped == "interrupted" and first.steps == 7, resumed.name  # the step in flight completes
    monkeypatch.setattr(train_module.Trainer, "_loss", original)
    second = train(genotype, tiny_config(resumed, resume=True, **RESUMABLE), digits)
    a = torch.load(straight / "checkpoint.pt", weights_only=True)
    b = torch.load(resumed / "checkpoint.pt", weights_only=True)
    assert second.stopped is None and a["step"] == b["step"] == second.steps
    for key in ("model", "optimizer"):
        flat_a, flat_b = (
            torch.utils._pytree.tree_flatten(a[key])[0],
            torch.utils._pytree.tree_flatten(b[key])[0],
        )
        assert all(
            torch.equal(x, y) if isinstance(x, torch.Tensor) else x == y
            for x, y in zip(flat_a, flat_b, strict=True)
        )
    assert (straight / "metrics.jsonl").read_text().count("\n") == (
        resumed / "metrics.jsonl"
    ).read_text().count("\n")


def test_nan_loss_stops_cleanly_and_keeps_the_last_good_checkpoint(
    tmp_path, genotype, digits, monkeypatch
) -> None:
    original = train_module.Trainer._to_device
    state = {"calls": 0}

    def poison_in_epoch_2(self, images, labels):
        state["calls"] += 1
        if self.epoch == 1 and self.batch_in_epoch == 2:
            images = images * float("nan")
        return original(self, images, labels)

    monkeypatch.setattr(train_module.Trainer, "_to_device", poison_in_epoch_2)
    with pytest.raises(NonFiniteLoss, match="the loss became nan"):
        train(genotype, tiny_config(tmp_path), digits)
    checkpoint = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert checkpoint["epoch"] == 1 and checkpoint["batch_in_epoch"] == 0  # the end of epoch 1, untouched
    assert all(torch.isfinite(t).all() for t in checkpoint["model"].values() if t.is_floating_point())
    assert (tmp_path / "metrics.jsonl").read_text().count("\n") == 1


def test_nan_through_the_command_line_is_one_message_and_exit_1(tmp_path) -> None:
    result = CliRunner().invoke(
        main,
        [
            "train",
            str(NASNET_A),
            "--scale",
            "1@96",
            "--epochs",
            "1",
            "--lr",
            "1e30",
            "--out",
            str(tmp_path / "run"),
        ],
    )
    assert result.exit_code == 1
    assert "the loss became" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
def test_the_command_line_prints_plain_epoch_lines_and_names_every_file_it_wrote(tmp_path) -> None:
    out = tmp_path / "run"
    args = ["train", str(NASNET_A), "--scale", "1@24", "--epochs", "2", "--out", str(out)]
    result = CliRunner().invoke(main, args)  # output is not a terminal here
    assert result.exit_code == 0, result.stderr
    epochs = [line for line in result.stdout.splitlines() if line.startswith("epoch ")]
    assert [line.split(":")[0] for line in epochs] == ["epoch 1/2", "epoch 2/2"]
    assert all("elapsed" in line and "ETA" in line for line in epochs)
    (wrote,) = [line for line in result.stdout.splitlines() if "wrote" in line]
    for name in sorted(p.name for p in out.iterdir()):
        assert name in wrote
    assert "config.json" in wrote


def test_an_existing_run_is_never_overwritten_and_resume_needs_a_checkpoint(
    tmp_path, genotype, digits
) -> None:
    train(genotype, tiny_config(tmp_path, epochs=1), digits)
    with pytest.raises(TrainingError, match="already holds a training run"):
        train(genotype, tiny_config(tmp_path, epochs=1), digits)
    with pytest.raises(TrainingError, match="nothing to resume"):
        train(genotype, tiny_config(tmp_path / "empty", epochs=1, resume=True), digits)
    with pytest.raises(TrainingError, match="batch_size was 32, now 16"):
        train(genotype, tiny_config(tmp_path, epochs=1, resume=True, batch_size=16), digits)


# -- data -----------------------------------------------------------------------------------------------


def test_cifar10_reader_on_a_directory_in_the_standard_format(tmp_path, genotype) -> None:
    images, labels = colour_images(100, seed=1)
    test_images, test_labels = colour_images(20, seed=2)
    write_cifar10(tmp_path / "data", images, labels, test_images, test_labels)
    splits = load_cifar10(tmp_path / "data")
    assert (len(splits.train), len(splits.val), len(splits.test)) == (90, 10, 20)
    image, label = splits.test[0]
    assert image.shape == (3, 32, 32) and label == test_labels[0]
    assert abs(float(image.mean())) < 3  # normalized
    torch.manual_seed(0)
    a = splits.train[0][0]
    torch.manual_seed(1)
    assert not torch.equal(a, splits.train[0][0])  # augmented: random crop and flip
    result = train(
        genotype,
        TrainConfig(
            dataset="cifar10",
            data_dir=str(tmp_path / "data"),
            out=str(tmp_path / "r"),
            scale=(1, 48),
            epochs=1,
            batch_size=16,
            quiet=True,
        ),
    )
    assert result.test_accuracy is not None and result.epochs == 1


@pytest.mark.parametrize("make", ["missing", "empty", "partial", "garbage"])
def test_bad_cifar_directory_says_what_is_expected(tmp_path, make: str) -> None:
    root = tmp_path / "cifar"
    if make != "missing":
        (root / "cifar-10-batches-py").mkdir(parents=True)
    if make in ("partial", "garbage"):
        images, labels = colour_images(10, seed=0)
        write_cifar10(root, images, labels, images, labels)
        if make == "partial":
            (root / "cifar-10-batches-py" / "test_batch").unlink()
        else:
            (root / "cifar-10-batches-py" / "data_batch_3").write_bytes(b"not a pickle")
    with pytest.raises(DataError, match="expected the CIFAR-10 python version"):
        load_cifar10(root)
    result = CliRunner().invoke(
        main,
        [
            "train",
            str(NASNET_A),
            "--dataset",
            "cifar10",
            "--data-dir",
            str(root),
            "--out",
            str(tmp_path / "run"),
        ],
    )
    assert (
        result.exit_code == 1 and "cifar-10-batches-py" in result.stderr and "Traceback" not in result.stderr
    )


def test_image_folder_on_a_small_tree(tmp_path, genotype) -> None:
    write_image_folder(tmp_path / "folder", per_class=6, classes=3)
    splits = load_image_folder(tmp_path / "folder", image_size=32)
    assert splits.num_classes == 3 and len(splits.test) == 9 and len(splits.train) + len(splits.val) == 18
    assert splits.train[0][0].shape == (3, 32, 32)
    result = train(
        genotype,
        TrainConfig(
            dataset="imagefolder",
            data_dir=str(tmp_path / "folder"),
            image_size=32,
            preset="cifar",
            scale=(1, 48),
            epochs=1,
            batch_size=4,
            out=str(tmp_path / "r"),
            quiet=True,
        ),
    )
    assert result.epochs == 1 and result.test_accuracy is not None


def test_image_folders_are_evaluated_as_the_presets_pretrained_cfg_says(tmp_path) -> None:
    import torch
    from PIL import Image
    from torchvision.transforms import functional

    from nasc.compiler.presets import DataConfig

    write_image_folder(tmp_path / "folder", per_class=2, classes=2, size=40)
    evaluation = DataConfig(mean=(0.5, 0.4, 0.3), std=(0.25, 0.2, 0.5), crop_pct=0.5, interpolation="bicubic")
    splits = load_image_folder(tmp_path / "folder", image_size=16, evaluation=evaluation)
    image, _ = splits.test[0]
    path = splits.test.samples[0][0]  # the folder's val/ set
    # resized to 16 / 0.5 = 32 px (bicubic), its centre 16 px kept, normalized with the cfg's mean/std
    expected = functional.resize(Image.open(path).convert("RGB"), 32, functional.InterpolationMode.BICUBIC)
    expected = functional.normalize(
        functional.to_tensor(functional.center_crop(expected, 16)), (0.5, 0.4, 0.3), (0.25, 0.2, 0.5)
    )
    assert torch.allclose(image, expected)


# -- the recipe's optimizer pieces ----------------------------------------------------------------------


def test_rmsprop_follows_tensorflows_formula() -> None:
    weight = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    optimizer = RMSpropTF([weight], lr=0.1, decay=0.9, momentum=0.5, eps=1.0)
    ms, mom, w = torch.ones(2), torch.zeros(2), torch.tensor([1.0, -2.0])
    for grad in (torch.tensor([0.5, 1.0]), torch.tensor([-1.0, 2.0])):
        weight.grad = grad.clone()
        optimizer.step()
        ms = 0.9 * ms + 0.1 * grad**2
        mom = 0.5 * mom + 0.1 * grad / torch.sqrt(ms + 1.0)
        w = w - mom
    assert torch.allclose(weight.detach(), w)


def test_ema_warms_up_like_tensorflow() -> None:
    model = torch.nn.Linear(1, 1, bias=False)
    torch.nn.init.zeros_(model.weight)
    ema = ExponentialMovingAverage(model, decay=0.9999)
    with torch.no_grad():
        model.weight.fill_(1.0)
    ema.update(model)  # decay = min(0.9999, 2 / 11)
    assert ema.model.weight.item() == pytest.approx(1 - 2 / 11)


# -- several processes ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_two_process_torchrun_on_cpu(tmp_path) -> None:
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        "--master_port=29517",
        "-m",
        "nasc",
        "train",
        str(NASNET_A),
        "--scale",
        "1@24",
        "--epochs",
        "1",
        "--batch-size",
        "32",
        "--device",
        "cpu",
        "--out",
        str(out),
    ]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("trained nasnet_a") == 1  # rank 0 reports
    rows = (out / "metrics.jsonl").read_text().splitlines()
    assert len(rows) == 1  # written once, by rank 0
    summary = json.loads((out / "result.json").read_text())
    assert summary["steps"] == len(load_dataset("digits").train) // 2 // 32
