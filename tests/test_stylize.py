"""End-to-end tests of the stylization pipeline's Python API: nst_rt.pipeline.stylizer.Options / Stylizer / stylize().

Every run uses the session's random-weights VGG-19 export (conftest ``models_dir``), tiny generated images
(content: a smooth 60x40 colour gradient; styles: seeded noise and stripes) and a few iterations, so each
test takes well under a second. ``nst_rt.optimize.minimize`` and ``nst_rt.pipeline.stylizer.Objective`` are wrapped
(not replaced) where a test needs to see what reached the optimiser or the objective.
"""

from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import nst_rt.pipeline.stylizer as stylize_module
from nst_rt.io import image_load
from nst_rt.io import images
from nst_rt.io import layout
from nst_rt.pipeline import memory
from nst_rt.errors import (ImageError, MemoryLimitError, ModelError, ModelNotFoundError, NstError, OptionError,
                           ProviderError)
from nst_rt.pipeline.stylizer import Progress, Result, Stylizer, stylize
from oracles import LAYERS
from synthetic import gradient, noise, save, stripes

pytestmark = pytest.mark.usefixtures("isolated")

VGG19_LAYERS = LAYERS["vgg19"]


# ----------------------------------------------------------------------------- images


def as_bytes(image: np.ndarray) -> bytes:
    """The image as it would be saved (8-bit)."""
    return images.to_uint8(image).tobytes()


def mean_sq_neighbour_diff(image: np.ndarray) -> float:
    return float(np.mean(np.diff(image, axis=0) ** 2) + np.mean(np.diff(image, axis=1) ** 2))


CONTENT = gradient()
STYLE = noise()
STYLE2 = stripes()
CONTENT_32 = images.resize_longest(CONTENT, 32)  # (21, 32, 3): what the content becomes at size 32


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture
def run(models):
    """``run(content=CONTENT, styles=STYLE, progress=None, **options) -> Result`` with small defaults.

    The plain recipe (content 1, style 1e6, no tv, not normalised) unless a test says otherwise: the
    thresholds below were set on its scales.
    """

    def go(content=CONTENT, styles=STYLE, progress=None, **options):
        settings = {"size": 32, "iterations": 4, "models_dir": models, "threads": 1, "content_weight": 1.0,
                    "style_weight": 1e6, "tv_weight": 0.0, "normalize": False, **options}
        return Stylizer(**settings).run(content, styles, progress=progress)

    return go


@pytest.fixture
def objectives(monkeypatch):
    """Records every Objective the pipeline builds: its inputs, and each evaluation's value, terms and x range."""
    made = []

    class Recording(stylize_module.Objective):
        def __init__(self, network, content, styles, **kwargs):
            super().__init__(network, content, styles, **kwargs)
            self.content_shape = content.shape
            self.style_shapes = [s.shape for s in styles]
            self.values, self.term_log, self.x_ranges = [], [], []
            made.append(self)

        def __call__(self, x):
            value, grad = super().__call__(x)
            self.values.append(value)
            self.term_log.append(self.terms_at(value))
            self.x_ranges.append((float(np.min(x)), float(np.max(x))))
            return value, grad

    monkeypatch.setattr(stylize_module, "Objective", Recording)
    return made


# ----------------------------------------------------------------------------- the run itself


def test_loss_falls_by_half_and_output_is_a_valid_image(run, objectives):
    progress = []
    result = run(size=48, iterations=20, progress=progress.append)
    assert isinstance(result, Result)
    first = objectives[0].values[0]  # the loss of the start image
    assert np.isfinite(first) and first > 0
    assert result.loss <= 0.5 * first, (first, result.loss)
    # L-BFGS only accepts steps that lower the loss.
    losses = [p.loss for p in progress if p.iteration]
    assert all(b <= a for a, b in zip(losses, losses[1:])), losses
    assert result.loss == pytest.approx(losses[-1])
    # 60x40 content at --size 48 -> 48x32, float32 RGB in [0, 1].
    assert result.image.shape == (32, 48, 3)
    assert result.image.dtype == np.float32
    assert np.all(np.isfinite(result.image))
    assert result.image.min() >= 0.0 and result.image.max() <= 1.0
    assert not np.array_equal(images.to_uint8(result.image), images.to_uint8(images.resize_longest(CONTENT, 48)))
    pil = result.to_pil()
    assert pil.mode == "RGB" and pil.size == (48, 32)
    assert result.interrupted is False
    assert result.iterations == 20
    assert result.evaluations >= 20
    assert set(result.terms) == {"content", "style", "tv"}
    assert result.loss == pytest.approx(sum(result.terms.values()), rel=1e-9)
    assert result.seconds > 0


