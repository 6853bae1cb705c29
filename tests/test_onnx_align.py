"""Channel alignment of exported graphs (runtime/onnx_align.py): every convolution's channels a
multiple of the block, the same logits as the unaligned graph, and a graph it cannot carry padding
through left exactly as it was."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import nasc
from nasc.compiler.options import EmitOptions
from nasc.runtime.onnx_align import align_channels
from nasc.runtime.onnx_export import export_onnx, read_metadata
from nasc.runtime.onnx_runtime import load_session, run

from .conftest import GENOTYPES

# One cell a stage at odd widths: every kind of cell, adapter and op, no channel count aligned.
# NASNet-A's export is held aligned by test_onnx.py; PNASNet-5's ops are a subset of these.
PENULTIMATE = {"amoebanet_a": 176, "darts_v2": 112}


def _convolutions(model) -> list[tuple[int, int, int]]:
    """(output channels, input channels a group, groups) of every Conv."""
    weights = {tensor.name: tensor.dims for tensor in model.graph.initializer}
    found = []
    for node in model.graph.node:
        if node.op_type == "Conv":
            group = next((a.i for a in node.attribute if a.name == "group"), 1)
            found.append((weights[node.input[1]][0], weights[node.input[1]][1], group))
    return found


def _plain_export(name: str, folder: Path) -> onnx.ModelProto:
    """`nasc export`'s graph of the inference build, left unaligned."""
    preset = "cifar" if name.startswith("darts") else "mobile"
    options = EmitOptions(preset=preset, cells_per_stage=1, penultimate_filters=PENULTIMATE[name])
    path = folder / "plain.onnx"
    export_onnx(nasc.load(GENOTYPES / f"{name}.cell"), options, str(path), image_size=40, align=1)
    assert read_metadata(path)["channel_alignment"] == "1"
    return onnx.load(str(path))


@pytest.mark.parametrize("name", sorted(PENULTIMATE))
def test_aligned_graph_has_blocks_of_16_and_the_same_logits(tmp_path: Path, name: str) -> None:
    plain = _plain_export(name, tmp_path)
    aligned, alignment = align_channels(plain, 16)
    assert alignment.skipped is None and alignment.padded_convolutions > 0
    onnx.checker.check_model(aligned, full_check=True)
    for out, per_group, groups in _convolutions(aligned):
        assert out % 16 == 0 and (per_group == 3 or (per_group * groups) % 16 == 0)
    assert any(out % 16 for out, _, _ in _convolutions(plain))  # so the test means something
    images = np.random.default_rng(0).standard_normal((1, 3, 40, 40)).astype(np.float32)
    expected = run(load_session(plain.SerializeToString()), images)
    got = run(load_session(aligned.SerializeToString()), images)
    assert np.abs(got - expected).max() <= 1e-5 * np.abs(expected).max()


def _tiny(after_conv: str, outputs_conv: bool = False, trans_b: bool = True):
    """image → Conv (5 channels) → `after_conv` → global mean → classifier."""
    rng = np.random.default_rng(0)
    weights = {
        "w": rng.standard_normal((5, 3, 3, 3)).astype(np.float32),
        "fc": rng.standard_normal((4, 5) if trans_b else (5, 4)).astype(np.float32),
        "axes": np.array([2, 3], np.int64),
        "shape": np.array([1, 5], np.int64),
    }
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node(after_conv, ["c"], ["a"]),
        helper.make_node("ReduceMean", ["a", "axes"], ["m"], keepdims=1),
        helper.make_node("Reshape", ["m", "shape"], ["f"]),
        helper.make_node("Gemm", ["f", "fc"], ["y"], transB=int(trans_b)),
    ]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])]
    if outputs_conv:
        outputs.append(helper.make_tensor_value_info("c", TensorProto.FLOAT, [1, 5, 8, 8]))
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        outputs,
        [numpy_helper.from_array(value, name) for name, value in weights.items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10)


@pytest.mark.parametrize("trans_b", [True, False])  # the classifier's weight as [out, in] or [in, out]
def test_a_graph_of_known_operations_is_aligned_and_computes_the_same(trans_b: bool) -> None:
    model = _tiny("Relu", trans_b=trans_b)
    aligned, alignment = align_channels(model, 8)
    assert alignment.skipped is None and _convolutions(aligned) == [(8, 3, 1)]
    images = np.random.default_rng(1).standard_normal((1, 3, 8, 8)).astype(np.float32)
    expected = run(load_session(model.SerializeToString()), images)
    assert np.allclose(run(load_session(aligned.SerializeToString()), images), expected, atol=1e-6)


@pytest.mark.parametrize(
    ("after_conv", "outputs_conv", "reason"),
    [
        ("Sigmoid", False, "Sigmoid"),  # sigmoid(0) = 0.5: a padded channel would not stay zero
        ("Relu", True, "output c would carry padded channels"),
    ],
)
def test_what_cannot_carry_padding_leaves_the_graph_as_it_was(
    after_conv: str, outputs_conv: bool, reason: str
) -> None:
    model = _tiny(after_conv, outputs_conv)
    before = model.SerializeToString()
    aligned, alignment = align_channels(model, 8)
    assert aligned is model and model.SerializeToString() == before
    assert alignment.skipped is not None and reason in alignment.skipped
