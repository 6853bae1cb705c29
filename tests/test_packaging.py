"""The project as users install it: a wheel that holds every template, grammar and genotype, and
layers that import only downwards."""

from __future__ import annotations

import ast
import fnmatch
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from .conftest import ROOT

# What a checkout holds that is not source (environments, caches, build output).
NOT_SOURCE = (".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", ".ruff_cache")


def source_files() -> list[Path]:
    """Every file of the source tree (no git needed: CI may have only python3 and pip)."""
    found = []
    for path in ROOT.rglob("*"):
        parts = path.relative_to(ROOT).parts
        if any(fnmatch.fnmatch(part, pattern) for part in parts for pattern in NOT_SOURCE):
            continue
        if path.is_file():
            found.append(path)
    return found


# Folder in the tree → where the wheel puts it; and the data files each must carry.
DATA = {
    "grammar": ("nasc/grammar", "*.lark"),
    "templates": ("nasc/templates", "*.jinja"),
    "genotypes": ("nasc/genotypes", "*.cell"),
}


@pytest.fixture(scope="module")
def wheel_files(tmp_path_factory) -> set[str]:
    out = tmp_path_factory.mktemp("wheel")
    # Build from a copy of the source tree, so the build leaves nothing in the checkout.
    tree = tmp_path_factory.mktemp("tree") / "nasc"
    shutil.copytree(ROOT, tree, ignore=shutil.ignore_patterns(*NOT_SOURCE))
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(out),
            str(tree),
        ],
        capture_output=True,
        text=True,
    )
    if build.returncode != 0:
        pytest.fail(f"pip wheel failed: {build.stderr[-2000:]}")
    (wheel,) = out.glob("nasc-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist())


def test_the_wheel_carries_every_data_file_of_the_tree(wheel_files: set[str]) -> None:
    for folder, (packaged, pattern) in DATA.items():
        expected = {
            f"{packaged}/{p.relative_to(ROOT / folder).as_posix()}" for p in (ROOT / folder).rglob(pattern)
        }
        assert expected, folder
        missing = expected - wheel_files
        assert not missing, f"left out of the wheel: {sorted(missing)}"


def test_the_wheel_carries_every_module_of_the_tree(wheel_files: set[str]) -> None:
    folders = {
        "nasc": "nasc",
        "grammar": "nasc/grammar",
        "compiler": "nasc/compiler",
        "runtime": "nasc/runtime",
        "templates": "nasc/templates",
    }
    for folder, packaged in folders.items():
        for module in (ROOT / folder).rglob("*.py"):
            assert f"{packaged}/{module.relative_to(ROOT / folder).as_posix()}" in wheel_files, module


# Each layer may import only the layers below it: version → diagnostics → grammar → compiler → runtime
# → the package root (the public API) → cli. `import nasc` counts as an import of the root.
LAYERS = [
    "nasc.version",
    "nasc.diagnostics",
    "nasc.fileio",
    "nasc.grammar",
    "nasc.compiler",
    "nasc.runtime",
    "nasc",
    "nasc.cli",
]
FOLDERS = {
    "nasc.version": ROOT / "nasc" / "version.py",
    "nasc.diagnostics": ROOT / "nasc" / "diagnostics.py",
    "nasc.fileio": ROOT / "nasc" / "fileio.py",
    "nasc.grammar": ROOT / "grammar",
    "nasc.compiler": ROOT / "compiler",
    "nasc.runtime": ROOT / "runtime",
    "nasc": ROOT / "nasc" / "__init__.py",
    "nasc.cli": ROOT / "nasc" / "cli",
}


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name == "nasc" or name.startswith("nasc.")}


def _layer(module: str) -> int | None:
    if module == "nasc":
        return LAYERS.index("nasc")
    return next(
        (
            i
            for i, layer in enumerate(LAYERS)
            if layer != "nasc" and (module == layer or module.startswith(layer + "."))
        ),
        None,
    )


@pytest.mark.parametrize("layer", LAYERS)
def test_layers_import_only_downwards(layer: str) -> None:
    root = FOLDERS[layer]
    files = [root] if root.is_file() else sorted(root.rglob("*.py"))
    own = LAYERS.index(layer)
    for file in files:
        for module in _imports(file):
            position = _layer(module)
            assert position is None or position <= own, f"{file.relative_to(ROOT)} imports {module}"
        # an import by name (importlib) is an edge this test could not see
        assert "import_module(" not in file.read_text(), f"{file.relative_to(ROOT)} imports by name"


def test_nothing_cites_files_outside_the_repository() -> None:
    for path in source_files():
        if path.suffix in (".py", ".md", ".jinja", ".lark", ".toml", ".cell"):
            assert "shared/" + "REFERENCE" not in path.read_text(errors="replace"), path


# A block of this many lines appearing twice in the templates is a copy to factor out.
DUPLICATE_WINDOW = 6
# Parameter lines (`in_channels: int,`) are declarations, alike across any two modules' signatures.
PARAMETER = re.compile(r"(self|\*|\w+: [^=]+( = .+)?),")


def test_no_block_of_the_templates_is_written_twice() -> None:
    """`duplicates` does not read .jinja: this is its check for the emitted code's source."""
    seen: dict[tuple[str, ...], str] = {}
    for path in sorted((ROOT / "templates").rglob("*.jinja")):
        lines = [(number, line.strip()) for number, line in enumerate(path.read_text().splitlines(), 1)]
        lines = [(number, line) for number, line in lines if line and not PARAMETER.fullmatch(line)]
        for start in range(len(lines) - DUPLICATE_WINDOW + 1):
            window = tuple(line for _, line in lines[start : start + DUPLICATE_WINDOW])
            here = f"{path.relative_to(ROOT)}:{lines[start][0]}"
            assert window not in seen, f"{here} repeats {seen[window]}: {window}"
            seen[window] = here
