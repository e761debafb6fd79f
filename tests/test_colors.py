"""Colour transfer (nst_rt.io.colors): the linear transfers match mean and covariance exactly, histogram
matching matches each channel's CDF, and the original-colours modes keep what they say."""

from __future__ import annotations

import numpy as np
import pytest

from nst_rt.io import colors
from nst_rt.pipeline.options import COLOR_TRANSFERS, ORIGINAL_COLORS_MODES, Options
from nst_rt.errors import OptionError
from synthetic import gradient, noise, stripes


def _pair():
    rng = np.random.default_rng(4)
    content = np.clip(gradient(40, 60) * 0.6 + 0.2 * rng.random((40, 60, 3)), 0, 1)
    style = 0.1 + stripes(48, 48) * np.array([0.3, 0.2, 0.1]) + 0.5 * noise(48, 48)  # in [0.1, 0.9]: no atoms
    return content.astype(np.float32), style.astype(np.float32)


@pytest.mark.parametrize("method", ["pca", "chol", "sym"])
def test_linear_transfers_give_the_style_the_contents_mean_and_covariance(method):
    content, style = _pair()
    recoloured = colors.match_linear(style, content, method)  # before the clip to [0, 1]
    mean, cov = colors.statistics(recoloured)
    want_mean, want_cov = colors.statistics(content)
    np.testing.assert_allclose(mean, want_mean, atol=1e-6)
    np.testing.assert_allclose(cov, want_cov, atol=1e-6)
    assert not np.allclose(colors.statistics(style)[1], want_cov, atol=1e-3)  # there was something to change


def test_the_three_linear_transfers_differ():
    content, style = _pair()
    a, b, c = (colors.match_linear(style, content, m) for m in ("pca", "chol", "sym"))
    assert np.abs(a - b).max() > 1e-3 and np.abs(b - c).max() > 1e-3


def _quantiles(channel, q):
    return np.quantile(channel.ravel(), q, method="inverted_cdf")


def test_histogram_matching_matches_each_channels_cdf_within_one_8bit_level():
    content, style = _pair()
    content8 = np.round(content * 255) / 255  # 8-bit images, as loaded from files
    style8 = np.round(style * 255) / 255
    matched = colors.transfer(style8, content8, "histogram")
    q = np.linspace(0.01, 0.99, 99)
    for c in range(3):
        gap = np.abs(_quantiles(matched[..., c], q) - _quantiles(content8[..., c], q))
        assert gap.max() <= 1 / 255 + 1e-6, (c, gap.max())
    assert np.abs(_quantiles(style8[..., 0], q) - _quantiles(content8[..., 0], q)).max() > 5 / 255


def test_a_flat_colour_style_becomes_the_contents_mean():
    content, _ = _pair()
    flat = np.full((16, 16, 3), [0.8, 0.1, 0.1], np.float32)
    for method in ("pca", "chol", "sym"):
        np.testing.assert_allclose(colors.transfer(flat, content, method).reshape(-1, 3).mean(0),
                                   colors.statistics(content)[0], atol=1e-5)


def test_none_leaves_the_style_alone():
    content, style = _pair()
    assert colors.transfer(style, content, "none") is style


def test_lab_round_trips_and_keeps_the_results_lightness():
    content, style = _pair()
    np.testing.assert_allclose(colors.lab_to_rgb(colors.rgb_to_lab(style)), style, atol=1e-6)
    stylized = style[:40, :48]
    kept = colors.original_colors(stylized, content, "lab")  # the content is resized to the result's size
    lightness = colors.rgb_to_lab(kept)[..., 0]
    inside = (kept > 0.01).all(-1) & (kept < 0.99).all(-1)  # where no channel was clipped
    np.testing.assert_allclose(lightness[inside], colors.rgb_to_lab(stylized)[..., 0][inside], atol=1e-3)


def test_original_colors_histogram_matches_the_contents_histogram():
    content, style = _pair()
    kept = colors.original_colors(style[:40, :48], content[:40, :48], "histogram")
    q = np.linspace(0.05, 0.95, 19)
    assert np.abs(_quantiles(kept[..., 1], q) - _quantiles(content[:40, :48, 1], q)).max() < 2 / 255


def test_ycbcr_is_the_default_mode_and_the_choices_are_checked():
    assert Options().original_colors_mode == "ycbcr" and Options().color_transfer == "none"
    assert COLOR_TRANSFERS == ("none", "pca", "chol", "sym", "histogram")
    assert ORIGINAL_COLORS_MODES == ("ycbcr", "lab", "histogram")
    with pytest.raises(OptionError, match="colour transfer"):
        Options(color_transfer="lut").validated()
    with pytest.raises(OptionError, match="original-colors mode"):
        Options(original_colors_mode="hsv").validated()


def test_color_transfer_changes_the_style_the_run_sees(models):
    from nst_rt.pipeline.stylizer import Stylizer

    content, style = _pair()
    seen = []
    base = Stylizer(models_dir=models, size=32, iterations=2, threads=1, scales=1)
    for method in ("none", "pca"):
        def wrap(objective, size, seen=seen):
            seen.append({l: t.copy() for l, t in objective.style_targets.items()})
            return objective
        base.derive(color_transfer=method).run(content, style, wrap_objective=wrap)
    assert any(not np.allclose(seen[0][l], seen[1][l]) for l in seen[0])
