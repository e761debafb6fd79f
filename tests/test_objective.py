"""Tests for nst_rt.objective.whole.Objective against a float64 torch autograd implementation of its recipe."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from conftest import EXAMPLES
from nst_rt.errors import OptionError
from nst_rt.export.reference import STYLE_LAYERS
from nst_rt.export.reference import gram as t_gram
from nst_rt.network.session import Network
from nst_rt.objective.whole import Objective
from oracles import rel_l2, tv as t_tv

CONTENT_HW = (40, 56)
STYLE_HWS = ((48, 40), (36, 64))  # two style images of different sizes (and aspect ratios)
GRAD_TOL = 1e-4  # relative L2, float32 network against float64 torch
VALUE_TOL = 1e-5

CONTENT_LAYERS = ("relu4_2", "relu1_1")
CONTENT_LAYER_WEIGHTS = (1.0, 0.5)
STYLE_LAYER_WEIGHTS = (1.0, 0.5, 2.0, 1.0, 0.25)
BLEND = (0.3, 0.7)


def smooth_image(rng, height, width, cells=(4, 5)) -> np.ndarray:
    """(H, W, 3) float32 in [0, 1]: a bilinear upsampling of a few random cells plus a stripe pattern."""
    coarse = rng.random((cells[0], cells[1], 3))
    ys = np.linspace(0, cells[0] - 1, height)
    xs = np.linspace(0, cells[1] - 1, width)
    y0, x0 = np.floor(ys).astype(int).clip(0, cells[0] - 2), np.floor(xs).astype(int).clip(0, cells[1] - 2)
    fy, fx = (ys - y0)[:, None, None], (xs - x0)[None, :, None]
    img = ((1 - fy) * (1 - fx) * coarse[y0][:, x0] + fy * (1 - fx) * coarse[y0 + 1][:, x0]
           + (1 - fy) * fx * coarse[y0][:, x0 + 1] + fy * fx * coarse[y0 + 1][:, x0 + 1])
    freq = rng.uniform(0.2, 0.8)
    stripes = 0.5 + 0.5 * np.sin(freq * (np.arange(height)[:, None] + 2 * np.arange(width)[None, :]))
    img = 0.7 * img + 0.3 * stripes[:, :, None] * rng.random(3)
    return np.clip(img, 0, 1).astype(np.float32)


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(1234)
    content = smooth_image(rng, *CONTENT_HW)
    styles = [smooth_image(rng, h, w, cells=(3 + i, 6 - i)) for i, (h, w) in enumerate(STYLE_HWS)]
    x = rng.random((1, 3, *CONTENT_HW))  # float64 pixels, far from the content image
    return content, styles, x


@pytest.fixture(scope="module")
def network(vgg19):
    return Network(vgg19, "cpu")


@pytest.fixture(scope="module")
def oracle(reference):
    model = reference("vgg19", "avg", torch.float64)

    def acts(image_hwc_or_nchw: np.ndarray, requires_grad=False):
        arr = np.asarray(image_hwc_or_nchw, np.float64)
        if arr.ndim == 3:
            arr = arr.transpose(2, 0, 1)[None]
        t = torch.from_numpy(np.ascontiguousarray(arr)).requires_grad_(requires_grad)
        return t, model(t)

    return acts


def torch_objective(oracle, content, styles, x, *, content_layers=("relu4_2",), style_layers=STYLE_LAYERS,
                    content_weight=1.0, style_weight=1e6, tv_weight=0.0, normalize=False, blend=None,
                    content_layer_weights=None, style_layer_weights=None):
    """The docstring's recipe in float64: returns (terms dict, total, gradient)."""
    blend = np.ones(len(styles)) if blend is None else np.asarray(blend, np.float64)
    blend = blend / blend.sum()
    c_w = np.ones(len(content_layers)) if content_layer_weights is None else np.asarray(content_layer_weights)
    s_w = np.ones(len(style_layers)) if style_layer_weights is None else np.asarray(style_layer_weights)
    with torch.no_grad():
        _, p = oracle(content)
        grams = [{l: t_gram(a[l]) for l in style_layers} for a in (oracle(s)[1] for s in styles)]
    # The normalisers straight from the docstring: the mean square of each layer's target (blended for style).
    n = {l: torch.mean(p[l] ** 2) if normalize else 1.0 for l in content_layers}
    m = {l: sum(b * torch.mean(g[l] ** 2) for b, g in zip(blend, grams)) if normalize else 1.0 for l in style_layers}
    t, f = oracle(x, requires_grad=True)
    content_term = sum(c_w[i] * torch.mean((f[l] - p[l]) ** 2) / n[l] for i, l in enumerate(content_layers))
    style_term = sum((s_w[i] / len(style_layers)) * sum(b * torch.mean((t_gram(f[l]) - g[l]) ** 2)
                                                         for b, g in zip(blend, grams)) / m[l]
                     for i, l in enumerate(style_layers))
    terms = {"content": content_weight * content_term, "style": style_weight * style_term, "tv": tv_weight * t_tv(t)}
    total = terms["content"] + terms["style"] + terms["tv"]
    (grad,) = torch.autograd.grad(total, [t])
    return {k: float(v.detach()) for k, v in terms.items()}, float(total.detach()), grad.numpy()