@pytest.mark.parametrize("shape, size, expected", [
    ((40, 60), 48, (32, 48)),  # landscape: the width becomes SIZE
    ((60, 40), 48, (48, 32)),  # portrait: the height becomes SIZE
    ((50, 50), 40, (40, 40)),
    ((30, 45), 64, (43, 64)),  # upscaling keeps the aspect ratio too (42.67 -> 43)
])
def test_size_sets_the_longest_side_and_keeps_the_aspect_ratio(run, shape, size, expected):
    result = run(content=gradient(*shape), size=size, iterations=1)
    assert result.image.shape == (*expected, 3)


@pytest.mark.parametrize("iterations", [1, 3, 6])
def test_iterations_sets_the_number_of_iterations_and_progress_calls(run, iterations):
    progress: list[Progress] = []
    result = run(iterations=iterations, progress=progress.append)
    # Iteration 0 is the start image: no evaluation yet, so no loss.
    assert [p.iteration for p in progress] == list(range(0, iterations + 1))
    assert np.isnan(progress[0].loss) and progress[0].terms == {} and progress[0].evaluations == 0
    assert as_bytes(progress[0].image()) == as_bytes(CONTENT_32)
    assert all(p.iterations == iterations and p.scale == 1 and p.scales == 1 for p in progress)
    assert result.iterations == iterations
    assert result.message == "" and result.stopped_early == {}
    evaluations = [p.evaluations for p in progress[1:]]
    assert evaluations == sorted(evaluations) and evaluations[0] >= 2  # x0 and at least one trial point
    assert result.evaluations == evaluations[-1]
    elapsed = [p.elapsed for p in progress]
    assert elapsed == sorted(elapsed) and elapsed[0] > 0
    assert all(p.image().shape == (21, 32, 3) for p in progress)
    # The last progress image is the result.
    assert as_bytes(progress[-1].image()) == as_bytes(result.image)


def test_same_inputs_options_and_seed_give_the_same_bytes(models):
    options = {"size": 32, "iterations": 5, "models_dir": models, "init": "noise", "seed": 11, "tv_weight": 0.5}
    first = Stylizer(**options).run(CONTENT, [STYLE, STYLE2])
    second = Stylizer(**options).run(CONTENT, [STYLE, STYLE2])
    assert as_bytes(first.image) == as_bytes(second.image)
    assert first.loss == second.loss
    # The same Stylizer run twice starts from the same seeded noise again.
    stylizer = Stylizer(**options)
    assert as_bytes(stylizer.run(CONTENT, [STYLE, STYLE2]).image) == as_bytes(first.image)
    assert as_bytes(stylizer.run(CONTENT, [STYLE, STYLE2]).image) == as_bytes(first.image)


# ----------------------------------------------------------------------------- weights


def test_weights_scale_their_terms_linearly(run, objectives):
    """Each weight reaches the objective: at the same start image, doubling a weight doubles its term."""
    start = {"init": "content", "noise_ratio": 0.5, "seed": 3, "iterations": 1}
    run(content_weight=1.0, style_weight=1e6, tv_weight=1.0, **start)
    run(content_weight=3.0, style_weight=2e6, tv_weight=5.0, **start)
    base, scaled = objectives[0].term_log[0], objectives[1].term_log[0]
    assert min(base.values()) > 0
    assert scaled["content"] == pytest.approx(3 * base["content"], rel=1e-5)
    assert scaled["style"] == pytest.approx(2 * base["style"], rel=1e-5)
    assert scaled["tv"] == pytest.approx(5 * base["tv"], rel=1e-9)


def test_tv_weight_gives_a_smoother_output(run):
    rough = run(iterations=8, tv_weight=0.0)
    smooth = run(iterations=8, tv_weight=10.0)
    assert rough.terms["tv"] == 0.0 and smooth.terms["tv"] > 0
    assert mean_sq_neighbour_diff(smooth.image) < 0.25 * mean_sq_neighbour_diff(rough.image)


def test_style_weight_zero_keeps_the_content(run):
    kept = run(iterations=6, style_weight=0.0)
    styled = run(iterations=6, style_weight=1e6)
    assert kept.terms["style"] == 0.0
    assert np.abs(kept.image - CONTENT_32).max() <= 1 / 255
    assert np.abs(styled.image - CONTENT_32).mean() > 0.05


def test_content_weight_keeps_the_output_near_the_content(run):
    free = run(iterations=8, content_weight=0.0)
    held = run(iterations=8, content_weight=1e4)
    assert free.terms["content"] == 0.0
    far, near = np.abs(free.image - CONTENT_32).mean(), np.abs(held.image - CONTENT_32).mean()
    assert near < 0.5 * far, (near, far)


