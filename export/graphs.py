"""Build the two ONNX graphs of a truncated VGG directly with ``onnx.helper``.

features graph: image (1, 3, H, W) RGB in [0, 1] -> every ReLU activation up to relu5_1. The preprocessing
                (model_format.PREPROCESSES) is done on the image, before conv1_1's zero padding, so the
                border is exact too; a BGR channel order is folded into conv1_1's weights (a permutation).
vjp graph:      those activations (for the ReLU masks and max-pool switches) and one cotangent per
                ReLU layer ``grad_<layer>`` -> ``grad_image``, the gradient with respect to the image.

Both graphs read the same stored tensors ``<layer>.weight`` / ``<layer>.bias`` (model_format.weight_name), in
the export's weights dtype: the exporter moves them into one external-data file that both graphs reference.
A float16 export casts them to float32 in the graph (Cast), so all arithmetic is float32; the VJP derives its
kernels from the same tensors in the graph (Transpose and a reversing Slice). ONNX Runtime folds all of this
into constants when a session is created.

The backward pass is written with ordinary forward operators, walking from relu5_1 down:
  ReLU     g <- g * (a > 0)                       the mask comes from the activation a itself
  conv     g <- Conv(g, W flipped in H and W, in/out channels swapped, pad 1)   a plain Conv, ORT's fastest kernel
                (not a ConvTranspose on W: a graph that shares one initializer between Conv and ConvTranspose
                has computed wrong results on OpenVINO, openvinotoolkit/openvino#33397)
  avg pool g <- nearest-upsample(g) x 0.25, zero-padded to the pre-pool size when that was odd
  max pool g <- MaxUnpool(g, MaxPool indices recomputed from the pre-pool activation)
Cotangents are added where their layer's path meets the running gradient.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from nst_rt.model_format import GRAD_OUTPUT as GRAD_IMAGE
from nst_rt.model_format import IMAGE_INPUT as IMAGE
from nst_rt.model_format import PREPROCESSES, WEIGHTS_DTYPES, Conv, Pool, cotangent_name, layer_table, weight_name

INT64_MIN = np.iinfo(np.int64).min  # a Slice end that runs a negative step through index 0


class _Graph:
    """A tiny helper that collects nodes and initializers with unique names."""

    def __init__(self):
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._names: set[str] = set()
        self._count = 0

    def const(self, name: str, array: np.ndarray) -> str:
        """An initializer; the forward and backward nodes of one graph both name each stored weight: kept once."""
        if name not in self._names:
            self._names.add(name)
            self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def op(self, op_type: str, inputs: list[str], output: str | None = None, n_out: int = 1, **attrs) -> str | list[str]:
        self._count += 1
        outputs = [output] if output else [f"{op_type.lower()}_{self._count}_{i}" for i in range(n_out)]
        self.nodes.append(helper.make_node(op_type, inputs, outputs, name=f"{op_type}_{self._count}", **attrs))
        return outputs[0] if n_out == 1 else outputs


def _image_info(name: str, channels: int, h: str = "height", w: str = "width") -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, channels, h, w])


def _activation_infos(table) -> list[onnx.ValueInfoProto]:
    infos, block_dims = [], 0
    for layer in table:
        if isinstance(layer, Pool):
            block_dims += 1
        else:
            suffix = "" if block_dims == 0 else f"_div{2 ** block_dims}"
            infos.append(_image_info(layer.name, layer.out_channels, f"height{suffix}", f"width{suffix}"))
    return infos


def _model(graph: _Graph, name: str, inputs, outputs, opset: int, metadata: dict[str, str]) -> onnx.ModelProto:
    body = helper.make_graph(graph.nodes, name, inputs, outputs, graph.initializers)
    model = helper.make_model(body, opset_imports=[helper.make_opsetid("", opset)], producer_name="nst-rt")
    # The oldest IR version that carries this opset, so that older runtimes read the file too.
    model.ir_version = helper.find_min_ir_version_for(list(model.opset_import))
    helper.set_model_props(model, metadata)
    onnx.checker.check_model(model)
    return model


def _rgb(values, preprocess: str) -> np.ndarray:
    """Per-channel constants of ``preprocess`` in the image's RGB order, shaped (3,)."""
    values = np.array(values, np.float32)
    return values[::-1].copy() if PREPROCESSES[preprocess].channel_order == "BGR" else values


