"""A 3x3 stride-1 pad-1 convolution as Winograd minimal filtering F(m x m, 3 x 3) in ordinary ONNX operators.

Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks" (arXiv 1509.09308): with tiles of
a = m + 2 input pixels at stride m, Y = A^T [ (G g G^T) * (B^T d B) ] A. Here:
  input transform   a*a strided Slices of the zero-padded input (one per tile offset), Concat, and one MatMul
                    by the constant (a*a, a*a) matrix kron(B^T, B^T)  -> V (a*a, C, tiles)
  product           one batched MatMul U (a*a, K, C) @ V, U = G g G^T computed at build time in float64
  output transform  one MatMul by kron(A^T, A^T) (m*m, a*a), DepthToSpace (DCR), Slice to H x W.
Shapes are fixed when the graph is built; H and W of any parity are padded up to a multiple of m.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

_F2 = (np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], float),
       np.array([[1, 0, 0], [.5, .5, .5], [.5, -.5, .5], [0, 0, 1]], float),
       np.array([[1, 1, 1, 0], [0, 1, -1, -1]], float))
_F4 = (np.array([[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
                 [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]], float),
       np.array([[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
                 [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]], float),
       np.array([[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]], float))
TRANSFORMS = {2: _F2, 4: _F4}


def _const(nodes: list, name: str, array: np.ndarray) -> str:
    nodes.append(helper.make_node("Constant", [], [name], value=numpy_helper.from_array(array, name)))
    return name


def _ints(nodes: list, name: str, values) -> str:
    return _const(nodes, name, np.asarray(values, np.int64))


def direct_model(weight: np.ndarray, height: int, width: int) -> onnx.ModelProto:
    """The plain ONNX Conv (ONNX Runtime's MLAS kernel) of weight (K, C, 3, 3), pad 1, input (1, C, H, W)."""
    k, c = weight.shape[:2]
    w = numpy_helper.from_array(weight.astype(np.float32), "w")
    node = helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1], kernel_shape=[3, 3])
    graph = helper.make_graph([node], "direct", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, c, height, width])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, k, height, width])], [w])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def winograd_model(weight: np.ndarray, height: int, width: int, m: int) -> onnx.ModelProto:
    """The same convolution as F(m x m, 3 x 3), m in (2, 4)."""
    bt, g, at = TRANSFORMS[m]
    a = m + 2
    k, c = weight.shape[:2]
    th, tw = -(-height // m), -(-width // m)
    u = np.einsum("ia,kcab,jb->ijkc", g, weight.astype(np.float64), g).reshape(a * a, k, c)
    nodes: list = []
    pads = _ints(nodes, "pads", [0, 0, 1, 1, 0, 0, 1 + th * m - height, 1 + tw * m - width])
    nodes.append(helper.make_node("Pad", ["x", pads], ["xp"]))
    step = _ints(nodes, "step", [m, m])
    axes = _ints(nodes, "axes", [2, 3])
    pieces = []
    for i in range(a):
        for j in range(a):
            s = _ints(nodes, f"s{i}_{j}", [i, j])
            e = _ints(nodes, f"e{i}_{j}", [i + m * th, j + m * tw])
            nodes.append(helper.make_node("Slice", ["xp", s, e, axes, step], [f"d{i}_{j}"]))
            pieces.append(f"d{i}_{j}")
    nodes.append(helper.make_node("Concat", pieces, ["d"], axis=0))  # (a*a, C, th, tw)
    nodes.append(helper.make_node("Reshape", ["d", _ints(nodes, "sd", [a * a, c * th * tw])], ["d2"]))
    nodes.append(helper.make_node("MatMul", [_const(nodes, "bb", np.kron(bt, bt).astype(np.float32)), "d2"], ["v2"]))
    nodes.append(helper.make_node("Reshape", ["v2", _ints(nodes, "sv", [a * a, c, th * tw])], ["v"]))
    nodes.append(helper.make_node("MatMul", [_const(nodes, "u", u.astype(np.float32)), "v"], ["mm"]))  # (a*a, K, T)
    nodes.append(helper.make_node("Reshape", ["mm", _ints(nodes, "sm", [a * a, k * th * tw])], ["mm2"]))
    nodes.append(helper.make_node("MatMul", [_const(nodes, "aa", np.kron(at, at).astype(np.float32)), "mm2"], ["y2"]))
    nodes.append(helper.make_node("Reshape", ["y2", _ints(nodes, "sy", [1, m * m * k, th, tw])], ["y4"]))
    nodes.append(helper.make_node("DepthToSpace", ["y4"], ["yt"], blocksize=m, mode="DCR"))
    nodes.append(helper.make_node("Slice", ["yt", _ints(nodes, "z", [0, 0]), _ints(nodes, "hw", [height, width]), axes], ["y"]))
    graph = helper.make_graph(nodes, f"winograd_f{m}", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, c, height, width])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, k, height, width])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def vjp_weight(weight: np.ndarray) -> np.ndarray:
    """The weights whose pad-1 convolution is the VJP of a 3x3 pad-1 conv with respect to its input."""
    return np.ascontiguousarray(weight[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))
