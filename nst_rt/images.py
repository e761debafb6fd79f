"""Image input and output (numpy + Pillow only).

Images inside the library are float32 numpy arrays of shape (H, W, 3), RGB in
[0, 1]. This module turns files, PIL images and numpy arrays into that form,
resizes them in float precision, converts to and from the (1, 3, H, W) layout
the ONNX models use, and writes results atomically (a crash or full disk never
leaves a half-written picture at the output path).

Every bad input raises :class:`nst_rt.errors.ImageError` with a one-line message.
"""

from __future__ import annotations

import os
import re
import secrets
import warnings
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import ImageError, OptionError

__all__ = [
    "load_image",
    "longest_side_size",
    "resize_longest",
    "resize_to",
    "to_nchw",
    "from_nchw",
    "to_uint8",
    "save_image",
    "save_gif",
    "check_output_path",
    "original_colors",
]

# Output suffix -> (Pillow format name, save options).
_SAVE_FORMATS: dict[str, tuple[str, dict]] = {
    ".png": ("PNG", {}),
    ".jpg": ("JPEG", {"quality": 95}),
    ".jpeg": ("JPEG", {"quality": 95}),
    ".webp": ("WEBP", {"quality": 95}),
    ".bmp": ("BMP", {}),
    ".tif": ("TIFF", {}),
    ".tiff": ("TIFF", {}),
}
_GIF_FORMATS = {".gif": ("GIF", {})}

# Pillow modes holding 16-bit (or wider integer) greyscale; scaled from 0..65535.
_WIDE_GREY_MODES = {"I", "I;16", "I;16B", "I;16L", "I;16N"}

_BOMB_RE = re.compile(r"\((\d+) pixels\) exceeds limit of (\d+) pixels")


# --------------------------------------------------------------------- loading


def load_image(source, *, role: str = "image") -> np.ndarray:
    """Load a path, PIL image or numpy array as a float32 (H, W, 3) RGB array in [0, 1].

    ``role`` ("content", "style", ...) only appears in error messages.
    """
    if isinstance(source, Image.Image):
        return _pil_to_float(source, _label(role))
    if isinstance(source, np.ndarray):
        return _array_to_float(source, f"{_label(role)} array")
    if isinstance(source, (str, os.PathLike)):
        return _load_file(Path(os.fspath(source)), role)
    raise ImageError(
        f"{_label(role)} must be a file path, a PIL image or a numpy array, "
        f"not {type(source).__name__}"
    )


def _label(role: str) -> str:
    return "image" if role in ("", "image") else f"{role} image"


def _load_file(path: Path, role: str) -> np.ndarray:
    what = f"{_label(role)} '{path}'"
    if not path.exists():
        raise ImageError(f"{what} does not exist; check the path")
    if path.is_dir():
        raise ImageError(f"{what} is a directory; give the path of an image file")
    try:
        if path.stat().st_size == 0:
            raise ImageError(f"{what} is empty (0 bytes); give a valid image file")
        # A decompression-bomb *warning* (between 1x and 2x Pillow's limit) is
        # treated as an error too: a picture that size would not fit the model
        # anyway, and silently spending gigabytes of memory on it is worse.
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                # Force the full decode now. With LOAD_TRUNCATED_IMAGES left
                # False (Pillow's default) a cut-off file raises here instead
                # of loading with its missing part filled in grey.
                img.load()
                return _pil_to_float(img, what)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        match = _BOMB_RE.search(str(exc))
        size = (
            f"{int(match.group(1))} pixels is over Pillow's decompression-bomb limit "
            f"of {int(match.group(2))} pixels"
            if match
            else str(exc).splitlines()[0]
        )
        raise ImageError(
            f"{what} is too large: {size}; use a smaller image "
            "(or raise PIL.Image.MAX_IMAGE_PIXELS if you trust the file)"
        ) from None
    except UnidentifiedImageError:
        raise ImageError(
            f"{what} is not an image Pillow can read; give a PNG, JPEG, WebP, BMP, TIFF or GIF file"
        ) from None
    except PermissionError:
        raise ImageError(f"{what} cannot be read (permission denied); check its permissions") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        # Pillow reports truncated and corrupt data as OSError (or SyntaxError
        # from some plugins): "image file is truncated", "broken data stream".
        detail = " ".join(str(exc).split()) or type(exc).__name__
        raise ImageError(
            f"{what} is truncated or corrupt ({detail}); re-download or re-export it"
        ) from None


