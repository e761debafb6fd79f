"""Tests for image_load, images, layout and image_save: loading every Pillow mode, errors, resizing, saving."""

from __future__ import annotations

import errno
import os
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, features

from nst_rt.io import images
from nst_rt.errors import ImageError, OptionError
from nst_rt.io.image_load import load_image
from nst_rt.io.image_save import check_output_path, save_gif, save_image
from nst_rt.io.images import original_colors, resize_longest, resize_to, to_uint8
from nst_rt.io.layout import from_nchw, to_nchw


def _check_float_image(x, shape=None):
    assert isinstance(x, np.ndarray)
    assert x.dtype == np.float32
    assert x.ndim == 3 and x.shape[2] == 3
    assert x.min() >= 0.0 and x.max() <= 1.0
    if shape is not None:
        assert x.shape == shape


def _one_line_error(excinfo, *needles):
    msg = str(excinfo.value)
    assert "\n" not in msg
    for needle in needles:
        assert needle in msg, msg
    return msg


def _saved(img: Image.Image, path, **kw):
    img.save(path, **kw)
    return path


# ------------------------------------------------------------------ modes


def test_rgb_png_exact(tmp_path):
    arr = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3) * 7
    p = _saved(Image.fromarray(arr, "RGB"), tmp_path / "a.png")
    out = load_image(p)
    _check_float_image(out, (2, 3, 3))
    np.testing.assert_array_equal(out, arr.astype(np.float32) / 255)
    # str paths work the same as Path objects
    np.testing.assert_array_equal(load_image(str(p)), out)


def test_rgba_composited_over_white(tmp_path):
    arr = np.array([[[255, 0, 0, 128], [0, 0, 0, 0], [10, 20, 30, 255]]], dtype=np.uint8)
    p = _saved(Image.fromarray(arr, "RGBA"), tmp_path / "a.png")
    out = load_image(p)
    _check_float_image(out, (1, 3, 3))
    a = 128 / 255
    np.testing.assert_allclose(out[0, 0], [1.0, 1 - a, 1 - a], atol=1e-6)
    np.testing.assert_allclose(out[0, 1], [1.0, 1.0, 1.0], atol=1e-6)  # transparent black -> white
    np.testing.assert_allclose(out[0, 2], np.array([10, 20, 30]) / 255, atol=1e-6)


def test_la_composited_over_white(tmp_path):
    img = Image.new("LA", (2, 1))
    img.putpixel((0, 0), (0, 0))
    img.putpixel((1, 0), (100, 255))
    out = load_image(_saved(img, tmp_path / "la.png"))
    _check_float_image(out, (1, 2, 3))
    np.testing.assert_allclose(out[0, 0], [1, 1, 1], atol=1e-6)
    np.testing.assert_allclose(out[0, 1], [100 / 255] * 3, atol=1e-6)


def test_palette_with_transparency(tmp_path):
    img = Image.new("P", (2, 1))
    img.putpalette([0, 0, 0, 200, 10, 10] + [0] * (254 * 3))
    img.putpixel((0, 0), 0)
    img.putpixel((1, 0), 1)
    img.info["transparency"] = 0
    p = tmp_path / "p.png"
    img.save(p, transparency=0)
    assert "transparency" in Image.open(p).info
    out = load_image(p)
    np.testing.assert_allclose(out[0, 0], [1, 1, 1], atol=1e-6)  # transparent black -> white
    np.testing.assert_allclose(out[0, 1], np.array([200, 10, 10]) / 255, atol=1e-6)


def test_palette_without_transparency(tmp_path):
    img = Image.new("P", (2, 1))
    img.putpalette([0, 0, 0, 200, 10, 10] + [0] * (254 * 3))
    img.putpixel((1, 0), 1)
    out = load_image(_saved(img, tmp_path / "p.png"))
    np.testing.assert_allclose(out[0, 0], [0, 0, 0], atol=1e-6)
    np.testing.assert_allclose(out[0, 1], np.array([200, 10, 10]) / 255, atol=1e-6)


