"""Size arithmetic of images, in plain Python (the schedule reads it at CLI startup)."""

from __future__ import annotations

import numbers

from ..errors import OptionError


def longest_side_size(height: int, width: int, longest: int) -> tuple[int, int]:
    """(h, w) after scaling so the longest side is ``longest`` pixels, keeping the aspect ratio."""
    if isinstance(longest, bool) or not isinstance(longest, numbers.Integral) or longest < 1:
        raise OptionError(f"image size must be a positive whole number of pixels, not {longest!r}")
    scale = int(longest) / max(height, width)
    # Round half up (not Python's round-half-even) so sizes are predictable.
    return max(1, int(height * scale + 0.5)), max(1, int(width * scale + 0.5))
