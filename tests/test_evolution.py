"""Aging evolution: it beats random search on a reward that costs nothing, each child is its parent
changed by the one mutation its metadata names, seed cells become initial members, and a restored
strategy continues exactly where the saved one stopped."""

from __future__ import annotations

import io
import random
import statistics

import pytest
import torch
from click.testing import CliRunner

import nasc
from nasc.cli import main
from nasc.compiler.diff import diff
from nasc.compiler.hashing import structural_hash
from nasc.compiler.space import NASNET_SPACE
from nasc.runtime.controller import serialize
from nasc.runtime.evolution import AgingEvolution, load_seeds
from nasc.runtime.search import Search, read_ledger

from .conftest import GENOTYPES
from .test_search import check_search_directory, tiny, top5_on_hidden_target


def test_evolution_beats_random_search_on_a_hidden_target() -> None:
    seeds = range(3)
    # the paper's P = 100, S = 25 are for 20,000 samples; at 300 a smaller population evolves
    evolution = [
        top5_on_hidden_target("evolution", seed, options={"population": 20, "sample": 5}) for seed in seeds
    ]
    rand = [top5_on_hidden_target("random", seed) for seed in seeds]
    assert all(e > r for e, r in zip(evolution, rand, strict=True)), (evolution, rand)
    assert statistics.mean(evolution) > statistics.mean(rand) + 0.05


def _grown(strategy: AgingEvolution, count: int, rng: random.Random) -> list:
    samples = []
    for _ in range(count):
        sample = strategy.sample()
        strategy.observe(sample, rng.random())
        samples.append(sample)
    return samples


def test_each_child_is_its_parent_changed_by_the_mutation_it_names() -> None:
    strategy = AgingEvolution(NASNET_SPACE, seed=1, population=10, sample=3)
    samples = _grown(strategy, 150, random.Random(0))
    assert all(s.parent is None and s.mutation is None for s in samples[:10])  # the random members
    by_hash = {structural_hash(NASNET_SPACE.decode(s.choices)): s for s in samples}
    kinds = set()
    for child in samples[10:]:
        parent = NASNET_SPACE.decode(by_hash[child.parent].choices, "parent")
        changes = diff(parent, NASNET_SPACE.decode(child.choices, "child"))
        kind = child.mutation.split()[0]
        kinds.add(kind)
        if kind == "identity":
            assert changes == []
            continue
        _, cell, state, _side = child.mutation.split(":")[0].split()
        old, new = child.mutation.split(": ")[1].split(" -> ")
        changed = [c for c in changes if c.kind in ("op", "input")]
        assert len(changed) == 1, (child.mutation, [c.text for c in changes])
        assert changed[0].cell == cell and changed[0].state == state
        assert changed[0].kind == {"op": "op", "hidden_state": "input"}[kind]
        assert (changed[0].old, changed[0].new) == (old, new)
        # a new input can only change which states nothing reads: the output, nothing else
        assert all(c.kind.startswith("output") for c in changes if c is not changed[0])
    assert kinds == {"op", "hidden_state", "identity"}


def test_the_population_ages_and_the_tournament_picks_its_best() -> None:
    strategy = AgingEvolution(NASNET_SPACE, seed=0, population=5, sample=5)
    rewards = [0.1, 0.9, 0.3, 0.2, 0.4, 0.5, 0.6]
    for reward in rewards:
        strategy.observe(strategy.sample(), reward)
    assert [m.reward for m in strategy.population] == rewards[-5:]  # the oldest two died
    best = max(strategy.population, key=lambda m: m.reward)
    assert strategy.sample().parent == best.hash  # S = P: the tournament sees everyone


def test_a_restored_evolution_samples_what_the_original_would_have() -> None:
    original = AgingEvolution(NASNET_SPACE, seed=3, population=8, sample=3)
    _grown(original, 20, random.Random(1))
    restored = AgingEvolution(NASNET_SPACE, seed=99, population=8, sample=3)
    restored.load_state_dict(torch.load(io.BytesIO(serialize(original.state_dict())), weights_only=True))
    for step in range(30):
        a, b = original.sample(), restored.sample()
        assert a == b
        original.observe(a, step / 30)
        restored.observe(b, step / 30)