def _pil_to_float(img: Image.Image, what: str) -> np.ndarray:
    if img.width == 0 or img.height == 0:
        raise ImageError(f"{what} is empty ({img.width}x{img.height} pixels); give a non-empty image")
    try:
        # Photos from phones store the sensor orientation in EXIF; honour it so
        # a portrait photo comes out portrait.
        img = ImageOps.exif_transpose(img)
    except Exception:  # noqa: BLE001 - a broken EXIF block should not stop loading
        pass

    mode = img.mode
    if mode in _WIDE_GREY_MODES:
        # 16-bit greyscale (I;16*, or I from 16-bit PNGs): scale 0..65535 to
        # [0, 1] instead of clipping at 255 the way convert("L") would.
        grey = np.asarray(img).astype(np.float32) / 65535.0
        return _grey_to_rgb(np.clip(grey, 0.0, 1.0))
    if mode == "F":
        # Float images are taken to be in [0, 1] already, like float arrays.
        grey = np.asarray(img, dtype=np.float32)
        return _grey_to_rgb(_clip_finite(grey, what))
    if "A" in img.getbands() or "a" in img.getbands() or "transparency" in img.info:
        # RGBA, LA, PA, P/L/RGB with a transparent colour: composite over white.
        try:
            rgba = np.asarray(img.convert("RGBA"), dtype=np.float32) / 255.0
        except (ValueError, OSError) as exc:
            raise ImageError(f"{what} has mode {mode} which cannot be converted to RGB ({exc})") from None
        return _composite_over_white(rgba)
    try:
        rgb = img.convert("RGB")  # L, 1, P, RGB, CMYK, YCbCr, ...
    except (ValueError, OSError) as exc:
        raise ImageError(f"{what} has mode {mode} which cannot be converted to RGB ({exc})") from None
    return np.asarray(rgb, dtype=np.float32) / 255.0


def _array_to_float(arr: np.ndarray, what: str) -> np.ndarray:
    if arr.ndim == 2:
        channels = 1
    elif arr.ndim == 3 and arr.shape[2] in (3, 4):
        channels = arr.shape[2]
    else:
        raise ImageError(
            f"{what} has shape {arr.shape}; expected (H, W, 3), (H, W, 4) or (H, W)"
        )
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ImageError(f"{what} is empty (shape {arr.shape}); give a non-empty image")

    if arr.dtype == np.uint8:
        out = arr.astype(np.float32) / 255.0
    elif arr.dtype == np.uint16:
        out = arr.astype(np.float32) / 65535.0
    elif np.issubdtype(arr.dtype, np.floating):
        out = _clip_finite(arr.astype(np.float32), what)
    else:
        raise ImageError(
            f"{what} has dtype {arr.dtype}; expected uint8 (0-255), uint16 (0-65535) or float (0-1)"
        )

    if channels == 1:
        return _grey_to_rgb(out)
    if channels == 4:
        return _composite_over_white(out)
    return np.ascontiguousarray(out)


def _clip_finite(x: np.ndarray, what: str) -> np.ndarray:
    if not np.all(np.isfinite(x)):
        raise ImageError(f"{what} contains NaN or infinite values; give finite pixel values")
    return np.clip(x, 0.0, 1.0).astype(np.float32, copy=False)


def _grey_to_rgb(grey: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.repeat(grey[:, :, None], 3, axis=2), dtype=np.float32)


def _composite_over_white(rgba: np.ndarray) -> np.ndarray:
    # The models have no alpha channel, and the colour stored under transparent
    # pixels is arbitrary (often black, which would bleed dark fringes into the
    # stylization). White matches how the picture looks on a page or a default
    # viewer background, so the result is what the user saw.
    rgb, alpha = rgba[:, :, :3], rgba[:, :, 3:4]
    out = rgb * alpha + (1.0 - alpha)
    return np.ascontiguousarray(np.clip(out, 0.0, 1.0), dtype=np.float32)


# -------------------------------------------------------------------- resizing


def _check_float_image(image, what: str = "image") -> np.ndarray:
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ImageError(f"{what} has shape {arr.shape}; expected (H, W, 3)")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ImageError(f"{what} is empty (shape {arr.shape})")
    return arr.astype(np.float32, copy=False)


def longest_side_size(height: int, width: int, longest: int) -> tuple[int, int]:
    """(h, w) after scaling so the longest side is ``longest`` pixels, keeping the aspect ratio."""
    if isinstance(longest, bool) or not isinstance(longest, (int, np.integer)) or longest < 1:
        raise OptionError(f"image size must be a positive whole number of pixels, not {longest!r}")
    scale = int(longest) / max(height, width)
    # Round half up (not Python's round-half-even) so sizes are predictable.
    return max(1, int(height * scale + 0.5)), max(1, int(width * scale + 0.5))


def resize_longest(image: np.ndarray, longest: int) -> np.ndarray:
    """Lanczos-resize so the longest side is ``longest`` pixels, keeping the aspect ratio."""
    image = _check_float_image(image)
    return resize_to(image, longest_side_size(image.shape[0], image.shape[1], longest))


