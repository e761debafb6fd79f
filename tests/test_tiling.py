"""The tiled objective (nst_rt.objective.tiled) against the untiled one, the memory plan that turns tiling on, and its
place in a run.

The images are 229x40 with 32 px tiles, so that with the exact halo (64 px on VGG-16, 80 on VGG-19) some
windows have a halo on both sides, others end at the image's border, and the sizes are not multiples of
the network's stride. The untiled objective is held against torch autograd in test_objective.py.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from nst_rt.pipeline import memory
from nst_rt.pipeline import plan as tiling
from nst_rt.errors import MemoryLimitError, MemoryNotice, OptionError
from nst_rt.network.model import load_model
from nst_rt.model_format import model_name
from nst_rt.network.session import Network
from nst_rt.objective.whole import Objective
from nst_rt.pipeline.stylizer import Stylizer
from nst_rt.model_format import STRIDE, check_tile
from nst_rt.objective.tiled import TiledObjective, exact_halo, plan_tiles

HEIGHT, WIDTH, TILE = 40, 229, 32
SETTINGS = dict(content_weight=1.0, style_weight=10.0, tv_weight=2.0, normalize=True)


def rel_l2(a, b) -> float:
    return float(np.linalg.norm(np.asarray(a, np.float64) - b) / np.linalg.norm(b))


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH] / 40.0
    content = np.stack([np.sin(xx + yy), np.cos(2 * xx), np.sin(3 * yy)], -1) * 0.4 + 0.5
    content = (content + 0.1 * rng.random(content.shape)).clip(0, 1).astype(np.float32)
    style = rng.random((40, 60, 3), dtype=np.float32)
    x = rng.random((1, 3, HEIGHT, WIDTH))
    return content, style, x


@pytest.fixture(scope="module")
def network_of(models_dir):
    cache = {}

    def make(arch, pooling):
        if (arch, pooling) not in cache:
            cache[arch, pooling] = Network(load_model(model_name(arch, pooling), models_dir(arch, pooling)), "cpu")
        return cache[arch, pooling]

    return make


@pytest.mark.parametrize("arch", ["vgg16", "vgg19"])
@pytest.mark.parametrize("pooling", ["avg", "max"])
def test_tiled_value_and_gradient_equal_the_untiled(network_of, images, arch, pooling):
    network = network_of(arch, pooling)
    content, style, x = images
    whole = Objective(network, content, [style], fused=False, **SETTINGS)  # the numpy recipe tiles keep
    value, grad = whole(x)
    grad = grad.copy()
    tiled = TiledObjective(network, content, [style], tile=TILE, **SETTINGS)
    assert tiled.halo == {"vgg16": 64, "vgg19": 80}[arch]
    windows = [t.window for t in tiled.tiles]
    assert any(0 < c0 and c1 < WIDTH for _, _, c0, c1 in windows)  # a window with a halo on both sides
    assert all(c1 - c0 < WIDTH for _, _, c0, c1 in windows)  # none sees the whole image
    tiled_value, tiled_grad = tiled(x)
    assert tiled_value == pytest.approx(value, rel=1e-6)
    for term, part in whole.terms_at(value).items():
        assert tiled.terms_at(tiled_value)[term] == pytest.approx(part, rel=1e-6, abs=1e-12)
    assert rel_l2(tiled_grad, grad) < 1e-5
    assert tiled.evaluations == 1


@pytest.mark.parametrize("arch", ["vgg16", "vgg19"])
def test_tiles_minimise_the_objective_an_untiled_run_does_to_float32_rounding(network_of, images, arch):
    """An untiled run takes the objective graph (float32 sums), a tiled one the numpy recipe: the same objective
    to rounding (what the README claims), not the same bits, so L-BFGS may take another path from there."""
    network = network_of(arch, "avg")
    content, style, x = images
    whole = Objective(network, content, [style], **SETTINGS)
    assert whole._fused is not None  # the path an untiled run takes
    value, grad = whole(x)
    grad = grad.copy()
    tiled = TiledObjective(network, content, [style], tile=TILE, **SETTINGS)
    tiled_value, tiled_grad = tiled(x)
    assert tiled_value == pytest.approx(value, rel=2e-5)
    assert rel_l2(tiled_grad, grad) < 1e-5


def test_a_halo_below_the_receptive_field_moves_value_and_gradient(network_of, images):
    network = network_of("vgg16", "avg")
    content, style, x = images
    value, grad = Objective(network, content, [style], fused=False, **SETTINGS)(x)
    grad = grad.copy()
    cut_value, cut_grad = TiledObjective(network, content, [style], tile=TILE, halo=16, **SETTINGS)(x)
    assert abs(cut_value - value) > 1e-4 * abs(value)
    assert rel_l2(cut_grad, grad) > 1e-3


def test_tiled_targets_equal_the_untiled(network_of, images):
    network = network_of("vgg19", "avg")
    content, style, _ = images
    whole = Objective(network, content, [style, content[:, :200]], fused=False, **SETTINGS)
    tiled = TiledObjective(network, content, [style, content[:, :200]], tile=32, **SETTINGS)
    for layer, target in whole.content_targets.items():
        np.testing.assert_allclose(tiled.content_targets[layer], target, rtol=1e-5, atol=1e-6)
    for layer, target in whole.style_targets.items():
        assert rel_l2(tiled.style_targets[layer], target) < 1e-6
    assert tiled.style_constant == pytest.approx(whole.style_constant, rel=1e-5)


def test_tiles_report_both_passes(network_of, images):
    network = network_of("vgg16", "avg")
    content, style, x = images
    seen = []
    tiled = TiledObjective(network, content, [style], tile=TILE, on_tile=lambda *t: seen.append(t), **SETTINGS)
    assert seen == []  # the targets are not an evaluation
    tiled(x)
    count = len(tiled.tiles)
    assert seen == [(1, k, count) for k in range(1, count + 1)] + [(2, k, count) for k in range(1, count + 1)]


def test_the_exact_halo_is_the_receptive_field_rounded_up_to_the_stride():
    # Each 3x3 conv widens the field by 2^depth px on each side: VGG-16 to relu5_1 2+4+12+24+16 = 58 px,
    # VGG-19 2+4+16+32+16 = 70 px; to relu4_2 (content only) 2+4+12+16 = 34 px on VGG-16.
    assert exact_halo("vgg16", ["relu1_1", "relu5_1"]) == 64
    assert exact_halo("vgg19", ["relu5_1", "relu2_1"]) == 80
    assert exact_halo("vgg16", ["relu4_2"]) == 48
    assert exact_halo("vgg19", ["relu1_1"]) == 16


def test_tiles_cover_the_image_once_and_start_on_the_stride():
    tiles = plan_tiles(100, 37, 32, 16)
    cover = np.zeros((100, 37), int)
    for tile in tiles:
        r0, r1, c0, c1 = tile.core
        cover[r0:r1, c0:c1] += 1
        wr0, wr1, wc0, wc1 = tile.window
        assert wr0 % STRIDE == 0 and wc0 % STRIDE == 0
        assert wr0 <= max(0, r0 - 16) and wr1 >= min(100, r1 + 16)  # the halo, where the image goes on
        assert wr1 - wr0 in (64, 64 + 4)  # one window size; the last one ends at the image's border
    assert (cover == 1).all()
    assert [t.core[2:] for t in tiles[:2]] == [(0, 37), (0, 37)]  # the 5 px left over joined the last core
    assert [t.window[:2] for t in tiles] == [(0, 64), (16, 80), (32, 100)]


@pytest.mark.parametrize("tile", [0, 8, 40, -16, 100, 16.0, "64"])
def test_bad_tile_sizes(tile):
    with pytest.raises(OptionError) as excinfo:
        check_tile(tile)
    assert "multiple of 16" in str(excinfo.value)


# ----------------------------------------------------------------------------- when tiling starts


class _FakeNetwork:
    layers = ["relu1_1", "relu4_2", "relu5_1"]
    channels = {"relu1_1": 64, "relu4_2": 512, "relu5_1": 512}
    device = "cpu"


GIB = 1 << 30


def _plan(monkeypatch, have, size, **kw):
    monkeypatch.setattr(memory, "available_bytes", lambda: have)
    kw.setdefault("halo", 64)
    return memory.plan(_FakeNetwork(), size, size, kw.pop("history", 100), [(size, size)], **kw)


def test_a_run_that_fits_is_not_tiled(monkeypatch):
    plan = _plan(monkeypatch, 64 * GIB, 512)
    assert plan.tile is None and plan.history == 100 and not plan.note


def test_a_run_that_does_not_fit_whole_is_tiled_with_the_least_computed_tile_that_fits(monkeypatch):
    need = memory.estimate_bytes(_FakeNetwork(), 2048, 2048, 10, [(2048, 2048)])
    plan = _plan(monkeypatch, need - 1, 2048, history=10)
    assert plan.tile is not None and plan.history == 10 and not plan.note
    assert plan.need <= need - 1
    fitting = [t for t in memory.TILE_SIZES if t < 2048 and
               memory.tiled_estimate_bytes(_FakeNetwork(), 2048, 2048, 10, t, 64) <= need - 1]
    areas = {t: memory.window_area(2048, 2048, t, 64) for t in fitting}
    assert areas[plan.tile] == min(areas.values())


def test_the_automatic_tile_is_not_the_largest_where_its_border_windows_overlap_more(monkeypatch):
    # 2048 px in tiles of 1536 px: two windows of 1664 px a side, 2.6 times the image computed per pass;
    # tiles of 1024 px compute 1.27 times it in windows of 1152 px, faster and in less memory
    # (docs/large-images.md). With room for both, the plan takes 1024.
    assert memory.window_area(2048, 2048, 1536, 64) > 2 * memory.window_area(2048, 2048, 1024, 64)
    need = memory.tiled_estimate_bytes(_FakeNetwork(), 2048, 2048, 10, 1536, 64)
    assert _plan(monkeypatch, need + GIB, 2048, history=10).tile == 1024


def test_a_history_that_does_not_fit_is_shrunk_with_a_note(monkeypatch):
    have = 12 * GIB
    plan = _plan(monkeypatch, have, 4096)
    assert plan.tile == memory.SHRINK_TILE and memory.MIN_HISTORY <= plan.history < 100
    assert plan.need <= have < memory.tiled_estimate_bytes(_FakeNetwork(), 4096, 4096, plan.history + 1,
                                                           plan.tile, 64)
    assert f"from 100 to {plan.history} pairs" in plan.note and "4096x4096" in plan.note


def test_a_forced_tile_is_used_where_the_image_is_larger(monkeypatch):
    assert _plan(monkeypatch, 64 * GIB, 512, tile=128).tile == 128
    assert _plan(monkeypatch, 64 * GIB, 128, tile=128).tile is None  # one tile is the whole image


def test_nothing_fits(monkeypatch):
    with pytest.raises(MemoryLimitError) as excinfo:
        _plan(monkeypatch, 2 * GIB, 8192)
    message = str(excinfo.value)
    assert "8192x8192" in message and "2.0 GiB is available" in message and "--size" in message


# Shallow layers keep the halo at 16 px, so that small images have windows smaller than themselves.
SHALLOW = dict(content_layers=["relu2_2"], style_layers=["relu1_1", "relu2_1"])


def test_a_run_tiles_where_the_whole_image_does_not_fit(models, monkeypatch):
    made = []
    real_init = TiledObjective.__init__

    def recording(self, *args, **kwargs):
        made.append(kwargs["tile"])
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(TiledObjective, "__init__", recording)
    monkeypatch.setattr(memory, "TILE_SIZES", (64, 32))
    stylizer = Stylizer(models_dir=models, size=192, scales=2, iterations=2, coarse_iterations=2, history=20, **SHALLOW)
    network = stylizer.network
    have = memory.tiled_estimate_bytes(network, 48, 192, 20, 64, 16, ["relu2_2"])
    assert memory.estimate_bytes(network, 48, 192, 20, [(48, 192)]) > have  # the full size does not fit whole
    assert memory.estimate_bytes(network, 24, 96, 20, [(24, 96)]) <= have  # the coarse scale does
    monkeypatch.setattr(memory, "available_bytes", lambda: have)
    content = np.random.default_rng(0).random((48, 192, 3), dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error", MemoryNotice)  # the history fits: no note
        result = stylizer.run(content, content[::-1])
    assert made == [64]  # the coarse scale ran whole, the full size in tiles
    # 4 iterations at the coarse scale (twice the full size's), 2 at the full size
    assert result.iterations == 6 and np.isfinite(result.loss) and result.image.shape == (48, 192, 3)


@pytest.fixture
def histories(monkeypatch) -> list:
    """The L-BFGS history (maxcor) of every minimize call, in order."""
    import nst_rt.optimize

    seen = []
    real = nst_rt.optimize.minimize
    monkeypatch.setattr(nst_rt.optimize, "minimize",
                        lambda fun, x0, **kw: seen.append(kw["options"]["maxcor"]) or real(fun, x0, **kw))
    return seen


def test_a_shrunk_history_is_announced_before_the_run(models, monkeypatch, histories):
    stylizer = Stylizer(models_dir=models, size=192, scales=1, iterations=8, history=20, **SHALLOW)
    have = memory.tiled_estimate_bytes(stylizer.network, 48, 192, 5, 64, 16, ["relu2_2"])
    monkeypatch.setattr(memory, "TILE_SIZES", (64,))
    monkeypatch.setattr(memory, "SHRINK_TILE", 64)
    monkeypatch.setattr(memory, "available_bytes", lambda: have)
    content = np.random.default_rng(0).random((48, 192, 3), dtype=np.float32)
    # 8 iterations keep at most 8 pairs of the 20 asked for: the note says what was shrunk from that
    with pytest.warns(MemoryNotice, match="from 8 to 5 pairs at 192x48"):
        stylizer.run(content, content[::-1])
    assert histories == [5]


def test_the_plan_counts_only_the_pairs_the_iterations_can_use(models, monkeypatch, histories):
    """A short run keeps one pair per iteration: the plan makes room for those, not the whole --history, so it
    needs no shrink note and gets larger tiles."""
    stylizer = Stylizer(models_dir=models, size=192, scales=1, iterations=2, history=20, **SHALLOW)
    have = memory.tiled_estimate_bytes(stylizer.network, 48, 192, 2, 64, 16, ["relu2_2"])
    assert memory.tiled_estimate_bytes(stylizer.network, 48, 192, 20, 64, 16, ["relu2_2"]) > have  # all 20 do not
    monkeypatch.setattr(memory, "TILE_SIZES", (64, 32))
    monkeypatch.setattr(memory, "SHRINK_TILE", 32)
    monkeypatch.setattr(memory, "available_bytes", lambda: have)
    content = np.random.default_rng(0).random((48, 192, 3), dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error", MemoryNotice)  # nothing is shrunk: no note
        stylizer.run(content, content[::-1])
    assert histories == [2]
    plans = tiling.plan_scales(stylizer.network, stylizer.model.architecture, stylizer.options, content, [content], [192], [2])
    assert plans[0].tile == 64 and plans[0].history == 2 and not plans[0].note


def test_the_progress_display_shows_the_tile():
    import io

    from rich.console import Console

    from nst_rt.pipeline.stylizer import Progress
    from nst_rt.cli.progress import ProgressDisplay

    stream = io.StringIO()
    display = ProgressDisplay(enabled=True, console=Console(file=stream, force_terminal=True, width=160))
    display(Progress(1, 2, 0, 5, float("nan"), {}, 0, 0.1, lambda: None))
    display.tile(2, 3, 9)
    display._progress.refresh()
    assert "tile 3/9 pass 2/2" in stream.getvalue()
    display.close()


def test_a_tile_as_large_as_the_image_that_does_not_fit_says_to_use_smaller_tiles(monkeypatch):
    with pytest.raises(MemoryLimitError) as excinfo:
        _plan(monkeypatch, 4 * GIB, 2048, tile=2048)
    assert "2048x2048" in str(excinfo.value) and "--tile smaller than 2048 px" in str(excinfo.value)
    assert _plan(monkeypatch, 4 * GIB, 2048, tile=256, history=3).tile == 256  # which does fit


def test_the_progress_display_estimates_the_rate_of_iterations_minutes_apart():
    import io

    from rich.console import Console

    from nst_rt.pipeline.stylizer import Progress
    from nst_rt.cli.progress import ProgressDisplay

    clock = [0.0]
    stream = io.StringIO()
    display = ProgressDisplay(enabled=True, console=Console(file=stream, force_terminal=True, width=160,
                                                            get_time=lambda: clock[0]))
    for iteration in range(3):  # a 4096 px tiled iteration takes minutes
        display(Progress(1, 1, iteration, 5, 1.0, {}, iteration, clock[0], lambda: None))
        clock[0] += 240.0
    display._progress.refresh()
    text = stream.getvalue()
    display.close()
    assert "240.0 s/it" in text and "0:12:00" in text  # 3 iterations left at 4 minutes each


@pytest.mark.parametrize("masked", [False, True], ids=["plain", "masked"])
def test_the_windows_give_the_same_bits_whatever_blas_threads_the_process_runs(models_dir, images, masked):
    """The windows' products run on the network's threads (as a Ray actor's do), not on numpy's default: OpenBLAS
    sums in another order on one thread than on several, which would move the last bits."""
    network = Network(load_model("vgg19", models_dir("vgg19", "avg")), "cpu", threads=1)
    content, style, x = images
    left = np.zeros(content.shape[:2], np.float32)
    left[:, :100] = 1.0
    settings = dict(SETTINGS, style_masks=[left, 1.0 - left], content_mask=left) if masked else SETTINGS
    runs = []
    for outside in (1, 2):
        with threadpool_limits(outside, user_api="blas"):
            objective = TiledObjective(network, content, [style, content[:, :200]], tile=TILE, **settings)
            value, grad = objective(x)
            runs.append((value, grad.copy(), objective.style_targets))
    (value_1, grad_1, targets_1), (value_2, grad_2, targets_2) = runs
    assert value_1 == value_2 and np.array_equal(grad_1, grad_2)
    for layer, target in targets_1.items():
        np.testing.assert_array_equal(targets_2[layer], target)
