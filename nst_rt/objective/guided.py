"""Spatial masks: guided Gram matrices (Gatys et al. 2017, "Controlling Perceptual Factors in Neural Style
Transfer", section 4) and the masked content term, each with its gradient.

A mask is an (H, W) array in [0, 1] at the size of the image being optimised. At a layer with d poolings
before it, it is average-pooled 2x2 d times (floor, as the network pools): ``pool``. With F' the layer's
activations as C x N, m a style's mask there (N values) and S = sum(m):

  guided gram    G_m = (F' m)(F' m)^T / (C S)                 (F' m: each position's column scaled by m)
  style term     mean((G_m - A)^2)                            dL/dF' = 4 (G_m - A) (F' m^2) / (C^2 C S)
  content term   sum(m (F - P)^2) / (C S)                     dL/dF  = 2 m (F - P) / (C S)

With a mask of ones these are the plain terms of :mod:`nst_rt.objective.losses`. Each style image k has its
own mask and its own term against its own Gram matrix A_k, so the blended-target shortcut of the plain
recipe does not apply. Positions where m is 0 add nothing to G_m or take any gradient from it, so each
style's products run over the box that holds its mask's non-zero values: masks that split the picture cost
about one plain Gram matrix in all, not one per style.

The terms run on the array module of the activations (numpy, or CuPy on the device), their arrays moved there
once (``MaskedTerm.on``); the tiles' sums (``core_sums``) are numpy.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np

from ..system.array_module import array_module


def pool(mask: np.ndarray, depth: int) -> np.ndarray:
    """``mask`` (H, W) average-pooled 2x2 ``depth`` times, each time flooring odd sides, as float32."""
    m = np.asarray(mask, dtype=np.float64)
    for _ in range(depth):
        h, w = m.shape[0] // 2 * 2, m.shape[1] // 2 * 2
        m = m[:h, :w].reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))
    return np.ascontiguousarray(m, dtype=np.float32)


@dataclass
class MaskedTerm:
    """One masked term at one layer: its weight, its target (A_k, or the content's P), the layer's mask
    (H_l, W_l) and C * sum(mask), the denominator of its mean."""

    weight: float
    target: np.ndarray
    mask: np.ndarray
    denominator: float
    # The rows and columns that hold the mask's non-zero values, and the mask there (1, n); None where
    # that box is (nearly) the whole layer.
    box: tuple[slice, slice] | None = field(init=False, default=None)
    box_mask: np.ndarray | None = field(init=False, default=None)

    def __post_init__(self):
        rows, cols = np.flatnonzero(self.mask.any(axis=1)), np.flatnonzero(self.mask.any(axis=0))
        if rows.size and (rows[-1] + 1 - rows[0]) * (cols[-1] + 1 - cols[0]) < BOX_FRACTION * self.mask.size:
            self.box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
            self.box_mask = np.ascontiguousarray(self.mask[self.box]).reshape(1, -1)

    def on(self, xp) -> MaskedTerm:
        """This term with its arrays in array module ``xp`` (uploaded once; the box is the one found here)."""
        if xp is np:
            return self
        moved = copy.copy(self)
        moved.target, moved.mask = xp.asarray(self.target), xp.asarray(self.mask)
        moved.box_mask = None if self.box_mask is None else xp.asarray(self.box_mask)
        return moved


# Below this fraction of the layer, copying a mask's box out is cheaper than the products over all of it.
BOX_FRACTION = 0.9


def guided_gram(flat: np.ndarray, mask: np.ndarray, denominator: float) -> np.ndarray:
    """G_m of C x N activations ``flat`` with N mask values, normalised by ``denominator`` (C * sum(m))."""
    weighted = flat * mask.reshape(1, -1)
    return (weighted @ weighted.T) / np.float32(denominator)


def style_loss(features: np.ndarray, terms: list[MaskedTerm], grad_out: np.ndarray | None = None,
               accumulate: bool = True) -> float:
    """sum_k w_k mean((G_mk - A_k)^2); writes (or adds, with ``accumulate``) its gradient into ``grad_out``.
    Each term's products run over its mask's box only (the positions outside it weigh 0)."""
    xp = array_module(features)
    c, h, w = features.shape[-3:]
    grid = features.reshape(c, h, w)
    value, written = 0.0, accumulate
    out = None
    if grad_out is not None:
        out = grad_out.reshape(c, h, w) if grad_out.flags.c_contiguous else xp.zeros((c, h, w), xp.float32)
    for term in terms:
        if term.box is None:
            m = term.mask.reshape(1, -1)
            weighted = grid.reshape(c, -1) * m
        else:
            m = term.box_mask
            crop = grid[:, term.box[0], term.box[1]]
            weighted = xp.multiply(crop, m.reshape(crop.shape[1:]), out=xp.empty(crop.shape, xp.float32))
            weighted = weighted.reshape(c, -1)
        diff = (weighted @ weighted.T) / np.float32(term.denominator) - term.target
        value += term.weight * float(xp.sum(xp.square(diff, dtype=xp.float64))) / diff.size
        if out is None:
            continue
        diff *= np.float32(4.0 * term.weight / (diff.size * term.denominator))
        weighted *= m
        if term.box is None:
            target = out.reshape(c, -1)
            if written:
                target += diff @ weighted
            else:
                xp.matmul(diff, weighted, out=target)
        else:
            if not written:
                out.fill(0.0)
            region = out[:, term.box[0], term.box[1]]
            region += (diff @ weighted).reshape(region.shape)
        written = True
    if out is not None:
        if not written:
            out.fill(0.0)
        if not grad_out.flags.c_contiguous:
            update = out.reshape(grad_out.shape)
            grad_out[...] = grad_out + update if accumulate else update
    return value


def content_loss(features: np.ndarray, term: MaskedTerm, grad_out: np.ndarray | None = None,
                 accumulate: bool = True) -> float:
    """w * sum(m (F - P)^2) / (C S); writes (or adds) its gradient into ``grad_out``."""
    diff = features - term.target
    weighted = diff * term.mask
    value = term.weight * float(array_module(features).dot(weighted.ravel(), diff.ravel())) / term.denominator
    if grad_out is not None:
        weighted *= np.float32(2.0 * term.weight / term.denominator)
        if accumulate:
            grad_out += weighted
        else:
            grad_out[...] = weighted
    return value


def core_sums(acts: np.ndarray, rows: slice, cols: slice, masks: list, chunk: int) -> list[np.ndarray]:
    """sum over the core of (F m_k)(F m_k)^T for each mask (given at the core's positions; None: F F^T), in
    float64, copying the core out ``chunk`` elements at a time."""
    c = acts.shape[1]
    totals = [np.zeros((c, c)) for _ in masks]
    step = max(1, chunk // (c * max(1, cols.stop - cols.start)))
    for r in range(rows.start, rows.stop, step):
        stop = min(r + step, rows.stop)
        flat = np.ascontiguousarray(acts[0, :, r:stop, cols]).reshape(c, -1)
        for total, mask in zip(totals, masks):
            if mask is None:
                total += flat @ flat.T
                continue
            part = mask[r - rows.start:stop - rows.start]
            if not part.any():  # the mask leaves these rows out
                continue
            weighted = flat * part.reshape(1, -1)
            total += weighted @ weighted.T
    return totals