def rgb_params(params, preprocess: str):
    """``params`` with conv1_1's input channels in the image's RGB order (exact: a permutation)."""
    (weight, bias), rest = params[0], list(params[1:])
    if PREPROCESSES[preprocess].channel_order == "BGR":
        weight = np.ascontiguousarray(weight[:, ::-1])
    return [(weight, bias)] + rest


def stored_params(params, preprocess: str, weights_dtype: str = "float32") -> list[tuple[np.ndarray, np.ndarray]]:
    """The tensors an export stores: ``params`` in the image's RGB order, in ``weights_dtype``."""
    dtype = np.dtype(weights_dtype)
    return [(w.astype(dtype), b.astype(dtype)) for w, b in rgb_params(params, preprocess)]


def rounded_params(params, weights_dtype: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """``params`` (float32) rounded to ``weights_dtype`` and back: the weights a model of that dtype computes with."""
    dtype = np.dtype(weights_dtype)
    return [(w.astype(dtype).astype(np.float32), b.astype(dtype).astype(np.float32)) for w, b in params]


def _float32(g: _Graph, tensor: str, dtype: np.dtype) -> str:
    """``tensor`` as float32: a Cast when it is stored in another dtype (folded by ONNX Runtime)."""
    if dtype.name not in WEIGHTS_DTYPES:
        raise ValueError(f"weights dtype {dtype} is not one of {WEIGHTS_DTYPES}")
    return tensor if dtype == np.float32 else g.op("Cast", [tensor], to=TensorProto.FLOAT)


def _stored(g: _Graph, name: str, array: np.ndarray) -> str:
    """A stored tensor, as float32."""
    return _float32(g, g.const(name, array), array.dtype)


def features_nodes(g: _Graph, arch: str, params, pooling: str, preprocess: str) -> None:
    """The forward pass on ``IMAGE``: each ReLU's output is the tensor named after its layer. ``params`` as stored."""
    spec = PREPROCESSES[preprocess]
    x = IMAGE
    if spec.scale != 1:
        x = g.op("Mul", [x, g.const("scale", np.array(spec.scale, np.float32))])
    x = g.op("Sub", [x, g.const("mean", _rgb(spec.mean, preprocess).reshape(1, 3, 1, 1))])
    if any(v != 1 for v in spec.std):
        x = g.op("Div", [x, g.const("std", _rgb(spec.std, preprocess).reshape(1, 3, 1, 1))])
    conv = 0
    for layer in layer_table(arch):
        if isinstance(layer, Pool):
            pool = "AveragePool" if pooling == "avg" else "MaxPool"
            x = g.op(pool, [x], kernel_shape=[2, 2], strides=[2, 2])
        else:
            weight, bias = params[conv]
            w = _stored(g, weight_name(layer.name, "weight"), weight)
            b = _stored(g, weight_name(layer.name, "bias"), bias)
            x = g.op("Relu", [g.op("Conv", [x, w, b], kernel_shape=[3, 3], pads=[1, 1, 1, 1])], output=layer.name)
            conv += 1


def features_model(arch: str, params, pooling: str, opset: int, metadata: dict[str, str],
                   preprocess: str = "torchvision", weights_dtype: str = "float32") -> onnx.ModelProto:
    g = _Graph()
    features_nodes(g, arch, stored_params(params, preprocess, weights_dtype), pooling, preprocess)
    table = layer_table(arch)
    return _model(g, f"{arch}_features", [_image_info(IMAGE, 3)], _activation_infos(table), opset, metadata)


def backward_weight(weight: np.ndarray) -> np.ndarray:
    """Weights of the Conv that maps an output cotangent to the input cotangent of a 3x3 pad-1 conv."""
    return np.ascontiguousarray(weight.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1])


def _backward_weight(g: _Graph, name: str, weight: np.ndarray, factor: np.ndarray | None) -> str:
    """:func:`backward_weight` (times ``factor``) in the graph, from the stored tensor the features graph reads.

    Swapped and flipped in the stored dtype (float16 moves half the bytes while the session folds it), then cast.
    """
    swapped = g.op("Transpose", [g.const(name, weight)], perm=[1, 0, 2, 3])
    flipped = _float32(g, g.op("Slice", [swapped, "flip_starts", "flip_ends", "flip_axes", "flip_steps"]), weight.dtype)
    return flipped if factor is None else g.op("Mul", [flipped, g.const(f"{name}.backward_factor", factor)])


