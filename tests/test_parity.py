"""The whole stylization against a plain-PyTorch implementation of the same algorithm (nst_rt.export.reference).

Same weights, same recipe (content 1, style 1e6, TV 0, from the content image), torch.optim.LBFGS with
history 100 and strong Wolfe. Judged on the images as saved (clamped, 8-bit) under the float64 objective.
The benchmark runs the same comparison at 128 and 256 px with 50 and 100 iterations.
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import EXAMPLES
from nst_rt.export import reference

CONTENT = EXAMPLES / "content" / "chelsea.png"
STYLE = EXAMPLES / "style" / "starry_night.jpg"
pytestmark = pytest.mark.slow  # two torch L-BFGS runs and the float64 network
PLAIN = dict(content_weight=1.0, style_weight=1e6, tv_weight=0.0, normalize=False)  # the reference's recipe


@pytest.fixture(scope="module")
def setup(weights_file, models_dir):
    import torch

    size = 64
    content, style = reference.prepare(CONTENT, STYLE, size)
    net64 = reference.load_network("vgg19", weights_file("vgg19"), torch.float64)
    torch_image = reference.stylize(
        reference.ReferenceLoss(reference.load_network("vgg19", weights_file("vgg19")), content, style), content, 20)
    return size, content, style, net64, torch_image, models_dir()


@pytest.mark.parametrize("bounds", [True, False])
def test_saved_image_scores_no_worse_than_torch(setup, bounds):
    from nst_rt.pipeline.stylizer import Stylizer

    size, content, style, net64, torch_image, models = setup
    ours = Stylizer(models_dir=models, size=size, iterations=20, provider="cpu", bounds=bounds,
                    **PLAIN).run(CONTENT, STYLE)
    assert ours.image.shape == torch_image.shape
    ours_score = reference.score(ours.image, content, style, net64)
    torch_score = reference.score(torch_image, content, style, net64)
    start_score = reference.score(content, content, style, net64)
    assert torch_score < 0.5 * start_score  # the reference itself made progress
    # Bounds keep every pixel in range, so nothing is lost when saving: well under torch's clamped result.
    # Unbounded, both runs follow the same algorithm, but 20 L-BFGS steps amplify the order of float sums,
    # which differs between CPU kernels: ours/torch measured 0.98 to 1.021 across AMD and Intel machines.
    limit = 1.05 if not bounds else 0.8
    assert ours_score <= limit * torch_score, (ours_score, torch_score)


def test_float_objective_matches_torch_objective(setup, vgg19):
    """Our objective's value on a start image equals the reference's (same recipe, same weights)."""
    import torch

    from nst_rt.io.layout import to_nchw
    from nst_rt.network.session import Network
    from nst_rt.objective.whole import Objective

    _, content, style, net64, _, _ = setup
    x = np.clip(content + np.random.default_rng(0).normal(0, 0.1, content.shape), 0, 1).astype(np.float32)
    ours, _ = Objective(Network(vgg19, "cpu"), content, [style], **PLAIN)(to_nchw(x).astype(np.float64))
    loss = reference.ReferenceLoss(net64, content, style, dtype=torch.float64)
    with torch.no_grad():
        expected = float(loss(loss.tensor(x)))
    assert ours == pytest.approx(expected, rel=1e-4)