def test_greyscale_l(tmp_path):
    out = load_image(_saved(Image.new("L", (3, 2), 77), tmp_path / "l.png"))
    _check_float_image(out, (2, 3, 3))
    np.testing.assert_allclose(out, 77 / 255, atol=1e-7)


def test_bilevel_1(tmp_path):
    img = Image.new("1", (2, 1), 0)
    img.putpixel((1, 0), 1)
    out = load_image(_saved(img, tmp_path / "b.png"))
    np.testing.assert_array_equal(out[0, 0], [0, 0, 0])
    np.testing.assert_array_equal(out[0, 1], [1, 1, 1])


def test_cmyk(tmp_path):
    img = Image.new("CMYK", (3, 1))
    img.putpixel((0, 0), (0, 0, 0, 0))
    img.putpixel((1, 0), (0, 0, 0, 255))
    img.putpixel((2, 0), (255, 0, 0, 0))
    p = _saved(img, tmp_path / "c.tif")
    assert Image.open(p).mode == "CMYK"
    out = load_image(p)
    _check_float_image(out, (1, 3, 3))
    np.testing.assert_allclose(out[0], [[1, 1, 1], [0, 0, 0], [0, 1, 1]], atol=1e-6)


def test_16bit_grey_png_not_clipped_at_255(tmp_path):
    arr = np.array([[0, 40000, 65535]], dtype=np.uint16)
    p = _saved(Image.fromarray(arr), tmp_path / "g16.png")
    assert Image.open(p).mode in ("I;16", "I")
    out = load_image(p)
    _check_float_image(out, (1, 3, 3))
    np.testing.assert_allclose(out[0, :, 0], [0, 40000 / 65535, 1.0], atol=1e-6)
    np.testing.assert_array_equal(out[..., 0], out[..., 2])


def test_16bit_big_endian_pil_image():
    arr = np.array([[40000, 1000]], dtype=np.uint16)
    img = Image.frombytes("I;16B", (2, 1), arr.astype(">u2").tobytes())
    assert img.mode == "I;16B"
    out = load_image(img)
    np.testing.assert_allclose(out[0, :, 1], [40000 / 65535, 1000 / 65535], atol=1e-6)


def test_mode_i_scaled_and_clipped():
    img = Image.fromarray(np.array([[40000, 70000, -5]], dtype=np.int32))
    assert img.mode == "I"
    out = load_image(img)
    _check_float_image(out, (1, 3, 3))
    np.testing.assert_allclose(out[0, :, 0], [40000 / 65535, 1.0, 0.0], atol=1e-6)


def test_mode_f(tmp_path):
    img = Image.fromarray(np.array([[0.25, 1.5, -1.0]], dtype=np.float32))
    assert img.mode == "F"
    p = _saved(img, tmp_path / "f.tif")
    out = load_image(p)
    _check_float_image(out, (1, 3, 3))
    np.testing.assert_allclose(out[0, :, 2], [0.25, 1.0, 0.0], atol=1e-7)


def _png_rgb16(width, height, rgb16):
    raw = b"".join(b"\x00" + struct.pack(">" + "H" * 3 * width, *(list(rgb16) * width)) for _ in range(height))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def test_16bit_rgb_png_is_read_as_8_bits(tmp_path):
    # Pillow has no 16-bit colour mode: it keeps the high byte of each channel. The README says so;
    # if a Pillow version reads full precision this fails and the README must change with it.
    p = tmp_path / "rgb16.png"
    p.write_bytes(_png_rgb16(4, 3, (0x1234, 0x80FF, 0xFFFF)))
    out = load_image(p)
    _check_float_image(out, (3, 4, 3))
    np.testing.assert_array_equal(out[1, 2], np.array([0x12, 0x80, 0xFF], np.float32) / 255)


def test_exif_orientation_6_portrait(tmp_path):
    arr = np.zeros((20, 40, 3), dtype=np.uint8)  # stored landscape: 40 wide, 20 high
    arr[:10, :10] = (255, 0, 0)  # red block top-left
    img = Image.fromarray(arr, "RGB")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    p = tmp_path / "phone.jpg"
    img.save(p, exif=exif, quality=95)
    out = load_image(p)
    _check_float_image(out, (40, 20, 3))  # portrait
    # Clockwise rotation moves the top-left block to the top-right.
    assert out[2:8, -8:-2, 0].mean() > 0.8
    assert out[2:8, 2:8, 0].mean() < 0.2


