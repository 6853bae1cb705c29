"""ONNX export: checked, equal to PyTorch in onnxruntime, static, traceable to its cell; failures
leave nothing behind."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner

import nasc
from nasc.cli import main
from nasc.runtime import onnx_export
from nasc.runtime.onnx_runtime import load_session, run

from .conftest import GENOTYPES, built_once, cell_text

NASNET_A = str(GENOTYPES / "nasnet_a.cell")


def cli(*args: str):
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


# The cifar and mobile skeletons (their stems, 32 and 224 px), one cell per stage: every kind of
# cell, adapter and op the full presets have, in a fraction of the export's time.
SCALES = {"cifar": "1@192", "mobile": "1@264"}


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict[str, tuple[Path, str]]:
    """The cifar and mobile presets, rescaled, exported once a run through the command line: mobile
    by `nasc export --onnx`, cifar by `nasc compile --target onnx`, which is the same export."""

    def build(folder: Path) -> None:
        for preset, scale in SCALES.items():
            how = ["export", "--onnx"] if preset == "mobile" else ["compile", "--target", "onnx"]
            path = folder / f"nasnet_a_{preset}.onnx"
            code, stdout, stderr = cli(
                how[0], NASNET_A, *how[1:], "--preset", preset, "--scale", scale, "-o", str(path)
            )
            assert code == 0, stderr
            (folder / f"{preset}.stdout").write_text(stdout)

    folder = built_once(tmp_path_factory, "onnx-exports", build)
    return {p: (folder / f"nasnet_a_{p}.onnx", (folder / f"{p}.stdout").read_text()) for p in SCALES}


@pytest.mark.parametrize("preset", ["cifar", "mobile"])
def test_export_passes_the_checker_and_matches_pytorch(exported, preset: str) -> None:
    path, stdout = exported[preset]
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    rel = float(stdout.split("max rel diff ")[1].split()[0])
    assert rel <= onnx_export.RELATIVE_TOLERANCE
    assert "graph: static shapes" in stdout and "Conv" in stdout


def test_every_convolution_is_aligned_to_16_channels(exported) -> None:
    # F = 11 here, and the stem cells run at 2 and 5 channels: none of it aligned as compiled
    path, stdout = exported["mobile"]
    model = onnx.load(str(path))
    weights = {tensor.name: tensor.dims for tensor in model.graph.initializer}
    convolutions = [weights[node.input[1]] for node in model.graph.node if node.op_type == "Conv"]
    assert all(dims[0] % 16 == 0 for dims in convolutions) and len(convolutions) > 50
    assert onnx_export.read_metadata(path)["channel_alignment"] == "16"
    assert "channels: aligned to multiples of 16" in stdout


def test_the_default_opset_is_18_where_onnxruntime_pools_with_mlas(exported) -> None:
    # at 19 and later onnxruntime's CPU AveragePool is a plain loop, 7x slower (bench/bench_onnx.py)
    model = onnx.load(str(exported["mobile"][0]))
    assert [(o.domain, o.version) for o in model.opset_import if o.domain in ("", "ai.onnx")] == [("", 18)]
    assert "opset 18" in exported["mobile"][1]


@pytest.mark.parametrize("preset", ["cifar", "mobile"])
def test_fixed_size_graph_is_static(exported, preset: str) -> None:
    model = onnx.load(str(exported[preset][0]))
    ops = {node.op_type for node in model.graph.node}
    assert not ops & {"Shape", "Gather", "ConstantOfShape", "Range"}
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ([1, 3, 32, 32] if preset == "cifar" else [1, 3, 224, 224])


def test_metadata_carries_the_cell_source_and_provenance(exported) -> None:
    metadata = onnx_export.read_metadata(exported["mobile"][0])
    genotype = nasc.load(NASNET_A)
    assert metadata["cell_source"] == Path(NASNET_A).read_text()
    assert metadata["structural_hash"] == nasc.structural_hash(genotype)
    assert metadata["genotype"] == "nasnet_a"
    provenance = (metadata["preset"], metadata["scale"], metadata["num_classes"])
    assert provenance == ("mobile-1@264", "1@264", "1000")
    assert metadata["nasc_version"] == nasc.__version__
    # and the cell read back from a deployed model is the reviewed cell
    assert nasc.structural_hash(nasc.parse(metadata["cell_source"])) == nasc.structural_hash(genotype)


def test_show_prints_the_provenance(exported) -> None:
    code, stdout, _ = cli("show", str(exported["cifar"][0]))
    assert code == 0
    assert "genotype: nasnet_a" in stdout and "scale: 1@192" in stdout
    assert "  | normal(h0, h1) {" in stdout


def test_runtime_helper_runs_on_the_cpu_without_a_gpu(exported) -> None:
    session = load_session(exported["cifar"][0])
    assert session.get_providers()[0] in ("CPUExecutionProvider", "CUDAExecutionProvider")
    logits = run(session, np.random.default_rng(0).standard_normal((1, 3, 32, 32)))
    assert logits.shape == (1, 10) and np.isfinite(logits).all()


def test_dynamic_batch_runs_at_batch_1_and_4(tmp_path: Path) -> None:
    path = tmp_path / "dynamic.onnx"
    code, stdout, stderr = cli(
        "export", NASNET_A, "--onnx", "--scale", "1@96", "--batch", "dynamic", "-o", str(path)
    )
    assert code == 0, stderr
    assert "batch dynamic" in stdout
    session = load_session(path)
    for batch in (1, 4):
        assert run(session, np.zeros((batch, 3, 32, 32), np.float32)).shape == (batch, 10)


def test_compile_target_onnx_is_the_same_export(exported) -> None:
    compiled, exported_ = (onnx_export.read_metadata(exported[preset][0]) for preset in ("cifar", "mobile"))
    assert compiled["scale"] == "1@192" and compiled.keys() == exported_.keys()


# -- failures leave no file ------------------------------------------------------------------------


def test_unwritable_output_is_one_line_and_writes_nothing(tmp_path: Path) -> None:
    code, _, err = cli("export", NASNET_A, "--onnx", "-o", str(tmp_path / "no" / "such" / "dir.onnx"))
    assert code == 1 and "directory" in err and "does not exist" in err and "Traceback" not in err
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    import os

    if os.geteuid() != 0:  # root writes anywhere
        code, _, err = cli("export", NASNET_A, "--onnx", "-o", str(locked / "m.onnx"))
        assert code == 1 and "not writable" in err
    assert list(locked.iterdir()) == []


def test_an_opset_torch_cannot_target_is_one_line(tmp_path: Path) -> None:
    code, _, err = cli("export", NASNET_A, "--onnx", "--opset", "7", "-o", str(tmp_path / "m.onnx"))
    assert code == 1 and "opset 7 is not supported" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_a_genotype_that_does_not_compile_writes_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.cell"
    bad.write_text("genotype t\nnormal(h0, h1) { h2 = add(identity(h0), identity(h1) }\n")
    code, _, err = cli("export", str(bad), "--onnx", "-o", str(tmp_path / "m.onnx"))
    assert code == 1 and f"{bad}:2:" in err and "Traceback" not in err
    assert not (tmp_path / "m.onnx").exists()


def test_a_mismatch_beyond_tolerance_fails_and_writes_nothing(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(onnx_export, "RELATIVE_TOLERANCE", -1.0)  # nothing can pass
    cell = tmp_path / "small.cell"  # the smallest cell: what is tested is the check, not the network
    cell.write_text(cell_text("h2 = add(identity(h0), identity(h1))\nreturn concat(h2)"))
    out = tmp_path / "out"
    out.mkdir()
    code, _, err = cli("export", str(cell), "--onnx", "--scale", "1@48", "-o", str(out / "m.onnx"))
    assert code == 1 and "onnxruntime disagrees with PyTorch" in err and "nothing was written" in err
    assert list(out.iterdir()) == []


def test_bad_batch_is_a_usage_error() -> None:
    code, _, err = cli("export", NASNET_A, "--onnx", "--batch", "zero")
    assert code == 2 and "neither a positive number nor 'dynamic'" in err
