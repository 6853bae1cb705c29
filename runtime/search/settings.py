"""A search's settings: what `nasc search` was asked for, checked before anything is written, and
read back from search.json by `--resume`."""

from __future__ import annotations

import json
import os
import types
import typing
from dataclasses import dataclass
from pathlib import Path

from nasc.compiler.space import NB201_SPACE, Nb201Space, SearchSpace
from nasc.diagnostics import NascError, first_line
from nasc.runtime.evolution import POPULATION, TOURNAMENT
from nasc.runtime.latency import DEFAULT_DEPLOY, Deployment, count
from nasc.runtime.objectives import LATENCY_WEIGHT, OBJECTIVES
from nasc.runtime.strategies import STRATEGIES


class SearchError(Exception):
    """A user-facing problem with a search's settings or directory."""


class SettingsError(SearchError):
    """Settings that cannot work together (the command line's usage errors)."""


RECYCLE_EVERY = 100  # children a warm worker trains before a fresh process replaces it
PLOT_INTERVAL = 30.0  # seconds between redrawing rewards.png and pareto.png during a search


@dataclass
class SearchConfig:
    out: str
    strategy: str = "ppo"
    budget: int = 40
    dataset: str = "digits"
    data_dir: str | None = None
    proxy_cells: int = 1  # N: normal cells per stage (the paper's search: 2)
    proxy_filters: int = 4  # F0: first-stage filters (P follows from each child's output width)
    proxy_epochs: int = 1
    proxy_batch_size: int = 32
    workers: int = 1
    executor: str = "local"
    address: str | None = None
    seed: int = 0
    space_source: str | None = None  # a space file's canonical text (--space); None: NASNet's
    num_blocks: int = 5
    ops: tuple[str, ...] | None = None
    combines: tuple[str, ...] = ("add", "concat")
    controller_lr: float = 0.00035
    minibatch: int = 20
    # evolution (Real et al. 2019): population P, tournament sample S, initial members from files
    population: int = POPULATION
    sample: int = TOURNAMENT
    seed_cells: tuple[str, ...] = ()
    # what is rewarded (runtime/objectives.py) and where latency is measured (runtime/latency.py)
    objective: str = "accuracy"
    target_latency_ms: float | None = None
    latency_weight: float = LATENCY_WEIGHT
    latency: str | None = None  # "onnx", "table" or "none"; None: onnx where the objective needs it
    deploy: str = DEFAULT_DEPLOY
    deploy_image_size: int | None = None
    latency_runs: int = 20
    reference: tuple[str, ...] = ()  # published cells to evaluate alike, for pareto.png
    recycle_every: int = RECYCLE_EVERY
    benchmark: str | None = None  # a table (nasc bench build): each child answered from it
    scheduler: str = "none"  # "asha", "hyperband": a child's epochs stopped early by its accuracy

    def space(self) -> SearchSpace | Nb201Space:
        from nasc.compiler.registry import PAPER_OPS

        if self.benchmark is not None:
            return NB201_SPACE  # the one space tables are built of
        if self.space_source is not None:
            return self.space_source_space()
        return SearchSpace(
            num_blocks=self.num_blocks, ops=tuple(self.ops or PAPER_OPS), combines=tuple(self.combines)
        )

    def space_source_space(self) -> SearchSpace | Nb201Space:
        from nasc.compiler.api import parse_space
        from nasc.compiler.space import sampler

        # search.json is read back like any file: the text is parsed and checked again
        return sampler(parse_space(self.space_source or "", "search.json (space_source)"))

    def latency_method(self) -> str:
        return self.latency or ("none" if self.objective == "accuracy" else "onnx")

    def measures_latency(self) -> bool:
        return self.latency_method() != "none"

    def deployment(self) -> Deployment:
        return Deployment.parse(self.deploy, self.deploy_image_size)

    def validate(self) -> None:
        """Settings that cannot work, refused (SettingsError) before anything is written."""
        try:
            self._validate()
        except ValueError as error:  # the search space's and the deployment's own checks
            raise SettingsError(str(error)) from None
        except NascError as error:
            raise SettingsError(error.render()) from None

    def _validate(self) -> None:
        if self.strategy not in STRATEGIES:
            raise SettingsError(f"unknown strategy {self.strategy!r}; strategies: {', '.join(STRATEGIES)}")
        if self.objective not in OBJECTIVES:
            raise SettingsError(f"unknown objective {self.objective!r}; objectives: {', '.join(OBJECTIVES)}")
        if self.objective == "mnas" and self.target_latency_ms is None:
            raise SettingsError("--objective mnas needs --target-latency-ms T (MnasNet's target latency)")
        if self.objective != "accuracy" and not self.measures_latency():
            raise SettingsError(
                f"--objective {self.objective} rewards latency: it cannot run with --latency none"
            )
        if self.target_latency_ms is not None and self.target_latency_ms <= 0:
            raise SettingsError("--target-latency-ms must be positive")
        if self.seed_cells and self.strategy != "evolution":
            raise SettingsError("--seed-cells seeds an evolution's population: add --strategy evolution")
        if not 1 <= self.sample <= self.population:
            raise SettingsError(
                f"--sample {self.sample} must be between 1 and --population {self.population}"
            )
        from nasc.runtime.multifidelity import SCHEDULERS

        if self.scheduler not in SCHEDULERS:
            raise SettingsError(f"unknown scheduler {self.scheduler!r}; schedulers: {', '.join(SCHEDULERS)}")
        if self.scheduler != "none" and self.objective != "accuracy":
            raise SettingsError(
                "--scheduler stops children by their accuracy: use it with --objective accuracy"
            )
        if self.benchmark is not None:
            self._validate_benchmark()
            return
        space = self.space()
        # an unknown preset or an impossible width shows on any child: refuse it now, not per child
        count(space.decode([0] * len(space.decisions())), self.deployment())

    def _validate_benchmark(self) -> None:
        from nasc.runtime.tabular import TableError, read_header

        if self.objective != "accuracy" or self.reference:
            raise SettingsError(
                "--benchmark answers accuracy from the table: --objective mnas|pareto and --reference "
                "need children trained and measured"
            )
        try:
            header = read_header(self.benchmark)  # the executor loads the rows
        except TableError as error:
            raise SettingsError(str(error)) from None
        if self.space_source is not None and self.space_source_space() != NB201_SPACE:
            raise SettingsError(
                f"--benchmark searches the space of its table ({header['space']}); drop --space"
            )
        if header["dataset"] != self.dataset:
            raise SettingsError(
                f"the table {self.benchmark} is of {header['space']} on {header['dataset']}; "
                f"this search is on {self.dataset}"
            )

    def training_budget(self) -> str:
        if self.benchmark is not None:
            return f"answered from the table {Path(self.benchmark).name}"
        return (
            f"{self.dataset}, N={self.proxy_cells} F={self.proxy_filters}, {self.proxy_epochs} epochs, "
            f"batch {self.proxy_batch_size}, cosine"
        )