def resize_to(image: np.ndarray, size: Sequence[int]) -> np.ndarray:
    """Lanczos-resize to exactly ``size`` = (height, width), in float precision, clipped to [0, 1]."""
    image = _check_float_image(image)
    try:
        new_h, new_w = (int(s) for s in size)
    except (TypeError, ValueError):
        raise OptionError(f"resize size must be (height, width), not {size!r}") from None
    if new_h < 1 or new_w < 1:
        raise OptionError(f"resize size must be positive, not {(new_h, new_w)}")
    if image.shape[:2] == (new_h, new_w):
        return np.array(image, dtype=np.float32)
    # One mode-"F" (32-bit float) image per channel: resizing in uint8 would
    # quantize every scale of a coarse-to-fine run to 8 bits.
    channels = [
        np.asarray(
            Image.fromarray(np.ascontiguousarray(image[:, :, c])).resize(
                (new_w, new_h), Image.Resampling.LANCZOS
            ),
            dtype=np.float32,
        )
        for c in range(3)
    ]
    # Lanczos rings past the input range at sharp edges.
    return np.ascontiguousarray(np.clip(np.stack(channels, axis=2), 0.0, 1.0), dtype=np.float32)


# --------------------------------------------------------------- layout/dtype


def to_nchw(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) -> (1, 3, H, W) float32, C-contiguous (the models' input layout)."""
    image = _check_float_image(image)
    return np.ascontiguousarray(image.transpose(2, 0, 1)[None], dtype=np.float32)


def from_nchw(x: np.ndarray) -> np.ndarray:
    """(1, 3, H, W) float32/float64 -> (H, W, 3) float32. Values are not clipped."""
    x = np.asarray(x)
    if x.ndim != 4 or x.shape[0] != 1 or x.shape[1] != 3:
        raise ImageError(f"model output has shape {x.shape}; expected (1, 3, H, W)")
    if not np.issubdtype(x.dtype, np.floating):
        raise ImageError(f"model output has dtype {x.dtype}; expected float32 or float64")
    return np.ascontiguousarray(x[0].transpose(1, 2, 0), dtype=np.float32)


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Float (H, W, 3) -> uint8 (H, W, 3): clip to [0, 1], round(x * 255). This is "the image as saved"."""
    arr = np.asarray(image)
    if arr.dtype == np.uint8:
        if arr.ndim != 3 or arr.shape[2] != 3:
            raise ImageError(f"image has shape {arr.shape}; expected (H, W, 3)")
        return np.array(arr)
    arr = _check_float_image(arr)
    arr = np.nan_to_num(arr, nan=0.0, posinf=1.0, neginf=0.0)
    return np.rint(np.clip(arr, 0.0, 1.0) * 255.0).astype(np.uint8)


def _to_pil_rgb(image) -> Image.Image:
    if isinstance(image, Image.Image):
        image = load_image(image, role="output")  # composites alpha, handles every mode
    if not isinstance(image, np.ndarray):
        raise ImageError(f"output image must be a numpy array or a PIL image, not {type(image).__name__}")
    if image.dtype != np.uint8 and not np.issubdtype(image.dtype, np.floating):
        raise ImageError(f"output image has dtype {image.dtype}; expected float (0-1) or uint8")
    return Image.fromarray(to_uint8(image), "RGB")


# --------------------------------------------------------------------- saving


def check_output_path(path, *, overwrite: bool = False, gif: bool = False) -> Path:
    """Check that ``path`` can be written, without writing it; return it as a Path.

    Checks the suffix (``gif=True`` for :func:`save_gif` outputs), that the file
    does not exist unless ``overwrite``, and that its directory exists and is
    writable (by creating and removing a temporary file there).
    """
    path = Path(os.fspath(path))
    _output_format(path, _GIF_FORMATS if gif else _SAVE_FORMATS)
    if path.is_dir():
        raise ImageError(f"output '{path}' is a directory; give a file name such as {path / 'out.png'}")
    if os.path.lexists(path) and not overwrite:
        raise ImageError(f"output '{path}' already exists; pass --overwrite to replace it or choose another name")
    directory = path.parent
    if not directory.exists():
        raise ImageError(f"output directory '{directory}' does not exist; create it first (mkdir -p '{directory}')")
    if not directory.is_dir():
        raise ImageError(f"output directory '{directory}' is not a directory; choose another output path")
    try:
        fd, tmp = _create_temp(path)
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise ImageError(
            f"cannot write to output directory '{directory}' ({exc.strerror or exc}); choose another directory"
        ) from None
    return path


def save_image(image, path, *, overwrite: bool = False) -> Path:
    """Write a float/uint8 (H, W, 3) array or PIL image atomically; the format comes from the suffix."""
    path = check_output_path(path, overwrite=overwrite)
    fmt, options = _output_format(path, _SAVE_FORMATS)
    pil = _to_pil_rgb(image)
    _atomic_write(path, lambda f: pil.save(f, format=fmt, **options), overwrite)
    return path


def save_gif(frames: list, path, *, duration_ms: int = 100, overwrite: bool = False) -> Path:
    """Write frames (float/uint8 arrays or PIL images) as a looping animated GIF, atomically.

    Frames of other sizes are Lanczos-resized to the last frame's size.
    """
    path = check_output_path(path, overwrite=overwrite, gif=True)
    if isinstance(duration_ms, bool) or not isinstance(duration_ms, (int, np.integer)) or duration_ms < 1:
        raise OptionError(f"GIF frame duration must be a positive number of milliseconds, not {duration_ms!r}")
    frames = list(frames)
    if not frames:
        raise ImageError(f"no frames to write to GIF '{path}'; give at least one frame")
    floats = [load_image(f, role=f"GIF frame {i}") for i, f in enumerate(frames)]
    size = floats[-1].shape[:2]
    images = [Image.fromarray(to_uint8(resize_to(f, size)), "RGB") for f in floats]

    def write(f):
        images[0].save(
            f, format="GIF", save_all=True, append_images=images[1:],
            duration=int(duration_ms), loop=0,
        )

    _atomic_write(path, write, overwrite)
    return path


def _output_format(path: Path, formats: dict) -> tuple[str, dict]:
    suffix = path.suffix.lower()
    if suffix in formats:
        return formats[suffix]
    supported = ", ".join(sorted(formats))
    problem = f"unknown suffix '{path.suffix}'" if path.suffix else "no file suffix"
    raise ImageError(f"cannot tell the image format of output '{path}' ({problem}); use one of: {supported}")


def _create_temp(path: Path) -> tuple[int, str]:
    # Hidden, in the target's directory (so os.replace stays on one file
    # system), named after the target so a leftover is recognisable. os.open
    # with mode 0o666 lets the umask decide the final permissions, unlike
    # tempfile.mkstemp which would leave the output readable by its owner only.
    for _ in range(100):
        tmp = str(path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"could not create a temporary file next to '{path}'")


def _atomic_write(path: Path, write: Callable, overwrite: bool) -> None:
    try:
        fd, tmp = _create_temp(path)
    except OSError as exc:
        raise ImageError(f"cannot write '{path}' ({exc.strerror or exc}); choose another output path") from None
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        # Re-check just before the rename: the file may have appeared during a long run.
        if not overwrite and os.path.lexists(path):
            raise ImageError(f"output '{path}' already exists; pass --overwrite to replace it or choose another name")
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, (OSError, ValueError, KeyError)) and not isinstance(exc, ImageError):
            detail = " ".join(str(exc).split()) or type(exc).__name__
            raise ImageError(f"could not write '{path}' ({detail}); check the disk and the output path") from None
        raise


# ------------------------------------------------------------ original colors


def _rgb_to_ycbcr(rgb: np.ndarray) -> np.ndarray:
    # ITU-R BT.601 full range (as in JPEG), with chroma centred on 0.5.
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cb = 0.5 - 0.168736 * r - 0.331264 * g + 0.5 * b
    cr = 0.5 + 0.5 * r - 0.418688 * g - 0.081312 * b
    return np.stack([y, cb, cr], axis=-1)


def _ycbcr_to_rgb(ycc: np.ndarray) -> np.ndarray:
    y, cb, cr = ycc[..., 0], ycc[..., 1] - 0.5, ycc[..., 2] - 0.5
    r = y + 1.402 * cr
    g = y - 0.344136 * cb - 0.714136 * cr
    b = y + 1.772 * cb
    return np.stack([r, g, b], axis=-1)


def original_colors(stylized: np.ndarray, content: np.ndarray) -> np.ndarray:
    """Keep the content's colours: luminance (Y) from ``stylized``, chroma (Cb, Cr) from ``content``.

    The content is resized to the stylized image's size if they differ.
    """
    stylized = _check_float_image(stylized, "stylized image")
    content = _check_float_image(content, "content image")
    if content.shape != stylized.shape:
        content = resize_to(content, stylized.shape[:2])
    ycc = _rgb_to_ycbcr(content.astype(np.float64))
    ycc[..., 0] = _rgb_to_ycbcr(stylized.astype(np.float64))[..., 0]
    rgb = np.clip(_ycbcr_to_rgb(ycc), 0.0, 1.0)
    return np.ascontiguousarray(rgb, dtype=np.float32)