# ----------------------------------------------------------------- arrays


def test_array_uint8_uint16_float_grey_rgba():
    u8 = np.full((2, 2, 3), 51, dtype=np.uint8)
    np.testing.assert_allclose(load_image(u8), 0.2, atol=1e-7)
    u16 = np.full((2, 2, 3), 40000, dtype=np.uint16)
    np.testing.assert_allclose(load_image(u16), 40000 / 65535, atol=1e-7)
    f64 = np.array([[[-0.5, 0.5, 2.0]]], dtype=np.float64)
    out = load_image(f64)
    _check_float_image(out, (1, 1, 3))
    np.testing.assert_allclose(out[0, 0], [0, 0.5, 1])
    grey = np.array([[0, 255]], dtype=np.uint8)
    np.testing.assert_allclose(load_image(grey), [[[0, 0, 0], [1, 1, 1]]])
    rgba = np.array([[[0.0, 0.0, 0.0, 0.25]]], dtype=np.float32)
    np.testing.assert_allclose(load_image(rgba), [[[0.75, 0.75, 0.75]]], atol=1e-6)


def test_array_is_not_aliased():
    src = np.full((2, 2, 3), 0.5, dtype=np.float32)
    out = load_image(src)
    out[:] = 0
    assert src[0, 0, 0] == 0.5


@pytest.mark.parametrize(
    "arr, needle",
    [
        (np.zeros((2, 2, 2), np.uint8), "shape"),
        (np.zeros((2, 2, 3, 1), np.uint8), "shape"),
        (np.zeros((5,), np.uint8), "shape"),
        (np.zeros((0, 4, 3), np.uint8), "empty"),
        (np.zeros((2, 2, 3), np.int64), "dtype"),
        (np.zeros((2, 2, 3), bool), "dtype"),
        (np.full((2, 2, 3), np.nan, np.float32), "NaN"),
    ],
)
def test_bad_arrays(arr, needle):
    with pytest.raises(ImageError) as ei:
        load_image(arr, role="style")
    _one_line_error(ei, needle, "style")


def test_wrong_source_type():
    with pytest.raises(ImageError):
        load_image(42)


def test_zero_size_pil_image():
    with pytest.raises(ImageError) as ei:
        load_image(Image.new("RGB", (0, 0)))
    _one_line_error(ei, "empty")


# ----------------------------------------------------------------- errors


def test_missing_file(tmp_path):
    p = tmp_path / "nope.png"
    with pytest.raises(ImageError) as ei:
        load_image(p, role="content")
    _one_line_error(ei, "content", str(p), "does not exist")


def test_directory(tmp_path):
    with pytest.raises(ImageError) as ei:
        load_image(tmp_path)
    _one_line_error(ei, str(tmp_path), "directory")


def test_text_file_renamed_png(tmp_path):
    p = tmp_path / "notes.png"
    p.write_text("this is not a picture\n")
    with pytest.raises(ImageError) as ei:
        load_image(p, role="style")
    _one_line_error(ei, str(p), "not an image")


def test_empty_file(tmp_path):
    p = tmp_path / "empty.png"
    p.write_bytes(b"")
    with pytest.raises(ImageError) as ei:
        load_image(p)
    _one_line_error(ei, str(p), "empty")


def _noise(h=64, w=64):
    return np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize("name, kw", [("t.png", {}), ("t.jpg", {"quality": 90})])
def test_truncated_file(tmp_path, name, kw):
    full = tmp_path / ("full_" + name)
    Image.fromarray(_noise(), "RGB").save(full, **kw)
    data = full.read_bytes()
    p = tmp_path / name
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError) as ei:
        load_image(p)
    _one_line_error(ei, str(p), "truncated")


