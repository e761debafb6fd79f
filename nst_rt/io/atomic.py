"""Files that appear whole or not at all: a hidden temporary file beside the target, renamed into place."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def create_temp(path: Path) -> tuple[int, str]:
    # Hidden, in the target's directory (so the rename stays on one file
    # system), named after the target so a leftover is recognisable. os.open
    # with mode 0o666 lets the umask decide the final permissions, unlike
    # tempfile.mkstemp which would leave the output readable by its owner only.
    for _ in range(100):
        tmp = str(path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"could not create a temporary file next to '{path}'")
