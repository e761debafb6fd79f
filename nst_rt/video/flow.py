"""Optical flow between frames (OpenCV's DIS), warping by a flow, and the forward-backward consistency mask.

A flow here is an (H, W, 2) float32 array of (dx, dy) in pixels. ``flow = estimate_flow(a, b)`` says where
each pixel of ``a`` is found in ``b``: a(p) ~ b(p + flow(p)). So the *backward* flow of frame t,
``estimate_flow(frame_t, frame_t-1)``, warps anything aligned with frame t-1 onto frame t:
``warp(previous, backward)``.
"""

from __future__ import annotations

import numpy as np

from . import require

# artistic-videos' consistencyChecker: a pixel is occluded when following the backward flow and then the
# forward flow does not bring it back within 0.01 * (|w|^2 + |w_back|^2) + 0.5 squared pixels, and lies on a
# motion boundary when the squared flow gradient exceeds 0.01 * |w|^2 + 0.002. The mask is then smoothed
# (Gaussian, sigma 0.8), with occlusions pushed below zero so the smoothing spreads them outward, and clipped.
OCCLUSION_RELATIVE, OCCLUSION_ABSOLUTE = 0.01, 0.5
BOUNDARY_RELATIVE, BOUNDARY_ABSOLUTE = 0.01, 0.002
SMOOTHING_SIGMA = 0.8


def to_grey(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) float RGB in [0, 1] -> (H, W) uint8 luma (ITU-R BT.601), what DIS takes."""
    luma = image[..., 0] * 0.299 + image[..., 1] * 0.587 + image[..., 2] * 0.114
    return np.clip(luma * 255.0 + 0.5, 0, 255).astype(np.uint8)


class FlowEstimator:
    """DIS optical flow (Kroeger et al. 2016) with OpenCV's 'medium' preset: no model, CPU only."""

    def __init__(self):
        cv2 = require("cv2")
        self._dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)

    def __call__(self, frame_from: np.ndarray, frame_to: np.ndarray) -> np.ndarray:
        """Flow from ``frame_from`` to ``frame_to``, both (H, W, 3) float RGB in [0, 1]."""
        return self._dis.calc(to_grey(frame_from), to_grey(frame_to), None)


def sample_positions(flow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """x + dx and y + dy for every pixel: where the flow says each pixel is found."""
    h, w = flow.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    return xs + flow[..., 0], ys + flow[..., 1]


def inside(flow: np.ndarray) -> np.ndarray:
    """(H, W) bool: the flow points inside the frame, where bilinear sampling needs no padding."""
    h, w = flow.shape[:2]
    map_x, map_y = sample_positions(flow)
    return (map_x >= 0) & (map_x <= w - 1) & (map_y >= 0) & (map_y <= h - 1)


def warp(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Sample ``image`` (H, W, C) bilinearly at p + flow(p); points outside the frame take the nearest edge."""
    cv2 = require("cv2")
    map_x, map_y = sample_positions(flow)
    return cv2.remap(np.ascontiguousarray(image, dtype=np.float32), map_x, map_y, cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REPLICATE)


def consistency_mask(backward: np.ndarray, forward: np.ndarray) -> np.ndarray:
    """(H, W) float32 weights in [0, 1] for frame t, from its backward flow (t -> t-1) and the forward flow
    of frame t-1 (t-1 -> t): 0 where the two disagree (occlusion, disocclusion, bad flow), at motion
    boundaries and where the flow leaves the frame; 1 where the motion is consistent."""
    cv2 = require("cv2")
    forward_there = warp(forward, backward)  # the forward flow at the point each pixel came from
    round_trip = backward + forward_there
    occluded = np.sum(round_trip ** 2, axis=-1) >= OCCLUSION_RELATIVE * (
        np.sum(backward ** 2, axis=-1) + np.sum(forward_there ** 2, axis=-1)) + OCCLUSION_ABSOLUTE
    # Central differences of both flow components, as the checker's derivative filter of size 3.
    dy, dx = np.gradient(backward, axis=(0, 1))
    edge_strength = np.sum(dx ** 2, axis=-1) + np.sum(dy ** 2, axis=-1)
    boundary = edge_strength > BOUNDARY_RELATIVE * np.sum(backward ** 2, axis=-1) + BOUNDARY_ABSOLUTE
    mask = np.where(occluded, -1.0, np.where(boundary, 0.0, 1.0)).astype(np.float32)
    outside = ~inside(backward)
    mask[outside] = 0.0
    mask = np.clip(cv2.GaussianBlur(mask, (0, 0), SMOOTHING_SIGMA, borderType=cv2.BORDER_REPLICATE), 0.0, 1.0)
    mask[outside] = 0.0  # no target there at all: the smoothing must not bring any weight back
    return mask
