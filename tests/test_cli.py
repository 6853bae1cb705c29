"""The command line as users and CI call it: exit codes, messages, no tracebacks, atomic writes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from nasc.cli import main

from .conftest import GENOTYPES, GOLDEN, ROOT

MESSY = GOLDEN / "fmt" / "messy.cell"


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_check_clean_file_exits_0() -> None:
    code, out, _ = run("check", str(GENOTYPES / "nasnet_a.cell"))
    assert code == 0
    assert "ok: genotype nasnet_a" in out


def test_check_reports_every_error_with_location_and_exits_1(tmp_path: Path) -> None:
    bad = tmp_path / "bad.cell"
    bad.write_text(
        "genotype t\nnormal(h0, h1) {\n  h2 = add(sep_conv_3x4(h0), identity(h9))\n  return concat(h2)\n}\n"
    )
    code, _, err = run("check", str(bad))
    assert code == 1
    assert f"{bad}:3:12: error: unknown op `sep_conv_3x4`" in err
    assert f"{bad}:3:39: error: `h9` is not defined" in err
    assert f"{bad}:1:10: error: genotype `t` has no `reduction` cell" in err
    assert "Traceback" not in err


def test_check_usage_error_exits_2() -> None:
    assert run("check")[0] == 2
    assert run("check", "--no-such-flag", "x.cell")[0] == 2


@pytest.mark.parametrize("make", ["directory", "missing", "empty", "binary", "latin1", "huge"])
def test_unusable_files_get_one_line_errors_quickly(tmp_path: Path, make: str) -> None:
    path = tmp_path / "input.cell"
    if make == "directory":
        path = tmp_path / "cells"
        path.mkdir()
    elif make == "empty":
        path.write_text("")
    elif make == "binary":
        path.write_bytes(b"genotype t\n\x00\x01\x02")
    elif make == "latin1":
        path.write_bytes("genotype café\n".encode("latin-1"))
    elif make == "huge":
        path.write_text("# padding\n" * 1_000_000)  # 10 MB
    expected = {
        "directory": "no .cell or .space files in this directory",
        "missing": "no such file",
        "empty": "the file is empty",
        "binary": "binary file",
        "latin1": "not UTF-8 text",
        "huge": "file is 9.5 MiB; .cell files are limited to 4 MiB",
    }[make]
    started = time.perf_counter()
    code, _, err = run("check", str(path))
    assert time.perf_counter() - started < 5
    assert code == 1
    first = err.splitlines()[0]
    assert first.startswith(f"{path}: error: {expected}")
    assert "Traceback" not in err


def test_fmt_check_and_diff_change_nothing_and_exit_1(tmp_path: Path) -> None:
    target = tmp_path / "messy.cell"
    target.write_text(MESSY.read_text())
    code, _, err = run("fmt", "--check", str(target))
    assert code == 1 and f"would reformat {target}" in err
    code, out, _ = run("fmt", "--diff", str(target))
    assert code == 1 and out.startswith(f"--- {target} (current)") and "+genotype messy" in out
    assert target.read_text() == MESSY.read_text()


def test_fmt_rewrites_in_place_then_check_passes(tmp_path: Path) -> None:
    target = tmp_path / "messy.cell"
    target.write_text(MESSY.read_text())
    os.chmod(target, 0o640)
    assert run("fmt", str(target))[0] == 0
    assert target.read_text() == (GOLDEN / "fmt" / "messy.expected.cell").read_text()
    assert target.stat().st_mode & 0o777 == 0o640  # the rewrite keeps the file's permissions
    assert run("fmt", "--check", str(tmp_path))[0] == 0
    assert [p.name for p in tmp_path.iterdir()] == ["messy.cell"]  # no temporary file left behind


def test_fmt_leaves_a_file_with_errors_untouched(tmp_path: Path) -> None:
    target = tmp_path / "bad.cell"
    original = "genotype   t\nnormal(h0,h1){ h2 = add(identity(h0), identity(h7)) return concat(h2) }\n"
    target.write_text(original)
    code, _, err = run("fmt", str(target))
    assert code == 1 and "`h7` is not defined" in err
    assert target.read_text() == original


def test_fmt_stdout_prints_canonical_text() -> None:
    code, out, _ = run("fmt", "--stdout", str(MESSY))
    assert code == 0 and out == (GOLDEN / "fmt" / "messy.expected.cell").read_text()


def test_fmt_check_on_shipped_genotypes_passes() -> None:
    assert run("fmt", "--check", str(GENOTYPES))[0] == 0


def test_hash_prints_the_structural_hash() -> None:
    import nasc

    code, out, _ = run("hash", str(GENOTYPES / "nasnet_a.cell"))
    assert code == 0
    assert out.strip() == nasc.structural_hash(nasc.load(GENOTYPES / "nasnet_a.cell"))
    code, out, _ = run("hash", str(GENOTYPES / "nasnet_a.cell"), str(MESSY))
    assert [line.split("  ")[1] for line in out.splitlines()] == [
        str(GENOTYPES / "nasnet_a.cell"),
        str(MESSY),
    ]


def test_python_dash_m_and_console_script_from_the_repository_root(tmp_path: Path) -> None:
    bad = tmp_path / "bad.cell"
    bad.write_text("genotype t\nnormal(h0, h1) {\n  h2 = add(identity(h0), identity(h1)\n}\n")
    module = subprocess.run(
        [sys.executable, "-m", "nasc", "check", str(bad)], cwd=ROOT, capture_output=True, text=True
    )
    assert module.returncode == 1
    assert module.stderr.startswith(f"{bad}:3:38: error: expected `)` or `,` after this")
    assert "Traceback" not in module.stderr
    script = Path(sys.executable).with_name("nasc")
    if script.exists():
        ok = subprocess.run(
            [str(script), "check", "genotypes/nasnet_a.cell"], cwd=ROOT, capture_output=True, text=True
        )
        assert ok.returncode == 0, ok.stderr


def test_every_command_has_help_with_an_example() -> None:
    for command in main.commands:
        code, out, _ = run(command, "--help")
        assert code == 0 and "Example" in out, command


# -- compile and stats ---------------------------------------------------------------------------------


def test_compile_writes_a_standalone_module_and_reports_it(tmp_path: Path) -> None:
    out = tmp_path / "nasnet_a.py"
    code, stdout, stderr = run(
        "compile", str(GENOTYPES / "nasnet_a.cell"), "--preset", "mobile", "-o", str(out)
    )
    assert code == 0, stderr
    assert f"wrote {out}" in stdout and "5,289,978 parameters" in stdout and "563,638,816 mult-adds" in stdout
    assert 'DEFAULT_PRESET = "mobile"' in out.read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["nasnet_a.py"]


def test_compile_with_scale_and_classes_sets_the_default_preset(tmp_path: Path) -> None:
    out = tmp_path / "small.py"
    code, stdout, _ = run(
        "compile", str(GENOTYPES / "nasnet_a.cell"), "--scale", "2@240", "--num-classes", "5", "-o", str(out)
    )
    assert code == 0 and "preset cifar-2@240-5: 159,195 parameters" in stdout
    assert 'DEFAULT_PRESET = "cifar-2@240-5"' in out.read_text()
    from nasc.runtime.build import import_source

    model = import_source(out.read_text()).create_model()
    assert len(model.cell_names) == 3 * 2 + 2 and model.num_classes == 5
    assert model.num_features == 240 and model.cell_0.squeeze_x1.conv.out_channels == 10


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scale", "6@770"], "not a positive multiple of 24"),
        (["--scale", "six@768"], "is not N@P"),
        (["--preset", "huge"], "unknown nasnet preset 'huge'"),
    ],
)
def test_compile_rejects_bad_network_options_with_usage_errors(
    tmp_path: Path, args: list[str], message: str
) -> None:
    code, _, err = run("compile", str(GENOTYPES / "nasnet_a.cell"), "-o", str(tmp_path / "x.py"), *args)
    assert code == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "x.py").exists()


def test_compile_to_an_unwritable_place_is_one_clear_error(tmp_path: Path) -> None:
    code, _, err = run("compile", str(GENOTYPES / "nasnet_a.cell"), "-o", str(tmp_path / "missing" / "x.py"))
    assert code == 1 and "cannot write" in err and "Traceback" not in err


def test_compile_reports_cell_errors_without_writing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.cell"
    bad.write_text("genotype t\nnormal(h0, h1) { h2 = add(identity(h0), foo(h1)) return concat(h2) }\n")
    code, _, err = run("compile", str(bad), "-o", str(tmp_path / "x.py"))
    assert code == 1 and f"{bad}:2:41: error: unknown op `foo`" in err
    assert not (tmp_path / "x.py").exists()


def test_stats_json_has_the_reference_figures() -> None:
    import json

    code, out, _ = run("stats", str(GENOTYPES / "nasnet_a.cell"), "--preset", "mobile", "--json")
    assert code == 0
    figures = json.loads(out)
    assert figures["parameters"] == 5_289_978 and figures["parameters_with_aux"] == 7_701_218
    assert figures["mult_adds"] == 563_638_816
    assert len(figures["cells"]) == 16 and figures["cells"][-1]["output_shape"] == [1, 1056, 7, 7]
    assert sum(c["parameters"] for c in figures["cells"]) < figures["parameters"]


def test_stats_table_for_people() -> None:
    code, out, _ = run("stats", str(GENOTYPES / "nasnet_a.cell"))
    assert code == 0
    assert "parameters: 3,346,538 (with aux head: 4,978,036)" in out
    assert "reduction_cell_1" in out and "cell_17" in out and "normal" in out


def test_compile_stats_and_show_of_every_zoo_file_never_import_torch(tmp_path: Path) -> None:
    """Every convention counts statically: writing or counting a module needs no network built."""
    paths = [str(path) for path in sorted(GENOTYPES.glob("*.cell"))]
    script = f"""
import sys
from click.testing import CliRunner
from nasc.cli import main
for path in {paths!r}:
    for args in (["compile", path, "-o", {str(tmp_path / "m.py")!r}], ["stats", path], ["show", path]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, (args, result.output)
print(sorted(name for name in sys.modules if name.split(".")[0] == "torch"))
"""
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
