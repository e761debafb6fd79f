"""Import the exporter, ``nst_rt.export``, also from a source checkout, or say truthfully why it cannot be.

Installed, the repository's ``export/`` folder becomes the subpackage ``nst_rt.export`` (setuptools
``package-dir``). Run from the root of a clone (``python -m nst_rt export ...``), Python imports the clone's
``nst_rt/`` folder instead of the installed package, and that folder has no ``export`` inside; so when
``nst_rt.export`` is missing and this ``nst_rt`` sits in a checkout, the checkout's ``export/`` folder is
loaded under that name. A wheel install always ships ``nst_rt.export`` and never reaches the fallback.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Callable

from ..errors import MissingDependencyError, install_hint

PACKAGE = "nst_rt.export"
INSTALL_HINT = install_hint("export,cpu")
CHECKOUT_ROOT = Path(__file__).resolve().parents[2]  # nst_rt/cli/ -> the checkout


def _checkout_export_dir() -> Path | None:
    """The ``export/`` folder beside this ``nst_rt/`` when both come from a source checkout."""
    folder = CHECKOUT_ROOT / "export"
    if (CHECKOUT_ROOT / "pyproject.toml").is_file() and (folder / "exporter.py").is_file():
        return folder
    return None


def _load_from_checkout(folder: Path) -> None:
    spec = importlib.util.spec_from_file_location(PACKAGE, folder / "__init__.py",
                                                  submodule_search_locations=[str(folder)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[PACKAGE] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[PACKAGE]
        raise
    setattr(sys.modules["nst_rt"], "export", module)  # what the import system does for a found submodule


def import_exporter() -> Callable:
    """``nst_rt.export.exporter.export_model``; MissingDependencyError naming what is missing otherwise."""
    try:
        try:
            importlib.import_module(PACKAGE)
        except ModuleNotFoundError as exc:
            folder = _checkout_export_dir()
            if exc.name != PACKAGE or folder is None:
                raise
            _load_from_checkout(folder)
        from ..export.exporter import export_model
    except ModuleNotFoundError as exc:
        if exc.name == PACKAGE:
            here = Path(sys.modules["nst_rt"].__file__).parent
            raise MissingDependencyError(f"{PACKAGE} is not part of the nst_rt package imported from {here} "
                                         f"(an incomplete install?); reinstall it: {INSTALL_HINT}") from None
        raise MissingDependencyError(f"the exporter needs {exc.name}, which is not installed: {INSTALL_HINT}") from None
    return export_model
