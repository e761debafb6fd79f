"""The per-user directories nst-rt keeps files in: data (exported models) and cache (measured decisions).

XDG on Linux and other Unix systems (a relative XDG path is ignored, as the spec says), the platform's own
folders on macOS and Windows.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# kind -> (the XDG variable, its default under the home directory, the macOS folder under ~/Library)
_KINDS = {"data": ("XDG_DATA_HOME", (".local", "share"), "Application Support"),
          "cache": ("XDG_CACHE_HOME", (".cache",), "Caches")}


def user_dir(kind: str) -> Path:
    """nst-rt's per-user ``kind`` directory ("data" or "cache"); it may not exist yet."""
    variable, home_default, mac_folder = _KINDS[kind]
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / mac_folder
    else:
        xdg = os.environ.get(variable, "")
        base = Path(xdg) if os.path.isabs(xdg) else Path.home().joinpath(*home_default)
    return base / "nst-rt"
