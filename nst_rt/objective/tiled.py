"""The objective evaluated in overlapping tiles, so that an image of any size fits in memory.

A Gram matrix is a sum over positions, G = sum over tiles of F_t F_t^T over each tile's *core*, so the
loss can be gathered tile by tile. Each tile is a core plus a halo of context on every side that has an
image beyond it. One evaluation makes two passes over the tiles, and only one tile's activations are
alive at a time:

1. features on each tile: the Gram matrices and the content sums over the tile's core;
2. features again, then the cotangents from the *global* Gram matrices, set over the core only (zero in
   the halo), and the VJP; each tile's image gradient is added over its whole window.

The gradient is then sum over tiles of J_t^T c_t with c_t the cotangents of the core's positions, which is
the exact gradient whenever every core position is computed exactly, i.e. when the halo covers the
receptive field of the deepest used layer (``exact_halo``): each conv widens it by 2^depth pixels. A
smaller halo gives the core positions near the tile's edge wrong activations (the tile's zero padding
stands where the image goes on), which moves the value and the gradient; benchmarks/tiles.py measures how
much. Tiles start at multiples of the network's total stride (16: four 2x2 poolings), so a core maps to
whole feature positions at every layer and every tile floors its poolings as the whole image does; at the
image's border the tile has no halo and sees the same zero padding as the whole image.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from . import guided, losses
from ..errors import OptionError
from ..model_format import STRIDE, check_tile, convs, layer_depth
from ..network.session import activation_shape
from ..system.threads import with_blas_threads
from .whole import Objective, float64_buffer, point_key

_CHUNK_ELEMENTS = 1 << 23  # the core's activations are copied out this much at a time for its Gram matrix


def exact_halo(architecture: str, layers) -> int:
    """The smallest halo (a multiple of STRIDE) that holds the receptive field of the deepest of ``layers``:
    with it the tiled value and gradient equal the untiled ones up to rounding."""
    table = convs(architecture)
    deepest = max(table[l].index for l in layers)
    radius = sum(1 << c.depth for c in table.values() if c.index <= deepest)  # each 3x3 conv: one position
    return -(-radius // STRIDE) * STRIDE


@dataclass(frozen=True)
class Tile:
    core: tuple[int, int, int, int]  # top, bottom, left, right in image pixels (bottom, right exclusive)
    window: tuple[int, int, int, int]  # the core and its halo, clipped to the image


def _spans(length: int, tile: int, halo: int) -> list[tuple[int, int, int, int]]:
    """(core start, core end, window start, window end) along one axis. A last core shorter than the
    stride joins the one before it (its window could not run). Windows at the image's border, which have
    no halo beyond it, reach further inside instead, so that every window has the same size (give or take
    the stride at the far end): the network's buffers and ONNX Runtime's memory plan then serve them all."""
    starts = list(range(0, length, tile))
    if len(starts) > 1 and length - starts[-1] < STRIDE:
        starts.pop()
    ends = starts[1:] + [length]
    span = min(length, tile + 2 * halo)
    spans = []
    for a, b in zip(starts, ends):
        w0, w1 = max(0, a - halo), min(length, b + halo)
        if w0 == 0:
            w1 = max(w1, span)
        elif w1 == length:
            w0 = min(w0, (length - span) // STRIDE * STRIDE)
        spans.append((a, b, w0, w1))
    return spans


def plan_tiles(height: int, width: int, tile: int, halo: int) -> list[Tile]:
    """The tiles of a height x width image, row by row."""
    check_tile(tile)
    if halo < 0 or halo % STRIDE:
        raise OptionError(f"the halo must be a multiple of {STRIDE} px and >= 0, got {halo}")
    return [Tile((r0, r1, c0, c1), (wr0, wr1, wc0, wc1))
            for r0, r1, wr0, wr1 in _spans(height, tile, halo) for c0, c1, wc0, wc1 in _spans(width, tile, halo)]


def _core(tile: Tile, depth: int) -> tuple[slice, slice]:
    """The core's rows and columns in the tile's activations at ``depth`` poolings."""
    (r0, r1, c0, c1), (wr0, _, wc0, _) = tile.core, tile.window
    return (slice((r0 >> depth) - (wr0 >> depth), (r1 >> depth) - (wr0 >> depth)),
            slice((c0 >> depth) - (wc0 >> depth), (c1 >> depth) - (wc0 >> depth)))


# A window's sums are the same bits here and in a worker (nst_rt.objective.windows) with the network's threads.
_with_network_blas_threads = with_blas_threads(lambda objective: objective.network.threads)


def core_features(tile: Tile, acts: dict, layers) -> dict:  # views
    return {l: acts[l][(..., *_core(tile, layer_depth(l)))] for l in layers}


def place_cores(out: dict, tile: Tile, cores: dict) -> None:  # into the whole image's arrays
    for l, core in cores.items():
        r0, r1, c0, c1 = (v >> layer_depth(l) for v in tile.core)
        out[l][..., r0:r1, c0:c1] = core


def add_window_sums(sums: dict, content: dict, window: tuple[dict, dict]) -> None:
    """Add one window's pass-1 sums into ``sums`` and ``content`` (in the tiles' order: the same bits anywhere)."""
    grams, content_sums = window
    for l, s in grams.items():
        if isinstance(s, list):
            sums[l] = s if isinstance(sums[l], float) else [a + b for a, b in zip(sums[l], s)]
        else:
            sums[l] = sums[l] + s
    for l, v in content_sums.items():
        content[l] += v


def _zero_outside(array: np.ndarray, rows: slice, cols: slice) -> None:
    array[..., :rows.start, :] = 0
    array[..., rows.stop:, :] = 0
    array[..., :cols.start] = 0
    array[..., cols.stop:] = 0


class TiledObjective(Objective):
    """:class:`nst_rt.objective.whole.Objective` evaluated in tiles of ``tile`` px (a multiple of :data:`STRIDE`)
    with ``halo`` px of context (default: :func:`exact_halo` of the layers in use). The targets are taken in
    tiles too. ``on_tile(pass_, index, count)`` is called before each tile of an evaluation's two passes.
    The gradient is float64: ``out`` when given, else a buffer of this objective's reused by the next call.
    """

    def __init__(self, network, content, styles, *, tile: int, halo: int | None = None,
                 on_tile: Callable[[int, int, int], None] | None = None, **settings):
        self.tile = check_tile(tile)
        self._halo_setting = halo
        self.on_tile = None  # the targets' tiles are not an evaluation's
        super().__init__(network, content, styles, **settings)
        self.halo = self._halo_for(self.used_layers)
        self.tiles = plan_tiles(self.shape[2], self.shape[3], self.tile, self.halo)
        self.on_tile = on_tile
        self._grad64: np.ndarray | None = None  # the gradient's buffer when the caller gives none (made on first use)
        self._last_acts = None  # the activations of pass 1's last tile, still bound in the network

    def _halo_for(self, layers) -> int:
        if self._halo_setting is not None:
            return self._halo_setting
        return exact_halo(self.network.model.architecture, layers) if layers else 0

    def _run_tiles(self, image: np.ndarray, tiles: list[Tile], layers, pass_: int = 1):
        """Yield (tile, its activations) for each tile of ``image``, one tile alive at a time."""
        for index, tile in enumerate(tiles):
            if self.on_tile is not None:
                self.on_tile(pass_, index + 1, len(tiles))
            r0, r1, c0, c1 = tile.window
            yield tile, self.network.forward(image[:, :, r0:r1, c0:c1], layers)

    def _target_features(self, image, layers):
        if not layers:
            return {}
        _, _, h, w = image.shape
        out = {l: np.empty(activation_shape(l, self.network.channels[l], h, w), np.float32) for l in layers}
        tiles = plan_tiles(h, w, self.tile, self._halo_for(layers))
        for tile, acts in self._run_tiles(image, tiles, set(layers)):
            place_cores(out, tile, core_features(tile, acts, layers))
        return out

    def _target_grams(self, image, layers):
        tiles = plan_tiles(image.shape[2], image.shape[3], self.tile, self._halo_for(layers))
        sums = self._gram_sums(image, tiles, layers)
        return {l: (s / self._positions(l, image.shape)).astype(np.float32) for l, s in sums.items()}

    def _gram_sums(self, image, tiles, layers, content: dict | None = None, guided_grams: bool = False) -> dict:
        """Pass 1: the unnormalised Gram matrices of ``layers`` over the cores; into ``content`` (a dict by
        layer), the content's sums of squared differences over the cores. With ``guided_grams``, a masked
        layer's sum is a list: one per style image, its mask applied."""
        content = {} if content is None else content
        sums = {l: 0.0 for l in layers}
        for tile, acts in self._run_tiles(image, tiles, set(layers) | set(content)):
            add_window_sums(sums, content, self._window_sums(tile, acts, layers, list(content), guided_grams))
            self._last_acts = acts
        return sums

    @_with_network_blas_threads
    def _window_sums(self, tile: Tile, acts: dict, layers, content_layers, guided_grams: bool) -> tuple[dict, dict]:
        """Pass 1's sums over one window's core (see :meth:`_gram_sums`), for :func:`add_window_sums`."""
        sums, content = {}, {}
        masked = self.style_masked if guided_grams else {}
        for l in layers:
            d = layer_depth(l)
            if l in masked:  # one sum per style image, each of the positions weighted by its mask
                r0, r1, c0, c1 = (v >> d for v in tile.core)
                sums[l] = guided.core_sums(acts[l], *_core(tile, d), [t.mask[r0:r1, c0:c1] for t in masked[l]],
                                           _CHUNK_ELEMENTS)
            else:
                sums[l] = guided.core_sums(acts[l], *_core(tile, d), [None], _CHUNK_ELEMENTS)[0]
        for l in content_layers:
            d = layer_depth(l)
            r0, r1, c0, c1 = (v >> d for v in tile.core)
            diff = (acts[l][(..., *_core(tile, d))] - self.content_targets[l][..., r0:r1, c0:c1]).ravel()
            if l in self.content_masked:
                mask = self.content_masked[l].mask[r0:r1, c0:c1]
                weighted = (diff.reshape(-1, *mask.shape) * mask).ravel()
                content[l] = float(np.dot(weighted, diff))
            else:
                content[l] = float(np.dot(diff, diff))
        return sums, content

    def _positions(self, layer: str, shape) -> int:
        """C * H * W of ``layer`` for an image of ``shape``: a mean's denominator."""
        return int(np.prod(activation_shape(layer, self.network.channels[layer], shape[2], shape[3])))

    def __call__(self, x: np.ndarray, out: np.ndarray | None = None) -> tuple[float, np.ndarray]:
        if x.shape != self.shape:
            raise OptionError(f"image shape {x.shape} does not match the objective's {self.shape}")
        content_sums = {l: 0.0 for l in self.content}
        grams = self._gram_sums(x, self.tiles, list(self.style), content_sums, guided_grams=True)
        content, style, factors = self._loss_terms(grams, content_sums)
        if out is None:
            out = self._grad64 = float64_buffer(self._grad64, self.shape)
        grad = self._backward_tiles(x, factors, out)
        tv = losses.tv_loss(np.asarray(x, dtype=np.float64), self.tv_weight, grad) if self.tv_weight > 0 else 0.0
        total = content + style + tv
        self._terms[point_key(total)] = {"content": content, "style": style, "tv": tv}
        self.evaluations += 1
        return total, grad

    def _loss_terms(self, grams: dict, content_sums: dict) -> tuple[float, float, dict]:
        """The content and style terms from pass 1's sums, and the style factors pass 2 needs."""
        content = sum(self.content_masked[l].weight * content_sums[l] / self.content_masked[l].denominator
                      if l in self.content_masked else w * content_sums[l] / self._positions(l, self.shape)
                      for l, w in self.content.items())
        style = self.style_constant if self.style else 0.0
        factors = {}  # layer -> the C x C matrix that maps a tile's activations to their style cotangent
        for l, w in self.style.items():
            if l in self.style_masked:  # a (matrix, mask) per style image
                factors[l] = []
                for term, total in zip(self.style_masked[l], grams[l]):
                    diff = (total / term.denominator).astype(np.float32) - term.target
                    style += term.weight * float(np.sum(np.square(diff, dtype=np.float64))) / diff.size
                    factors[l].append((diff * np.float32(4.0 * term.weight / (diff.size * term.denominator)),
                                       term.mask))
                continue
            n = self._positions(l, self.shape)
            diff = (grams[l] / n).astype(np.float32) - self.style_targets[l]  # rounded as losses.style_loss does
            style += w * float(np.sum(np.square(diff, dtype=np.float64))) / diff.size
            factors[l] = diff * np.float32(4.0 * w / (diff.size * n))
        return content, style, factors

    def _backward_tiles(self, x: np.ndarray, factors: dict, grad: np.ndarray) -> np.ndarray:
        """Pass 2 into ``grad``, in reverse order, so that pass 1's last tile, still in the network, is not run
        again."""
        grad.fill(0.0)
        for index, tile in enumerate(self.tiles[::-1]):
            if self.on_tile is not None:
                self.on_tile(2, index + 1, len(self.tiles))
            r0, r1, c0, c1 = tile.window
            acts, self._last_acts = (self._last_acts if index == 0 else None), None
            grad[:, :, r0:r1, c0:c1] += self._window_gradient(x, tile, factors, acts)
        return grad

    @_with_network_blas_threads
    def _window_gradient(self, x: np.ndarray, tile: Tile, factors: dict, acts: dict | None = None) -> np.ndarray:
        """Pass 2 over one window: its gradient (a buffer of the network's); ``acts``: its activations if bound."""
        if acts is None:
            r0, r1, c0, c1 = tile.window
            acts = self.network.forward(x[:, :, r0:r1, c0:c1], self.used_layers)
        cotangents = self.network.cotangents(self.used_layers)
        for l in self.used_layers:
            self._tile_cotangent(tile, l, acts[l], factors.get(l), cotangents[l])
        return self.network.backward()

    def _tile_cotangent(self, tile: Tile, layer: str, acts: np.ndarray, factor, out: np.ndarray) -> None:
        """dL/d(activations) of one tile: the style and content terms' over the core, zero in the halo."""
        c, d = acts.shape[1], layer_depth(layer)
        r0, c0 = tile.window[0] >> d, tile.window[2] >> d
        window = (slice(r0, r0 + acts.shape[2]), slice(c0, c0 + acts.shape[3]))
        if isinstance(factor, list):  # masked styles: sum_k M_k (F m_k^2), over the window's positions
            out.fill(0.0)
            for matrix, mask in factor:
                here = mask[window]
                if not here.any():  # this style's mask leaves the window out: it adds nothing here
                    continue
                m = np.square(here).reshape(1, -1)
                out.reshape(c, -1)[...] += matrix @ (acts.reshape(c, -1) * m)
        elif factor is not None:
            np.matmul(factor, acts.reshape(c, -1), out=out.reshape(c, -1))
        else:
            out.fill(0.0)
        if layer in self.content:
            diff = acts - self.content_targets[layer][(..., *window)]
            if layer in self.content_masked:
                term = self.content_masked[layer]
                diff *= term.mask[window] * np.float32(2.0 * term.weight / term.denominator)
            else:
                diff *= np.float32(2.0 * self.content[layer] / self._positions(layer, self.shape))
            out += diff
        _zero_outside(out, *_core(tile, d))