@pytest.mark.parametrize("name", ["content_weight", "style_weight", "tv_weight"])
@pytest.mark.parametrize("value", [-1.0, float("nan"), float("inf")])
def test_bad_weights_are_refused_before_loading_anything(models, name, value):
    with pytest.raises(OptionError) as excinfo:
        Stylizer(models_dir=models, **{name: value})
    message = str(excinfo.value)
    assert name.replace("_", " ") in message and "\n" not in message


# ----------------------------------------------------------------------------- layers


def test_content_and_style_layers_reach_the_objective_and_change_the_output(run, objectives):
    default = run(iterations=4)
    chosen = run(iterations=4, content_layers=["relu3_1"], style_layers=["relu1_1", "relu2_1"])
    assert objectives[0].content_layers == ["relu4_2"]
    assert objectives[0].style_layers == ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]
    assert objectives[1].content_layers == ["relu3_1"]
    assert objectives[1].style_layers == ["relu1_1", "relu2_1"]
    assert as_bytes(default.image) != as_bytes(chosen.image)


@pytest.mark.parametrize("option", ["content_layers", "style_layers"])
def test_an_unknown_layer_lists_the_valid_ones(run, option):
    with pytest.raises(OptionError) as excinfo:
        run(iterations=1, **{option: ["relu1_1", "conv9_9"]})
    message = str(excinfo.value)
    assert "conv9_9" in message and "\n" not in message
    for layer in VGG19_LAYERS:
        assert layer in message


def test_a_layer_listed_twice_is_refused(run):
    with pytest.raises(OptionError, match="twice"):
        run(iterations=1, style_layers=["relu1_1", "relu1_1"])


# ----------------------------------------------------------------------------- several style images


def test_blend_weights_one_zero_equal_the_first_style_alone(run):
    alone = run(styles=STYLE)
    first = run(styles=[STYLE, STYLE2], style_blend_weights=[1.0, 0.0])
    second = run(styles=[STYLE, STYLE2], style_blend_weights=[0.0, 1.0])
    second_alone = run(styles=[STYLE2])
    assert as_bytes(first.image) == as_bytes(alone.image)
    assert as_bytes(second.image) == as_bytes(second_alone.image)
    assert as_bytes(alone.image) != as_bytes(second_alone.image)


def test_blend_weights_default_to_equal_and_are_normalised(run):
    default = run(styles=[STYLE, STYLE2])
    equal = run(styles=[STYLE, STYLE2], style_blend_weights=[2.5, 2.5])
    skewed = run(styles=[STYLE, STYLE2], style_blend_weights=[3.0, 1.0])
    assert as_bytes(default.image) == as_bytes(equal.image)
    assert as_bytes(skewed.image) != as_bytes(default.image)


@pytest.mark.parametrize("weights, needle", [
    ([1.0], "--style-blend-weights has 1 value but there are 2 style images"),
    ([1.0, 1.0, 1.0], "--style-blend-weights has 3 values but there are 2 style images"),
    ([0.0, 0.0], "must not all be zero"),
    ([1.0, -1.0], "non-negative"),
])
def test_bad_blend_weights_are_refused(run, weights, needle):
    with pytest.raises(OptionError, match=needle):
        run(styles=[STYLE, STYLE2], style_blend_weights=weights, iterations=1)


def test_no_style_image_is_refused(run):
    with pytest.raises(OptionError, match="at least one style"):
        run(styles=[], iterations=1)


# ----------------------------------------------------------------------------- style scale


@pytest.mark.slow
def test_style_scale_sets_the_size_of_the_style_images(run, objectives):
    results = {scale: run(style_scale=scale, iterations=3) for scale in (0.5, 1.0, 2.0)}
    assert [o.style_shapes for o in objectives] == [[(16, 16, 3)], [(32, 32, 3)], [(64, 64, 3)]]
    assert all(o.content_shape == (21, 32, 3) for o in objectives)
    assert len({as_bytes(r.image) for r in results.values()}) == 3


def test_style_scale_that_shrinks_a_style_below_the_network_is_refused(run, minimize_calls):
    with pytest.raises(OptionError) as excinfo:
        run(style_scale=0.25, iterations=1)  # 48 px style -> 8 px
    assert "--style-scale" in str(excinfo.value) and "16" in str(excinfo.value)
    assert minimize_calls == []


@pytest.mark.parametrize("value", [0.0, -1.0, float("nan")])
def test_style_scale_must_be_positive(models, value):
    with pytest.raises(OptionError, match="style scale"):
        Stylizer(models_dir=models, style_scale=value)


# ----------------------------------------------------------------------------- start image


def test_init_content_starts_from_the_content(run, minimize_calls):
    run(init="content", iterations=1)
    np.testing.assert_array_equal(minimize_calls[0]["x0"], layout.to_nchw(CONTENT_32))


def test_init_style_starts_from_the_first_style_image(run, minimize_calls):
    run(styles=[STYLE2, STYLE], init="style", iterations=1)
    expected = images.resize_to(images.resize_longest(STYLE2, 32), (21, 32))
    np.testing.assert_allclose(minimize_calls[0]["x0"], layout.to_nchw(expected), atol=1e-6)


