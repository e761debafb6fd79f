"""Reading images: files, PIL images and numpy arrays -> float32 (H, W, 3) sRGB in [0, 1].

Every Pillow mode is accepted (alpha is composited over white, or kept with ``keep_alpha``; 16-bit greyscale
keeps its precision), EXIF orientation is applied, and an embedded ICC profile is converted to sRGB.
Every bad input raises :class:`nst_rt.errors.ImageError` with a one-line message.
"""

from __future__ import annotations

import functools
import io
import os
import re
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import ImageError

__all__ = ["load_image"]

# Pillow modes holding 16-bit (or wider integer) greyscale; scaled from 0..65535.
_WIDE_GREY_MODES = {"I", "I;16", "I;16B", "I;16L", "I;16N"}

_BOMB_RE = re.compile(r"\((\d+) pixels\) exceeds limit of (\d+) pixels")


def load_image(source, *, role: str = "image", min_side: int = 1, keep_alpha: bool = False) -> np.ndarray:
    """Load a path, PIL image or numpy array as a float32 (H, W, 3) sRGB array in [0, 1].

    With ``keep_alpha``, an image with an alpha channel (or a transparent colour) comes back as (H, W, 4): its
    colour not composited, and its alpha, in [0, 1] (the masks read it).

    ``role`` names the image in error messages ("content image", "style image 2", ...). An image
    smaller than ``min_side`` pixels on either side is refused: the pipeline passes the network's
    minimum so that a thumbnail is not silently blown up into a blur at the output size.
    """
    what = role or "image"
    if isinstance(source, Image.Image):
        image = _pil_to_float(source, what, keep_alpha)
    elif isinstance(source, np.ndarray):
        image = _array_to_float(source, f"{what} array", keep_alpha)
    elif isinstance(source, (str, os.PathLike)):
        path = Path(os.fspath(source))
        what = f"{what} '{path}'"
        image = _load_file(path, what, keep_alpha)
    else:
        raise ImageError(f"{what} must be a file path, a PIL image or a numpy array, not {type(source).__name__}")
    height, width = image.shape[:2]
    if min(height, width) < min_side:
        raise ImageError(f"{what} is only {width}x{height} px, below the {min_side} px per side the network needs; "
                         f"it is refused rather than upscaled into a blur: give a larger image")
    return image


def _load_file(path: Path, what: str, keep_alpha: bool = False) -> np.ndarray:
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
                return _pil_to_float(img, what, keep_alpha)
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


def _pil_to_float(img: Image.Image, what: str, keep_alpha: bool = False) -> np.ndarray:
    if img.width == 0 or img.height == 0:
        raise ImageError(f"{what} is empty ({img.width}x{img.height} pixels); give a non-empty image")
    img = _to_srgb(img)
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
        return rgba if keep_alpha else _composite_over_white(rgba)
    try:
        rgb = img.convert("RGB")  # L, 1, P, RGB, CMYK, YCbCr, ...
    except (ValueError, OSError) as exc:
        raise ImageError(f"{what} has mode {mode} which cannot be converted to RGB ({exc})") from None
    return np.asarray(rgb, dtype=np.float32) / 255.0


def _to_srgb(img: Image.Image) -> Image.Image:
    """Convert colour pixels that carry an embedded ICC profile (Display P3, Adobe RGB, a CMYK press
    profile) to sRGB, the space the network was trained on and the one the output is written in."""
    icc = img.info.get("icc_profile")
    if not icc or img.mode not in ("RGB", "RGBA", "CMYK"):
        return img  # untagged pixels are taken as sRGB; greyscale profiles only shift the tone curve
    try:
        from PIL import ImageCms  # lazy: only tagged images need littlecms
    except ImportError:  # a Pillow built without littlecms: the pixels are taken as sRGB
        return img
    try:
        return ImageCms.profileToProfile(img, ImageCms.ImageCmsProfile(io.BytesIO(icc)), _srgb_profile(),
                                         outputMode="RGBA" if img.mode == "RGBA" else "RGB")
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        # A damaged profile, or one for another colour space than the pixels: ignore it, as
        # browsers and viewers do, and take the pixels as sRGB.
        return img


@functools.cache
def _srgb_profile():
    from PIL import ImageCms

    return ImageCms.createProfile("sRGB")


def _array_to_float(arr: np.ndarray, what: str, keep_alpha: bool = False) -> np.ndarray:
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
        return np.ascontiguousarray(out) if keep_alpha else _composite_over_white(out)
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
