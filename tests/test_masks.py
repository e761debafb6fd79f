"""Masks in a run (nst_rt.pipeline.masks): they put each style where they say, bad ones are refused before any
work, a region no mask covers is said once, and they are part of the checkpoint fingerprint."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from nst_rt.errors import MaskNotice
from nst_rt.pipeline import checkpoint, masks as run_masks
from nst_rt.pipeline.options import Options
from nst_rt.pipeline.stylizer import Stylizer
from cli_helpers import assert_ok, assert_one_error_line, invoke, listing, paths, stylize_args  # noqa: F401
from synthetic import save

RED, BLUE = np.array([0.9, 0.15, 0.1]), np.array([0.1, 0.2, 0.9])
H, W = 48, 64
MARGIN = 0.05  # each half's mean colour is this much closer (RGB distance) to its own style's than to the other's


def _flat(colour, h=48, w=48):
    rng = np.random.default_rng(0)  # a little noise, so the style has texture as well as its colour
    return np.clip(colour + 0.03 * rng.standard_normal((h, w, 3)), 0, 1).astype(np.float32)


def _halves(h=H, w=W):
    left = np.zeros((h, w), np.float32)
    left[:, : w // 2] = 1
    return left, 1 - left


@pytest.fixture(scope="module")
def stylizer(models):
    return Stylizer(models_dir=models, size=W, iterations=30, threads=1, content_weight=0.1, style_weight=100.0)


def test_left_and_right_masks_put_each_style_on_its_half(stylizer):
    grey = np.full((H, W, 3), 0.5, np.float32)
    left, right = _halves()
    result = stylizer.derive(style_masks=[left, right]).run(grey, [_flat(RED), _flat(BLUE)])
    image = result.image
    inner = W // 8  # away from the seam, where the receptive fields mix the halves
    left_mean = image[:, : W // 2 - inner].reshape(-1, 3).mean(0)
    right_mean = image[:, W // 2 + inner:].reshape(-1, 3).mean(0)
    distance = lambda a, b: float(np.linalg.norm(a - b))  # noqa: E731
    assert distance(left_mean, RED) + MARGIN < distance(left_mean, BLUE), (left_mean, right_mean)
    assert distance(right_mean, BLUE) + MARGIN < distance(right_mean, RED), (left_mean, right_mean)
    # Swapping the masks swaps the halves.
    swapped = stylizer.derive(style_masks=[right, left]).run(grey, [_flat(RED), _flat(BLUE)]).image
    assert distance(swapped[:, : W // 2 - inner].reshape(-1, 3).mean(0), BLUE) < distance(left_mean, BLUE)


def test_masks_follow_coarse_to_fine(stylizer):
    grey = np.full((H, W, 3), 0.5, np.float32)
    left, right = _halves(24, 32)  # any size: resized to each scale
    result = stylizer.derive(style_masks=[left, right], scales=2, iterations=5).run(grey, [_flat(RED), _flat(BLUE)])
    assert result.image.shape == (H, W, 3) and len(result.stopped_early) == 0


def test_an_uncovered_region_is_said_once(stylizer, paths, models):
    left, _ = _halves()
    with pytest.warns(MaskNotice, match="50% of the picture"):
        stylizer.derive(style_masks=[left], iterations=1, scales=1).run(np.full((H, W, 3), 0.5, np.float32),
                                                                       [_flat(RED)])
    mask = save(np.repeat(left[:, :, None], 3, 2), paths.src / "left.png")
    result = invoke(*stylize_args(paths, models, "--style-mask", mask, "--scales", "2", size=64))
    assert_ok(result)
    assert result.stderr.count("only the content and tv terms act there") == 1


@pytest.mark.parametrize("case", ["count", "missing", "unreadable", "black", "black content"])
def test_bad_masks_are_refused_before_any_work(paths, models, case):
    left = save(np.repeat(_halves()[0][:, :, None], 3, 2), paths.src / "left.png")
    black = save(np.zeros((H, W, 3)), paths.src / "black.png")
    junk = paths.src / "junk.png"
    junk.write_bytes(b"not an image")
    flags, needle = {
        "count": (["--style-mask", left, "--style-mask", left], "2 style masks for 1 style image"),
        "missing": (["--style-mask", paths.src / "nowhere.png"], "does not exist"),
        "unreadable": (["--style-mask", junk], "junk.png"),
        "black": (["--style-mask", black], "all black"),
        "black content": (["--content-mask", black], "content mask"),
    }[case]
    result = invoke(*stylize_args(paths, models, *flags, "--checkpoint-every", "0.001"))
    assert_one_error_line(result, needle)
    assert listing(paths.out) == []  # no output, no checkpoint


def test_bad_masks_fail_a_batch_before_any_picture(paths, models):
    black = save(np.zeros((H, W, 3)), paths.src / "black.png")
    result = invoke("batch", paths.content, "--style", paths.style, "--output", paths.out / "batch",
                    "--models-dir", models, "--size", 32, "--iterations", 1, "--style-mask", black)
    assert result.exit_code == 1 and "all black" in result.stderr
    assert not (paths.out / "batch").exists() or listing(paths.out / "batch") == []


def test_the_fingerprint_changes_with_masks():
    content, styles = np.zeros((8, 8, 3), np.float32), [np.ones((8, 8, 3), np.float32)]
    left, right = _halves(8, 8)
    base = Options()
    plain = checkpoint.fingerprint(base, {}, content, styles, None)
    masked = checkpoint.fingerprint(replace(base, style_masks=["a.png"]), {}, content, styles, None,
                                    run_masks.Masks(styles=[left]))
    other = checkpoint.fingerprint(replace(base, style_masks=["a.png"]), {}, content, styles, None,
                                   run_masks.Masks(styles=[right]))
    with_content = checkpoint.fingerprint(replace(base, content_mask="c.png"), {}, content, styles, None,
                                          run_masks.Masks(content=left))
    assert len({str(sorted(p.items())) for p in (plain, masked, other, with_content)}) == 4
    assert checkpoint.describe_differences(masked, other) == "another style mask 1"
    moved = checkpoint.fingerprint(replace(base, style_masks=["b/a.png"]), {}, content, styles, None,
                                   run_masks.Masks(styles=[left]))
    assert moved == masked  # by the pixels, not the path