def test_init_file_starts_from_that_image(run, minimize_calls, tmp_path):
    start = noise(30, 20, seed=5)
    path = save(start, tmp_path / "start.png")
    run(init=path, iterations=1)
    expected = images.resize_to(image_load.load_image(path), (21, 32))
    np.testing.assert_allclose(minimize_calls[0]["x0"], layout.to_nchw(expected), atol=1e-6)


def test_init_file_that_does_not_exist_is_an_image_error(run, tmp_path, minimize_calls):
    with pytest.raises(ImageError) as excinfo:
        run(init=str(tmp_path / "nope.png"), iterations=1)
    assert "init image" in str(excinfo.value) and "nope.png" in str(excinfo.value)
    assert minimize_calls == []


def test_init_noise_depends_on_the_seed(run, minimize_calls):
    a = run(init="noise", seed=1, iterations=3)
    b = run(init="noise", seed=1, iterations=3)
    c = run(init="noise", seed=2, iterations=3)
    x_a, x_b, x_c = (call["x0"] for call in minimize_calls)
    assert x_a.shape == (1, 3, 21, 32)
    assert x_a.min() >= 0 and x_a.max() <= 1 and 0.2 < x_a.std() < 0.4  # uniform noise
    assert np.abs(x_a - layout.to_nchw(CONTENT_32)).mean() > 0.15
    np.testing.assert_array_equal(x_a, x_b)
    assert not np.allclose(x_a, x_c)
    assert as_bytes(a.image) == as_bytes(b.image)
    assert as_bytes(a.image) != as_bytes(c.image)


@pytest.mark.parametrize("ratio", [0.0, 0.25, 1.0])
def test_noise_ratio_blends_seeded_noise_into_the_start(run, minimize_calls, ratio):
    run(noise_ratio=ratio, seed=4, iterations=1)
    x0 = minimize_calls[0]["x0"]
    content = layout.to_nchw(CONTENT_32).astype(np.float64)
    added = x0 - (1 - ratio) * content  # = ratio * U[0, 1)
    assert added.min() >= -1e-6 and added.max() <= ratio + 1e-6
    if ratio == 0:
        np.testing.assert_array_equal(x0, content)
    else:
        assert added.mean() == pytest.approx(ratio / 2, rel=0.15)


@pytest.mark.parametrize("ratio", [-0.1, 1.5])
def test_noise_ratio_outside_zero_one_is_refused(models, ratio):
    with pytest.raises(OptionError, match="noise ratio"):
        Stylizer(models_dir=models, noise_ratio=ratio)


# ----------------------------------------------------------------------------- optimiser


def test_adam_uses_the_learning_rate_and_lowers_the_loss(run, minimize_calls, objectives):
    slow = run(optimizer="adam", learning_rate=0.02, iterations=12)
    fast = run(optimizer="adam", learning_rate=0.05, iterations=12)
    assert [c["method"] for c in minimize_calls] == ["adam", "adam"]
    assert [c["options"]["lr"] for c in minimize_calls] == [0.02, 0.05]
    assert [c["options"]["maxiter"] for c in minimize_calls] == [12, 12]
    assert slow.iterations == fast.iterations == 12
    assert slow.evaluations == 13  # Adam: one evaluation per iteration plus x0
    assert fast.loss <= 0.5 * objectives[1].values[0]
    assert slow.loss < objectives[0].values[0]
    assert as_bytes(slow.image) != as_bytes(fast.image)


def test_lbfgs_is_the_default_and_uses_the_history(run, minimize_calls):
    run(iterations=9, history=7)
    assert minimize_calls[0]["method"] == "lbfgs"
    assert minimize_calls[0]["options"]["maxiter"] == 9
    assert minimize_calls[0]["options"]["maxcor"] == 7


@pytest.mark.parametrize("overrides, needle", [
    ({"optimizer": "sgd"}, "unknown optimizer"),
    ({"learning_rate": 0.0}, "learning rate"),
    ({"learning_rate": -0.1}, "learning rate"),
    ({"iterations": 0}, "iterations"),
    ({"size": 0}, "size"),
    ({"history": 0}, "history"),
    ({"scales": 0}, "scales"),
])
def test_bad_options_are_refused(models, overrides, needle):
    with pytest.raises(OptionError, match=needle):
        Stylizer(models_dir=models, **overrides)


