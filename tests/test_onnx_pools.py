"""Average pools as depthwise convolutions (runtime/onnx_pools.py, for the int8 build): the rewritten
graph computes what PyTorch's pool computes, for the padding and ceil_mode cases nasc exports."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
import torch.nn.functional as F
from onnx import TensorProto, helper

from nasc.runtime.onnx_pools import average_pools_as_convolutions
from nasc.runtime.onnx_runtime import load_session, run


def pool_graph(channels: int, size: int, out: int, **attributes) -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, channels, size, size])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, channels, out, out])
    pool = helper.make_node("AveragePool", ["x"], ["pooled"], "pool", **attributes)
    relu = helper.make_node("Relu", ["pooled"], ["y"], "relu")  # a reader of the pool, kept wired
    graph = helper.make_graph([pool, relu], "pool", [x], [y])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10)


CASES = [  # (kernel, stride, padding, ceil_mode): nasc's SAME pools and DARTS's, odd and even sizes
    (3, 1, 1, 0),
    (3, 2, 1, 0),
    (3, 2, 0, 1),
    (3, 2, 1, 1),
    (2, 2, 0, 1),
    (5, 1, 2, 0),
]


@pytest.mark.parametrize("size", [7, 8, 11])
@pytest.mark.parametrize(("kernel", "stride", "padding", "ceil_mode"), CASES)
def test_a_rewritten_pool_computes_pytorchs_average_of_covered_pixels(
    kernel, stride, padding, ceil_mode, size
):
    x = np.random.default_rng(size).standard_normal((1, 5, size, size)).astype(np.float32)
    expected = F.avg_pool2d(
        torch.from_numpy(x), kernel, stride, padding, ceil_mode=bool(ceil_mode), count_include_pad=False
    ).relu()
    attributes = {"kernel_shape": [kernel] * 2, "strides": [stride] * 2, "pads": [padding] * 4}
    model = pool_graph(5, size, expected.shape[-1], **attributes, ceil_mode=ceil_mode)
    rewritten, count = average_pools_as_convolutions(model)
    onnx.checker.check_model(rewritten, full_check=True)
    assert count == 1 and "AveragePool" not in {node.op_type for node in rewritten.graph.node}
    got = run(load_session(rewritten.SerializeToString(), device="cpu"), x)
    np.testing.assert_allclose(got, expected.numpy(), rtol=1e-5, atol=1e-6)
    pooled = run(load_session(model.SerializeToString(), device="cpu"), x)  # onnxruntime's own pool
    np.testing.assert_allclose(got, pooled, rtol=1e-5, atol=1e-6)
    assert model.graph.node[0].op_type == "AveragePool"  # the caller's graph is left as it was


def test_a_pool_that_averages_padding_too_is_left_as_it_is() -> None:
    model = pool_graph(3, 8, 8, kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1], count_include_pad=1)
    rewritten, count = average_pools_as_convolutions(model)
    assert count == 0 and [node.op_type for node in rewritten.graph.node] == ["AveragePool", "Relu"]