def test_decompression_bomb_error(tmp_path, monkeypatch):
    p = _saved(Image.new("RGB", (30, 20)), tmp_path / "big.png")  # 600 pixels
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # error above 200
    with pytest.raises(ImageError) as ei:
        load_image(p)
    _one_line_error(ei, str(p), "600 pixels", "200", "too large")


def test_decompression_bomb_warning_is_an_error(tmp_path, monkeypatch):
    p = _saved(Image.new("RGB", (30, 20)), tmp_path / "big.png")  # 600 pixels
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 400)  # warning between 400 and 800
    with pytest.raises(ImageError) as ei:
        load_image(p)
    _one_line_error(ei, "600 pixels", "400", "too large")


# --------------------------------------------------------------- resizing


def test_resize_longest_landscape_and_portrait():
    land = np.random.default_rng(1).random((300, 451, 3), dtype=np.float32)
    out = resize_longest(land, 128)
    _check_float_image(out, (85, 128, 3))
    port = np.ascontiguousarray(land.transpose(1, 0, 2))
    _check_float_image(resize_longest(port, 128), (128, 85, 3))
    _check_float_image(resize_longest(land, 902), (600, 902, 3))  # upscaling


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
    _check_float_image(out, (17, 23, 3))
    np.testing.assert_allclose(out, 0.5004, atol=1e-5)
    edge = np.zeros((32, 32, 3), np.float32)
    edge[:, 16:] = 1.0  # a hard edge makes Lanczos overshoot
    up = resize_to(edge, (32, 77))
    _check_float_image(up, (32, 77, 3))
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


# ------------------------------------------------------------------ saving


def test_save_png_round_trip_uint8_exact(tmp_path):
    arr = _noise(9, 13)
    p = save_image(arr, tmp_path / "out.png")
    assert p == tmp_path / "out.png"
    np.testing.assert_array_equal(np.asarray(Image.open(p)), arr)
    assert os.listdir(tmp_path) == ["out.png"]  # no temp file left behind


def test_save_float_is_to_uint8(tmp_path):
    img = np.random.default_rng(3).random((6, 5, 3)).astype(np.float32)
    p = save_image(img, tmp_path / "out.png")
    np.testing.assert_array_equal(np.asarray(Image.open(p)), to_uint8(img))
    np.testing.assert_allclose(load_image(p), img, atol=0.5 / 255 + 1e-6)


def test_save_pil_image(tmp_path):
    p = save_image(Image.new("RGBA", (3, 2), (0, 0, 0, 0)), tmp_path / "out.jpg")
    with Image.open(p) as im:
        assert im.format == "JPEG" and im.mode == "RGB" and im.size == (3, 2)
        assert np.asarray(im).min() > 240  # transparent -> white


@pytest.mark.parametrize("suffix, fmt", [(".jpg", "JPEG"), (".JPEG", "JPEG"), (".bmp", "BMP"), (".tif", "TIFF"), (".tiff", "TIFF"), (".webp", "WEBP")])
def test_save_formats(tmp_path, suffix, fmt):
    if fmt == "WEBP" and not features.check("webp"):
        pytest.skip("Pillow built without WebP")
    arr = np.full((8, 8, 3), (200, 100, 50), dtype=np.uint8)
    p = save_image(arr, tmp_path / f"out{suffix}")
    with Image.open(p) as im:
        assert im.format == fmt
        np.testing.assert_allclose(np.asarray(im.convert("RGB")).astype(int), arr, atol=4)


def test_save_failure_leaves_nothing(tmp_path, monkeypatch):
    def broken_save(self, fp, *args, **kwargs):
        fp.write(b"\x89PNG half")
        raise OSError("No space left on device")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(ImageError) as ei:
        save_image(np.zeros((4, 4, 3), np.float32), tmp_path / "out.png")
    _one_line_error(ei, "out.png", "No space left")
    assert os.listdir(tmp_path) == []


def test_save_failure_keeps_old_file_with_overwrite(tmp_path, monkeypatch):
    target = tmp_path / "out.png"
    target.write_bytes(b"old bytes")

    def broken_save(self, fp, *args, **kwargs):
        raise OSError("boom")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(ImageError):
        save_image(np.zeros((4, 4, 3), np.float32), target, overwrite=True)
    assert target.read_bytes() == b"old bytes"
    assert os.listdir(tmp_path) == ["out.png"]


