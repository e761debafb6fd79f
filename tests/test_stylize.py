"""End-to-end tests of the stylization pipeline's Python API: nst_rt.pipeline.stylizer.Options / Stylizer / stylize().

Every run uses the session's random-weights VGG-19 export (conftest ``models_dir``), tiny generated images
(content: a smooth 60x40 colour gradient; styles: seeded noise and stripes) and a few iterations, so each
test takes well under a second. ``nst_rt.optimize.minimize`` and ``nst_rt.pipeline.stylizer.Objective`` are wrapped
(not replaced) where a test needs to see what reached the optimiser or the objective.
"""

from __future__ import annotations


import numpy as np
import pytest

from nst_rt.io import image_load
from nst_rt.io import images
from nst_rt.io import layout
from nst_rt.errors import (ImageError, OptionError)
from nst_rt.pipeline.stylizer import Progress, Result, Stylizer
from synthetic import gradient, noise, save
from stylize_helpers import CONTENT, CONTENT_32, STYLE, STYLE2, VGG19_LAYERS, as_bytes, mean_sq_neighbour_diff, objectives, run  # noqa: F401

pytestmark = pytest.mark.usefixtures("isolated")


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


def test_a_derived_stylizer_shares_the_network_unless_it_names_another_model(models_dir):
    models_dir("vgg19", "max")  # a second export beside vgg19 in the same directory
    base = Stylizer(size=32, iterations=3, models_dir=models_dir(), scales=1)
    same = base.derive(iterations=2, history=5)
    assert same.network is base.network and same.model is base.model
    other = base.derive(model="vgg19-max")
    assert other.model.name == "vgg19-max" and other.network is not base.network and base.model.name == "vgg19"
    # what each one runs is its own model: max pooling gives another picture from the same start
    assert as_bytes(other.run(CONTENT, [STYLE]).image) != as_bytes(base.run(CONTENT, [STYLE]).image)
    assert as_bytes(base.derive(model="vgg19").run(CONTENT, [STYLE]).image) == as_bytes(base.run(CONTENT, [STYLE]).image)


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
    result = run(size=48, scales=2, iterations=3, coarse_iterations=2, progress=progress.append)
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
        run(size=32, scales=3)  # first scale 8 px, below the network's 16 px whatever the picture
    message = str(excinfo.value)
    assert "--scales 3 with --size 32 makes the coarsest scale 8 px" in message and "--scales 2 or fewer" in message
    assert minimize_calls == []
    with pytest.raises(OptionError, match="the content image becomes 16x11 px at scale 1 of --scales 2"):
        run(size=32, scales=2)  # a 16 px scale, and the 60x40 content's short side below it there


def test_every_scale_of_an_elongated_image_is_checked(run, minimize_calls):
    # 100x30 at --size 64 is 64x19 (fine), but its first scale of two is 32x10, below the network's 16 px.
    with pytest.raises(OptionError, match="32x10 px at scale 1 of --scales 2"):
        run(content=gradient(30, 100), size=64, scales=2)
    assert minimize_calls == []
