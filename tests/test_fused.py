"""The objective graph (export/objective_graph.py, nst_rt/objective/fused.py) against the two graphs with the numpy
losses between them, which tests/test_objective.py holds against torch autograd: when it is used, when it is
not, exports without it, and a whole run through each."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from nst_rt.errors import ModelError
from nst_rt.model_format import OBJECTIVE_FILE
from nst_rt.network.model import load_model
from nst_rt.network.session import Network
from nst_rt.objective.whole import Objective
from nst_rt.pipeline.stylizer import Stylizer

from synthetic import gradient, noise

DEFAULTS = dict(content_weight=1.0, style_weight=10.0, tv_weight=10.0, normalize=True)
CASES = {
    "defaults": {},
    "two style layers": dict(style_layers=("relu1_1", "relu3_1")),
    "style only": dict(content_weight=0.0),
    "content only": dict(style_weight=0.0),
    "plain recipe": dict(normalize=False, style_weight=1e6, tv_weight=0.0),
    "two styles blended": dict(style_blend_weights=(0.3, 0.7)),
    "layer weights": dict(style_layer_weights=(1.0, 0.0, 2.0, 0.5, 1.0)),
}


def rel_l2(a, b) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


@pytest.fixture(scope="module")
def pictures():
    rng = np.random.default_rng(3)
    return gradient(40, 56), [noise(48, 48), noise(44, 52)], rng.random((1, 3, 40, 56))


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("device_path", [False, True], ids=["host", "device-path"])
def test_the_objective_graph_gives_the_numpy_terms_and_gradient(vgg19, pictures, case, device_path):
    content, styles, x = pictures
    kw = {**DEFAULTS, **CASES[case]}
    styles = styles if "style_blend_weights" in kw else styles[:1]
    network = Network(vgg19, "cpu")
    network.shares_host_memory = not device_path  # the CUDA code path's bindings, run on the CPU provider
    fused = Objective(network, content, styles, **kw)
    plain = Objective(Network(vgg19, "cpu"), content, styles, fused=False, **kw)
    assert fused._fused is not None and plain._fused is None
    for step in range(2):  # each call sees its own image
        point = np.clip(x + 0.1 * step, 0, 1)
        value, grad = fused(point)
        grad = grad.copy()
        expected_value, expected_grad = plain(point)
        assert value == pytest.approx(expected_value, rel=2e-5)
        for term in ("content", "style", "tv"):
            assert fused.terms_at(value)[term] == pytest.approx(plain.terms_at(expected_value)[term], rel=2e-5,
                                                                abs=1e-12)
        if np.linalg.norm(expected_grad) > 0:
            assert rel_l2(grad, expected_grad) < 1e-5
    assert fused.evaluations == plain.evaluations == 2


def test_terms_the_graph_does_not_hold_take_the_numpy_losses(vgg19, pictures):
    content, styles, x = pictures
    network = Network(vgg19, "cpu")
    assert Objective(network, content, styles[:1], **DEFAULTS)._fused is not None
    assert Objective(network, content, styles[:1], style_layers=("relu1_2",), **DEFAULTS)._fused is None
    assert Objective(network, content, styles[:1], content_layers=("relu3_1",), **DEFAULTS)._fused is None
    mask = np.ones((40, 56), np.float32)
    masked = Objective(network, content, styles[:1], style_masks=[mask], **DEFAULTS)
    assert masked._fused is None
    assert Objective(network, content, styles[:1], fused=False, **DEFAULTS)._fused is None


def test_openvino_keeps_the_two_graphs_where_the_objective_graph_measured_slower(vgg19, pictures):
    from nst_rt.network.session import CPU, OPENVINO

    content, styles, x = pictures
    network = Network(vgg19, "cpu")
    network.providers = [OPENVINO, CPU]  # what an OpenVINO network reports; the sessions do not matter here
    assert Objective(network, content, styles[:1], **DEFAULTS)._fused is None


def test_an_export_without_the_objective_graph_still_runs(vgg19, pictures, tmp_path):
    old = tmp_path / "vgg19"
    shutil.copytree(vgg19.path, old)
    (old / OBJECTIVE_FILE).unlink()
    model = load_model(old)
    assert model.objective_path is None and model.objective_layers == ([], [])
    assert OBJECTIVE_FILE not in [p.name for p in model.files]
    content, styles, x = pictures
    objective = Objective(Network(model, "cpu"), content, styles[:1], **DEFAULTS)
    assert objective._fused is None
    value, grad = objective(x)
    expected_value, expected_grad = Objective(Network(vgg19, "cpu"), content, styles[:1], **DEFAULTS)(x)
    assert value == pytest.approx(expected_value, rel=2e-5) and rel_l2(grad, expected_grad) < 1e-5


def test_an_objective_graph_from_another_export_is_refused(models_dir, vgg19, tmp_path):
    mixed = tmp_path / "vgg19"
    shutil.copytree(vgg19.path, mixed)
    shutil.copy(models_dir("vgg19", "max") / "vgg19-max" / OBJECTIVE_FILE, mixed / OBJECTIVE_FILE)
    with pytest.raises(ModelError, match=f"different exports \\(pooling differs in {OBJECTIVE_FILE}\\)"):
        load_model(mixed)


def test_max_pooling_exports_have_one_that_matches_too(models_dir, pictures):
    model = load_model(models_dir("vgg19", "max") / "vgg19-max")
    content, styles, x = pictures
    fused = Objective(Network(model, "cpu"), content, styles[:1], **DEFAULTS)
    plain = Objective(Network(model, "cpu"), content, styles[:1], fused=False, **DEFAULTS)
    assert fused._fused is not None
    value, grad = fused(x)
    grad = grad.copy()
    expected_value, expected_grad = plain(x)
    assert value == pytest.approx(expected_value, rel=2e-5) and rel_l2(grad, expected_grad) < 1e-5


def test_a_whole_run_through_the_objective_graph_ends_where_the_numpy_one_does(models, monkeypatch):
    """The same 2-scale run both ways. The graph's float32 sums send L-BFGS along another path (the pixels
    differ, as they do between providers), to the same loss in as many evaluations."""
    import nst_rt.objective.whole as whole

    def run(fused: bool):
        monkeypatch.setattr(whole.FusedTerms, "fits", staticmethod(lambda *a, **k: fused))
        return Stylizer(size=64, iterations=30, scales=2, models_dir=models, provider="cpu").run(gradient(), noise())

    with_graph, without = run(True), run(False)
    assert with_graph.loss == pytest.approx(without.loss, rel=0.02)
    assert with_graph.evaluations <= 1.1 * without.evaluations