def test_temp_file_name_is_hidden_next_to_target(tmp_path, monkeypatch):
    seen = []
    real_link = os.link

    def spy(src, dst):
        seen.append(os.path.basename(src))
        return real_link(src, dst)

    monkeypatch.setattr(os, "link", spy)
    save_image(np.zeros((2, 2, 3), np.float32), tmp_path / "out.png")
    assert len(seen) == 1
    assert seen[0].startswith(".") and "out.png" in seen[0] and seen[0].endswith(".tmp")
    assert os.listdir(tmp_path) == ["out.png"]


def test_refuse_overwrite(tmp_path):
    target = tmp_path / "out.png"
    target.write_bytes(b"precious")
    with pytest.raises(ImageError) as ei:
        save_image(np.zeros((2, 2, 3), np.float32), target)
    _one_line_error(ei, str(target), "--overwrite")
    assert target.read_bytes() == b"precious"
    assert os.listdir(tmp_path) == ["out.png"]
    save_image(np.zeros((2, 2, 3), np.float32), target, overwrite=True)
    assert Image.open(target).size == (2, 2)


def test_missing_directory(tmp_path):
    with pytest.raises(ImageError) as ei:
        save_image(np.zeros((2, 2, 3), np.float32), tmp_path / "sub" / "out.png")
    _one_line_error(ei, "directory", "does not exist", str(tmp_path / "sub"))


@pytest.mark.parametrize("name", ["out.xyz", "out", "out.gif"])
def test_unknown_suffix_before_any_work(tmp_path, name):
    # The image is invalid too: the suffix must be reported first.
    with pytest.raises(ImageError) as ei:
        save_image(np.zeros((2,), np.int64), tmp_path / name)
    _one_line_error(ei, name, ".png", ".jpg", ".webp", ".bmp", ".tif")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("name", ["x.png", "results"])
def test_output_is_directory(tmp_path, name):
    # Reported as a directory (with a file name to use), not as a missing or unknown suffix.
    d = tmp_path / name
    d.mkdir()
    with pytest.raises(ImageError) as ei:
        check_output_path(d, overwrite=True, what="--output")
    msg = _one_line_error(ei, "--output", "is a directory", str(d / "out.png"))
    assert "suffix" not in msg


def test_gif_path_errors_name_the_option(tmp_path):
    with pytest.raises(ImageError) as ei:
        check_output_path(tmp_path / "p.png", gif=True, what="--gif")
    _one_line_error(ei, "--gif", "p.png", ".gif")


def test_check_output_path_writes_nothing(tmp_path):
    p = check_output_path(str(tmp_path / "out.png"))
    assert p == tmp_path / "out.png"
    assert os.listdir(tmp_path) == []
    (tmp_path / "out.png").write_bytes(b"x")
    with pytest.raises(ImageError):
        check_output_path(tmp_path / "out.png")
    assert check_output_path(tmp_path / "out.png", overwrite=True) == tmp_path / "out.png"


def test_check_output_path_not_writable(tmp_path, monkeypatch):
    real_open = os.open

    def deny(path, *args, **kwargs):
        if str(path).startswith(str(tmp_path)):
            raise PermissionError(13, "Permission denied")
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", deny)
    with pytest.raises(ImageError) as ei:
        check_output_path(tmp_path / "out.png")
    _one_line_error(ei, "cannot write", str(tmp_path), "Permission denied")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root can write anywhere")
def test_check_output_path_read_only_dir(tmp_path):
    d = tmp_path / "ro"
    d.mkdir()
    d.chmod(0o555)
    try:
        with pytest.raises(ImageError):
            check_output_path(d / "out.png")
    finally:
        d.chmod(0o755)


# --------------------------------------------------------------------- GIF


