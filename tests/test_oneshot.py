"""One-shot search (DARTS first and second order, GDAS, ENAS, SPOS) on a tiny supernet: each runs,
writes a derived cell per epoch, and resumes after a kill exactly where an uninterrupted run goes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import nasc
from nasc.compiler.api import format, load_space
from nasc.runtime.data import DataSplits, TensorImages, load_digits
from nasc.runtime.oneshot import OneShotConfig, OneShotError, create_search, load_config

from .conftest import ROOT
from .test_cli import run

DARTS_SPACE = ROOT / "spaces" / "darts.space"
ENAS_SPACE = ROOT / "spaces" / "enas.space"
# ENAS's and SPOS's counts, cut to a few paths: a search of seconds
FEW_PATHS = {
    "controller_steps": 2,
    "controller_aggregate": 2,
    "derive_samples": 2,
    "spos_population": 3,
    "spos_sample": 2,
    "spos_cycles": 3,
    "bn_batches": 1,
}


def small_digits() -> DataSplits:
    """64 training images at 8 px (one step of 32 per half), 32 held out: a search in seconds."""
    full = load_digits(8)
    subset = lambda d, n: TensorImages(d.images[:n], d.labels[:n], d.transform)  # noqa: E731
    return DataSplits("digits", subset(full.train, 64), subset(full.val, 32), full.test, 10, 8)


def tiny(out: Path, **changes) -> OneShotConfig:
    settings = {"epochs": 2, "batch_size": 32, "cells_per_stage": 1, "init_channels": 4, **changes}
    space = ENAS_SPACE if settings.get("strategy") in ("enas", "spos") else DARTS_SPACE
    if space == ENAS_SPACE:
        settings = {**FEW_PATHS, **settings}
    return OneShotConfig(out=str(out), space_source=format(load_space(space)), **settings)


class Killed(Exception):
    pass


def kill_after_first_epoch(row: dict) -> None:
    raise Killed


@pytest.mark.slow
@pytest.mark.parametrize(("strategy", "order"), [("darts", 1), ("gdas", 1), ("enas", 1), ("spos", 1)])
def test_a_search_resumed_after_a_kill_ends_where_an_unbroken_one_does(
    tmp_path: Path, strategy: str, order: int
) -> None:
    data = small_digits()
    whole = create_search(tiny(tmp_path / "whole", strategy=strategy, order=order), data)
    whole.run()
    broken_dir = tmp_path / "broken"
    with pytest.raises(Killed):
        create_search(tiny(broken_dir, strategy=strategy, order=order), data).run(
            on_epoch=kill_after_first_epoch
        )
    assert len(list((broken_dir / "cells").glob("*.cell"))) == 1
    resumed = create_search(load_config(str(broken_dir)), data)
    resumed.run(resume=True)
    ours, theirs = resumed.net.state_dict(), whole.net.state_dict()
    assert all(torch.equal(ours[name], theirs[name]) for name in theirs)
    if strategy == "enas":
        for a, b in zip(resumed.controller.parameters(), whole.controller.parameters(), strict=True):
            assert torch.equal(a, b)
    assert (broken_dir / "best.cell").read_text() == (tmp_path / "whole" / "best.cell").read_text()
    cells = sorted((broken_dir / "cells").glob("*.cell"))
    assert [c.name[:9] for c in cells] == ["epoch-000", "epoch-001"]
    best = nasc.load(broken_dir / "best.cell")
    space = load_space(ENAS_SPACE if strategy in ("enas", "spos") else DARTS_SPACE)
    assert best.convention == space.convention
    assert best.meta("strategy") == strategy and best.meta("epoch") == 1
    assert best.meta("search_space_hash") == nasc.compiler.hashing.space_hash(space)[:16]
    assert 0 <= best.meta("supernet_val_accuracy") <= 1
    assert cells[-1].name.endswith(nasc.structural_hash(best)[:8] + ".cell")


def test_the_second_order_step_moves_alpha_from_the_unrolled_weights(tmp_path: Path) -> None:
    data = small_digits()
    first = create_search(tiny(tmp_path / "1", order=1), data)
    search = create_search(tiny(tmp_path / "2", order=2), data)  # the same seed: the same start
    (x, y), (x_val, y_val) = search.batch(list(range(32))), search.batch(list(range(32, 64)))
    before = [a.detach().clone() for a in search.net.arch_parameters()]
    weights = [w.detach().clone() for w in search.net.weights()]
    first.arch_step(x, y, x_val, y_val, lr=0.025, tau=1.0)
    search.arch_step(x, y, x_val, y_val, lr=0.025, tau=1.0)
    assert all(not torch.equal(a, b) for a, b in zip(search.net.arch_parameters(), before, strict=True))
    # the gradient is the unrolled one, not the first-order gradient at w
    for second, plain in zip(search.net.arch_parameters(), first.net.arch_parameters(), strict=True):
        assert not torch.allclose(second.grad, plain.grad)
    # the finite differences leave the weights where they were (to rounding)
    for w, w0 in zip(search.net.weights(), weights, strict=True):
        assert torch.allclose(w, w0, atol=1e-6)


def test_the_mnas_objective_moves_alpha_toward_cheaper_candidates(tmp_path: Path) -> None:
    data = small_digits()
    priced = {"objective": "mnas", "target_latency_ms": 1.0, "latency_weight": -2.0}
    mnas = create_search(tiny(tmp_path / "m", arch_learning_rate=0.05, **priced), data)
    plain = create_search(tiny(tmp_path / "p", arch_learning_rate=0.05), data)  # the same start
    table = json.loads((tmp_path / "m" / "latency-table.json").read_text())
    assert table and all(entry["ms"] > 0 for entry in table.values())  # timed, kept for a resume
    ops = _ops(mnas)
    assert mnas.latencies["normal"][:, ops.index("none")].eq(0).all()
    assert mnas.latencies["normal"][:, ops.index("sep_conv_3x3")].gt(0).all()

    def latency(search) -> float:
        alphas = {k: a.detach() for k, a in zip(search.kinds, search.net.arch_parameters(), strict=True)}
        return float(sum((torch.softmax(alphas[k], -1) * t).sum() for k, t in mnas.latencies.items()))

    assert latency(mnas) == pytest.approx(latency(plain))
    (x, y), (x_val, y_val) = mnas.batch(list(range(32))), mnas.batch(list(range(32, 64)))
    for _ in range(5):
        for search in (mnas, plain):
            search.arch_step(x, y, x_val, y_val, lr=0.025, tau=1.0)
    assert latency(mnas) < 0.97 * latency(plain)
    with pytest.raises(OneShotError, match="needs --target-latency-ms"):
        create_search(tiny(tmp_path / "t", objective="mnas"), data)


def _ops(search) -> list[str]:
    from nasc.runtime.oneshot import _space_cells

    return list(_space_cells(search.net)["normal"]["ops"])


def test_max_skip_keeps_at_most_k_identity_edges(tmp_path: Path) -> None:
    search = create_search(tiny(tmp_path, max_skip=1), small_digits())
    with torch.no_grad():  # every edge's identity strongest: an unchecked derivation is all skips
        for alpha in search.net.arch_parameters():
            alpha.zero_()
            alpha[:, 3] = 5.0
    for cell in search.derived().cells:
        assert sum(o.op == "identity" for b in cell.blocks for o in b.operands) <= 1
    search.config.max_skip = None
    assert all(o.op == "identity" for c in search.derived().cells for b in c.blocks for o in b.operands)


def test_a_damaged_or_foreign_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "oneshot.json").write_text(json.dumps({"space_source": 3}))
    with pytest.raises(OneShotError, match="does not fit"):
        load_config(str(tmp_path))
    (tmp_path / "oneshot.json").write_text(json.dumps({"space_source": "x", "exec": "rm"}))
    with pytest.raises(OneShotError, match="damaged"):
        load_config(str(tmp_path))


def test_the_command_line_runs_gdas_and_the_derived_cell_trains(tmp_path: Path) -> None:
    out = tmp_path / "s"
    argv = ["search", "--strategy", "gdas", "--space", str(DARTS_SPACE), "--epochs", "1", "--layers", "5"]
    argv += ["--batch-size", "256"]
    code, stdout, err = run(*argv, "--init-channels", "4", "--out", str(out))
    assert code == 0, err
    assert "[epoch 1/1]" in err and "best.cell" in stdout
    train_out = tmp_path / "t"
    code, _, err = run(
        "train",
        str(out / "best.cell"),
        "--dataset",
        "digits",
        "--epochs",
        "1",
        "--scale",
        "1@16",
        "--out",
        str(train_out),
    )
    assert code == 0, err
    code, _, err = run("search", "--strategy", "darts", "--out", str(tmp_path / "x"))
    assert code == 1 and "give one with --space" in err
    code, _, err = run("search", "--strategy", "random", "--order", "2")
    assert code == 2 and "--order: flags of the one-shot strategies" in err


def test_a_supernet_that_cannot_fit_is_refused_before_training(tmp_path: Path, monkeypatch) -> None:
    import nasc.runtime.oneshot as oneshot

    search = create_search(tiny(tmp_path), small_digits())  # fits: the check passed
    needed = oneshot.training_memory(search.net, 64, 8)
    assert needed > sum(p.numel() * 4 for p in search.net.parameters())
    assert oneshot.training_memory(search.net, 128, 8) > needed  # grows with the batch
    monkeypatch.setattr(oneshot, "available_memory", lambda: needed // 4)
    with pytest.raises(OneShotError, match=r"lower --batch-size \(about \d+ fits\)"):
        create_search(tiny(tmp_path / "big"), small_digits())
    assert not (tmp_path / "big").exists()


def test_every_setting_of_a_resumed_search_is_type_checked(tmp_path: Path) -> None:
    base = {"space_source": format(load_space(DARTS_SPACE))}
    for bad in ({"max_skip": "2"}, {"data_dir": 3}, {"epochs": 2.5}, {"channels_last": 1}, {"order": True}):
        (tmp_path / "oneshot.json").write_text(json.dumps({**base, **bad}))
        with pytest.raises(OneShotError, match="does not fit"):
            load_config(str(tmp_path))
    (tmp_path / "oneshot.json").write_text(json.dumps({**base, "max_skip": None, "learning_rate": 1}))
    assert load_config(str(tmp_path)).learning_rate == 1
