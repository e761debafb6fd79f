"""The objective the optimiser minimises: total loss of an image and its gradient with respect to the pixels.

  total = content_weight * sum_l c_l * mean((F_l - P_l)^2) / n_l
        + style_weight   * sum_l (s_l / L) * sum_k b_k * mean((G_l - A_kl)^2) / m_l
        + tv_weight      * tv(x)

with F_l the image's activations at layer l, P_l the content image's, G_l = gram(F_l), A_kl the Gram matrix
of style image k (see :mod:`nst_rt.objective.losses`), c_l, s_l per-layer weights (default 1), L the number of style
layers and b_k the style blend weights (normalised to sum to 1).

The normalisers make each layer's term invariant to a positive rescaling of that layer's activations, so
one set of weights means the same for any VGG weights file (Caffe-trained filters give activations ~60x
torchvision's) and any content or style image:

  normalize=True (default)   n_l = mean(P_l^2)                 m_l = sum_k b_k mean(A_kl^2)
  normalize=False            n_l = 1                           m_l = 1   (the plain recipe of Gatys et al.)

Each normalised term is a relative squared error: an image whose activations at layer l are all zero scores
exactly 1 there (content and style alike), the target itself scores 0. With several styles, m_l is the
blend of the targets' mean squares, so that the blended term keeps that meaning. With normalize=False,
weights content 1, style 1e6, tv 0, the default layers (relu4_2 content, relu1_1..relu5_1 style averaged)
and one style image, this is the standard recipe.

With ``style_masks`` (one (H, W) mask per style image) and ``content_mask``, the style and content terms of
the masked layers are :mod:`nst_rt.objective.guided`'s instead: each style k against its own A_k, through a
Gram matrix of the image's features weighted by mask k, with b_k normalised to average 1.

Several style images cost no more than one: sum_k b_k mean((G - A_k)^2) equals mean((G - sum_k b_k A_k)^2)
plus a constant, so the gradient uses the blended Gram matrix and the value adds the constant back.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from . import guided, losses
from .fused import FusedTerms
from ..errors import OptionError
from ..model_format import layer_depth
from .defaults import DEFAULT_CONTENT_LAYERS, DEFAULT_STYLE_LAYERS, check_weight  # noqa: F401 (re-exported)
from ..io.layout import to_nchw



def check_layers(kind: str, layers: Sequence[str], valid: list[str]) -> list[str]:
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
        raise OptionError(f"{name} has {weights.size} value{'' if weights.size == 1 else 's'} but there {'is' if count == 1 else 'are'} {count} {what}")
    if not np.all(np.isfinite(weights)) or np.any(weights < 0):
        raise OptionError(f"{name} must be finite and non-negative, got {', '.join(map(str, weights))}")
    return weights


def blend_weights(weights: Sequence[float] | None, count: int) -> np.ndarray:
    """The style blend weights for ``count`` style images, normalised to sum 1 (equal when None)."""
    blend = _check_weights("--style-blend-weights", weights, count, "style image" if count == 1 else "style images")
    if count and blend.sum() <= 0:
        raise OptionError("style blend weights must not all be zero")
    return blend / blend.sum() if count else blend


class Objective:
    """Callable ``x -> (total loss, gradient)`` for pixels ``x`` of shape (1, 3, H, W), float64 or float32.

    ``content`` and each of ``styles`` are (H, W, 3) float arrays in [0, 1]: the content image at the
    size being optimised, the style images at the size their Gram matrices are taken from. Targets
    (content activations, blended Gram matrices) and normalisers are computed once, here. The weights
    have no defaults here: :class:`nst_rt.pipeline.options.Options` is their one home.

    The returned gradient is a buffer the objective reuses: valid until the next call (copy it to keep
    it). It is float32 as the network computes it, or float64 when the tv term is on, so that the tv
    part, computed from the pixels in float64, is not rounded. The weighted terms of every evaluated
    point are kept: :meth:`terms_at` returns those of the point that gave a total.
    """

    def __init__(self, network, content: np.ndarray, styles: Sequence[np.ndarray], *,
                 content_weight: float, style_weight: float, tv_weight: float, normalize: bool,
                 content_layers: Sequence[str] = DEFAULT_CONTENT_LAYERS,
                 style_layers: Sequence[str] = DEFAULT_STYLE_LAYERS,
                 style_blend_weights: Sequence[float] | None = None,
                 content_layer_weights: Sequence[float] | None = None,
                 style_layer_weights: Sequence[float] | None = None,
                 style_masks: Sequence[np.ndarray] | None = None, content_mask: np.ndarray | None = None,
                 fused: bool = True, xp=np):
        self.network = network
        self.normalize = bool(normalize)
        self.content_layers = check_layers("content", content_layers, network.layers)
        self.style_layers = check_layers("style", style_layers, network.layers)
        self.content_weight = check_weight("content weight", content_weight)
        self.style_weight = check_weight("style weight", style_weight)
        self.tv_weight = check_weight("tv weight", tv_weight)
        if not styles and self.style_weight > 0:
            raise OptionError("no style image given")
        blend = blend_weights(style_blend_weights, len(styles))
        if style_masks is not None:  # each style acts in its own region: the weights average 1, not sum to 1
            blend = blend * len(styles)
        content_scale = self.content_weight * _check_weights(
            "content layer weights", content_layer_weights, len(self.content_layers), "content layers")
        style_scale = self.style_weight * _check_weights(
            "style layer weights", style_layer_weights, len(self.style_layers), "style layers") / max(
            len(self.style_layers), 1)
        # Layers whose loss weight is zero take no part (their cotangents stay zero).
        content_scales = {l: w for l, w in zip(self.content_layers, content_scale) if w > 0}
        style_scales = {l: w for l, w in zip(self.style_layers, style_scale) if w > 0}

        content_nchw = to_nchw(content)
        self.shape = content_nchw.shape
        style_masks = _check_masks(style_masks, len(styles), self.shape, "style")
        content_mask = _check_masks(None if content_mask is None else [content_mask], 1, self.shape, "content")
        self.content_targets = self._target_features(content_nchw, list(content_scales))
        self.content = {l: w / self._normaliser("content", l, _mean_square(self.content_targets[l]))
                        for l, w in content_scales.items()}
        # Masked terms, by layer (empty without masks): see nst_rt.objective.guided.
        self.content_masked = {l: _masked(w, self.content_targets[l], content_mask[0], l)
                               for l, w in self.content.items()} if content_mask else {}
        self.style, self.style_targets, self.style_constant, self.style_masked = {}, {}, 0.0, {}
        if style_scales:
            grams = [self._target_grams(to_nchw(s), list(style_scales)) for s in styles]
            for l, w in style_scales.items():
                if style_masks:
                    self.style[l] = w
                    self.style_masked[l] = [
                        _masked(w * b / self._normaliser("style", l, _mean_square(g[l])), g[l], m, l)
                        for b, g, m in zip(blend, grams, style_masks) if b > 0]
                    continue
                blended = sum(np.float32(b) * g[l] for b, g in zip(blend, grams))
                self.style_targets[l] = blended.astype(np.float32)
                # sum_k b_k mean(A_k^2): the normaliser, and with mean(Abar^2) what the blended target leaves out.
                spread = sum(b * _mean_square(g[l]) for b, g in zip(blend, grams))
                w = w / self._normaliser("style", l, spread)
                self.style[l] = w
                self.style_constant += w * (spread - _mean_square(blended))
        self.used_layers = set(self.content) | set(self.style)
        # The model's objective graph computes the terms in one run where it holds them (nst_rt.objective.fused);
        # fused=False keeps the two graphs with the losses (nst_rt.objective.losses, guided) between them.
        # ``xp`` is the array module of the points it is given (numpy, or CuPy on the device).
        self._fused = None
        if fused and FusedTerms.fits(network, self.style, self.content, bool(self.style_masked or self.content_masked)):
            self._fused = FusedTerms(network, self.shape, self.style, self.style_targets, self.content,
                                     self.content_targets, xp=xp)
        # The two graphs' losses run where their activations are (device_buffers): the targets go there once.
        self.xp = xp
        if self._fused is None and xp is not np:
            self.style_targets = {l: xp.asarray(t) for l, t in self.style_targets.items()}
            self.content_targets = {l: xp.asarray(t) for l, t in self.content_targets.items()
                                    if l not in self.content_masked}
            self.style_masked = {l: [t.on(xp) for t in terms] for l, terms in self.style_masked.items()}
            self.content_masked = {l: t.on(xp) for l, t in self.content_masked.items()}
        # With tv on and no `out`, the gradient is gathered in float64 here (one buffer, made on first use and
        # reused) so the tv part stays exact.
        self._grad64 = None
        self._terms: dict[float | str, dict[str, float]] = {}  # per evaluated point, by its total
        self.evaluations = 0

    def _target_features(self, image: np.ndarray, layers: list[str]) -> dict[str, np.ndarray]:
        """Activations of ``image`` at ``layers`` (the content targets)."""
        if not layers:
            return {}
        acts = self.network.features(image)
        return {l: acts[l] for l in layers}

    def _target_grams(self, image: np.ndarray, layers: list[str]) -> dict[str, np.ndarray]:
        """Gram matrices of ``image`` at ``layers`` (a style image's)."""
        acts = self.network.features(image)
        return {l: losses.gram(acts[l]) for l in layers}

    def _normaliser(self, kind: str, layer: str, mean_square: float) -> float:
        """n_l or m_l: the mean square of the layer's (blended) target; 1 with normalize=False."""
        if not self.normalize:
            return 1.0
        if not mean_square > 0:
            raise OptionError(f"the {kind} image gives all-zero activations at {layer}, so its loss cannot be "
                              f"normalised; use other {kind} layers or --no-normalize")
        return mean_square

    def terms_at(self, value: float) -> dict[str, float]:
        """The weighted content, style and tv terms of the evaluated point whose total was ``value``."""
        try:
            return dict(self._terms[point_key(value)])
        except KeyError:
            raise KeyError(f"no evaluated point has the total {value!r}") from None

    def __call__(self, x: np.ndarray, out: np.ndarray | None = None) -> tuple[float, np.ndarray]:
        """``(loss, gradient)`` at ``x``, an array of ``self.xp``. The gradient is written into ``out`` (float64,
        ``x``'s shape and module) when given, else it is a buffer of this objective's that the next call reuses
        (float32 without tv)."""
        if x.shape != self.shape:
            raise OptionError(f"image shape {x.shape} does not match the objective's {self.shape}")
        if self._fused is not None:
            style, content, grad = self._fused(x)
            return self._finish(x, out, content, style + self.style_constant, grad)  # the constant is 0 without style
        acts = self.network.forward(x, self.used_layers)
        cotangents = self.network.cotangents(self.used_layers)
        written: set[str] = set()
        style = self.style_constant if self.style else 0.0
        for layer, weight in self.style.items():
            if layer in self.style_masked:
                style += guided.style_loss(acts[layer], self.style_masked[layer], cotangents[layer], accumulate=False)
            else:
                style += losses.style_loss(acts[layer], self.style_targets[layer], weight, cotangents[layer],
                                           accumulate=False)
            written.add(layer)
        content = 0.0
        for layer, weight in self.content.items():
            if layer in self.content_masked:
                content += guided.content_loss(acts[layer], self.content_masked[layer], cotangents[layer],
                                               accumulate=layer in written)
            else:
                content += losses.content_loss(acts[layer], self.content_targets[layer], weight, cotangents[layer],
                                               accumulate=layer in written)
        return self._finish(x, out, content, style, self.network.backward())

    def _finish(self, x, out, content: float, style: float, grad: np.ndarray) -> tuple[float, np.ndarray]:
        """Add the tv term to the graphs' gradient (into ``out`` when given) and record the point's terms."""
        tv, xp = 0.0, self.xp
        if out is None and self.tv_weight > 0:
            out = self._grad64 = float64_buffer(self._grad64, self.shape, xp)
        if out is not None:
            xp.copyto(out, grad)
            grad = out
        if self.tv_weight > 0:
            tv = losses.tv_loss(x.astype(xp.float64, copy=False), self.tv_weight, grad)
        total = content + style + tv
        # Keyed by the total the optimiser sees, so the terms of the point it accepts or returns can be found.
        self._terms[point_key(total)] = {"content": content, "style": style, "tv": tv}
        self.evaluations += 1
        return total, grad


def float64_buffer(buffer: np.ndarray | None, shape: tuple[int, ...], xp=np) -> np.ndarray:
    """``buffer``, or a new float64 one of ``shape`` (in array module ``xp``) the first time."""
    return xp.empty(shape, xp.float64) if buffer is None else buffer


def point_key(total: float) -> float | str:
    """The dict key of an evaluated point's total (NaN made findable)."""
    return total if total == total else "nan"  # NaN != NaN: a dict could never find it again


def mask_count(given: int, count: int, kind: str) -> str:
    """What is wrong when ``given`` masks come for ``count`` images of ``kind``, in words."""
    return f"{given} {kind} mask{'' if given == 1 else 's'} for {count} {kind} image{'' if count == 1 else 's'}"


def _check_masks(masks, count: int, shape, kind: str) -> list[np.ndarray] | None:
    """The masks as (H, W) float32 arrays in [0, 1] at the image's size, one per image of ``kind``."""
    if masks is None:
        return None
    masks = [np.asarray(m, dtype=np.float32) for m in masks]
    if len(masks) != count:
        raise OptionError(f"{mask_count(len(masks), count, kind)}; give one mask per {kind} image")
    for m in masks:
        if m.shape != tuple(shape[2:]):
            raise OptionError(f"a {kind} mask is {m.shape[1]}x{m.shape[0]} px, the image {shape[3]}x{shape[2]}")
        if not (np.all(np.isfinite(m)) and m.min() >= 0 and m.max() <= 1):
            raise OptionError(f"a {kind} mask must hold values in [0, 1]")
    return masks


def _masked(weight: float, target: np.ndarray, mask: np.ndarray, layer: str) -> guided.MaskedTerm:
    """The masked term of ``layer`` (its mask pooled to the layer); a mask that vanishes there weighs 0."""
    pooled = guided.pool(mask, layer_depth(layer))
    total = float(np.sum(pooled, dtype=np.float64))
    channels = target.shape[-3] if target.ndim == 4 else target.shape[0]
    return guided.MaskedTerm(weight if total > 0 else 0.0, target, pooled, channels * total if total > 0 else 1.0)


def _mean_square(array: np.ndarray) -> float:
    return float(np.mean(np.square(array, dtype=np.float64)))