def test_gif_frames_of_different_sizes(tmp_path):
    frames = [
        np.full((10, 15, 3), 0.0, np.float32),
        np.full((20, 30, 3), 128, np.uint8),
        np.full((40, 60, 3), 1.0, np.float64),
    ]
    p = save_gif(frames, tmp_path / "anim.gif", duration_ms=250)
    assert os.listdir(tmp_path) == ["anim.gif"]
    with Image.open(p) as im:
        assert im.format == "GIF"
        assert im.size == (60, 40)
        assert im.n_frames == 3
        assert im.info.get("loop") == 0
        assert im.info.get("duration") == 250
        firsts = []
        for i in range(3):
            im.seek(i)
            assert im.size == (60, 40)
            firsts.append(np.asarray(im.convert("RGB"))[20, 30, 0])
    assert firsts[0] < 10 and 118 < firsts[1] < 138 and firsts[2] > 245


def test_gif_checks(tmp_path):
    frame = np.zeros((4, 4, 3), np.float32)
    with pytest.raises(ImageError) as ei:
        save_gif([frame], tmp_path / "anim.png")
    _one_line_error(ei, ".gif")
    with pytest.raises(ImageError):
        save_gif([], tmp_path / "anim.gif")
    with pytest.raises(OptionError):
        save_gif([frame], tmp_path / "anim.gif", duration_ms=0)
    (tmp_path / "anim.gif").write_bytes(b"old")
    with pytest.raises(ImageError) as ei:
        save_gif([frame], tmp_path / "anim.gif")
    _one_line_error(ei, "--overwrite")
    assert (tmp_path / "anim.gif").read_bytes() == b"old"
    assert check_output_path(tmp_path / "new.gif", gif=True) == tmp_path / "new.gif"
    assert sorted(os.listdir(tmp_path)) == ["anim.gif"]


# --------------------------------------------------------- original colors


def _ycbcr(rgb):
    rgb = np.asarray(rgb, np.float64)
    m = np.array(
        [[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]]
    )
    return rgb @ m.T + np.array([0.0, 0.5, 0.5])


def test_ycbcr_matches_pillow():
    # Pillow's RGB->YCbCr is BT.601 full range too; agree within rounding.
    rgb = _noise(8, 8)
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
    _check_float_image(out, (4, 5, 3))
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
    _check_float_image(out, (6, 8, 3))
    np.testing.assert_allclose(_ycbcr(out)[..., 0], _ycbcr(stylized)[..., 0], atol=1e-5)
    np.testing.assert_allclose(_ycbcr(out)[..., 1:], np.broadcast_to(_ycbcr(content)[0, 0, 1:], (6, 8, 2)), atol=1e-5)


def test_resize_longest_rounds_half_up():
    img = np.zeros((300, 451, 3), np.float32)
    assert resize_longest(img, 64).shape == (43, 64, 3)  # 300 * 64 / 451 = 42.57
    assert resize_longest(np.zeros((2, 3, 3), np.float32), 4).shape == (3, 4, 3)  # 2.67
    assert resize_longest(np.zeros((451, 300, 3), np.float32), 64).shape == (64, 43, 3)
    assert resize_longest(np.zeros((3, 2, 3), np.float32), 4).shape == (4, 3, 3)


def test_save_bad_image_type(tmp_path):
    with pytest.raises(ImageError):
        save_image("not an image", tmp_path / "out.png")
    with pytest.raises(ImageError):
        save_image(np.zeros((2, 2, 3), np.int32), tmp_path / "out.png")
    assert os.listdir(tmp_path) == []