RECIPE = dict(content_layers=CONTENT_LAYERS, style_layers=STYLE_LAYERS, content_weight=2.0, style_weight=2e6,
              tv_weight=0.0, normalize=False, content_layer_weights=CONTENT_LAYER_WEIGHTS,
              style_layer_weights=STYLE_LAYER_WEIGHTS)
# Normalised, the terms are relative errors of order 1: weights of the same order balance them.
NORMALIZED = dict(RECIPE, normalize=True, content_weight=2.0, style_weight=3.0)
PLAIN = dict(content_weight=1.0, style_weight=1e6, tv_weight=0.0, normalize=False)  # the standard recipe


def _objective(network, content, styles, **kw):
    kw = dict(kw)
    blend = kw.pop("blend", None)
    return Objective(network, content, styles, style_blend_weights=blend, **kw)


# relu1_1 as a content layer is outside the objective graph's layers: those terms take the two graphs with the
# numpy losses between them; with relu4_2 alone the model's objective graph computes them (nst_rt.objective.fused).
PATHS = {"numpy": {}, "objective-graph": dict(content_layers=("relu4_2",), content_layer_weights=(10.0,))}


@pytest.mark.parametrize("path", list(PATHS))
@pytest.mark.parametrize("recipe", [RECIPE, NORMALIZED], ids=["plain", "normalized"])
@pytest.mark.parametrize("part", ["content", "style", "both"])
def test_value_and_gradient_match_torch(network, oracle, images, part, recipe, path):
    content, styles, x = images
    kw = dict(recipe, blend=BLEND, **PATHS[path])
    if part == "content":
        kw["style_weight"] = 0.0
    elif part == "style":
        kw["content_weight"] = 0.0
    objective = _objective(network, content, styles, **kw)
    # without a content term the two-layer recipe's style terms are the graph's too
    assert (objective._fused is not None) == (path == "objective-graph" or part == "style")
    value, grad = objective(x)
    terms, t_value, t_grad = torch_objective(oracle, content, styles, x, **kw)
    assert grad.shape == x.shape and grad.dtype == np.float32  # no tv: the network's gradient as it comes
    assert abs(t_value) > 0 and np.linalg.norm(t_grad) > 0
    if part == "both":  # neither term may hide the other
        assert 0.05 < terms["content"] / terms["style"] < 20, terms
    assert value == pytest.approx(t_value, rel=VALUE_TOL)
    ours = objective.terms_at(value)
    for name in ("content", "style"):
        assert ours[name] == pytest.approx(terms[name], rel=VALUE_TOL, abs=1e-12), name
    assert ours["tv"] == 0.0
    assert rel_l2(grad, t_grad) <= GRAD_TOL


