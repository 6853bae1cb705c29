"""Review tooling: pictures a reviewer can trust, semantic diffs, git and pre-commit integration."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

import nasc
from nasc.cli import main
from nasc.compiler.diff import diff
from nasc.compiler.registry import OPS

from .conftest import GENOTYPES, ROOT
from .test_hash import NASNET_A, SAME

NASNET_A_FILE = GENOTYPES / "nasnet_a.cell"
needs_dot = pytest.mark.skipif(
    shutil.which("dot") is None,
    reason="Graphviz `dot` is not installed (.ci/run installs it, so CI renders for real)",
)


def cli(*args: str):
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def svg_texts(path: Path) -> list[str]:
    root = ET.parse(path).getroot()  # parses as XML
    return [element.text for element in root.iter() if element.tag.endswith("text") and element.text]


@needs_dot
def test_svg_of_nasnet_a_shows_every_op_of_both_cells(tmp_path: Path) -> None:
    out = tmp_path / "nasnet_a.svg"
    code, stdout, _ = cli("viz", str(NASNET_A_FILE), "-o", str(out))
    assert code == 0 and stdout.strip() == f"wrote {out}"
    texts = svg_texts(out)
    genotype = nasc.load(NASNET_A_FILE)
    for cell in genotype.cells:
        expected = sorted(operand.op for block in cell.blocks for operand in block.operands)
        assert expected and all(op in texts for op in expected)
    operand_count = sum(len(b.operands) for c in genotype.cells for b in c.blocks)
    assert sum(text in OPS for text in texts) == operand_count  # one box per op, none missing or extra
    assert "normal cell" in texts and "reduction cell (stride 2)" in texts


@needs_dot
def test_lowered_picture_shows_the_adapters(tmp_path: Path) -> None:
    out = tmp_path / "lowered.svg"
    assert cli("viz", str(NASNET_A_FILE), "--lowered", "--cell", "reduction", "-o", str(out))[0] == 0
    texts = " ".join(svg_texts(out))
    assert "squeeze: ReLU, 1x1 conv to F, BN" in texts
    assert "adjust x2: factorized reduction if larger," in texts
    assert texts.count("stride 2") >= 6  # every op on h0/h1 in the reduction cell
    assert "normal cell" not in texts
    plain = tmp_path / "plain.svg"
    cli("viz", str(NASNET_A_FILE), "--cell", "reduction", "-o", str(plain))
    assert "squeeze" not in " ".join(svg_texts(plain))


@needs_dot
def test_png_output_is_a_png(tmp_path: Path) -> None:
    out = tmp_path / "cell.png"
    assert cli("viz", str(NASNET_A_FILE), "-o", str(out))[0] == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_missing_dot_is_a_clear_error_with_the_install_hint(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no Graphviz anywhere
    code, _, err = cli("viz", str(NASNET_A_FILE), "-o", str(tmp_path / "x.svg"))
    assert (
        code == 1
        and "the `dot` program (Graphviz) is not installed" in err
        and "apt-get install graphviz" in err
    )
    assert "Traceback" not in err and not (tmp_path / "x.svg").exists()
    # DOT text needs no Graphviz
    assert cli("viz", str(NASNET_A_FILE), "-o", str(tmp_path / "x.dot"))[0] == 0
    assert 'digraph "nasnet_a" {' in (tmp_path / "x.dot").read_text().splitlines()


def test_viz_of_an_unknown_cell_is_a_usage_error(tmp_path: Path) -> None:
    code, _, err = cli("viz", str(NASNET_A_FILE), "--cell", "stem", "-o", str(tmp_path / "x.dot"))
    assert code == 2 and "has no 'stem' cell" in err


# -- diff -------------------------------------------------------------------------------------------


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_renamed_and_reordered_copy_is_the_same_architecture(tmp_path: Path) -> None:
    code, stdout, _ = cli("diff", str(NASNET_A_FILE), write(tmp_path, "same.cell", SAME))
    assert code == 0 and "the same architecture" in stdout


def test_a_one_op_change_is_reported_as_exactly_that_change(tmp_path: Path) -> None:
    changed = SAME.replace(
        "s3 = add(sep_conv_3x3(y), sep_conv_5x5(y))", "s3 = add(sep_conv_5x5(y), sep_conv_5x5(y))"
    )
    code, stdout, _ = cli("diff", str(NASNET_A_FILE), write(tmp_path, "b.cell", changed))
    assert code == 1
    assert stdout.splitlines() == ["normal h3 (s3 in B): second op sep_conv_3x3 → sep_conv_5x5"]


def test_wiring_output_and_combine_changes_in_words() -> None:
    a = nasc.parse(NASNET_A)
    b = nasc.parse(
        NASNET_A.replace("return concat(h3, h4, h5, h6)", "return concat(h2, h3, h4, h5, h6)")
        .replace(
            "h6 = add(sep_conv_3x3(h2), max_pool_3x3(h0))", "h6 = add(sep_conv_3x3(h1), max_pool_3x3(h0))"
        )
        .replace(
            "h2 = add(sep_conv_5x5(h0), sep_conv_3x3(h1))", "h2 = concat(sep_conv_5x5(h0), sep_conv_3x3(h1))"
        )
    )
    assert [c.text for c in diff(a, b)] == [
        "normal h2: combine add → concat",
        "reduction h6: first input h2 → h1",
        "reduction output: + h2",
    ]


def test_added_and_removed_blocks() -> None:
    a = nasc.parse(NASNET_A)
    b = nasc.parse(
        NASNET_A.replace(
            "    h6 = add(sep_conv_3x3(h0), identity(h0))\n    return concat(h1, h2, h3, h4, h5, h6)",
            "    h6 = add(sep_conv_3x3(h0), identity(h0))\n"
            "    h7 = add(max_pool_7x7(h6), conv_1x1(h5))\n"
            "    return concat(h1, h2, h3, h4, h7)",
        )
    )
    texts = [c.text for c in diff(a, b)]
    assert "normal: + h7 = add(max_pool_7x7(h6), conv_1x1(h5))" in texts
    assert "normal output: − h5" in texts and "normal output: − h6" in texts
    assert "normal output: + h7 (B)" in texts


def test_diff_json_and_exit_codes(tmp_path: Path) -> None:
    changed = write(
        tmp_path, "b.cell", NASNET_A.replace("sep_conv_7x7(h1))\n    h3", "sep_conv_5x5(h1))\n    h3")
    )
    code, stdout, _ = cli("diff", str(NASNET_A_FILE), changed, "--json")
    report = json.loads(stdout)
    assert code == 1 and report["same"] is False
    assert report["changes"] == [
        {
            "cell": "reduction",
            "kind": "op",
            "state": "h2",
            "old": "sep_conv_7x7",
            "new": "sep_conv_5x5",
            "text": "reduction h2: second op sep_conv_7x7 → sep_conv_5x5",
        }
    ]
    bad = write(tmp_path, "bad.cell", "genotype x\n")
    code, _, err = cli("diff", str(NASNET_A_FILE), bad)
    assert code == 2 and "bad.cell:1:10: error" in err
    assert cli("diff", str(NASNET_A_FILE), str(tmp_path / "missing.cell"))[0] == 2


# -- show, git, pre-commit ------------------------------------------------------------------------------


def test_show_a_cell_file() -> None:
    code, stdout, _ = cli("show", str(NASNET_A_FILE))
    assert code == 0
    assert stdout.startswith(f"genotype nasnet_a ({NASNET_A_FILE})")
    assert f"structural hash: {nasc.structural_hash(nasc.load(NASNET_A_FILE))}" in stdout
    assert "  paper = 'Zoph et al. 2018" in stdout
    assert "cifar preset: 3,346,538 parameters" in stdout


def test_pre_commit_hook_definitions_are_valid() -> None:
    pre_commit = Path(sys.executable).with_name("pre-commit")
    if not pre_commit.exists():
        pytest.skip("pre-commit is not installed")
    result = subprocess.run(
        [str(pre_commit), "validate-manifest", ".pre-commit-hooks.yaml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    manifest = (ROOT / ".pre-commit-hooks.yaml").read_text()
    assert "entry: nasc check --quiet" in manifest and "entry: nasc fmt --check --diff" in manifest


def test_git_diff_of_a_cell_shows_the_canonical_form(tmp_path: Path) -> None:
    git = shutil.which("git")
    if git is None:
        pytest.skip("git is not installed")
    nasc_script = Path(sys.executable).with_name("nasc")
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
    }

    def run(*args: str) -> str:
        return subprocess.run(
            [git, *args], cwd=tmp_path, env=env, capture_output=True, text=True, check=True
        ).stdout

    run("init", "-q")
    run("config", "diff.nasc.textconv", f"{nasc_script} fmt --stdout")
    (tmp_path / ".gitattributes").write_text((ROOT / ".gitattributes").read_text())
    cell = tmp_path / "nasnet_a.cell"
    cell.write_text(NASNET_A_FILE.read_text())
    run("add", ".")
    run("commit", "-qm", "cell")
    cell.write_text(NASNET_A_FILE.read_text().replace("    h2 = add(", "  h2   =   add(", 1))  # layout only
    assert run("diff") == ""  # textconv compares canonical forms: nothing to review
    cell.write_text(
        NASNET_A_FILE.read_text().replace("sep_conv_3x3(h1))\n    h3", "sep_conv_7x7(h1))\n    h3", 1)
    )
    changed = [
        line for line in run("diff").splitlines() if line[:1] in "+-" and line[:3] not in ("+++", "---")
    ]
    assert changed == [
        "-    h2 = add(sep_conv_5x5(h0), sep_conv_3x3(h1))",
        "+    h2 = add(sep_conv_5x5(h0), sep_conv_7x7(h1))",
    ]