def test_save_does_not_clobber_file_created_during_write(tmp_path, monkeypatch):
    target = tmp_path / "out.png"
    real_save = Image.Image.save

    def racing_save(self, fp, *args, **kwargs):
        target.write_bytes(b"someone else's")
        return real_save(self, fp, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", racing_save)
    with pytest.raises(ImageError) as ei:
        save_image(np.zeros((2, 2, 3), np.float32), target)
    _one_line_error(ei, "--overwrite")
    assert target.read_bytes() == b"someone else's"
    assert os.listdir(tmp_path) == ["out.png"]


# ------------------------------------------------------------- no clobber


def _existing(tmp_path):
    target = tmp_path / "out.png"
    target.write_bytes(b"someone else's")
    return target


def test_no_clobber_does_not_rely_on_the_existence_check(tmp_path, monkeypatch):
    # The file appears between any check and the naming: the naming itself must refuse (os.link).
    target = _existing(tmp_path)
    monkeypatch.setattr(os.path, "lexists", lambda path: False)
    with pytest.raises(ImageError) as ei:
        save_image(np.zeros((2, 2, 3), np.float32), target)
    _one_line_error(ei, "already exists", "--overwrite")
    assert target.read_bytes() == b"someone else's"
    assert os.listdir(tmp_path) == ["out.png"]


def _no_hard_links(monkeypatch):
    def refuse(src, dst):
        raise PermissionError(errno.EPERM, "Operation not permitted")  # what vfat answers

    monkeypatch.setattr(os, "link", refuse)


def test_without_hard_links_the_write_still_succeeds(tmp_path, monkeypatch):
    _no_hard_links(monkeypatch)
    arr = (np.arange(4 * 5 * 3).reshape(4, 5, 3) * 3).astype(np.uint8)
    save_image(arr, tmp_path / "out.png")
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "out.png")), arr)
    assert os.listdir(tmp_path) == ["out.png"]


def test_without_hard_links_no_clobber_still_holds(tmp_path, monkeypatch):
    _no_hard_links(monkeypatch)
    target = _existing(tmp_path)
    monkeypatch.setattr(os.path, "lexists", lambda path: False)
    with pytest.raises(ImageError) as ei:
        save_image(np.zeros((2, 2, 3), np.float32), target)
    _one_line_error(ei, "already exists")
    assert target.read_bytes() == b"someone else's"
    assert os.listdir(tmp_path) == ["out.png"]


def test_without_hard_links_a_failed_rename_leaves_nothing(tmp_path, monkeypatch):
    _no_hard_links(monkeypatch)

    def broken_replace(src, dst):
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(ImageError) as ei:
        save_image(np.zeros((2, 2, 3), np.float32), tmp_path / "out.png")
    _one_line_error(ei, "could not write")
    assert os.listdir(tmp_path) == []  # neither the reservation nor the temporary file


def test_overwrite_replaces_in_one_rename(tmp_path, monkeypatch):
    target = _existing(tmp_path)
    monkeypatch.setattr(os, "link", lambda src, dst: pytest.fail("overwrite must not link"))
    save_image(np.ones((2, 2, 3), np.float32), target, overwrite=True)
    assert np.asarray(Image.open(target)).min() == 255
    assert os.listdir(tmp_path) == ["out.png"]


# ------------------------------------------------------------- tiny sources


@pytest.mark.parametrize("shape", [(1, 1), (15, 300), (300, 15)])
def test_a_source_below_the_minimum_is_refused(shape):
    with pytest.raises(ImageError) as ei:
        load_image(np.zeros((*shape, 3), np.float32), role="content image", min_side=16)
    _one_line_error(ei, "content image", f"{shape[1]}x{shape[0]}", "16 px", "larger image")


def test_a_source_at_the_minimum_is_accepted(tmp_path):
    p = _saved(Image.new("RGB", (16, 40)), tmp_path / "small.png")
    _check_float_image(load_image(p, min_side=16), (40, 16, 3))
    _check_float_image(load_image(np.zeros((1, 1, 3), np.float32)), (1, 1, 3))  # no minimum unless asked


# ------------------------------------------------------------- colour profiles

# Adobe RGB (1998) colorants, adapted to D50 as ICC profiles store them, and its gamma of 563/256.
ADOBE_RGB = np.array([[0.6097, 0.3111, 0.0195], [0.2053, 0.6257, 0.0609], [0.1492, 0.0632, 0.7446]])
ADOBE_GAMMA = 563 / 256
# littlecms' built-in sRGB colorants (D50).
SRGB = np.array([[0.4361, 0.2225, 0.0139], [0.3851, 0.7169, 0.0971], [0.1431, 0.0606, 0.7141]])


