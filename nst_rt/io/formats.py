"""The image files nst-rt writes, by suffix: a table without Pillow, so the CLI can name them at startup."""

from __future__ import annotations

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
SAVE_SUFFIXES = tuple(sorted(_SAVE_FORMATS))
