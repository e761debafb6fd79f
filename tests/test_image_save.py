"""Saving images: formats, atomic no-clobber writes, output-path checks, GIFs."""

from __future__ import annotations

import errno
import os

import numpy as np
import pytest
from PIL import Image, features

from nst_rt.errors import ImageError, OptionError
from nst_rt.io.image_load import load_image
from nst_rt.io.image_save import check_output_path, save_gif, save_image
from nst_rt.io.images import to_uint8

from image_checks import one_line_error, noise


# ------------------------------------------------------------------ saving


def test_save_png_round_trip_uint8_exact(tmp_path):
    arr = noise(9, 13)
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
    one_line_error(ei, "out.png", "No space left")
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
    one_line_error(ei, str(target), "--overwrite")
    assert target.read_bytes() == b"precious"
    assert os.listdir(tmp_path) == ["out.png"]
    save_image(np.zeros((2, 2, 3), np.float32), target, overwrite=True)
    assert Image.open(target).size == (2, 2)


def test_missing_directory(tmp_path):
    with pytest.raises(ImageError) as ei:
        save_image(np.zeros((2, 2, 3), np.float32), tmp_path / "sub" / "out.png")
    one_line_error(ei, "directory", "does not exist", str(tmp_path / "sub"))


@pytest.mark.parametrize("name", ["out.xyz", "out", "out.gif"])
def test_unknown_suffix_before_any_work(tmp_path, name):
    # The image is invalid too: the suffix must be reported first.
    with pytest.raises(ImageError) as ei:
        save_image(np.zeros((2,), np.int64), tmp_path / name)
    one_line_error(ei, name, ".png", ".jpg", ".webp", ".bmp", ".tif")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("name", ["x.png", "results"])
def test_output_is_directory(tmp_path, name):
    # Reported as a directory (with a file name to use), not as a missing or unknown suffix.
    d = tmp_path / name
    d.mkdir()
    with pytest.raises(ImageError) as ei:
        check_output_path(d, overwrite=True, what="--output")
    msg = one_line_error(ei, "--output", "is a directory", str(d / "out.png"))
    assert "suffix" not in msg


def test_gif_path_errors_name_the_option(tmp_path):
    with pytest.raises(ImageError) as ei:
        check_output_path(tmp_path / "p.png", gif=True, what="--gif")
    one_line_error(ei, "--gif", "p.png", ".gif")


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
    one_line_error(ei, "cannot write", str(tmp_path), "Permission denied")


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
    one_line_error(ei, ".gif")
    with pytest.raises(ImageError):
        save_gif([], tmp_path / "anim.gif")
    with pytest.raises(OptionError):
        save_gif([frame], tmp_path / "anim.gif", duration_ms=0)
    (tmp_path / "anim.gif").write_bytes(b"old")
    with pytest.raises(ImageError) as ei:
        save_gif([frame], tmp_path / "anim.gif")
    one_line_error(ei, "--overwrite")
    assert (tmp_path / "anim.gif").read_bytes() == b"old"
    assert check_output_path(tmp_path / "new.gif", gif=True) == tmp_path / "new.gif"
    assert sorted(os.listdir(tmp_path)) == ["anim.gif"]


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
    one_line_error(ei, "--overwrite")
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
    one_line_error(ei, "already exists", "--overwrite")
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
    one_line_error(ei, "already exists")
    assert target.read_bytes() == b"someone else's"
    assert os.listdir(tmp_path) == ["out.png"]


def test_without_hard_links_a_failed_rename_leaves_nothing(tmp_path, monkeypatch):
    _no_hard_links(monkeypatch)

    def broken_replace(src, dst):
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(ImageError) as ei:
        save_image(np.zeros((2, 2, 3), np.float32), tmp_path / "out.png")
    one_line_error(ei, "could not write")
    assert os.listdir(tmp_path) == []  # neither the reservation nor the temporary file


def test_overwrite_replaces_in_one_rename(tmp_path, monkeypatch):
    target = _existing(tmp_path)
    monkeypatch.setattr(os, "link", lambda src, dst: pytest.fail("overwrite must not link"))
    save_image(np.ones((2, 2, 3), np.float32), target, overwrite=True)
    assert np.asarray(Image.open(target)).min() == 255
    assert os.listdir(tmp_path) == ["out.png"]
