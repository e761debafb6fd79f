"""Reading images: every Pillow mode, arrays, unreadable files, tiny sources, colour profiles."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from PIL import Image, features

from nst_rt.errors import ImageError
from nst_rt.io.image_load import load_image

from image_checks import check_float_image, one_line_error, saved, noise


# ------------------------------------------------------------------ modes


def test_rgb_png_exact(tmp_path):
    arr = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3) * 7
    p = saved(Image.fromarray(arr, "RGB"), tmp_path / "a.png")
    out = load_image(p)
    check_float_image(out, (2, 3, 3))
    np.testing.assert_array_equal(out, arr.astype(np.float32) / 255)
    # str paths work the same as Path objects
    np.testing.assert_array_equal(load_image(str(p)), out)


def test_rgba_composited_over_white(tmp_path):
    arr = np.array([[[255, 0, 0, 128], [0, 0, 0, 0], [10, 20, 30, 255]]], dtype=np.uint8)
    p = saved(Image.fromarray(arr, "RGBA"), tmp_path / "a.png")
    out = load_image(p)
    check_float_image(out, (1, 3, 3))
    a = 128 / 255
    np.testing.assert_allclose(out[0, 0], [1.0, 1 - a, 1 - a], atol=1e-6)
    np.testing.assert_allclose(out[0, 1], [1.0, 1.0, 1.0], atol=1e-6)  # transparent black -> white
    np.testing.assert_allclose(out[0, 2], np.array([10, 20, 30]) / 255, atol=1e-6)


def test_la_composited_over_white(tmp_path):
    img = Image.new("LA", (2, 1))
    img.putpixel((0, 0), (0, 0))
    img.putpixel((1, 0), (100, 255))
    out = load_image(saved(img, tmp_path / "la.png"))
    check_float_image(out, (1, 2, 3))
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
    out = load_image(saved(img, tmp_path / "p.png"))
    np.testing.assert_allclose(out[0, 0], [0, 0, 0], atol=1e-6)
    np.testing.assert_allclose(out[0, 1], np.array([200, 10, 10]) / 255, atol=1e-6)


def test_greyscale_l(tmp_path):
    out = load_image(saved(Image.new("L", (3, 2), 77), tmp_path / "l.png"))
    check_float_image(out, (2, 3, 3))
    np.testing.assert_allclose(out, 77 / 255, atol=1e-7)


def test_bilevel_1(tmp_path):
    img = Image.new("1", (2, 1), 0)
    img.putpixel((1, 0), 1)
    out = load_image(saved(img, tmp_path / "b.png"))
    np.testing.assert_array_equal(out[0, 0], [0, 0, 0])
    np.testing.assert_array_equal(out[0, 1], [1, 1, 1])


def test_cmyk(tmp_path):
    img = Image.new("CMYK", (3, 1))
    img.putpixel((0, 0), (0, 0, 0, 0))
    img.putpixel((1, 0), (0, 0, 0, 255))
    img.putpixel((2, 0), (255, 0, 0, 0))
    p = saved(img, tmp_path / "c.tif")
    assert Image.open(p).mode == "CMYK"
    out = load_image(p)
    check_float_image(out, (1, 3, 3))
    np.testing.assert_allclose(out[0], [[1, 1, 1], [0, 0, 0], [0, 1, 1]], atol=1e-6)


def test_16bit_grey_png_not_clipped_at_255(tmp_path):
    arr = np.array([[0, 40000, 65535]], dtype=np.uint16)
    p = saved(Image.fromarray(arr), tmp_path / "g16.png")
    assert Image.open(p).mode in ("I;16", "I")
    out = load_image(p)
    check_float_image(out, (1, 3, 3))
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
    check_float_image(out, (1, 3, 3))
    np.testing.assert_allclose(out[0, :, 0], [40000 / 65535, 1.0, 0.0], atol=1e-6)


def test_mode_f(tmp_path):
    img = Image.fromarray(np.array([[0.25, 1.5, -1.0]], dtype=np.float32))
    assert img.mode == "F"
    p = saved(img, tmp_path / "f.tif")
    out = load_image(p)
    check_float_image(out, (1, 3, 3))
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
    check_float_image(out, (3, 4, 3))
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
    check_float_image(out, (40, 20, 3))  # portrait
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
    check_float_image(out, (1, 1, 3))
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
    one_line_error(ei, needle, "style")


def test_wrong_source_type():
    with pytest.raises(ImageError):
        load_image(42)


def test_zero_size_pil_image():
    with pytest.raises(ImageError) as ei:
        load_image(Image.new("RGB", (0, 0)))
    one_line_error(ei, "empty")


# ----------------------------------------------------------------- errors


def test_missing_file(tmp_path):
    p = tmp_path / "nope.png"
    with pytest.raises(ImageError) as ei:
        load_image(p, role="content")
    one_line_error(ei, "content", str(p), "does not exist")


def test_directory(tmp_path):
    with pytest.raises(ImageError) as ei:
        load_image(tmp_path)
    one_line_error(ei, str(tmp_path), "directory")


def test_text_file_renamed_png(tmp_path):
    p = tmp_path / "notes.png"
    p.write_text("this is not a picture\n")
    with pytest.raises(ImageError) as ei:
        load_image(p, role="style")
    one_line_error(ei, str(p), "not an image")


def test_empty_file(tmp_path):
    p = tmp_path / "empty.png"
    p.write_bytes(b"")
    with pytest.raises(ImageError) as ei:
        load_image(p)
    one_line_error(ei, str(p), "empty")


@pytest.mark.parametrize("name, kw", [("t.png", {}), ("t.jpg", {"quality": 90})])
def test_truncated_file(tmp_path, name, kw):
    full = tmp_path / ("full_" + name)
    Image.fromarray(noise(), "RGB").save(full, **kw)
    data = full.read_bytes()
    p = tmp_path / name
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError) as ei:
        load_image(p)
    one_line_error(ei, str(p), "truncated")


def test_decompression_bomb_error(tmp_path, monkeypatch):
    p = saved(Image.new("RGB", (30, 20)), tmp_path / "big.png")  # 600 pixels
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # error above 200
    with pytest.raises(ImageError) as ei:
        load_image(p)
    one_line_error(ei, str(p), "600 pixels", "200", "too large")


def test_decompression_bomb_warning_is_an_error(tmp_path, monkeypatch):
    p = saved(Image.new("RGB", (30, 20)), tmp_path / "big.png")  # 600 pixels
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 400)  # warning between 400 and 800
    with pytest.raises(ImageError) as ei:
        load_image(p)
    one_line_error(ei, "600 pixels", "400", "too large")


# ------------------------------------------------------------- tiny sources


@pytest.mark.parametrize("shape", [(1, 1), (15, 300), (300, 15)])
def test_a_source_below_the_minimum_is_refused(shape):
    with pytest.raises(ImageError) as ei:
        load_image(np.zeros((*shape, 3), np.float32), role="content image", min_side=16)
    one_line_error(ei, "content image", f"{shape[1]}x{shape[0]}", "16 px", "larger image")


def test_a_source_at_the_minimum_is_accepted(tmp_path):
    p = saved(Image.new("RGB", (16, 40)), tmp_path / "small.png")
    check_float_image(load_image(p, min_side=16), (40, 16, 3))
    check_float_image(load_image(np.zeros((1, 1, 3), np.float32)), (1, 1, 3))  # no minimum unless asked


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
    p = saved(Image.fromarray(PIXELS), tmp_path / f"adobe{suffix}",
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
        p = saved(Image.fromarray(PIXELS), tmp_path / "srgb.png", icc_profile=srgb)
        np.testing.assert_allclose(load_image(p), PIXELS / 255, atol=1 / 255)
    p = saved(Image.fromarray(PIXELS), tmp_path / "broken.png", icc_profile=b"not a profile")
    np.testing.assert_array_equal(load_image(p), PIXELS.astype(np.float32) / 255)