def _icc_rgb_profile(colorants, gamma) -> bytes:
    """A minimal ICC v2 matrix/TRC display profile: D50 colorants (one row per primary), one gamma curve."""

    def s15(x):
        return struct.pack(">i", int(round(x * 65536)))

    def xyz(values):
        return b"XYZ " + bytes(4) + b"".join(s15(v) for v in values)

    name = b"test RGB"
    curve = b"curv" + bytes(4) + struct.pack(">IH", 1, int(round(gamma * 256)))
    desc = b"desc" + bytes(4) + struct.pack(">I", len(name) + 1) + name + bytes(1 + 8 + 70)
    tags = [(b"desc", desc), (b"wtpt", xyz((0.9642, 1.0, 0.8249))), (b"rXYZ", xyz(colorants[0])),
            (b"gXYZ", xyz(colorants[1])), (b"bXYZ", xyz(colorants[2])),
            (b"rTRC", curve), (b"gTRC", curve), (b"bTRC", curve)]
    offset = 128 + 4 + 12 * len(tags)
    table = data = b""
    for signature, body in tags:
        body += bytes(-len(body) % 4)
        table += signature + struct.pack(">II", offset + len(data), len(body))
        data += body
    header = (struct.pack(">I", offset + len(data)) + bytes(4) + bytes([2, 0x10, 0, 0]) + b"mntrRGB XYZ "
              + bytes(12) + b"acsp" + bytes(28) + s15(0.9642) + s15(1.0) + s15(0.8249) + bytes(48))
    return header + struct.pack(">I", len(tags)) + table + data


def _srgb_encode(linear):
    linear = np.clip(linear, 0.0, 1.0)
    return np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055)


PIXELS = np.array([[[200, 100, 50], [90, 160, 110], [128, 128, 128], [30, 60, 200]]], np.uint8)


@pytest.mark.skipif(not features.check("littlecms2"), reason="Pillow built without littlecms")
@pytest.mark.parametrize("suffix, options", [(".png", {}), (".jpg", {"quality": 100, "subsampling": 0}), (".tif", {})])
def test_adobe_rgb_profile_is_converted_to_srgb(tmp_path, suffix, options):
    p = _saved(Image.fromarray(PIXELS), tmp_path / f"adobe{suffix}",
               icc_profile=_icc_rgb_profile(ADOBE_RGB, ADOBE_GAMMA), **options)
    stored = np.asarray(Image.open(p), np.float64) / 255  # JPEG changes the stored pixels a little
    expected = _srgb_encode(((stored ** ADOBE_GAMMA) @ ADOBE_RGB) @ np.linalg.inv(SRGB))
    out = load_image(p)
    np.testing.assert_allclose(out, expected, atol=1.5 / 255)
    assert np.abs(out - stored).max() > 20 / 255  # the conversion changed the picture


@pytest.mark.skipif(not features.check("littlecms2"), reason="Pillow built without littlecms")
def test_profile_conversion_keeps_alpha():
    rgba = np.dstack([PIXELS, np.array([[255, 0, 255, 255]], np.uint8)])
    img = Image.fromarray(rgba, "RGBA")
    img.info["icc_profile"] = _icc_rgb_profile(ADOBE_RGB, ADOBE_GAMMA)
    out = load_image(img)
    np.testing.assert_array_equal(out[0, 1], [1, 1, 1])  # transparent: white, as without a profile
    assert np.abs(out[0, 0] - PIXELS[0, 0] / 255).max() > 20 / 255


def test_an_srgb_profile_changes_nothing_and_a_broken_one_is_ignored(tmp_path):
    if features.check("littlecms2"):
        from PIL import ImageCms

        srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
        p = _saved(Image.fromarray(PIXELS), tmp_path / "srgb.png", icc_profile=srgb)
        np.testing.assert_allclose(load_image(p), PIXELS / 255, atol=1 / 255)
    p = _saved(Image.fromarray(PIXELS), tmp_path / "broken.png", icc_profile=b"not a profile")
    np.testing.assert_array_equal(load_image(p), PIXELS.astype(np.float32) / 255)