def test_tv_term(network, oracle, images):
    """The tv part of value and gradient on its own (it dominates the total once its weight is large)."""
    content, styles, x = images
    kw = dict(RECIPE, blend=BLEND)
    without = _objective(network, content, styles, **kw)
    with_tv = _objective(network, content, styles, **dict(kw, tv_weight=5.0))
    v0, g0 = without(x)
    g0 = g0.copy()
    v1, g1 = with_tv(x)
    xt = torch.from_numpy(x).requires_grad_(True)
    tv = 5.0 * t_tv(xt)
    (tv_grad,) = torch.autograd.grad(tv, [xt])
    assert with_tv.terms_at(v1)["tv"] == pytest.approx(float(tv.detach()), rel=1e-10)
    assert v1 - v0 == pytest.approx(float(tv.detach()), rel=1e-6)
    # The tv part is added in float64 to the network's float32 gradient: exact, not rounded to float32.
    assert g1.dtype == np.float64
    assert rel_l2(g1 - g0.astype(np.float64), tv_grad.numpy()) <= 1e-13
    # and the total against torch, with tv included
    _, t_value, t_grad = torch_objective(oracle, content, styles, x, **dict(kw, tv_weight=5.0))
    assert v1 == pytest.approx(t_value, rel=VALUE_TOL)
    assert rel_l2(g1, t_grad) <= GRAD_TOL


def test_blend_weights_are_normalised(network, images):
    content, styles, x = images
    a = _objective(network, content, styles, **dict(RECIPE, blend=BLEND))
    b = _objective(network, content, styles, **dict(RECIPE, blend=[3.0, 7.0]))
    va, ga = a(x)
    ga = ga.copy()
    vb, gb = b(x)
    assert vb == pytest.approx(va, rel=1e-6)
    assert rel_l2(gb, ga) <= 1e-6


def test_defaults_and_float32_pixels(network, oracle, images):
    """Default recipe (relu4_2 content, five style layers averaged, one style image), float32 input."""
    content, styles, x = images
    objective = Objective(network, content, styles[:1], **PLAIN)
    value, grad = objective(x.astype(np.float32))
    _, t_value, t_grad = torch_objective(oracle, content, styles[:1], x.astype(np.float32))
    assert value == pytest.approx(t_value, rel=VALUE_TOL)
    assert rel_l2(grad, t_grad) <= GRAD_TOL
    assert objective.evaluations == 1


def test_zero_layer_weight_takes_no_part(network, oracle, images):
    content, styles, x = images
    kw = dict(RECIPE, blend=BLEND, style_layer_weights=(1.0, 0.0, 2.0, 0.0, 1.0))
    objective = _objective(network, content, styles, **kw)
    assert "relu2_1" not in objective.used_layers and "relu4_1" not in objective.used_layers
    value, grad = objective(x)
    _, t_value, t_grad = torch_objective(oracle, content, styles, x, **kw)
    assert value == pytest.approx(t_value, rel=VALUE_TOL)
    assert rel_l2(grad, t_grad) <= GRAD_TOL


