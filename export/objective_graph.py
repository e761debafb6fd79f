"""The objective graph: image -> the style and content losses and their gradient with respect to the image, in
one ONNX graph, so that the activations never leave the runtime between the forward and the backward pass.

It holds the recipe of ``nst_rt.objective.losses`` for fixed layers (the defaults: style relu1_1 ... relu5_1,
content relu4_2), with per-layer weights as inputs (0 leaves a layer out):

  style, per layer l    w_l * sum((G - A)^2) / C^2,   G = F' F'^T / (C H W)
                        cotangent 4 w_l / (C^2 C H W) * (G - A) F'
  content, per layer l  w_l * sum((F - P)^2) / (C H W)
                        cotangent 2 w_l / (C H W) * (F - P)

Inputs: ``image``; ``style_weights`` and ``content_weights`` (float32 vectors in the order of the metadata's
``objective_style_layers`` / ``objective_content_layers``); ``target_gram_<layer>`` (C x C) per style layer and
``target_<layer>`` (the content image's activations) per content layer. Outputs: ``style_loss``,
``content_loss`` (float32 scalars) and ``grad_image``. The forward and backward nodes are the features and VJP
graphs' own (``graphs.features_nodes`` / ``graphs.vjp_nodes``); the VJP starts from the deepest loss layer.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper

from nst_rt.model_format import (CONTENT_LOSS, CONTENT_WEIGHTS, GRAD_OUTPUT, IMAGE_INPUT, STYLE_LOSS, STYLE_WEIGHTS,
                                 content_target_name, gram_target_name, layer_table)
from nst_rt.objective.defaults import DEFAULT_CONTENT_LAYERS, DEFAULT_STYLE_LAYERS

from .graphs import _Graph, _image_info, _model, features_nodes, stored_params, vjp_nodes


def _count(g: _Graph, activation: str) -> str:
    """C*H*W of ``activation`` as a float32 scalar (H and W vary with the image)."""
    return g.op("Cast", [g.op("Size", [activation])], to=TensorProto.FLOAT)


def _weight(g: _Graph, vector: str, index: int) -> str:
    return g.op("Gather", [vector, g.const(f"{vector}.{index}", np.array(index, np.int64))], axis=0)


def _sum_of_squares(g: _Graph, tensor: str) -> str:
    return g.op("ReduceSumSquare", [tensor], keepdims=0)


def _total(g: _Graph, terms: list[str], output: str) -> None:
    if not terms:
        g.op("Identity", [g.const(f"{output}.zero", np.zeros((), np.float32))], output=output)
        return
    total = terms[0]
    for term in terms[1:]:
        total = g.op("Add", [total, term])
    g.op("Reshape", [total, g.const("scalar_shape", np.zeros(0, np.int64))], output=output)  # a scalar, as declared


def objective_model(arch: str, params, pooling: str, opset: int, metadata: dict[str, str],
                    preprocess: str = "torchvision", weights_dtype: str = "float32",
                    style_layers=DEFAULT_STYLE_LAYERS, content_layers=DEFAULT_CONTENT_LAYERS) -> onnx.ModelProto:
    channels = {layer.name: layer.out_channels for layer in layer_table(arch) if hasattr(layer, "out_channels")}
    g = _Graph()
    stored = stored_params(params, preprocess, weights_dtype)
    features_nodes(g, arch, stored, pooling, preprocess)
    cotangents: dict[str, str] = {}
    style_terms, content_terms, inputs = [], [], [_image_info(IMAGE_INPUT, 3)]
    inputs.append(helper.make_tensor_value_info(STYLE_WEIGHTS, TensorProto.FLOAT, [len(style_layers)]))
    inputs.append(helper.make_tensor_value_info(CONTENT_WEIGHTS, TensorProto.FLOAT, [len(content_layers)]))
    for index, layer in enumerate(style_layers):
        c = channels[layer]
        weight, count = _weight(g, STYLE_WEIGHTS, index), _count(g, layer)
        flat = g.op("Reshape", [layer, g.const(f"{layer}.rows", np.array([c, -1], np.int64))])
        gram = g.op("Div", [g.op("MatMul", [flat, g.op("Transpose", [flat], perm=[1, 0])]), count])
        diff = g.op("Sub", [gram, gram_target_name(layer)])
        per_channel_pair = g.op("Mul", [weight, g.const(f"{layer}.inverse_c2", np.array(1.0 / c**2, np.float32))])
        style_terms.append(g.op("Mul", [_sum_of_squares(g, diff), per_channel_pair]))
        # Scale the small C x C difference, not the C x HW product.
        scale = g.op("Div", [g.op("Mul", [per_channel_pair, g.const(f"{layer}.four", np.array(4, np.float32))]), count])
        product = g.op("MatMul", [g.op("Mul", [diff, scale]), flat])
        cotangents[layer] = g.op("Reshape", [product, g.op("Shape", [layer])])
        inputs.append(helper.make_tensor_value_info(gram_target_name(layer), TensorProto.FLOAT, [c, c]))
    for index, layer in enumerate(content_layers):
        weight, count = _weight(g, CONTENT_WEIGHTS, index), _count(g, layer)
        diff = g.op("Sub", [layer, content_target_name(layer)])
        content_terms.append(g.op("Div", [g.op("Mul", [_sum_of_squares(g, diff), weight]), count]))
        scale = g.op("Div", [g.op("Mul", [weight, g.const(f"{layer}.two", np.array(2, np.float32))]), count])
        term = g.op("Mul", [diff, scale])
        cotangents[layer] = term if layer not in cotangents else g.op("Add", [cotangents[layer], term])
        inputs.append(_image_info(content_target_name(layer), channels[layer], f"{layer}_height", f"{layer}_width"))
    _total(g, style_terms, STYLE_LOSS)
    _total(g, content_terms, CONTENT_LOSS)
    vjp_nodes(g, arch, stored, pooling, preprocess, cotangents)
    outputs = [helper.make_tensor_value_info(STYLE_LOSS, TensorProto.FLOAT, []),
               helper.make_tensor_value_info(CONTENT_LOSS, TensorProto.FLOAT, []), _image_info(GRAD_OUTPUT, 3)]
    metadata = {**metadata, "objective_style_layers": ",".join(style_layers),
                "objective_content_layers": ",".join(content_layers)}
    return _model(g, f"{arch}_objective", inputs, outputs, opset, metadata)
