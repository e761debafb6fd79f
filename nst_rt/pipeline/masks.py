"""The masks of a run (``--style-mask``, ``--content-mask``): loaded and checked before any work, and resized
to each scale. The masked terms themselves are :mod:`nst_rt.objective.guided`'s."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ImageError, MaskNotice, MaskShapeNotice, OptionError
from ..io import image_load, images
from ..objective.whole import mask_count

BLACK = 0.5 / 255  # a mask whose brightest pixel is below half an 8-bit level is all black
UNCOVERED = 0.5 / 255  # ... and a pixel where the style masks sum to less than that is covered by none
OPAQUE = 254.5 / 255  # an alpha channel this opaque everywhere draws nothing: the mask is then the luminance
# A mask is stretched to the content's shape; beyond this relative difference of aspect ratios the run says so.
ASPECT_TOLERANCE = 0.02


@dataclass
class Masks:
    """The masks at their own sizes, (H, W) float32 in [0, 1] (black 0, white 1); ``None`` where not given."""

    styles: list[np.ndarray] | None = None
    content: np.ndarray | None = None

    def __bool__(self) -> bool:
        return self.styles is not None or self.content is not None

    def styles_at(self, size) -> list[np.ndarray] | None:
        return None if self.styles is None else [at_size(m, size) for m in self.styles]

    def content_at(self, size) -> np.ndarray | None:
        return None if self.content is None else at_size(self.content, size)

    def stretched(self, size) -> str | None:
        """A sentence naming the masks whose aspect ratio differs from ``size``'s (height, width) by more than the
        tolerance (they are stretched to it), or None."""
        named = [(f"style mask {i + 1}", m) for i, m in enumerate(self.styles or [])]
        named += [("content mask", self.content)] if self.content is not None else []
        wanted = size[1] / size[0]
        off = [f"{role} ({m.shape[1]}x{m.shape[0]} px, aspect ratio {m.shape[1] / m.shape[0]:.2f})"
               for role, m in named if abs(m.shape[1] / m.shape[0] / wanted - 1) > ASPECT_TOLERANCE]
        if not off:
            return None
        return (f"{' and '.join(off)} {'is' if len(off) == 1 else 'are'} stretched to the content's {size[1]}x{size[0]} "
                f"(aspect ratio {wanted:.2f}); draw masks at the content's aspect ratio")

    def uncovered_share(self, size) -> float:
        """The share of pixels at ``size`` that no style mask covers."""
        if self.styles is None:
            return 0.0
        return float(np.mean(sum(self.styles_at(size)) < UNCOVERED))

    def notices(self, size) -> list:
        """(message, warning class) for what a user should hear about these masks at the content's ``size``."""
        said = [(self.stretched(size), MaskShapeNotice)]
        uncovered = self.uncovered_share(size)
        if uncovered > 0:
            said.append((f"the style masks cover no style over {uncovered:.0%} of the picture: only the content "
                         "and tv terms act there", MaskNotice))
        return [(message, kind) for message, kind in said if message]


def grey(image: np.ndarray) -> np.ndarray:
    """An (H, W, 3) image's luminance (ITU-R BT.601), (H, W) float32."""
    return np.ascontiguousarray(image @ np.array([0.299, 0.587, 0.114], np.float32), dtype=np.float32)


def at_size(mask: np.ndarray, size) -> np.ndarray:
    """``mask`` resized to ``size`` = (height, width) (Lanczos, clipped to [0, 1])."""
    if mask.shape == tuple(size):
        return mask
    return np.ascontiguousarray(images.resize_to(np.repeat(mask[:, :, None], 3, axis=2), size)[:, :, 0])


def _load(source, role: str) -> np.ndarray:
    """A mask: its alpha channel where it has one that is not opaque everywhere, else its luminance."""
    image = image_load.load_image(source, role=role, keep_alpha=True)
    has_alpha = image.shape[2] == 4 and float(image[:, :, 3].min()) < OPAQUE
    mask = np.ascontiguousarray(image[:, :, 3]) if has_alpha else grey(image[:, :, :3])
    if mask.max() < BLACK:
        where = f" '{source}'" if isinstance(source, str) or hasattr(source, "__fspath__") else ""
        raise ImageError(f"{role}{where} is all black, so it selects no region; white is where it acts")
    return mask


def load(options, style_count: int) -> Masks:
    """The masks of ``options``, checked: one per style image, each readable and not all black."""
    masks = Masks()
    if options.style_masks is not None:
        given = list(options.style_masks)
        if len(given) != style_count:
            raise OptionError(f"{mask_count(len(given), style_count, 'style')}: give one --style-mask per style "
                              f"image, in the styles' order")
        masks.styles = [_load(m, f"style mask {i + 1}") for i, m in enumerate(given)]
    if options.content_mask is not None:
        masks.content = _load(options.content_mask, "content mask")
    return masks
