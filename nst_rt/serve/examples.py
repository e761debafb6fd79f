"""The example pictures the page offers: ``content/`` and ``style/`` of an examples directory the server is
given (``--examples-dir``), else of the source checkout nst-rt runs from (its ``examples/``), if any.

The page fetches a chosen example from the server's static mount and uploads it like a file of its own, so
the job API takes files only and no client-given name is ever opened.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from ..errors import OptionError
from ..io.formats import SAVE_SUFFIXES

KINDS = ("content", "style")
URL = "/examples"  # where app.py mounts each kind's folder: /examples/content/NAME, /examples/style/NAME


def checkout_examples() -> Path | None:
    """``examples/`` beside the package in a source checkout (or an editable install) of nst-rt, else None."""
    root = Path(__file__).resolve().parents[2]
    project = root / "pyproject.toml"
    if (root / "examples").is_dir() and project.is_file() and 'name = "nst-rt"' in project.read_text():
        return root / "examples"
    return None


def folders(examples_dir: str | Path | None) -> dict[str, Path]:
    """kind -> the folder of its pictures, for the kinds the examples directory has."""
    root = Path(examples_dir) if examples_dir is not None else checkout_examples()
    if root is None:
        return {}
    if examples_dir is not None and not root.is_dir():
        raise OptionError(f"examples directory {str(examples_dir)!r} does not exist; check the path")
    found = {kind: root / kind for kind in KINDS if (root / kind).is_dir()}
    if examples_dir is not None and not found:
        raise OptionError(f"examples directory {str(examples_dir)!r} has neither a content/ nor a style/ folder of "
                          "pictures; give a directory that has them")
    return found


def listing(found: dict[str, Path]) -> dict[str, list[dict]]:
    """``GET /api/options``' ``examples``: kind -> [{"name", "url"}], the pictures nst-rt can read, by name."""
    return {kind: [{"name": p.name, "url": f"{URL}/{kind}/{quote(p.name)}"}
                   for p in sorted(found[kind].iterdir()) if p.is_file() and p.suffix.lower() in SAVE_SUFFIXES]
            if kind in found else [] for kind in KINDS}