@pytest.mark.parametrize("bounds", [True, False])
def test_bounds_reach_the_optimiser(run, minimize_calls, objectives, bounds):
    progress = []
    # A strong style pull from a start near the edges of the box, so unbounded steps would leave it.
    result = run(bounds=bounds, iterations=5, init="style", styles=STYLE2, progress=progress.append)
    assert minimize_calls[0]["bounds"] == ((0.0, 1.0) if bounds else None)
    lowest = min(lo for lo, _ in objectives[0].x_ranges)
    highest = max(hi for _, hi in objectives[0].x_ranges)
    if bounds:  # every image the objective sees stays in the box
        assert lowest >= 0.0 and highest <= 1.0
    else:  # the premise of the test: without bounds this run does leave it
        assert lowest < 0.0 or highest > 1.0
    for p in progress:  # what is saved is always in [0, 1]
        image = p.image()
        assert image.min() >= 0.0 and image.max() <= 1.0
    assert result.image.min() >= 0.0 and result.image.max() <= 1.0


# ----------------------------------------------------------------------------- colours, scales


def test_original_colors_keeps_the_content_chroma_and_the_stylized_luminance(run):
    plain = run(iterations=6)
    kept = run(iterations=6, original_colors=True)
    content_ycc = images._rgb_to_ycbcr(CONTENT_32.astype(np.float64))
    plain_ycc = images._rgb_to_ycbcr(plain.image.astype(np.float64))
    kept_ycc = images._rgb_to_ycbcr(kept.image.astype(np.float64))
    assert np.abs(kept_ycc[..., 1:] - content_ycc[..., 1:]).mean() < 0.01
    assert np.abs(plain_ycc[..., 1:] - content_ycc[..., 1:]).mean() > 0.05
    # The optimisation is the same; only the luminance of the stylized image is kept.
    assert np.abs(kept_ycc[..., 0] - plain_ycc[..., 0]).mean() < 0.02


def test_scales_runs_coarse_to_fine(run, minimize_calls):
    progress: list[Progress] = []
    result = run(size=48, scales=2, iterations=3, progress=progress.append)
    # The coarse scale runs twice the full size's iterations.
    assert [(p.scale, p.iteration) for p in progress] == [(1, i) for i in range(7)] + [(2, i) for i in range(4)]
    assert all(p.scales == 2 and [(s.size, s.iterations) for s in p.stages] == [(24, 6), (48, 3)] for p in progress)
    assert [p.iterations for p in progress] == [6] * 7 + [3] * 4
    assert [p.image().shape for p in progress] == [(16, 24, 3)] * 7 + [(32, 48, 3)] * 4
    assert [c["x0"].shape for c in minimize_calls] == [(1, 3, 16, 24), (1, 3, 32, 48)]
    assert [c["options"]["maxiter"] for c in minimize_calls] == [6, 3]
    # The second scale starts from the first one's result, upsampled.
    upsampled = images.resize_to(progress[6].image(), (32, 48))
    np.testing.assert_allclose(layout.from_nchw(minimize_calls[1]["x0"]), upsampled, atol=1e-5)
    assert result.iterations == 9
    assert result.image.shape == (32, 48, 3)


def test_too_many_scales_for_the_size_are_refused(run, minimize_calls):
    with pytest.raises(OptionError) as excinfo:
        run(size=32, scales=3)  # first scale 8 px: the 60x40 content becomes 8x5
    message = str(excinfo.value)
    assert "8x5 px at scale 1 of --scales 3" in message and "fewer --scales" in message
    assert minimize_calls == []


def test_every_scale_of_an_elongated_image_is_checked(run, minimize_calls):
    # 100x30 at --size 64 is 64x19 (fine), but its first scale of two is 32x10, below the network's 16 px.
    with pytest.raises(OptionError, match="32x10 px at scale 1 of --scales 2"):
        run(content=gradient(30, 100), size=64, scales=2)
    assert minimize_calls == []


# ----------------------------------------------------------------------------- Ctrl-C


def _interrupt_at(iteration: int, seen: list):
    def progress(p):
        if p.iteration == 0:
            return
        seen.append((p.loss, as_bytes(p.image())))
        if p.iteration == iteration:
            raise KeyboardInterrupt

    return progress


def test_ctrl_c_returns_the_image_so_far(run):
    seen = []
    result = run(iterations=20, progress=_interrupt_at(3, seen))
    assert result.interrupted is True
    assert result.message == "interrupted"
    assert len(seen) == 3
    assert result.image.shape == (21, 32, 3)
    assert as_bytes(result.image) == seen[-1][1]
    assert result.loss == pytest.approx(seen[-1][0])


def test_ctrl_c_result_counts_the_iterations_done(run):
    result = run(iterations=20, progress=_interrupt_at(3, []))
    assert result.interrupted
    assert result.iterations == 3


def test_ctrl_c_before_the_first_iteration_returns_the_start_image(run, monkeypatch):
    def interrupted(self, x):
        raise KeyboardInterrupt

    monkeypatch.setattr(stylize_module.Objective, "__call__", interrupted)
    result = run(iterations=5)
    assert result.interrupted is True
    assert as_bytes(result.image) == as_bytes(CONTENT_32)


