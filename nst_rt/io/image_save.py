"""Writing images: output-path checks, atomic no-clobber writes, animated GIFs (numpy + Pillow only).

A result is written to a hidden temporary file next to the target and only then given the target's
name, so a crash or a full disk never leaves a half-written picture at the output path, and an existing
file is never replaced unless asked, even one that appears while the picture is being written.

Every bad output raises :class:`nst_rt.errors.ImageError` with a one-line message.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from ..errors import ImageError, OptionError
from .atomic import create_temp
from .image_load import load_image
from .images import resize_to, to_uint8

__all__ = ["check_output_path", "save_image", "save_gif", "SAVE_SUFFIXES"]

from .formats import _GIF_FORMATS, _SAVE_FORMATS, SAVE_SUFFIXES  # noqa: E402,F401 (SAVE_SUFFIXES: public)

# What os.link reports on file systems without hard links (FAT, exFAT, some network and FUSE mounts).
_NO_HARD_LINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS, errno.EMLINK}


def check_output_path(path, *, overwrite: bool = False, gif: bool = False, what: str = "output") -> Path:
    """Check that ``path`` can be written, without writing it; return it as a Path.

    Checks that it is not a directory, the suffix (``gif=True`` for :func:`save_gif` outputs), that the
    file does not exist unless ``overwrite``, and that its directory exists and is writable (by creating
    and removing a temporary file there). ``what`` names the path in messages (e.g. the option that gave it).
    """
    path = Path(os.fspath(path))
    formats = _GIF_FORMATS if gif else _SAVE_FORMATS
    if path.is_dir():
        example = path / ("progress.gif" if gif else "out.png")
        raise ImageError(f"{what} '{path}' is a directory; give a file name inside it, such as {example}")
    _output_format(path, formats, what)
    if os.path.lexists(path) and not overwrite:
        raise _exists(path, what)
    directory = path.parent
    if not directory.exists():
        raise ImageError(f"{what} directory '{directory}' does not exist; create it first (mkdir -p '{directory}')")
    if not directory.is_dir():
        raise ImageError(f"{what} directory '{directory}' is not a directory; choose another path")
    try:
        fd, tmp = create_temp(path)
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise ImageError(
            f"cannot write to {what} directory '{directory}' ({exc.strerror or exc}); choose another directory"
        ) from None
    return path


def save_image(image, path, *, overwrite: bool = False, what: str = "output") -> Path:
    """Write a float/uint8 (H, W, 3) array or PIL image atomically; the format comes from the suffix."""
    path = check_output_path(path, overwrite=overwrite, what=what)
    fmt, options = _output_format(path, _SAVE_FORMATS, what)
    pil = _to_pil_rgb(image)
    _atomic_write(path, lambda f: pil.save(f, format=fmt, **options), overwrite, what)
    return path


def save_gif(frames: list, path, *, duration_ms: int = 100, overwrite: bool = False, what: str = "GIF") -> Path:
    """Write frames (float/uint8 arrays or PIL images) as a looping animated GIF, atomically.

    Frames of other sizes are Lanczos-resized to the last frame's size.
    """
    path = check_output_path(path, overwrite=overwrite, gif=True, what=what)
    if isinstance(duration_ms, bool) or not isinstance(duration_ms, (int, np.integer)) or duration_ms < 1:
        raise OptionError(f"GIF frame duration must be a positive number of milliseconds, not {duration_ms!r}")
    frames = list(frames)
    if not frames:
        raise ImageError(f"no frames to write to {what} '{path}'; give at least one frame")
    floats = [load_image(f, role=f"GIF frame {i}") for i, f in enumerate(frames)]
    size = floats[-1].shape[:2]
    images = [Image.fromarray(to_uint8(resize_to(f, size)), "RGB") for f in floats]

    def write(f):
        images[0].save(f, format="GIF", save_all=True, append_images=images[1:], duration=int(duration_ms), loop=0)

    _atomic_write(path, write, overwrite, what)
    return path


def _to_pil_rgb(image) -> Image.Image:
    if isinstance(image, Image.Image):
        image = load_image(image, role="output image")  # composites alpha, handles every mode
    if not isinstance(image, np.ndarray):
        raise ImageError(f"output image must be a numpy array or a PIL image, not {type(image).__name__}")
    if image.dtype != np.uint8 and not np.issubdtype(image.dtype, np.floating):
        raise ImageError(f"output image has dtype {image.dtype}; expected float (0-1) or uint8")
    return Image.fromarray(to_uint8(image), "RGB")


def _output_format(path: Path, formats: dict, what: str) -> tuple[str, dict]:
    suffix = path.suffix.lower()
    if suffix in formats:
        return formats[suffix]
    supported = ", ".join(sorted(formats))
    if len(formats) == 1:
        raise ImageError(f"{what} '{path}' must be a {supported} file; give a name ending in {supported}")
    problem = f"unknown suffix '{path.suffix}'" if path.suffix else "no file suffix"
    raise ImageError(f"cannot tell the image format of {what} '{path}' ({problem}); use one of: {supported}")


def _exists(path: Path, what: str) -> ImageError:
    return ImageError(f"{what} '{path}' already exists; pass --overwrite to replace it or choose another name")


def _atomic_write(path: Path, write: Callable, overwrite: bool, what: str) -> None:
    try:
        fd, tmp = create_temp(path)
    except OSError as exc:
        raise ImageError(f"cannot write '{path}' ({exc.strerror or exc}); choose another output path") from None
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        _publish(tmp, path, overwrite, what)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, (OSError, ValueError, KeyError)) and not isinstance(exc, ImageError):
            detail = " ".join(str(exc).split()) or type(exc).__name__
            raise ImageError(f"could not write '{path}' ({detail}); check the disk and the output path") from None
        raise


def _publish(tmp: str, path: Path, overwrite: bool, what: str) -> None:
    """Give the finished temporary file the name ``path``.

    With ``overwrite``, os.replace. Without it, the test for an existing file and the naming are one
    atomic step, so a file created at ``path`` during a long run is never replaced: os.link fails
    if the name exists. Where the file system has no hard links, the name is reserved with an
    exclusive create (just as atomic) and the temporary file renamed over the reservation; for that
    instant the output exists but is empty.
    """
    if overwrite:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise _exists(path, what) from None
    except OSError as exc:
        if exc.errno not in _NO_HARD_LINKS:
            raise
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            raise _exists(path, what) from None
        try:
            os.replace(tmp, path)
        except BaseException:
            os.unlink(path)  # our empty reservation, not someone else's file
            raise
        return
    try:
        os.unlink(tmp)
    except OSError:
        pass  # the output is complete; only a hidden temporary name is left behind
