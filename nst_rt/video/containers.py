"""The video files nst-rt writes, by suffix: a table without PyAV or Pillow, so the CLI can name them at startup."""

from __future__ import annotations

# Output suffix -> (container format, video codec, its encoder options). Pixel format yuv420p is what
# players accept everywhere; it needs even width and height (see ``even_size``).
CONTAINERS = {
    ".mp4": ("mp4", "libx264", {"crf": "18", "preset": "medium"}),
    ".mov": ("mov", "libx264", {"crf": "18", "preset": "medium"}),
    ".mkv": ("matroska", "libx264", {"crf": "18", "preset": "medium"}),
    ".webm": ("webm", "libvpx-vp9", {"crf": "30", "b": "0"}),
    ".gif": ("gif", None, {}),  # written by Pillow; a GIF has no audio
}
SUFFIXES = ", ".join(CONTAINERS)
