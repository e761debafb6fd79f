"""The record that an output is the best image of a stopped run, so that ``--resume`` may replace it.

A run stopped before its first checkpoint leaves only its output. The same command with ``--resume`` then has
no checkpoint to continue from and starts again; it may replace that output, and no other file: beside the
output ``OUT`` a hidden ``.OUT.stopped`` holds the sha256 of the bytes the stopped run wrote. A file whose
bytes differ (another run's result, a file the user put there) is only replaced with ``--overwrite``.
The record is written atomically (temporary file, then rename) and removed when a run to ``OUT`` completes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..io.atomic import create_temp
from ..io.digest import file_sha256


def marker_path(output) -> Path:
    output = Path(os.fspath(output))
    return output.with_name(f".{output.name}.stopped")


def record(output) -> None:
    """Note that ``output``, as it is on disk now, is the best image of a stopped run."""
    output = Path(os.fspath(output))
    fd, tmp = create_temp(marker_path(output))
    try:
        with os.fdopen(fd, "w") as f:
            json.dump({"output": output.name, "sha256": file_sha256(output)}, f)
        os.replace(tmp, marker_path(output))
    except BaseException:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        raise


def is_stopped_output(output) -> bool:
    """Is ``output`` the unchanged best image of a stopped run (and so replaceable by ``--resume``)?"""
    output, marker = Path(os.fspath(output)), marker_path(output)
    try:
        saved = json.loads(marker.read_text())
        return output.is_file() and saved.get("sha256") == file_sha256(output)
    except (OSError, ValueError, AttributeError):
        return False


def clear(output) -> None:
    """Forget the record (the run to ``output`` completed)."""
    try:
        os.unlink(marker_path(output))
    except FileNotFoundError:
        pass
