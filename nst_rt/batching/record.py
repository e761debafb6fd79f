"""The settings a batch's results were made with, recorded in its output directory.

A batch skips the inputs whose result exists, so a rerun resumes. That is right only for a rerun with the same
settings: ``OUT_DIR/.nst-rt-batch.json`` records the styles (their bytes' sha256) and every option that changes
the pixels, and a batch with other settings into a directory that holds results is refused (``--overwrite``
redoes them; another ``-o`` keeps both). A directory of results without a record (made before there was one)
is taken as it is, and gets the record of the batch that resumes it. The record is written to a temporary
file and renamed into place, so it is always whole.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from pathlib import Path

from ..errors import OptionError
from ..io.atomic import create_temp
from ..pipeline.checkpoint import NOT_FINGERPRINTED
from ..pipeline.options import Options
from ..io.digest import file_sha256

RECORD = ".nst-rt-batch.json"


def settings(styles: Sequence[Path], options: Options) -> dict:
    """What a result depends on besides its input, as JSON: keys are the CLI's option names."""
    record = {"--style": [file_sha256(s) for s in styles], "--model": str(options.model)}
    for field in dataclasses.fields(options):
        if field.name not in NOT_FINGERPRINTED:
            value = getattr(options, field.name)
            record["--" + field.name.replace("_", "-")] = list(value) if isinstance(value, (list, tuple)) else \
                (os.fspath(value) if isinstance(value, os.PathLike) else value)
    return json.loads(json.dumps(record))  # as it reads back from disk


def _read(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}  # unreadable: differs from any settings


def check_and_record(out_dir: Path, current: dict, has_results: bool, overwrite: bool) -> None:
    """Refuse results of other settings in ``out_dir`` (unless ``overwrite``); then record ``current`` there.

    ``has_results``: the directory holds results (of any input: a directory has one record for all of them)."""
    path = Path(out_dir) / RECORD
    stored = _read(path)
    if stored == current:
        return
    if stored is not None and has_results and not overwrite:
        changed = sorted(k for k in set(stored) | set(current) if stored.get(k) != current.get(k)) or ["unreadable"]
        raise OptionError(f"'{out_dir}' holds results made with other settings ({', '.join(changed)}); pass "
                          f"--overwrite to redo them, or another -o")
    fd, tmp = create_temp(path)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(current, f, indent=1, sort_keys=True)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        raise
