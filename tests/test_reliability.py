"""What a shared run directory, a hostile checkpoint, a full disk or a careless command line can do
to nasc: read as data, refused in one line (exit 1), nothing written, nothing left behind."""

from __future__ import annotations

import io
import json
import os
import resource
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

import nasc
from nasc.cli import main
from nasc.runtime.search import SearchConfig

from .conftest import GENOTYPES, ROOT, cell_text

NASNET_A = GENOTYPES / "nasnet_a.cell"
DARTS_V2 = GENOTYPES / "darts_v2.cell"


def run(*args: object) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


def nasc_process(*args: object, stdout=subprocess.PIPE, **options) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "nasc", *map(str, args)]
    return subprocess.run(command, cwd=ROOT, stdout=stdout, stderr=subprocess.PIPE, timeout=300, **options)


class Exploit:
    """A pickle that runs code when unpickled without `weights_only`: it creates a file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def one_line_refusal(code: int, stderr: str) -> str:
    assert code == 1, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nasc: error: ") and "Traceback" not in stderr, stderr
    return lines[0]


# -- 1. a run directory is data ------------------------------------------------------------------------


def test_a_training_checkpoint_that_would_run_code_is_refused(tmp_path: Path) -> None:
    out, marker = tmp_path / "run", tmp_path / "PWNED"
    out.mkdir()
    torch.save({"format": "nasc-checkpoint-1", "model": Exploit(marker)}, out / "checkpoint.pt")
    code, _, stderr = run("train", NASNET_A, "--scale", "1@96", "--epochs", "1", "--out", out, "--resume")
    line = one_line_refusal(code, stderr)
    assert "refused: it holds Python objects" in line and "weights_only" not in line
    assert not marker.exists()


def test_a_search_state_that_would_run_code_is_refused(tmp_path: Path) -> None:
    out, marker = tmp_path / "search", tmp_path / "PWNED"
    out.mkdir()
    settings = {k: v for k, v in SearchConfig(out="").__dict__.items() if k != "out"}
    (out / "search.json").write_text(json.dumps(settings))
    (out / "ledger.jsonl").write_text("")
    torch.save({"strategy": Exploit(marker), "next_step": 0, "pending": {}}, out / "state.pt")
    code, _, stderr = run("search", "--resume", out)
    assert "refused: it holds Python objects" in one_line_refusal(code, stderr)
    assert not marker.exists()


def test_a_search_directory_with_odd_settings_or_rows_is_refused_or_skipped(tmp_path: Path) -> None:
    from nasc.runtime.search import load_config, read_ledger

    out = tmp_path / "search"
    out.mkdir()
    (out / "search.json").write_text(json.dumps({"budget": "many"}))
    with pytest.raises(Exception, match="setting 'budget' is str, not int"):
        load_config(out)
    (out / "search.json").write_text(json.dumps({"warp": 1}))
    with pytest.raises(Exception, match="unknown setting 'warp'"):
        load_config(out)
    good = {
        "step": 0,
        "hash": "ab" * 32,
        "status": "ok",
        "file": f"cells/00000-{'ab' * 4}.cell",
        "reward": 0.5,
    }
    rows = [good, {**good, "step": 1, "file": "../../../etc/passwd"}, {**good, "reward": "high"}, [1, 2]]
    (out / "ledger.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"step": 2, "ha')
    assert read_ledger(out) == [good]


# -- 2. checkpoints: every edge is one line, exit 1, nothing written ---------------------------------------


@pytest.fixture(scope="module")
def darts_proxy_state() -> dict[str, torch.Tensor]:
    """A real DARTS-reference checkpoint of a small proxy (5 cells, C = 8), for `nasc weights`."""
    from .darts_reference import NetworkCIFAR, reference_genotypes

    return NetworkCIFAR(8, 10, 5, auxiliary=False, genotype=reference_genotypes()["DARTS_V2"]).state_dict()


def import_weights(checkpoint: Path, out: Path) -> tuple[int, str, str]:
    return run(
        "weights", DARTS_V2, checkpoint, "--from", "darts", "--preset", "cifar", "--scale", "1@128", "-o", out
    )


def _save_zip_bomb(path: Path) -> None:
    """A torch zip archive whose one storage entry is 100 MB of zeros, deflated to 100 kB (torch
    would inflate it whole before finding that it is not the 16 bytes the pickle names)."""
    buffer = io.BytesIO()
    torch.save({"weight": torch.zeros(4)}, buffer)
    with zipfile.ZipFile(buffer) as source, zipfile.ZipFile(path, "w") as bomb:
        for entry in source.infolist():
            if entry.filename.endswith("data/0"):
                bomb.writestr(entry.filename, bytes(100_000_000), compress_type=zipfile.ZIP_DEFLATED)
            else:
                bomb.writestr(entry, source.read(entry))


def _edited(state: dict[str, torch.Tensor], change: str) -> dict[str, torch.Tensor]:
    state = dict(state)
    name = "cells.0._ops.0.op.1.weight"
    if change == "int64":
        state[name] = state[name].to(torch.int64)
    elif change == "bool":
        state[name] = state[name] > 0
    elif change == "complex":
        state[name] = state[name].to(torch.complex64)
    elif change == "nan":
        state = {
            k: torch.full_like(v, float("nan")) if v.is_floating_point() else v for k, v in state.items()
        }
    elif change == "meta":
        state[name] = torch.empty(state[name].shape, device="meta")
    return state


CHECKPOINT_CASES = {
    "int64 weights": ("int64", "is int64 where the network's is float32"),
    "bool weights": ("bool", "is bool where the network's is float32"),
    "complex weights": ("complex", "is complex64 where the network's is float32"),
    "all NaN": ("nan", "values that are NaN or infinite"),
    "meta tensors": ("meta", "has no data (it was saved on the meta device)"),
    "zip bomb": ("bomb", "a zip bomb?"),
    "directory": ("directory", "is a directory"),
    "fifo": ("fifo", "is not a regular file"),
}


@pytest.mark.parametrize("case", CHECKPOINT_CASES)
def test_an_odd_checkpoint_is_one_line_and_nothing_is_written(
    tmp_path: Path, darts_proxy_state, case: str
) -> None:
    change, message = CHECKPOINT_CASES[case]
    checkpoint, out = tmp_path / "checkpoint.pt", tmp_path / "w.pt"
    if change == "bomb":
        _save_zip_bomb(checkpoint)
    elif change == "directory":
        checkpoint.mkdir()
    elif change == "fifo":
        os.mkfifo(checkpoint)  # reading it would block forever
    else:
        torch.save(_edited(darts_proxy_state, change), checkpoint)
    line = one_line_refusal(*import_weights(checkpoint, out)[::2])
    assert message in line and not out.exists()


def test_weights_given_to_export_are_checked_alike_and_a_fifo_does_not_block(tmp_path: Path) -> None:
    fifo = tmp_path / "weights.pt"
    os.mkfifo(fifo)
    code, _, stderr = run("export", NASNET_A, "--onnx", "--weights", fifo, "-o", tmp_path / "x.onnx")
    assert code == 1 and stderr.splitlines()[-1].startswith("nasc: error: cannot read weights")
    assert stderr.splitlines()[-1].endswith(
        "is not a regular file (a FIFO, socket or device); give a checkpoint file"
    )
    assert not (tmp_path / "x.onnx").exists()


def test_a_safetensors_file_is_known_by_its_content_not_its_name(tmp_path: Path, darts_proxy_state) -> None:
    safetensors = pytest.importorskip("safetensors.torch")
    checkpoint = tmp_path / "named-like-torch.pt"
    safetensors.save_file({k: v.contiguous() for k, v in darts_proxy_state.items()}, str(checkpoint))
    code, stdout, stderr = import_weights(checkpoint, tmp_path / "w.pt")
    assert code == 0 and "wrote" in stdout, stderr


def test_names_from_a_checkpoint_reach_the_terminal_escaped(tmp_path: Path, darts_proxy_state) -> None:
    checkpoint = tmp_path / "checkpoint.pt"
    hostile = "\x1b[2Jcleared\u202eevil"
    torch.save({**darts_proxy_state, hostile: torch.zeros(1)}, checkpoint)
    line = one_line_refusal(*import_weights(checkpoint, tmp_path / "w.pt")[::2])
    assert "\x1b" not in line and "\u202e" not in line
    assert "\\x1b[2Jcleared\\u202eevil" in line


def test_every_command_error_says_nasc_error() -> None:
    code, _, stderr = run("weights", DARTS_V2, "/no/such.pt", "--from", "darts", "-o", "/tmp/never.pt")
    assert one_line_refusal(code, stderr) == "nasc: error: /no/such.pt: no such file"
    code, _, stderr = run("top", "/no/such/search")
    assert one_line_refusal(code, stderr) == "nasc: error: no such directory: /no/such/search"


# -- 3. outputs: nasc's own mark, whole writes ------------------------------------------------------------


def test_a_file_that_merely_mentions_the_mark_is_not_nascs(tmp_path: Path) -> None:
    notes = tmp_path / "notes.md"
    notes.write_text("# Notes\n\nThe models here were Generated by nasc, see below.\n")
    code, _, stderr = run("compile", NASNET_A, "-o", notes)
    assert code == 1 and "was not written by nasc" in stderr
    assert notes.read_text().startswith("# Notes")


@pytest.mark.parametrize(
    ("command", "cell", "out", "options"),
    [
        ("compile", NASNET_A, "model.py", ()),
        ("viz", NASNET_A, "cells.dot", ()),
        ("export", NASNET_A, "cells.json", ("--format", "nasnet")),
        ("export", DARTS_V2, "genotypes.py", ("--format", "darts")),
    ],
    ids=["module", "dot", "nasnet-json", "darts-py"],
)
def test_nascs_own_outputs_are_replaced_without_force(tmp_path: Path, command, cell, out, options) -> None:
    out = tmp_path / out
    assert run(command, cell, *options, "-o", out)[0] == 0
    first = out.read_bytes()
    code, _, stderr = run(command, cell, *options, "-o", out)
    assert code == 0 and out.read_bytes() == first, stderr


def test_a_rendered_picture_is_marked_where_nasc_looks(tmp_path: Path) -> None:
    from nasc.compiler.viz import _mark_png, _mark_svg
    from nasc.fileio import has_mark

    svg = tmp_path / "cells.svg"
    svg.write_bytes(_mark_svg(b'<?xml version="1.0"?>\n<svg></svg>\n'))
    png = tmp_path / "cells.png"
    png.write_bytes(_mark_png(b"\x89PNG\r\n\x1a\n" + b"\0\0\0\rIHDR" + bytes(17) + b"\0\0\0\0IEND"))
    assert has_mark(svg) and has_mark(png)
    svg.write_bytes(b'<?xml version="1.0"?>\n<svg><!-- Generated by nasc --></svg>\n')
    assert not has_mark(svg)


def _limited_file_size(kib: int):
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (kib * 1024, kib * 1024))

    return limit


@pytest.mark.parametrize(
    "args",
    [("compile", NASNET_A, "-o", "-"), ("fmt", "--stdout", NASNET_A), ("viz", NASNET_A, "-o", "-")],
    ids=["compile", "fmt", "viz"],
)
def test_a_short_write_to_standard_output_is_a_failure(tmp_path: Path, args) -> None:
    target = tmp_path / "out.txt"
    with target.open("wb") as handle:
        process = nasc_process(*args, stdout=handle, preexec_fn=_limited_file_size(1))
    line = one_line_refusal(process.returncode, process.stderr.decode())
    assert line == "nasc: error: cannot write standard output: file too large (past the file size limit)"
    assert "wrote" not in process.stderr.decode()


@pytest.mark.parametrize("command", ["check", "hash", "fmt --stdout", "show", "stats", "diff"])
def test_standard_output_on_a_full_disk_is_one_line(command: str) -> None:
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full here")
    args = [*command.split(), NASNET_A] + ([GENOTYPES / "amoebanet_a.cell"] if command == "diff" else [])
    with open("/dev/full", "wb") as full:
        process = nasc_process(*args, stdout=full)
    expected = 2 if command == "diff" else 1  # diff(1)'s contract: 1 is "different", 2 trouble
    assert process.returncode == expected, process.stderr
    lines = process.stderr.decode().strip().splitlines()
    assert lines == ["nasc: error: cannot write standard output: no space left on device"]


def test_a_closed_pipe_is_quiet() -> None:
    reader = subprocess.Popen(["head", "-c", "10"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    process = nasc_process("compile", NASNET_A, "-o", "-", stdout=reader.stdin)
    reader.stdin.close()
    reader.wait()
    stderr = process.stderr.decode()
    assert "error" not in stderr.lower() and "Exception ignored" not in stderr and "Traceback" not in stderr


def test_an_empty_output_path_is_a_usage_error(tmp_path: Path) -> None:
    for args in (("compile", NASNET_A), ("viz", NASNET_A), ("export", NASNET_A, "--onnx")):
        code, _, stderr = run(*args, "-o", "")
        assert code == 2 and "the path is empty" in stderr


def test_temporaries_left_by_a_killed_writer_are_cleaned_on_the_next_write(tmp_path: Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    live = subprocess.Popen(["sleep", "60"])
    try:
        stale = tmp_path / f".model.py.nasc-{dead.pid}-x1y2.tmp"
        busy = tmp_path / f".other.py.nasc-{live.pid}-a3b4.tmp"
        users = tmp_path / ".model.py.mine.tmp"
        for path in (stale, busy, users):
            path.write_text("half")
        assert run("compile", NASNET_A, "-o", tmp_path / "model.py")[0] == 0
        assert not stale.exists() and busy.exists() and users.exists()
    finally:
        live.kill()
        live.wait()


# -- 4. signals and processes ----------------------------------------------------------------------------


def _catches_sigterm(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status").read_text()
    caught = int(next(line.split()[1] for line in status.splitlines() if line.startswith("SigCgt:")), 16)
    return bool(caught & (1 << (signal.SIGTERM - 1)))


def test_sigterm_while_train_starts_up_is_an_interruption_not_a_silent_143(tmp_path: Path) -> None:
    if not Path("/proc/self/status").exists():
        pytest.skip("needs /proc")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "nasc",
            "train",
            str(NASNET_A),
            "--scale",
            "1@96",
            "--out",
            str(tmp_path / "r"),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.time() + 60
    while not _catches_sigterm(process.pid) and time.time() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGTERM)  # torch is still importing, or the data loading
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130 and stderr.decode().strip().splitlines()[-1] == "interrupted"


# -- 5. bounded work and bounded lines -------------------------------------------------------------------


def _identical_blocks(count: int, changed: int | None = None) -> nasc.ir.Genotype:
    lines = [
        f"  s{i} = add({'sep_conv_5x5' if i == changed else 'sep_conv_3x3'}(h0), identity(h1))"
        for i in range(count)
    ]
    return nasc.parse(
        cell_text("\n".join(lines) + f"\n  return concat({', '.join(f's{i}' for i in range(count))})")
    )


def _lines_run_in(module_file: str, function: Callable[[], object]) -> int:
    """How many lines of `module_file` the interpreter runs for `function()`: a count of work that,
    unlike a timing, is the same on every machine."""
    count = 0

    def local(_frame, event, _arg):
        nonlocal count
        count += event == "line"
        return local

    def calls(frame, _event, _arg):
        return local if frame.f_code.co_filename == module_file else None

    sys.settrace(calls)
    try:
        function()
    finally:
        sys.settrace(None)
    return count


def test_diff_of_many_identical_blocks_is_linear() -> None:
    import nasc.compiler.diff as diff_module

    work = {}
    for count in (1000, 4000):
        a, b = _identical_blocks(count), _identical_blocks(count, changed=count // 2)
        changes = diff_module.diff(a, b)
        assert [c.kind for c in changes] == ["op"]
        work[count] = _lines_run_in(diff_module.__file__, lambda a=a, b=b: diff_module.diff(a, b))
    assert work[4000] < 5 * work[1000], work  # quadratic work would be 16 times


def test_a_huge_identifier_or_listing_is_cut_with_a_count(tmp_path: Path) -> None:
    name = "x" * 1_000_000
    with pytest.raises(nasc.NascError) as caught:
        nasc.parse(cell_text(f"  h2 = add(identity({name}), identity(h1))\n  return concat(h2)"))
    rendered = caught.value.render()
    assert max(len(line) for line in rendered.splitlines()) < 800
    assert "…(999,940 more characters)" in rendered
    genotypes = tmp_path / "many.py"
    one = "Genotype(normal=[], normal_concat=[], reduce=[], reduce_concat=[])"
    genotypes.write_text("".join(f"G{i} = {one}\n" for i in range(4500)))
    code, _, stderr = run("import", "darts", genotypes)
    assert code == 1 and "the file holds 4,500 genotypes: G0, G1" in stderr and "and 4,490 more" in stderr
    assert len(stderr) < 2000
    code, _, stderr = run("import", "darts", genotypes, "--name", "N" * 100_000)
    assert code == 1 and len(stderr) < 2000 and "more characters" in stderr


def test_a_long_line_costs_what_its_window_shows(monkeypatch) -> None:
    import nasc.diagnostics as diagnostics

    widths = []
    original = diagnostics._display

    def measured(text: str, column: int):
        widths.append(len(text))
        return original(text, column)

    monkeypatch.setattr(diagnostics, "_display", measured)
    body = " ".join(f"h{i} = add(identity(q{i}), identity(h1))" for i in range(2, 100_000))
    with pytest.raises(nasc.NascError) as caught:
        nasc.parse(cell_text(body + " return concat(h2)"))
    caught.value.render()
    assert widths and max(widths) <= 3 * diagnostics.MAX_SHOWN_LINE


def test_an_import_names_the_file_and_genotype_the_user_gave(tmp_path: Path) -> None:
    source = tmp_path / "searched.py"
    normal = ", ".join(["('sep_conv_3x3', 0)", "('sep_conv_3x3', 1)"] * 4)
    reduce = ", ".join(["('max_pool_3x3', 0)", "('max_pool_3x3', 1)"] * 4)
    source.write_text(
        f"BAD = Genotype(normal=[{normal}], normal_concat=[2, 3], "
        f"reduce=[{reduce}], reduce_concat=[2, 3, 4, 5])\n"
    )
    code, _, stderr = run("import", "darts", source, "-o", tmp_path / "bad.cell")
    assert code == 1 and stderr.startswith(f"{source}: error: genotype bad: block `h4` never reaches")
    assert "bad.cell" not in stderr and not (tmp_path / "bad.cell").exists()
