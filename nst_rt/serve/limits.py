"""What one job may cost the server, checked before anything is decoded or queued: the pixels of each picture
and of the whole job (read from the pictures' headers), the number of styles, the options whose cost grows
without bound, and the queue's length. The defaults and why they suit a 2-core, 24 GB machine: docs/serve.md.
"""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass

from ..errors import OptionError
from .refused import Refused


@dataclass(frozen=True)
class Limits:
    max_megapixels: float = 24.0  # one picture: decoded as float32 RGB, 12 bytes a pixel (288 MB at 24 MP)
    max_job_megapixels: float = 48.0  # a job's pictures together
    max_styles: int = 8
    max_queue: int = 8  # jobs waiting behind the running one; one more is answered 429
    max_size: int = 2048  # px: the longest side of the output, and of the styles (size x style_scale)
    max_iterations: int = 5000
    max_history: int = 300

    def validated(self) -> Limits:
        for name, value in asdict(self).items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise OptionError(f"{name.replace('_', '-')} must be a number > 0, got {value!r}")
        return self

    def describe(self) -> dict:
        """``GET /api/options``' ``limits``."""
        return asdict(self)

    def check_options(self, options) -> None:
        """Refuse (400, naming the option) what costs more time or memory than the server allows a job."""
        from ..pipeline.schedule import style_size

        # No cap on scales: Options refuses every scale count that would take the coarsest scale below the
        # network's minimum, which at max_size is already 8.
        caps = {"size": self.max_size, "iterations": self.max_iterations, "history": self.max_history}
        for name, cap in caps.items():
            value = getattr(options, name)
            if value is not None and value > cap:
                raise Refused(400, f"{name} must be at most {cap} on this server, got {value}", name)
        side = style_size(options.size, options.style_scale)
        if side > self.max_size:
            raise Refused(400, f"style scale {options.style_scale:g} at size {options.size} makes the styles "
                               f"{side} px, over this server's {self.max_size} px; use a smaller style_scale",
                          "style_scale")

    def check_pictures(self, pictures: list) -> None:
        """Refuse (413, naming the field) pictures (``pictures.Picture``, the content first) whose headers say
        they are over the pixel caps. A header Pillow cannot read is left to the decoder's message."""
        if len(pictures) - 1 > self.max_styles:
            raise Refused(400, f"{len(pictures) - 1} style images is more than this server's {self.max_styles}; "
                               "send fewer", "style")
        total = 0.0
        for picture in pictures:
            name, role, field = picture.name, picture.role, picture.field
            pixels = header_pixels(picture.data)
            if pixels is None:
                continue
            megapixels = pixels / 1e6
            if megapixels > self.max_megapixels:
                raise Refused(413, f"{role} {name!r} has {megapixels:.1f} megapixels, over this server's "
                                   f"{self.max_megapixels:g} (--max-megapixels); send a smaller picture", field)
            total += megapixels
            if total > self.max_job_megapixels:
                raise Refused(413, f"the job's pictures have {total:.1f} megapixels up to {role} {name!r}, over "
                                   f"this server's {self.max_job_megapixels:g} a job (--max-job-megapixels); "
                                   "send smaller or fewer pictures", field)


def header_pixels(data: bytes) -> int | None:
    """Width x height from the picture's header (Pillow reads it without decoding), or None when unreadable."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as img:
            return img.width * img.height
    except Exception:  # noqa: BLE001  (a bomb or a non-picture: the decoder says what is wrong)
        return None
