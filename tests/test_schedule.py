"""The coarse-to-fine schedule: the automatic number of scales and the iterations at each."""

from __future__ import annotations

import pytest

from nst_rt.model_format import MIN_SIZE
from nst_rt.pipeline.schedule import COARSEST, Stage, auto_scales, plan


def stages(*pairs):
    return [Stage(size, iterations) for size, iterations in pairs]


def test_the_default_schedule_halves_down_to_the_coarsest_size_with_more_iterations_there():
    assert plan(512, 100) == stages((128, 400), (256, 200), (512, 100))
    assert plan(256, 100) == stages((128, 200), (256, 100))
    assert plan(1024, 50) == stages((128, 200), (256, 200), (512, 100), (1024, 50))  # capped at 4x


@pytest.mark.parametrize("size", [16, 100, 255])
def test_below_twice_the_coarsest_size_a_run_has_one_scale(size):
    assert plan(size, 30) == stages((size, 30))


def test_explicit_scales_are_kept_even_below_the_coarsest_size():
    assert plan(64, 10, scales=3) == stages((16, 40), (32, 20), (64, 10))
    assert plan(512, 10, scales=1) == stages((512, 10))


def test_the_coarsest_automatic_scale_keeps_a_narrow_image_above_the_network_minimum():
    # A 10:1 panorama at 512 px: 128 px long would be 12 px high, below MIN_SIZE; 256 px long is 25 px.
    assert auto_scales(512, shortest_ratio=0.1) == 2
    assert all(stage.size * 0.1 >= MIN_SIZE for stage in plan(512, 10, shortest_ratio=0.1))
    assert auto_scales(4 * COARSEST) == 3