def test_seed_cells_are_the_first_members_and_unfit_files_are_explained() -> None:
    seeds, notes = load_seeds([str(GENOTYPES)], NASNET_SPACE)
    assert [s.path for s in seeds] == [str(GENOTYPES / "amoebanet_a.cell"), str(GENOTYPES / "nasnet_a.cell")]
    assert any("darts_v1.cell: skipped, its normal cell has 4 blocks" in note for note in notes)
    assert any("pnasnet_5.cell: skipped, it has no normal cell" in note for note in notes)
    assert any(
        "nasnet_a.cell: seeds its blocks; its normal cell outputs the unused states" in n for n in notes
    )
    strategy = AgingEvolution(NASNET_SPACE, population=4, sample=2, seeds=seeds)
    first, second, third = strategy.sample(), strategy.sample(), strategy.sample()
    assert (first.seeded_from, second.seeded_from, third.seeded_from) == (seeds[0].path, seeds[1].path, None)
    nasnet = nasc.load(GENOTYPES / "nasnet_a.cell")
    seeded = NASNET_SPACE.decode(second.choices)
    for kind in ("normal", "reduction"):  # the same blocks: ops, inputs, combines
        assert seeded.cell(kind).blocks == nasnet.cell(kind).blocks


@pytest.mark.slow
def test_an_evolution_search_records_parents_and_mutations_in_its_cells(tmp_path) -> None:
    out = tmp_path / "evo"
    # population 3, two of them seeded: the fourth child is a mutation
    config = tiny(out, strategy="evolution", budget=4, population=3, sample=2, seed_cells=(str(GENOTYPES),))
    Search(config).run(progress=False)
    ledger = check_search_directory(out, 4)
    assert [row["seeded_from"] is not None for row in ledger[:2]] == [True, True]
    children = [row for row in ledger if row["parent"] is not None]
    assert children, "no child was a mutation"
    steps = {row["hash"]: row["step"] for row in ledger}
    for row in children:
        cell = nasc.load(out / row["file"])
        assert cell.meta("parent") == row["parent"] and cell.meta("mutation") == row["mutation"]
        assert cell.meta("parent_step") == steps[row["parent"]]
        assert (out / cell.meta("parent_file")).is_file()
        result = CliRunner().invoke(
            main, ["diff", str(out / cell.meta("parent_file")), str(out / row["file"])]
        )
        if row["mutation"] == "identity":
            assert result.exit_code == 0 and result.stdout.strip() == ""
            continue
        # `op normal h4 right: a -> b` reads in the diff as `normal h4: second op a → b`, alone
        kind, cell_kind, state, _side = row["mutation"].split(":")[0].split()
        old, new = row["mutation"].split(": ")[1].split(" -> ")
        lines = result.stdout.splitlines()
        assert result.exit_code == 1, result.stdout
        if kind == "op":
            assert len(lines) == 1 and lines[0].startswith(f"{cell_kind} {state}: "), lines
            assert lines[0].endswith(f" op {old} → {new}"), lines
        else:  # the input's change, and the output changes it causes; see the note in docs/search.md
            assert any(line.endswith(f" input {old} → {new}") for line in lines), lines
    assert {row["step"] for row in read_ledger(out)} == set(range(4))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--objective", "mnas"], "--objective mnas needs --target-latency-ms"),
        (["--strategy", "evolution", "--population", "4", "--sample", "5"], "--sample 5 must be between"),
        (["--objective", "pareto", "--latency", "none"], "cannot run with --latency none"),
        (["--deploy", "2@x"], "is not a preset or N@P"),
        (["--deploy", "tiny"], "--deploy tiny"),
        (["--seed-cells", "genotypes"], "add --strategy evolution"),
    ],
)
def test_settings_that_cannot_work_are_refused_before_anything_is_written(tmp_path, argv, message) -> None:
    out = tmp_path / "never"
    result = CliRunner().invoke(main, ["search", *argv, "--out", str(out)])
    assert result.exit_code == 2 and message in result.stderr
    assert not out.exists()