def test_ctrl_c_in_the_second_scale_returns_a_full_size_image(run):
    def progress(p):
        if p.scale == 2 and p.iteration == 1:
            raise KeyboardInterrupt

    result = run(size=48, scales=2, iterations=2, progress=progress)
    assert result.interrupted is True
    assert result.image.shape == (32, 48, 3)
    assert result.iterations == 5  # 4 at the first scale (twice the full size's), 1 at the second


def test_ctrl_c_with_adam_returns_the_best_image_so_far(run):
    seen = []
    # A learning rate large enough that Adam overshoots: the 3rd iterate is worse than the 2nd.
    result = run(optimizer="adam", learning_rate=1.0, iterations=20, progress=_interrupt_at(3, seen))
    losses = [loss for loss, _ in seen]
    assert min(losses) < losses[-1]  # the premise: the last iterate is not the best
    best = int(np.argmin(losses))
    assert result.interrupted
    assert result.loss == pytest.approx(losses[best])
    assert as_bytes(result.image) == seen[best][1]


def test_progress_image_is_the_current_iterate_even_when_adam_goes_up(run):
    seen = []
    run(optimizer="adam", learning_rate=1.0, iterations=3,
        progress=lambda p: p.iteration and seen.append((p.loss, as_bytes(p.image()))))
    losses = [loss for loss, _ in seen]
    assert losses[2] > losses[1]  # the premise: the 3rd Adam step went up
    assert seen[2][1] != seen[1][1]  # Adam moved the pixels, so the current image is a new one


# ----------------------------------------------------------------------------- fewer iterations than asked


def test_a_run_cut_short_says_why_in_the_result(run, evaluation_budget):
    progress = []
    result = run(iterations=20, progress=progress.append)
    assert 0 < result.iterations < 20
    assert not result.interrupted
    assert result.message == (f"stopped after {result.iterations} of 20 iterations: the optimiser used up its "
                              f"budget of loss evaluations ({result.evaluations}) in its line searches")
    assert result.stopped_early == {1: result.message}
    assert progress[-1].iteration == result.iterations  # what the display saw last is where the run ended


def test_a_scale_cut_short_is_named_in_the_message(run, evaluation_budget):
    result = run(size=48, scales=2, iterations=20)
    assert set(result.stopped_early) == {1, 2}
    assert "at scale 1: the optimiser used up" in result.message and "at scale 2: " in result.message


@pytest.mark.parametrize("reason, words", [
    ("gtol", "gradient vanished"), ("ftol", "loss stopped decreasing"), ("maxfun", "budget of loss evaluations (7)"),
    ("linesearch", "line search found no lower point"), ("nonfinite", "nan or infinite"),
])
def test_stop_reasons_are_in_a_users_words(reason, words):
    from types import SimpleNamespace

    from nst_rt.optimize._common import REASONS

    message = next(m for m, code in REASONS.items() if code == reason)
    found = stylize_module.stop_reason(SimpleNamespace(reason=reason, message=message, nfev=7))
    assert words in found and "PGTOL" not in found and "FACTR" not in found


def test_every_result_carries_its_reason_code():
    import numpy as np

    from nst_rt import minimize

    quadratic = lambda x: (float(x @ x), 2 * x)  # noqa: E731
    assert minimize(quadratic, np.ones(3), jac=True).reason == "gtol"
    assert minimize(quadratic, np.ones(3), jac=True, options={"maxiter": 1, "gtol": 0, "ftol": 0}).reason == "maxiter"


# ----------------------------------------------------------------------------- sizes and memory


@pytest.mark.parametrize("content, size, needle", [
    (gradient(40, 60), 8, "--size"),  # every side below 16 px
    (gradient(20, 100), 48, "48x10"),  # an elongated image: 48x10 px at --size 48
])
def test_an_image_smaller_than_the_network_is_refused(models, minimize_calls, content, size, needle):
    with pytest.raises(OptionError) as excinfo:
        Stylizer(size=size, iterations=1, models_dir=models).run(content, STYLE)
    message = str(excinfo.value)
    assert needle in message and "16" in message and "\n" not in message
    assert minimize_calls == []


@pytest.mark.parametrize("role", ["content", "style", "init"])
def test_a_source_below_the_network_minimum_is_refused_not_upscaled(models, minimize_calls, role):
    tiny = gradient(12, 30)
    content, style, init = CONTENT, STYLE, "content"
    if role == "content":
        content = tiny
    elif role == "style":
        style = tiny
    else:
        init = Image.fromarray(images.to_uint8(tiny))
    with pytest.raises(ImageError) as excinfo:
        Stylizer(size=64, iterations=1, init=init, models_dir=models).run(content, style)  # 64x26 would pass
    assert f"{role} image" in str(excinfo.value) and "30x12 px" in str(excinfo.value)
    assert minimize_calls == []


