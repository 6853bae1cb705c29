"""The emitted file: standalone, deterministic, lint-clean, golden; and safe against hostile names."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import nasc
from nasc.compiler.emit import emit_torch
from nasc.compiler.options import EmitOptions
from nasc.runtime.build import import_source

from .conftest import GENOTYPES, GOLDEN, ROOT
from .torch_helpers import nasnet_a_source

STDLIB = set(sys.stdlib_module_names)


def test_golden_emitted_nasnet_a() -> None:
    assert nasnet_a_source() == (GOLDEN / "emit" / "nasnet_a.py").read_text()


def test_emitting_twice_gives_the_same_bytes() -> None:
    genotype = nasc.load(GENOTYPES / "nasnet_a.cell")
    options = EmitOptions(preset="mobile", source_file="genotypes/nasnet_a.cell")
    assert (
        emit_torch(genotype, options).encode()
        == emit_torch(nasc.load(GENOTYPES / "nasnet_a.cell"), options).encode()
    )


def test_emitted_file_imports_only_torch_and_the_standard_library() -> None:
    tree = ast.parse(nasnet_a_source())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
    assert imported - STDLIB - {"__future__"} == {"torch"}


@pytest.mark.parametrize("name", sorted(path.stem for path in GENOTYPES.glob("*.cell")))
def test_emitted_file_passes_ruff_with_the_project_settings(tmp_path: Path, name: str) -> None:
    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    if not Path(ruff).exists():
        pytest.skip("ruff is not installed")
    target = tmp_path / f"{name}.py"
    options = EmitOptions(source_file=f"genotypes/{name}.cell")
    target.write_text(emit_torch(nasc.load(GENOTYPES / f"{name}.cell"), options))
    config = str(ROOT / "pyproject.toml")
    check = subprocess.run(
        [ruff, "check", "--no-cache", "--config", config, str(target)], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout
    fmt = subprocess.run(
        [ruff, "format", "--check", "--config", config, str(target)], capture_output=True, text=True
    )
    assert fmt.returncode == 0, fmt.stdout


def test_emitted_file_works_as_a_dropped_in_file(tmp_path: Path) -> None:
    (tmp_path / "nasnet_a.py").write_text(nasnet_a_source())
    script = (
        "import torch, nasnet_a\n"
        "m = nasnet_a.create_model('cifar', num_classes=7).eval()\n"
        "print(tuple(m(torch.zeros(2, 3, 32, 32)).shape), sum(p.numel() for p in m.parameters()))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split(")")[0] == "(2, 7"


def test_block_lines_appear_as_comments_with_their_cell_line() -> None:
    source = nasnet_a_source()
    block = "h2 = add(sep_conv_5x5(h0), sep_conv_3x3(h1))"
    line = (GENOTYPES / "nasnet_a.cell").read_text().splitlines().index(f"    {block}") + 1
    assert f"        # nasnet_a.cell:{line}  {block}\n" in source
    h2 = "h2 = self.drop_path(self.h2_left(relu_h0)) + self.drop_path(self.h2_right(relu_h1))"
    assert f"        {h2}\n" in source
    # only the op families the genotype uses are emitted
    assert "class SeparableBranch" in source and "class ConvBranch" not in source


def test_ops_that_read_one_state_share_its_relu() -> None:
    """relu(h) once per state per cell, whatever the number of ops reading it; the ops' modules hold
    no leading ReLU of their own (NASNet-A's normal cell: h1 is read through ReLU by three ops)."""
    source = nasnet_a_source()
    normal = source[source.index("class NormalCell(Cell)") :]
    normal = normal[: normal.index("\nclass ")]
    assert normal.count("relu_h1 = torch.relu(h1)") == 1
    assert len(re.findall(r"\(relu_h1\)", normal)) == 3
    for path in sorted(GENOTYPES.glob("*.cell")):
        tree = ast.parse(emit_torch(nasc.load(path), EmitOptions(source_file=path.name)))
        for function in ast.walk(tree):
            if isinstance(function, ast.FunctionDef) and function.name == "cell_forward":
                activated = [
                    ast.unparse(call.args[0])
                    for call in ast.walk(function)
                    if isinstance(call, ast.Call) and ast.unparse(call.func) == "torch.relu"
                ]
                assert len(activated) == len(set(activated)), (path.name, activated)
    # Inside the ops only ReLUs on a batch norm's private output remain, and they run in place.
    model = import_source(source).create_model("cifar")
    relus = [m for cell in model.cells for m in cell.modules() if isinstance(m, torch.nn.ReLU)]
    assert relus and all(relu.inplace for relu in relus)


HOSTILE = """
genotype torch
meta {
    note = "\\"); import os; os.system(\\"touch PWNED\\")  # "
    other = "'''\\"\\"\\" \\n import os"
}
normal(self, x1) {
    print = add(sep_conv_3x3(self), identity(x1))
    filters = concat(conv_1x7_7x1(print), dil_conv_3x3(x1))
    F = add_layernorm(max_pool_5x5(filters), conv_1x3_3x1(self))
    out_channels = add_instancenorm(identity(F), conv_3x3(print))
    return concat(x1, F, out_channels, print)
}
reduction(nn, Tensor) {
    h2_left = add(max_pool_7x7(nn), sep_conv_7x7(Tensor))
    h2 = add(conv_1x1(h2_left), avg_pool_3x3(nn))
    return concat(h2, nn, h2_left)
}
"""


def test_hostile_names_and_strings_cannot_inject_code(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    genotype = nasc.parse(HOSTILE)
    source = emit_torch(genotype, EmitOptions(cells_per_stage=1, first_filters=8))
    module = import_source(source)
    assert not (tmp_path / "PWNED").exists()
    assert module.METADATA == {entry.key: entry.value for entry in genotype.metadata}
    assert module.GENOTYPE == "torch"
    model = module.create_model().eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    assert not (tmp_path / "PWNED").exists()


def test_state_names_never_shadow_what_the_code_uses() -> None:
    source = emit_torch(nasc.parse(HOSTILE))
    tree = ast.parse(source)
    forwards = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "cell_forward"]
    assigned = {
        t.id
        for f in forwards
        for n in ast.walk(f)
        if isinstance(n, ast.Assign)
        for t in n.targets
        if isinstance(t, ast.Name)
    }
    assert not assigned & {"torch", "F", "nn", "Tensor", "self", "x1", "x2", "print"}
    # every distinct state got a distinct local
    assert {"print_2", "F_2", "filters", "out_channels"} <= assigned


def test_emitted_presets_are_the_compilers_presets() -> None:
    from nasc.compiler.presets import PRESETS

    module = import_source(nasnet_a_source())
    assert list(module.PRESETS) == list(PRESETS)
    for name, preset in PRESETS.items():
        emitted = module.PRESETS[name]
        settings = (emitted.image_size, emitted.num_classes, emitted.drop_path_keep_prob)
        assert settings == (preset.image_size, preset.num_classes, preset.drop_path_keep_prob)
        model = module.create_model(name)
        assert type(model) is emitted.network and model.num_classes == preset.num_classes
        assert len(model.cell_names) == 3 * preset.cells_per_stage + 2 + 2 * (preset.stem == "imagenet")


def test_a_rescaled_compile_holds_the_one_network_it_names() -> None:
    source = emit_torch(
        nasc.load(GENOTYPES / "nasnet_a.cell"), EmitOptions(cells_per_stage=2, penultimate_filters=240)
    )
    module = import_source(source)
    assert list(module.PRESETS) == [module.DEFAULT_PRESET] == ["cifar-2@240"]
    assert len(module.create_model().cell_names) == 3 * 2 + 2
