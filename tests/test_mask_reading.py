"""How a mask is read (nst_rt.pipeline.masks): its alpha channel where it has a transparent part, else its
luminance; a mask of another aspect ratio than the content is said, not stretched silently."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from PIL import Image

from nst_rt.errors import MaskShapeNotice
from nst_rt.pipeline import masks as run_masks
from nst_rt.pipeline.options import Options
from nst_rt.pipeline.stylizer import Stylizer
from cli_helpers import invoke, paths, stylize_args  # noqa: F401 (paths: fixture)
from synthetic import save

H, W = 24, 32


def _png(rgba: np.ndarray, path):
    Image.fromarray(rgba, "RGBA").save(path)
    return path


def _left_opaque_black(h=H, w=W) -> np.ndarray:
    """An RGBA mask drawn in black on a transparent background: opaque on the left half, transparent on the right."""
    rgba = np.zeros((h, w, 4), np.uint8)
    rgba[:, : w // 2, 3] = 255
    return rgba


@pytest.mark.parametrize("given", ["file", "PIL image", "array"])
def test_an_rgba_mask_is_its_alpha_channel(tmp_path, given):
    rgba = _left_opaque_black()
    source = {"file": lambda: _png(rgba, tmp_path / "mask.png"), "PIL image": lambda: Image.fromarray(rgba, "RGBA"),
              "array": lambda: rgba}[given]()
    mask, = run_masks.load(Options(style_masks=[source]), 1).styles
    np.testing.assert_array_equal(mask[:, : W // 2], 1.0)  # opaque: this style acts, whatever colour is drawn
    np.testing.assert_array_equal(mask[:, W // 2:], 0.0)  # transparent: it does not


def test_an_opaque_rgba_mask_is_read_by_its_luminance(tmp_path):
    rgba = np.full((H, W, 4), 255, np.uint8)
    rgba[:, : W // 2, :3] = 0  # black on the left, every pixel opaque
    mask, = run_masks.load(Options(content_mask=None, style_masks=[_png(rgba, tmp_path / "m.png")]), 1).styles
    np.testing.assert_array_equal(mask[:, : W // 2], 0.0)
    np.testing.assert_array_equal(mask[:, W // 2:], 1.0)


def _notices(stylizer, content, **masks) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", MaskShapeNotice)
        stylizer.derive(**masks).run(content, [np.full((32, 32, 3), 0.5, np.float32)])
    return [str(w.message) for w in caught if issubclass(w.category, MaskShapeNotice)]


def test_masks_of_another_aspect_ratio_are_said_in_one_notice(models):
    stylizer = Stylizer(models_dir=models, size=32, iterations=1, threads=1)
    content = np.full((H, W, 3), 0.5, np.float32)  # 4:3
    square, same_ratio = np.ones((30, 30), np.float32), np.ones((H * 2, W * 2), np.float32)
    assert _notices(stylizer, content, style_masks=[square], content_mask=square) == [
        "style mask 1 (30x30 px, aspect ratio 1.00) and content mask (30x30 px, aspect ratio 1.00) are stretched to "
        "the content's 32x24 (aspect ratio 1.33); draw masks at the content's aspect ratio"]
    within = np.ones((100, 135), np.float32)  # 1.35 against 1.33: 1.25% off, within the tolerance
    assert run_masks.ASPECT_TOLERANCE > 0.0125
    assert _notices(stylizer, content, style_masks=[same_ratio]) == []
    assert _notices(stylizer, content, style_masks=[within]) == []


def test_the_command_line_says_a_stretched_mask_in_one_line(paths, models, tmp_path):
    mask = save(np.ones((32, 32, 3), np.float32), tmp_path / "square.png")  # the content is not square
    result = invoke(*stylize_args(paths, models, "--style-mask", mask, iterations=1))
    assert result.exit_code == 0, result.output
    said = [line for line in result.stderr.splitlines() if "stretched" in line]
    assert len(said) == 1 and said[0].startswith("nst-rt: note: style mask 1 (32x32 px, aspect ratio 1.00) is stretched to the content's 60x40"), said