def test_a_too_small_size_message_says_to_use_a_larger_size(run):
    with pytest.raises(OptionError) as excinfo:
        run(size=8, scales=1)
    message = str(excinfo.value)
    assert "fewer scales" not in message
    assert "larger" in message


def test_a_run_that_does_not_fit_in_memory_is_refused_with_the_estimate(run, monkeypatch, minimize_calls):
    monkeypatch.setattr(memory, "available_bytes", lambda: 1 << 30)
    with pytest.raises(MemoryLimitError) as excinfo:
        run(size=1024, iterations=1, scales=1)  # one scale: the message names the size asked for
    message = str(excinfo.value)
    assert "1024x683" in message and "GiB" in message and "1.0 GiB is available" in message
    assert "--size" in message and "\n" not in message
    assert minimize_calls == []


def test_a_huge_size_is_refused_before_anything_that_size_is_allocated(run, monkeypatch, minimize_calls):
    real_resize_to = images.resize_to

    def guarded(image, size):
        h, w = (int(s) for s in size)
        assert h * w <= 50_000_000, f"resize to {w}x{h} attempted"
        return real_resize_to(image, size)

    monkeypatch.setattr(images, "resize_to", guarded)
    monkeypatch.setattr(memory, "available_bytes", lambda: 64 << 30)
    with pytest.raises(MemoryLimitError) as excinfo:
        run(size=200_000, iterations=1)
    assert "GiB" in str(excinfo.value)
    assert minimize_calls == []


def test_the_memory_estimate_of_a_small_run_fits(models):
    stylizer = Stylizer(size=32, iterations=1, models_dir=models)
    small = memory.estimate_bytes(stylizer.network, 21, 32, 100, [(32, 32)])
    large = memory.estimate_bytes(stylizer.network, 42, 64, 100, [(64, 64)])
    assert memory.FIXED_BYTES < small < large
    assert memory.estimate_bytes(stylizer.network, 21, 32, 0) < memory.estimate_bytes(stylizer.network, 21, 32, 100)



def test_a_run_is_refused_exactly_when_its_estimate_exceeds_the_available_memory(models, monkeypatch):
    stylizer = Stylizer(size=32, iterations=1, models_dir=models)
    need = memory.estimate_bytes(stylizer.network, 21, 32, 100)
    monkeypatch.setattr(memory, "available_bytes", lambda: need)
    memory.check_fits(stylizer.network, 21, 32, 100)
    monkeypatch.setattr(memory, "available_bytes", lambda: need - 1)
    with pytest.raises(MemoryLimitError):
        memory.check_fits(stylizer.network, 21, 32, 100)


# ----------------------------------------------------------------------------- provider, threads, model


def test_provider_cpu_and_threads_reach_onnxruntime(models):
    stylizer = Stylizer(models_dir=models, provider="cpu", threads=1, size=32, iterations=1)
    assert stylizer.network.providers == ["CPUExecutionProvider"]
    assert stylizer.network.features_session.get_providers() == ["CPUExecutionProvider"]
    assert stylizer.network.features_session.get_session_options().intra_op_num_threads == 1
    assert stylizer.network.vjp_session.get_session_options().intra_op_num_threads == 1
    assert stylizer.run(CONTENT, STYLE).image.shape == (21, 32, 3)


def test_provider_cuda_without_cuda_is_a_clear_error(models):
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this onnxruntime offers CUDA")
    with pytest.raises(ProviderError) as excinfo:
        Stylizer(models_dir=models, provider="cuda")
    message = str(excinfo.value)
    assert "CUDA" in message and "--provider cpu" in message and "\n" not in message


def test_threads_below_one_are_refused(models):
    with pytest.raises(OptionError, match="threads"):
        Stylizer(models_dir=models, threads=0)


def test_model_by_path_by_name_by_env_and_by_default_dir(models, monkeypatch, tmp_path):
    by_name = Stylizer(model="vgg19", models_dir=models)
    by_path = Stylizer(model=str(models / "vgg19"))
    assert by_name.model.path == by_path.model.path == models / "vgg19"
    monkeypatch.setenv("NST_RT_MODELS", str(models))
    assert Stylizer().model.path == models / "vgg19"
    monkeypatch.delenv("NST_RT_MODELS")
    (tmp_path / "models").symlink_to(models, target_is_directory=True)  # ./models (the cwd is tmp_path)
    assert Stylizer().model.architecture == "vgg19"
    # --models-dir comes first in the search.
    other = tmp_path / "other"
    shutil.copytree(models / "vgg19", other / "vgg19")
    assert Stylizer(models_dir=other).model.path == other / "vgg19"


