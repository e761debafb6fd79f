"""The coarse-to-fine schedule: the automatic number of scales and the iterations at each."""

from __future__ import annotations

import pytest

from nst_rt.model_format import MIN_SIZE
from nst_rt.pipeline.schedule import COARSEST, Stage, auto_scales, plan


def stages(*pairs):
    return [Stage(size, iterations) for size, iterations in pairs]


def test_the_default_schedule_halves_down_to_the_coarsest_size_with_more_iterations_further_down():
    assert plan(512, 100) == stages((128, 100), (256, 50), (512, 100))
    assert plan(256, 100) == stages((128, 100), (256, 100))  # the coarsest runs at least --iterations
    assert plan(1024, 100) == stages((128, 200), (256, 100), (512, 100), (1024, 100))  # 512 px runs at least 100
    assert plan(2048, 50) == stages((128, 200), (256, 100), (512, 50), (1024, 50), (2048, 50))  # capped at 4x
    assert plan(512, 100, coarse_iterations=2) == stages((128, 400), (256, 200), (512, 100))
    assert plan(1024, 50, coarse_iterations=2) == stages((128, 200), (256, 200), (512, 100), (1024, 50))


@pytest.mark.parametrize("size", [16, 100, 255])
def test_below_twice_the_coarsest_size_a_run_has_one_scale(size):
    assert plan(size, 30) == stages((size, 30))


def test_explicit_scales_are_kept_even_below_the_coarsest_size():
    assert plan(64, 10, scales=3) == stages((16, 10), (32, 5), (64, 10))
    assert plan(64, 10, scales=2) == stages((32, 10), (64, 10))
    assert plan(512, 10, scales=1) == stages((512, 10))


def test_the_coarsest_automatic_scale_keeps_a_narrow_image_above_the_network_minimum():
    # A 10:1 panorama at 512 px: 128 px long would be 12 px high, below MIN_SIZE; 256 px long is 25 px.
    assert auto_scales(512, shortest_ratio=0.1) == 2
    assert all(stage.size * 0.1 >= MIN_SIZE for stage in plan(512, 10, shortest_ratio=0.1))
    assert auto_scales(4 * COARSEST) == 3


def test_coarse_iterations_set_the_scale_below_the_full_size_and_the_coarser_ones_double_from_there():
    assert plan(512, 100, coarse_iterations=0.5) == stages((128, 100), (256, 50), (512, 100))
    assert plan(512, 100, coarse_iterations=1) == stages((128, 200), (256, 100), (512, 100))
    assert plan(1024, 50, coarse_iterations=3) == stages((128, 200), (256, 200), (512, 150), (1024, 50))  # 4x cap
    assert plan(1024, 30, coarse_iterations=0.1) == stages((128, 30), (256, 6), (512, 30), (1024, 30))
    assert plan(512, 3, coarse_iterations=0.1) == stages((128, 3), (256, 1), (512, 3))  # at least one


@pytest.mark.parametrize("value", [0, -1, 4.5, float("nan"), float("inf"), True])
def test_coarse_iterations_outside_zero_to_the_cap_are_refused_with_the_range(value):
    from nst_rt.errors import OptionError
    from nst_rt.pipeline.options import Options

    with pytest.raises(OptionError, match=r"coarse iterations must be a multiple of --iterations above 0 and at most 4"):
        Options(coarse_iterations=value).validated()
