"""`nasc export --onnx --int8 --calibrate DATASET`: a network trained on digits, quantized, keeps its
top-1 within half a point, says so in its metadata, and runs as an int8 graph; misuse is one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner

import nasc
from nasc.cli import main
from nasc.runtime.data import load_dataset
from nasc.runtime.onnx_export import read_metadata
from nasc.runtime.onnx_runtime import load_session, run

from .conftest import GENOTYPES

NASNET_A = str(GENOTYPES / "nasnet_a.cell")
SCALE = ("--preset", "cifar", "--scale", "1@96", "--num-classes", "10", "--image-size", "16")


def cli(*args: str):
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def trained(digits_run: Path) -> Path:
    """`nasc train`'s best.pt of NASNet-A (N = 1, P = 96) trained on digits (conftest.DIGITS_RUN)."""
    return digits_run / "best.pt"


@pytest.fixture(scope="module")
def int8_export(trained: Path, tmp_path_factory) -> tuple[Path, str]:
    path = tmp_path_factory.mktemp("int8") / "nasnet_a_int8.onnx"
    code, stdout, stderr = cli(
        "export", NASNET_A, "--onnx", *SCALE, "--weights", str(trained), "-o", str(path),
        "--int8", "--calibrate", "digits",
    )  # fmt: skip
    assert code == 0, stderr
    return path, stdout


def test_int8_keeps_top1_within_half_a_point_on_digits(int8_export) -> None:
    path, stdout = int8_export
    metadata = read_metadata(path)
    float_top1, int8_top1 = float(metadata["top1_float"]), float(metadata["top1_int8"])
    assert float_top1 >= 85.0 and abs(float_top1 - int8_top1) <= 0.5
    assert f"{int8_top1:.2f}%" in stdout and "digits" in metadata["calibration"]
    assert metadata["quantization"].startswith("int8 QDQ")
    test_split = len(load_dataset("digits", augment=False).test)  # all of it: fewer than --eval-images
    assert metadata["top1_images"] == f"digits test split, {test_split} images"


def test_the_int8_model_is_an_int8_graph_and_agrees_with_the_trained_network(int8_export, trained) -> None:
    import torch

    from nasc.compiler.options import EmitOptions
    from nasc.runtime.build import build_network

    path, _ = int8_export
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    ops = {node.op_type for node in model.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= ops
    assert "AveragePool" not in ops  # quantized as the depthwise convolutions they are
    int8_weights = [t for t in model.graph.initializer if t.data_type == onnx.TensorProto.INT8]
    assert len(int8_weights) >= 20  # every convolution's weights stored as int8
    options = EmitOptions(preset="cifar", cells_per_stage=1, penultimate_filters=96, num_classes=10)
    network = build_network(nasc.load(NASNET_A), options, image_size=16, weights=str(trained)).model.eval()
    test = list(load_dataset("digits", augment=False).test)
    images, labels = np.stack([image.numpy() for image, _ in test]), np.array([label for _, label in test])
    with torch.no_grad():
        expected = network(torch.from_numpy(images)).argmax(1).numpy()
    session = load_session(path, device="cpu")
    got = np.array([np.argmax(run(session, image[None])) for image in images])
    assert np.mean(got == expected) >= 0.95
    # the figures the file reports are the ones its model and the trained network have
    metadata = read_metadata(path)
    assert float(metadata["top1_int8"]) == pytest.approx(100 * np.mean(got == labels), abs=0.006)
    one_image = 100 / len(labels)  # onnxruntime's float rounding may flip one close call
    assert abs(float(metadata["top1_float"]) - 100 * np.mean(expected == labels)) <= one_image + 0.006


@pytest.mark.parametrize(
    ("extra", "code", "message"),
    [
        (("--int8",), 2, "--int8 needs --calibrate"),
        (("--calibrate", "digits"), 2, "--calibrate is for --int8"),
        (
            ("--eval-images", "9", "--calibration-method", "entropy"),
            2,
            "--calibration-method --eval-images are for",
        ),
        (("--int8", "--calibrate", "digits", "--batch", "dynamic"), 1, "--int8 exports batch 1"),
        (("--int8", "--calibrate", "imagefolder"), 1, "--data-dir is required"),
    ],
)
def test_int8_misuse_is_one_line_and_writes_nothing(tmp_path: Path, extra, code: int, message: str) -> None:
    path = tmp_path / "m.onnx"
    got, _, stderr = cli("export", NASNET_A, "--onnx", *SCALE, "-o", str(path), *extra)
    assert got == code and message in stderr and "Traceback" not in stderr
    assert not path.exists()


def test_int8_and_alignment_are_refused_for_the_cell_formats(tmp_path: Path) -> None:
    path = tmp_path / "cells.txt"
    got, _, stderr = cli("export", NASNET_A, "--format", "nasnet", "-o", str(path), "--int8", "--align", "8")
    assert got == 2 and "--align --int8: for --onnx" in stderr and not path.exists()


def test_the_command_offers_every_calibration_method_the_quantizer_knows() -> None:
    from nasc.cli.build import export
    from nasc.runtime.onnx_quantize import CALIBRATION_METHODS

    (option,) = [p for p in export.params if p.name == "calibration_method"]
    assert tuple(option.type.choices) == CALIBRATION_METHODS