def test_objectives_do_not_leak_cotangents(vgg19, images):
    content, styles, x = images
    shared = Network(vgg19, "cpu", threads=1)
    first = Objective(shared, content, styles, content_layers=("relu4_2", "relu1_1"),
                      style_layers=("relu1_1", "relu3_1", "relu5_1"), **dict(PLAIN, style_weight=2e6))
    second = Objective(shared, content, styles[1:], content_layers=("relu2_2",), style_layers=("relu3_2",),
                       **PLAIN)
    first(x)
    value, grad = second(x)
    grad = grad.copy()
    first(x)  # and back again: the first one's value must not see the second's cotangents either
    value_first_again, grad_first_again = first(x)
    grad_first_again = grad_first_again.copy()

    fresh = Network(vgg19, "cpu", threads=1)
    expected_value, expected_grad = Objective(fresh, content, styles[1:], content_layers=("relu2_2",),
                                              style_layers=("relu3_2",), **PLAIN)(x)
    assert value == expected_value
    np.testing.assert_array_equal(grad, expected_grad)

    fresh2 = Network(vgg19, "cpu", threads=1)
    v_ref, g_ref = Objective(fresh2, content, styles, content_layers=("relu4_2", "relu1_1"),
                             style_layers=("relu1_1", "relu3_1", "relu5_1"), **dict(PLAIN, style_weight=2e6))(x)
    assert value_first_again == v_ref
    np.testing.assert_array_equal(grad_first_again, g_ref)


# ------------------------------------------------------------------ option errors (raised before any network run)


@pytest.mark.parametrize("kw", [{"content_layers": ("relu4_2", "conv4_2")}, {"style_layers": ("relu1_1", "relu6_1")},
                                {"content_layers": ("pool1",)}])
def test_unknown_layer(network, images, kw):
    content, styles, _ = images
    with pytest.raises(OptionError) as excinfo:
        Objective(network, content, styles, **PLAIN, **kw)
    message = str(excinfo.value)
    assert "\n" not in message
    bad = [l for l in next(iter(kw.values())) if l not in network.layers][0]
    assert bad in message
    for name in network.layers:  # every valid name is listed
        assert name in message


@pytest.mark.parametrize("kw", [
    {"content_weight": -1.0}, {"style_weight": math.nan}, {"tv_weight": -1e-3}, {"content_weight": math.inf},
    {"content_layer_weights": [math.nan]}, {"style_layer_weights": [1, 1, -1, 1, 1]},
    {"style_blend_weights": [-0.3, 1.3]}, {"style_blend_weights": [0.3, math.nan]},
    {"style_blend_weights": [0.3]}, {"style_blend_weights": [0.3, 0.3, 0.4]},
    {"style_blend_weights": [0.0, 0.0]}, {"style_layer_weights": [1, 1]}, {"content_layer_weights": [1, 1]},
    {"content_layers": ("relu4_2", "relu4_2")},
])
def test_bad_weights(network, images, kw):
    content, styles, _ = images
    with pytest.raises(OptionError) as excinfo:
        Objective(network, content, styles, **{**PLAIN, **kw})
    assert "\n" not in str(excinfo.value)


def test_wrong_image_shape(network, images):
    content, styles, x = images
    objective = Objective(network, content, styles, **PLAIN)
    with pytest.raises(OptionError):
        objective(x[:, :, :-1])


def test_content_image_below_16px(network, images):
    _, styles, _ = images
    with pytest.raises(OptionError):
        Objective(network, np.zeros((15, 40, 3), np.float32), styles, **PLAIN)


# ------------------------------------------------------------------ through the pipeline

CONTENT_FILE = EXAMPLES / "content" / "chelsea.png"
STYLE_FILE = EXAMPLES / "style" / "starry_night.jpg"


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_reported_terms_belong_to_the_reported_point(models, optimizer):
    """Progress and result give the terms of the point whose loss they report, not of the last evaluation."""
    from nst_rt.pipeline.stylizer import Stylizer

    seen = []
    result = Stylizer(models_dir=models, size=40, iterations=12, provider="cpu", optimizer=optimizer,
                      learning_rate=0.05, tv_weight=1e-3).run(CONTENT_FILE, STYLE_FILE, progress=seen.append)
    seen = [p for p in seen if p.iteration > 0]  # iteration 0 reports the start image, before any evaluation
    assert len(seen) == result.iterations == 12
    for p in seen:
        assert set(p.terms) == {"content", "style", "tv"} and p.terms["tv"] > 0
        assert sum(p.terms.values()) == pytest.approx(p.loss, rel=1e-12), (p.iteration, p.terms, p.loss)
    assert sum(result.terms.values()) == pytest.approx(result.loss, rel=1e-12), (result.terms, result.loss)