def vjp_nodes(g: _Graph, arch: str, params, pooling: str, preprocess: str, cotangents: dict[str, str]) -> None:
    """The backward pass into ``GRAD_IMAGE``, from the deepest layer in ``cotangents`` (layer -> its cotangent's
    tensor) down; each ReLU's mask reads the activation tensor named after its layer. ``params`` as stored."""
    table = layer_table(arch)
    spec = PREPROCESSES[preprocess]
    zero = g.const("zero", np.zeros((), np.float32))
    pad_begin = g.const("pad_begin", np.zeros(4, np.int64))
    for name, values in (("starts", [-1, -1]), ("ends", [INT64_MIN, INT64_MIN]), ("axes", [2, 3]), ("steps", [-1, -1])):
        g.const(f"flip_{name}", np.array(values, np.int64))  # reverse kernel rows and columns
    # For each position in the table, the activation that feeds it (None for the image).
    feeding = {}
    previous = None
    for position, layer in enumerate(table):
        feeding[position] = previous
        if isinstance(layer, Conv):
            previous = layer.name

    deepest = max(position for position, layer in enumerate(table) if getattr(layer, "name", None) in cotangents)
    grad = None
    conv = sum(isinstance(layer, Conv) for layer in table[:deepest + 1])
    for position in range(deepest, -1, -1):
        layer = table[position]
        if isinstance(layer, Pool):
            before = feeding[position]  # pooling always follows a ReLU
            if pooling == "avg":
                # The 0.25 of average pooling's backward is folded into the backward weights of the conv
                # that follows the pooling (exact: a power of 2), saving a pass over the activations.
                up = g.op("Resize", [grad, "", g.const(f"{layer.name}.scales", np.array([1, 1, 2, 2], np.float32))],
                          mode="nearest", coordinate_transformation_mode="asymmetric", nearest_mode="floor")
                # Floor-mode pooling dropped the last row/column of an odd-sized input: its gradient is 0.
                missing = g.op("Sub", [g.op("Shape", [before]), g.op("Shape", [up])])
                pads = g.op("Concat", [pad_begin, missing], axis=0)
                grad = g.op("Pad", [up, pads])
            else:
                _, indices = g.op("MaxPool", [before], n_out=2, kernel_shape=[2, 2], strides=[2, 2])
                grad = g.op("MaxUnpool", [grad, indices, g.op("Shape", [before])], kernel_shape=[2, 2], strides=[2, 2])
            continue
        cot = cotangents.get(layer.name)
        if cot is not None:
            grad = cot if grad is None else g.op("Add", [grad, cot])
        # The mask as a float multiplier: ONNX Runtime's CPU Where runs on one thread and took a fifth of a 512 px
        # evaluation; Cast and Mul give the same values (g x 1 is g, g x 0 is 0) in a sixth of its time.
        mask = g.op("Cast", [g.op("Greater", [layer.name, zero])], to=TensorProto.FLOAT)
        grad = g.op("Mul", [grad, mask])
        conv -= 1
        factor = None
        if pooling == "avg" and position > 0 and isinstance(table[position - 1], Pool):
            factor = np.array(0.25, np.float32)
        if conv == 0:
            # d(preprocessed)/d(image) = scale/std per channel: fold it into the first conv's output channels.
            factor = (np.float64(spec.scale) / _rgb(spec.std, preprocess).astype(np.float64)).astype(np.float32)
            factor = None if np.all(factor == 1) else factor.reshape(3, 1, 1, 1)
        w = _backward_weight(g, weight_name(layer.name, "weight"), params[conv][0], factor)
        grad = g.op("Conv", [grad, w], output=GRAD_IMAGE if conv == 0 else None, kernel_shape=[3, 3], pads=[1, 1, 1, 1])


def vjp_model(arch: str, params, pooling: str, opset: int, metadata: dict[str, str],
              preprocess: str = "torchvision", weights_dtype: str = "float32") -> onnx.ModelProto:
    table = layer_table(arch)
    g = _Graph()
    layers = [layer.name for layer in table if isinstance(layer, Conv)]
    vjp_nodes(g, arch, stored_params(params, preprocess, weights_dtype), pooling, preprocess,
              {name: cotangent_name(name) for name in layers})
    activations = _activation_infos(table)
    cotangents = [_image_info(cotangent_name(info.name), info.type.tensor_type.shape.dim[1].dim_value,
                              info.type.tensor_type.shape.dim[2].dim_param, info.type.tensor_type.shape.dim[3].dim_param)
                  for info in activations]
    return _model(g, f"{arch}_vjp", activations + cotangents, [_image_info(GRAD_IMAGE, 3)], opset, metadata)
