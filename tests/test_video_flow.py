"""Optical flow, warping and the forward-backward consistency mask (nst_rt.video.flow) on known motion."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("cv2", reason="the video extra (opencv-python-headless) is not installed")

from nst_rt.video.flow import FlowEstimator, consistency_mask, inside, warp  # noqa: E402


def texture(h: int, w: int, seed: int = 0) -> np.ndarray:
    """Smooth random colours: textured enough for optical flow at every scale."""
    import cv2

    raw = np.random.default_rng(seed).random((h, w, 3)).astype(np.float32)
    smooth = cv2.GaussianBlur(raw, (0, 0), 1.5)
    return (smooth - smooth.min()) / (smooth.max() - smooth.min())


def constant_flow(h: int, w: int, dx: float, dy: float) -> np.ndarray:
    flow = np.zeros((h, w, 2), np.float32)
    flow[..., 0], flow[..., 1] = dx, dy
    return flow


def test_warp_by_a_known_shift_reproduces_the_shifted_frame():
    big = texture(80, 90)
    previous, current = big[10:50, 10:60], big[12:52, 7:57]  # the view moved 3 px left and 2 px down
    # current(p) = previous(p + (-3, 2)): the backward flow of every pixel of the current frame
    flow = constant_flow(40, 50, -3.0, 2.0)
    warped = warp(previous, flow)
    valid = inside(flow)
    assert valid.sum() == (40 - 2) * (50 - 3)  # the rows and columns that came into view are flagged
    assert not valid[:, :3].any() and not valid[-2:].any()
    np.testing.assert_allclose(warped[valid], current[valid], atol=1e-6)


def test_warp_interpolates_between_pixels_bilinearly():
    ramp = np.tile(np.arange(20, dtype=np.float32)[None, :, None] / 20, (10, 1, 3))
    warped = warp(ramp, constant_flow(10, 20, 0.25, 0.0))
    np.testing.assert_allclose(warped[:, :-1], ramp[:, :-1] + 0.25 / 20, atol=1e-5)


def test_dis_flow_recovers_a_known_shift_on_tiny_frames():
    big = texture(80, 90, seed=3)
    previous, current = big[20:60, 20:68], big[20:60, 22:70]  # content moves 2 px left
    backward = FlowEstimator()(current, previous)
    assert abs(float(np.median(backward[..., 0])) - 2.0) < 0.1
    assert abs(float(np.median(backward[..., 1]))) < 0.1


def moving_square(shift: int):
    """A static background and a square of another texture that moves ``shift`` px right between frames."""
    background, square = texture(48, 48, seed=1), texture(12, 12, seed=2)[..., ::-1]
    frames, masks = [], []
    for left in (10, 10 + shift):
        frame = background.copy()
        frame[18:30, left:left + 12] = square
        frames.append(frame)
        region = np.zeros((48, 48), bool)
        region[18:30, left:left + 12] = True
        masks.append(region)
    backward = np.where(masks[1][..., None], np.float32([-shift, 0]), np.float32(0)).astype(np.float32)
    forward = np.where(masks[0][..., None], np.float32([shift, 0]), np.float32(0)).astype(np.float32)
    return frames, backward, forward


def test_consistency_mask_leaves_out_the_disoccluded_strip_and_motion_boundaries():
    _, backward, forward = moving_square(shift=4)
    mask = consistency_mask(backward, forward)
    assert mask.dtype == np.float32 and mask.min() >= 0 and mask.max() <= 1
    # Background that the square uncovered: following the flows does not come back.
    assert mask[18:30, 10:14].max() < 0.05
    # Static background away from the square, and the inside of the moving square: consistent.
    assert mask[:12].min() > 0.99 and mask[36:].min() > 0.99
    assert mask[21:27, 17:23].min() > 0.99
    # The square's right edge, where the flow jumps: a motion boundary (two pixels wide, so the smoothing
    # lifts it off zero but keeps it well below consistent pixels).
    assert mask[20:28, 25:27].max() < 0.5


def test_consistency_mask_drops_pixels_whose_flow_leaves_the_frame():
    mask = consistency_mask(constant_flow(20, 30, -3.0, 0.0), constant_flow(20, 30, 3.0, 0.0))
    assert mask[:, :3].max() == 0.0  # came into view: nothing to compare with
    assert mask[:, 6:].min() > 0.99


def test_consistency_mask_from_dis_flow_marks_the_occlusion():
    (previous, current), _, _ = moving_square(shift=4)
    estimate = FlowEstimator()
    mask = consistency_mask(estimate(current, previous), estimate(previous, current))
    assert mask[18:30, 10:14].mean() < 0.5
    assert mask[2:10, 2:].mean() > 0.9 and mask[38:46, 2:].mean() > 0.9  # DIS is noisy at the frame's edge