def _rescaled_state(state: dict, seed: int) -> tuple[dict, list[float]]:
    """The same network with each ReLU layer's activations multiplied by its own positive constant.

    ReLU and pooling are positively homogeneous, so scaling conv l's weights by k_l / k_(l-1) and its bias
    by k_l multiplies relu l's output by k_l (k_0 = 1 for the image).
    """
    rng = np.random.default_rng(seed)
    keys = sorted({int(k.split(".")[1]) for k in state})
    factors = np.exp(rng.uniform(-3.0, 3.0, len(keys)))  # from 0.05x to 20x
    out, previous = {}, 1.0
    for index, k in zip(keys, factors):
        out[f"features.{index}.weight"] = state[f"features.{index}.weight"] * float(k / previous)
        out[f"features.{index}.bias"] = state[f"features.{index}.bias"] * float(k)
        previous = k
    return out, list(factors)


@pytest.mark.slow
def test_normalized_pictures_do_not_depend_on_activation_scale(tmp_path, weights_file):
    """A network whose every layer's activations are rescaled gives the same picture normalised, another plain."""
    from nst_rt.export import export_model
    from nst_rt.pipeline.stylizer import Stylizer

    state, factors = _rescaled_state(torch.load(weights_file("vgg19"), weights_only=True), seed=7)
    assert max(factors) / min(factors) > 50
    torch.save(state, tmp_path / "rescaled.pth")
    # float32 storage for both: rounding to float16 would change the networks, not only their scale
    export_model("vgg19", tmp_path / "models", weights=weights_file("vgg19"), name="vgg19", weights_dtype="float32")
    export_model("vgg19", tmp_path / "models", weights=tmp_path / "rescaled.pth", name="rescaled",
                 weights_dtype="float32")
    models = tmp_path / "models"

    def picture(model, models_dir, **kw):
        return Stylizer(model=model, models_dir=models_dir, size=40, iterations=8, provider="cpu",
                        **kw).run(CONTENT_FILE, STYLE_FILE).image

    normalized = picture("vgg19", models), picture("rescaled", tmp_path / "models")
    plain = (picture("vgg19", models, **PLAIN), picture("rescaled", tmp_path / "models", **PLAIN))
    start = np.asarray(Stylizer(models_dir=models, size=40, iterations=1, provider="cpu").run(
        CONTENT_FILE, STYLE_FILE).image)
    assert np.abs(normalized[0] - start).max() > 0.1  # the run moved the picture
    assert np.abs(normalized[0] - normalized[1]).max() < 1e-4  # float rounding only
    assert np.abs(plain[0] - plain[1]).max() > 0.1


class _DeadNetwork:
    """A network whose every activation is zero: no target has a scale to normalise by."""

    layers = ["relu1_1"]
    model = SimpleNamespace(objective_layers=([], []))  # an export without the objective graph
    providers = ["CPUExecutionProvider"]

    def features(self, image):
        return {"relu1_1": np.zeros((1, 4, image.shape[2], image.shape[3]), np.float32)}


def test_all_zero_target_cannot_be_normalised(images):
    content, styles, _ = images
    kw = dict(content_layers=("relu1_1",), style_layers=("relu1_1",), content_weight=1.0, style_weight=1.0,
              tv_weight=0.0)
    with pytest.raises(OptionError) as excinfo:
        Objective(_DeadNetwork(), content, styles, normalize=True, **kw)
    assert "relu1_1" in str(excinfo.value) and "--no-normalize" in str(excinfo.value)
    Objective(_DeadNetwork(), content, styles, normalize=False, **kw)  # the plain recipe has nothing to divide
