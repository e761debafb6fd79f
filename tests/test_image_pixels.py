"""Pixel operations: resizing, the (1, 3, H, W) layout, 8-bit conversion, original colours."""

from __future__ import annotations


import numpy as np
import pytest
from PIL import Image

from nst_rt.io import images
from nst_rt.errors import ImageError, OptionError
from nst_rt.io.images import original_colors, resize_longest, resize_to, to_uint8
from nst_rt.io.layout import from_nchw, to_nchw

from image_checks import check_float_image, noise


# --------------------------------------------------------------- resizing


def test_resize_longest_landscape_and_portrait():
    land = np.random.default_rng(1).random((300, 451, 3), dtype=np.float32)
    out = resize_longest(land, 128)
    check_float_image(out, (85, 128, 3))
    port = np.ascontiguousarray(land.transpose(1, 0, 2))
    check_float_image(resize_longest(port, 128), (128, 85, 3))
    check_float_image(resize_longest(land, 902), (600, 902, 3))  # upscaling


def test_resize_longest_keeps_at_least_one_pixel():
    thin = np.zeros((1, 1000, 3), np.float32)
    assert resize_longest(thin, 10).shape == (1, 10, 3)


@pytest.mark.parametrize("bad", [0, -5, 2.5, True])
def test_resize_longest_bad_size(bad):
    with pytest.raises(OptionError):
        resize_longest(np.zeros((4, 4, 3), np.float32), bad)


def test_resize_to_exact_float_precision_and_clipped():
    img = np.full((40, 60, 3), 0.5004, np.float32)  # not on the 8-bit grid
    out = resize_to(img, (17, 23))
    check_float_image(out, (17, 23, 3))
    np.testing.assert_allclose(out, 0.5004, atol=1e-5)
    edge = np.zeros((32, 32, 3), np.float32)
    edge[:, 16:] = 1.0  # a hard edge makes Lanczos overshoot
    up = resize_to(edge, (32, 77))
    check_float_image(up, (32, 77, 3))
    assert up.max() == 1.0 and up.min() == 0.0


def test_resize_to_channels_independent():
    img = np.zeros((10, 10, 3), np.float32)
    img[..., 1] = 1.0
    out = resize_to(img, (5, 7))
    np.testing.assert_allclose(out[..., 0], 0, atol=1e-6)
    np.testing.assert_allclose(out[..., 1], 1, atol=1e-6)


# ----------------------------------------------------------------- layout


def test_nchw_round_trip():
    img = np.random.default_rng(2).random((5, 7, 3), dtype=np.float32)
    x = to_nchw(img)
    assert x.shape == (1, 3, 5, 7) and x.dtype == np.float32 and x.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(x[0, 1], img[:, :, 1])
    back = from_nchw(x.astype(np.float64))
    assert back.dtype == np.float32 and back.shape == (5, 7, 3)
    np.testing.assert_array_equal(back, img)


def test_from_nchw_bad_shape():
    with pytest.raises(ImageError):
        from_nchw(np.zeros((3, 5, 7), np.float32))
    with pytest.raises(ImageError):
        from_nchw(np.zeros((1, 4, 5, 7), np.float32))


def test_to_uint8():
    img = np.array([[[-0.2, 0.0, 0.5], [1 / 255, 0.999, 1.7]]], dtype=np.float32)
    out = to_uint8(img)
    assert out.dtype == np.uint8 and out.shape == (1, 2, 3)
    np.testing.assert_array_equal(out, [[[0, 0, 128], [1, 255, 255]]])


# --------------------------------------------------------- original colors


def _ycbcr(rgb):
    rgb = np.asarray(rgb, np.float64)
    m = np.array(
        [[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]]
    )
    return rgb @ m.T + np.array([0.0, 0.5, 0.5])


def test_ycbcr_matches_pillow():
    # Pillow's RGB->YCbCr is BT.601 full range too; agree within rounding.
    rgb = noise(8, 8)
    ours = images._rgb_to_ycbcr(rgb / 255.0) * 255
    theirs = np.asarray(Image.fromarray(rgb, "RGB").convert("YCbCr")).astype(np.float64)
    np.testing.assert_allclose(ours, theirs, atol=1.01)
    back = images._ycbcr_to_rgb(images._rgb_to_ycbcr(rgb / 255.0))
    np.testing.assert_allclose(back, rgb / 255.0, atol=1e-5)


def test_original_colors_grey_plus_red():
    stylized = np.full((4, 5, 3), 0.5, np.float32)
    content = np.zeros((4, 5, 3), np.float32)
    content[...] = (0.8, 0.2, 0.2)
    out = original_colors(stylized, content)
    check_float_image(out, (4, 5, 3))
    ycc = _ycbcr(out)
    np.testing.assert_allclose(ycc[..., 0], 0.5, atol=1e-5)  # stylized's luminance
    np.testing.assert_allclose(ycc[..., 1:], _ycbcr(content)[..., 1:], atol=1e-5)  # content's chroma
    assert out[0, 0, 0] > out[0, 0, 1] + 0.3  # and it is red


def test_original_colors_per_pixel_luminance_and_resize():
    rng = np.random.default_rng(4)
    stylized = (0.3 + 0.4 * rng.random((6, 8, 3))).astype(np.float32)
    content = np.zeros((3, 4, 3), np.float32)
    content[...] = (0.45, 0.55, 0.5)  # constant, so resizing keeps it exact
    out = original_colors(stylized, content)
    check_float_image(out, (6, 8, 3))
    np.testing.assert_allclose(_ycbcr(out)[..., 0], _ycbcr(stylized)[..., 0], atol=1e-5)
    np.testing.assert_allclose(_ycbcr(out)[..., 1:], np.broadcast_to(_ycbcr(content)[0, 0, 1:], (6, 8, 2)), atol=1e-5)


def test_resize_longest_rounds_half_up():
    img = np.zeros((300, 451, 3), np.float32)
    assert resize_longest(img, 64).shape == (43, 64, 3)  # 300 * 64 / 451 = 42.57
    assert resize_longest(np.zeros((2, 3, 3), np.float32), 4).shape == (3, 4, 3)  # 2.67
    assert resize_longest(np.zeros((451, 300, 3), np.float32), 64).shape == (64, 43, 3)
    assert resize_longest(np.zeros((3, 2, 3), np.float32), 4).shape == (4, 3, 3)