def load_config(out: str | os.PathLike[str]) -> SearchConfig:
    """The settings of the search in `out`, to resume it there: wherever the directory has been
    copied or moved to, it is the search (an `out` in the file, from an earlier version, is ignored)."""
    path = Path(out) / "search.json"
    if not path.is_file():
        raise SearchError(f"{out} holds no search to resume (no search.json)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError) as error:
        raise SearchError(f"{path} is damaged: {first_line(error)}") from None
    if not isinstance(data, dict):
        raise SearchError(f"{path} is damaged: not a JSON object")
    data.pop("out", None)
    hints = typing.get_type_hints(SearchConfig)
    for key, value in data.items():
        if key not in hints:
            raise SearchError(f"{path}: unknown setting {key!r} (written by another version of nasc?)")
        if isinstance(value, list):
            value = data[key] = tuple(value)
        if not _has_type(value, hints[key]):
            wanted = getattr(hints[key], "__name__", hints[key])
            raise SearchError(f"{path}: setting {key!r} is {type(value).__name__}, not {wanted}")
    return SearchConfig(out=os.fspath(out), **data)


def _has_type(value: object, hint: object) -> bool:
    """isinstance for the settings' hints: plain types, `X | None` and `tuple[str, ...]`."""
    if isinstance(hint, types.UnionType):
        return any(_has_type(value, member) for member in typing.get_args(hint))
    if typing.get_origin(hint) is tuple:
        return isinstance(value, tuple) and all(isinstance(item, str) for item in value)
    if hint is type(None):
        return value is None
    if hint is float:
        return is_number(value)
    return isinstance(value, hint) and not (hint is int and isinstance(value, bool))


def is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