def test_a_missing_model_names_the_export_command(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelNotFoundError) as excinfo:
        Stylizer(models_dir=empty)
    assert "nst-rt export" in str(excinfo.value) and "\n" not in str(excinfo.value)
    with pytest.raises(ModelNotFoundError, match="nst-rt export"):
        Stylizer(model=str(tmp_path / "nowhere" / "vgg19"))


@pytest.mark.parametrize("damage", ["garbage features", "no vjp"])
def test_a_broken_model_is_a_model_error(models, tmp_path, damage):
    broken = tmp_path / "broken" / "vgg19"
    shutil.copytree(models / "vgg19", broken)
    if damage == "garbage features":
        (broken / "features.onnx").write_bytes(b"this is not an onnx model\n" * 100)
    else:
        (broken / "vjp.onnx").unlink()
    with pytest.raises(ModelError) as excinfo:
        Stylizer(model=str(broken))
    assert "re-export" in str(excinfo.value) and "\n" not in str(excinfo.value)


# ----------------------------------------------------------------------------- bad image inputs


def _text_jpg(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("this is text, not a JPEG\n")
    return str(path)


def _truncated_png(tmp_path):
    path = tmp_path / "cut.png"
    save(noise(40, 60, seed=9), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return str(path)


@pytest.mark.parametrize("make, needle", [
    (lambda tmp: str(tmp / "missing.png"), "does not exist"),
    (_text_jpg, "not an image"),
    (_truncated_png, "truncated or corrupt"),
])
@pytest.mark.parametrize("role", ["content", "style"])
def test_bad_image_files_are_image_errors(run, tmp_path, minimize_calls, make, needle, role):
    bad = make(tmp_path)
    with pytest.raises(ImageError) as excinfo:
        if role == "content":
            run(content=bad, iterations=1)
        else:
            run(styles=[STYLE, bad], iterations=1)
    message = str(excinfo.value)
    assert needle in message and role in message and "\n" not in message
    assert minimize_calls == []


@pytest.mark.parametrize("limit", [1000, 2000])  # 2400 px: over 2x the limit (error), between 1x and 2x (warning)
def test_a_decompression_bomb_is_refused(run, tmp_path, monkeypatch, limit):
    path = save(gradient(40, 60), tmp_path / "bomb.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", limit)
    with pytest.raises(ImageError) as excinfo:
        run(content=path, iterations=1)
    assert "too large" in str(excinfo.value) and "2400 pixels" in str(excinfo.value)


# ----------------------------------------------------------------------------- the one-call API


def test_stylize_accepts_a_path_a_pil_image_or_an_array(models, tmp_path):
    content_path = save(CONTENT, tmp_path / "content.png")
    style_path = save(STYLE, tmp_path / "style.png")
    content_pil, style_pil = Image.open(content_path), Image.open(style_path)
    content_u8, style_u8 = images.to_uint8(CONTENT), images.to_uint8(STYLE)
    options = {"size": 48, "iterations": 3, "models_dir": models, "threads": 1}
    outputs = [
        stylize(content_path, style_path, **options),
        stylize(content_pil, style_pil, **options),
        stylize(content_u8, style_u8, **options),
        stylize(content_u8.astype(np.float32) / 255, [style_path], **options),
    ]
    for out in outputs:
        assert isinstance(out, Image.Image)
        assert out.mode == "RGB" and out.size == (48, 32)
    assert len({out.tobytes() for out in outputs}) == 1
    assert outputs[0].tobytes() != Image.fromarray(images.to_uint8(images.resize_longest(CONTENT, 48))).tobytes()


def test_stylize_with_several_styles_and_options(models):
    out = stylize(CONTENT, [STYLE, STYLE2], size=32, iterations=2, models_dir=models,
                         style_blend_weights=[1, 3], original_colors=True, threads=1)
    assert out.mode == "RGB" and out.size == (32, 21)


def test_stylize_refuses_unknown_options_and_inputs(models):
    with pytest.raises(TypeError):
        stylize(CONTENT, STYLE, models_dir=models, colour="blue")
    with pytest.raises(ImageError, match="content image must be"):
        stylize(12345, STYLE, size=32, iterations=1, models_dir=models)


def test_nst_rt_stylize_is_the_function_on_every_access():
    code = ("import nst_rt, nst_rt.cli\n"
            "first = nst_rt.stylize\n"
            "second = nst_rt.stylize\n"
            "assert callable(first), type(first)\n"
            "assert callable(second), type(second)\n"
            "from nst_rt.pipeline.stylizer import Stylizer\n"
            "assert callable(nst_rt.stylize), type(nst_rt.stylize)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_every_library_error_is_an_nst_error():
    for cls in (ImageError, MemoryLimitError, ModelError, ModelNotFoundError, OptionError, ProviderError):
        assert issubclass(cls, NstError)
