"""A job's pictures as the client sent them (their bytes, kept while the job waits) and their decoding by the
library's loader, through a file of the server's own naming in a folder it recreates when it is gone."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

from ..errors import NstError


@dataclass(frozen=True)
class Picture:
    data: bytes
    name: str  # the client's file name, shown in messages, never opened
    role: str  # "content image", "style image 2", ...
    field: str  # the form field: content or style


def decode(picture: Picture, folder: Path):
    """The picture as an (H, W, 3) float32 array; the loader's message names the client's file, not ours."""
    from ..io.image_load import load_image
    from ..model_format import MIN_SIZE

    folder.mkdir(parents=True, exist_ok=True)  # a removed results directory costs nothing here
    path = folder / f"upload-{uuid.uuid4().hex}"
    path.write_bytes(picture.data)
    try:
        return load_image(path, role=picture.role, min_side=MIN_SIZE)
    except NstError as exc:
        raise NstError(str(exc).replace(f"'{path}'", repr(picture.name))) from None
    finally:
        path.unlink(missing_ok=True)
