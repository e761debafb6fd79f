"""The objective the optimiser minimises: total loss of an image and its gradient with respect to the pixels.

  total = content_weight * sum_l c_l * content(F_l, P_l)
        + style_weight   * sum_l (s_l / L) * sum_k b_k * style(F_l, A_kl)
        + tv_weight      * tv(x)

with c_l, s_l per-layer weights (default 1), L the number of style layers, b_k the style blend weights
(normalised to sum to 1). The defaults reduce to the standard recipe: content on relu4_2, style on
relu1_1..relu5_1 averaged, one style image.

Several style images cost no more than one: sum_k b_k mean((G - A_k)^2) equals mean((G - sum_k b_k A_k)^2)
plus a constant, so the gradient uses the blended Gram matrix and the value adds the constant back.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from . import losses
from .errors import OptionError
from .layout import to_nchw

DEFAULT_CONTENT_LAYERS = ("relu4_2",)
DEFAULT_STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


def _check_layers(kind: str, layers: Sequence[str], valid: list[str]) -> list[str]:
    layers = list(layers)
    unknown = [name for name in layers if name not in valid]
    if unknown:
        raise OptionError(f"unknown {kind} layer {unknown[0]!r}; this model has {', '.join(valid)}")
    if len(set(layers)) != len(layers):
        raise OptionError(f"{kind} layers are listed twice: {', '.join(layers)}")
    return layers


def _check_weights(name: str, weights: Sequence[float] | None, count: int, what: str) -> np.ndarray:
    if weights is None:
        return np.ones(count)
    weights = np.asarray(list(weights), dtype=np.float64)
    if weights.shape != (count,):
        raise OptionError(f"{name} has {weights.size} values but there are {count} {what}")
    if not np.all(np.isfinite(weights)) or np.any(weights < 0):
        raise OptionError(f"{name} must be finite and non-negative, got {', '.join(map(str, weights))}")
    return weights


def check_weight(name: str, value: float) -> float:
    value = float(value)
    if not np.isfinite(value) or value < 0:
        raise OptionError(f"{name} must be a finite number >= 0, got {value}")
    return value


class Objective:
    """Callable ``x -> (total loss, gradient)`` for pixels ``x`` of shape (1, 3, H, W), float64 or float32.

    ``content`` and each of ``styles`` are (H, W, 3) float arrays in [0, 1]: the content image at the
    size being optimised, the style images at the size their Gram matrices are taken from. Targets
    (content activations, blended Gram matrices) are computed once, here.
    """

    def __init__(self, network, content: np.ndarray, styles: Sequence[np.ndarray], *,
                 content_layers: Sequence[str] = DEFAULT_CONTENT_LAYERS,
                 style_layers: Sequence[str] = DEFAULT_STYLE_LAYERS,
                 content_weight: float = 1.0, style_weight: float = 1e6, tv_weight: float = 0.0,
                 style_blend_weights: Sequence[float] | None = None,
                 content_layer_weights: Sequence[float] | None = None,
                 style_layer_weights: Sequence[float] | None = None):
        self.network = network
        self.content_layers = _check_layers("content", content_layers, network.layers)
        self.style_layers = _check_layers("style", style_layers, network.layers)
        self.content_weight = check_weight("content weight", content_weight)
        self.style_weight = check_weight("style weight", style_weight)
        self.tv_weight = check_weight("tv weight", tv_weight)
        if not styles and self.style_weight > 0:
            raise OptionError("no style image given")
        blend = _check_weights("style blend weights", style_blend_weights, len(styles), "style images")
        if styles and blend.sum() <= 0:
            raise OptionError("style blend weights must not all be zero")
        blend = blend / blend.sum() if styles else blend
        content_scale = self.content_weight * _check_weights(
            "content layer weights", content_layer_weights, len(self.content_layers), "content layers")
        style_scale = self.style_weight * _check_weights(
            "style layer weights", style_layer_weights, len(self.style_layers), "style layers") / max(
            len(self.style_layers), 1)
        # Layers whose loss weight is zero take no part (their cotangents stay zero).
        self.content = {l: w for l, w in zip(self.content_layers, content_scale) if w > 0}
        self.style = {l: w for l, w in zip(self.style_layers, style_scale) if w > 0}

        content_nchw = to_nchw(content)
        self.shape = content_nchw.shape
        acts = network.features(content_nchw)
        self.content_targets = {l: acts[l] for l in self.content}
        self.style_targets, self.style_constant = {}, 0.0
        if self.style:
            grams = [{l: losses.gram(a[l]) for l in self.style}
                     for a in (network.features(to_nchw(s)) for s in styles)]
            for l, w in self.style.items():
                blended = sum(np.float32(b) * g[l] for b, g in zip(blend, grams))
                self.style_targets[l] = blended.astype(np.float32)
                # sum_k b_k mean(A_k^2) - mean(Abar^2): what the blended target leaves out of the value.
                spread = sum(b * float(np.mean(np.square(g[l], dtype=np.float64))) for b, g in zip(blend, grams))
                self.style_constant += w * (spread - float(np.mean(np.square(blended, dtype=np.float64))))
        self.used_layers = set(self.content) | set(self.style)
        self.terms = {"content": 0.0, "style": 0.0, "tv": 0.0}
        self.evaluations = 0

    def __call__(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        if x.shape != self.shape:
            raise OptionError(f"image shape {x.shape} does not match the objective's {self.shape}")
        acts = self.network.forward(x, self.used_layers)
        cotangents = self.network.cotangents(self.used_layers)
        written: set[str] = set()
        style = self.style_constant if self.style else 0.0
        for layer, weight in self.style.items():
            style += losses.style_loss(acts[layer], self.style_targets[layer], weight, cotangents[layer],
                                       accumulate=False)
            written.add(layer)
        content = 0.0
        for layer, weight in self.content.items():
            content += losses.content_loss(acts[layer], self.content_targets[layer], weight, cotangents[layer],
                                           accumulate=layer in written)
        grad = self.network.backward().astype(np.float64)
        tv = losses.tv_loss(np.asarray(x, dtype=np.float64), self.tv_weight, grad) if self.tv_weight > 0 else 0.0
        self.terms = {"content": content, "style": style, "tv": tv}
        self.evaluations += 1
        return content + style + tv, grad
