"""Tabular benchmarks: a table built by real training, resumed after a cut-short line, refused when
its settings differ, and looked up by any isomorph of an architecture."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import nasc
from nasc.compiler.nb201_format import read_nb201
from nasc.compiler.options import EmitOptions
from nasc.runtime.build import build_network
from nasc.runtime.tabular import (
    Table,
    TableError,
    TableSettings,
    architecture_hashes,
    build_table,
    distinct_architectures,
)

from .conftest import built_once
from .test_cli import run

SETTINGS = TableSettings(epochs=2, channels=2)


@pytest.fixture(scope="session")
def table(tmp_path_factory) -> Path:
    """Three architectures of the nb201 space, each trained for two epochs on digits, once a run."""

    def build(folder: Path) -> None:
        lines: list[str] = []
        summary = build_table(SETTINGS, folder / "nb201.jsonl", workers=2, limit=3, report=lines.append)
        assert summary == {"trained": 3, "failed": 0, "in_table": 3, "distinct": 4930}
        assert lines[-1].startswith("[3/3] ") and "ETA" in lines[-1]

    return built_once(tmp_path_factory, "nb201-table", build) / "nb201.jsonl"


def test_a_table_holds_each_epochs_metrics_and_the_networks_size(table: Path) -> None:
    loaded = Table.load(table)
    assert len(loaded) == 3 and loaded.problems == [] and loaded.epochs == 2
    for name in ("train_loss", "train_accuracy", "val_accuracy", "test_accuracy", "seconds"):
        assert loaded.metrics[name].shape == (3, 2) and np.isfinite(loaded.metrics[name]).all()
    assert ((loaded.metric("test_accuracy") >= 0) & (loaded.metric("test_accuracy") <= 1)).all()
    assert (loaded.training_seconds() > loaded.training_seconds(1)).all()
    for position, arch in enumerate(loaded.archs):  # each row's hash is its architecture's
        assert loaded.hashes[position] == nasc.structural_hash(read_nb201(arch, name="a"))
        built = build_network(read_nb201(arch), EmitOptions(cells_per_stage=1, first_filters=2))
        assert loaded.params[position] == sum(p.numel() for p in built.model.parameters())


def test_any_isomorph_finds_the_row(table: Path) -> None:
    loaded = Table.load(table)
    digest = loaded.hashes[0]
    strings = [arch for arch, hashed in architecture_hashes("nb201").items() if hashed == digest]
    assert len(strings) >= 1
    for arch in strings[:5]:
        assert loaded.position(arch) == 0
    assert loaded.position(digest[:8]) == 0
    index = next(i for i, arch in enumerate(_every()) if arch in strings)
    assert loaded.position(str(index)) == 0  # by its index in the space's enumeration
    assert loaded.query(loaded.archs[0], "val_accuracy", 1) == float(loaded.metrics["val_accuracy"][0, 0])
    absent = next(h for h in distinct_architectures("nb201") if h not in loaded.index)
    with pytest.raises(TableError, match="no row"):
        loaded.position(absent)


def test_a_cut_short_line_is_skipped_and_the_build_resumes_after_it(table: Path, tmp_path: Path) -> None:
    copy = tmp_path / "t.jsonl"
    shutil.copy(table, copy)
    with open(copy, "a") as handle:  # a kill in the middle of a write
        handle.write('{"hash": "abc", "arch": "|none~0|+|no')
    loaded = Table.load(copy)
    assert len(loaded) == 3 and loaded.problems == ["line 5: not a whole JSON line (cut short?); skipped"]
    code, out, err = run("bench", "build", "--out", str(copy), "--resume", "--limit", "1", "--workers", "1")
    assert code == 0, err
    assert "holds 4 of 4,930" in out
    again = Table.load(copy)
    assert len(again) == 4 and len(again.problems) == 1
    assert set(Table.load(table).hashes) < set(again.hashes)  # nothing trained twice, nothing lost


def test_a_table_with_other_settings_is_refused(table: Path) -> None:
    code, _, err = run("bench", "build", "--out", str(table), "--resume", "--epochs", "3")
    assert code == 1 and "was built with epochs 2, not 3" in err
    code, _, err = run("bench", "build", "--out", str(table), "--epochs", "2", "--channels", "2")
    assert code == 1 and "exists; continue it with --resume" in err


def test_a_hostile_row_is_skipped_not_printed(table: Path, tmp_path: Path) -> None:
    copy = tmp_path / "t.jsonl"
    shutil.copy(table, copy)
    row = json.loads(copy.read_text().splitlines()[1])
    with open(copy, "a") as handle:
        handle.write(json.dumps({**row, "hash": "f" * 64, "arch": "\x1b[2J|none~0|"}) + "\n")
    loaded = Table.load(copy)
    assert len(loaded) == 3 and loaded.problems == ["line 5: not a table row; skipped"]


def test_what_is_not_a_table_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text(json.dumps({"format": "something else"}) + "\n")
    code, _, err = run("bench", "query", str(path))
    assert (
        code == 1
        and err.strip()
        == f"nasc: error: {path} is not a nasc table (its first line is not a nasc-table-v1 header)"
    )


def test_query_prints_a_row_and_a_summary(table: Path) -> None:
    loaded = Table.load(table)
    code, out, _ = run("bench", "query", str(table), loaded.archs[1], "--epoch", "1")
    assert code == 0 and out.startswith(loaded.archs[1]) and "after 1 of 2 epochs" in out
    code, out, _ = run("bench", "query", str(table))
    assert code == 0 and "3 of 4,930 distinct architectures (15,625 in the space)" in out


def _every() -> list[str]:
    from nasc.runtime.tabular import space_architectures

    return space_architectures("nb201")
