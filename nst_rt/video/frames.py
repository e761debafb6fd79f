"""Finished frames on disk, so that an interrupted video run resumes where it stopped.

Beside the output ``OUT`` lives ``OUT.frames/``: one lossless PNG per finished frame (000000.png, ...),
each written atomically, and ``run.json``, the fingerprint of the settings that made them (the directory appears with it, whole). A later run with
the same fingerprint skips the frames already there; one with other settings is refused (or, with
``overwrite``, starts over), so frames of two different runs are never mixed in one video.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from pathlib import Path

import numpy as np

from ..errors import ImageError
from ..io.image_load import load_image
from ..io.image_save import save_image
from ..io.images import to_uint8

MANIFEST = "run.json"


def frames_dir(output: Path) -> Path:
    return output.with_name(output.name + ".frames")


class FrameStore:
    """The directory of finished frames of one run, identified by ``fingerprint`` (a JSON-able dict)."""

    def __init__(self, directory: Path, fingerprint: dict, *, overwrite: bool = False):
        self.directory = Path(directory)
        self.fingerprint = json.loads(json.dumps(fingerprint))  # as it reads back from disk
        manifest = self.directory / MANIFEST
        if self.directory.exists():
            stored = self._read(manifest)
            if stored != self.fingerprint:
                if not overwrite:
                    changed = sorted(k for k in set(stored) | set(self.fingerprint)
                                     if stored.get(k) != self.fingerprint.get(k))
                    raise ImageError(
                        f"'{self.directory}' holds frames of a run with other settings ({', '.join(changed)}); "
                        f"pass --overwrite to start over, or remove it")
                shutil.rmtree(self.directory)
        if not self.directory.exists():
            # Made whole under a hidden name, manifest included, then renamed into place: a kill at any moment
            # leaves no frames directory or one with its manifest, never one that the next run refuses.
            staging = self.directory.with_name(f".{self.directory.name}.{secrets.token_hex(4)}.tmp")
            staging.mkdir()  # mode 0o777 less the umask, as the directory would have had
            try:
                (staging / MANIFEST).write_text(json.dumps(self.fingerprint, indent=1, sort_keys=True) + "\n")
                os.replace(staging, self.directory)
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise

    def _read(self, manifest: Path) -> dict:
        try:
            return json.loads(manifest.read_text())
        except (OSError, ValueError):
            raise ImageError(f"'{self.directory}' exists but is not a frames directory of nst-rt "
                             f"(no readable {MANIFEST}); remove it or choose another output") from None

    def path(self, index: int) -> Path:
        return self.directory / f"{index:06d}.png"

    def done(self) -> int:
        """How many frames, counted from the first, are finished."""
        count = 0
        while self.path(count).exists():
            count += 1
        return count

    def save(self, index: int, image: np.ndarray) -> np.ndarray:
        """Write frame ``index``; return it as it reads back (8-bit), which is what later frames build on."""
        pixels = to_uint8(image)
        save_image(pixels, self.path(index), overwrite=True)
        return pixels.astype(np.float32) / 255.0

    def load(self, index: int) -> np.ndarray:
        return load_image(self.path(index), role=f"finished frame {index}")

    def frames(self, count: int):
        """The first ``count`` frames as uint8 arrays, one at a time."""
        for index in range(count):
            yield to_uint8(self.load(index))

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)
