"""Where exported models live: the search order for a model given by name, and where ``nst-rt export`` writes.

A model given by name (``vgg19``) is looked up in these directories, in this order:

1. ``--models-dir DIR`` (``models_dir=`` in Python), when given; it must exist;
2. ``$NST_RT_MODELS``, when set;
3. ``./models``, in the working directory;
4. the per-user data directory: ``$XDG_DATA_HOME/nst-rt/models`` (default ``~/.local/share/nst-rt/models``);
   ``~/Library/Application Support/nst-rt/models`` on macOS, ``%LOCALAPPDATA%\\nst-rt\\models`` on Windows.

``nst-rt export`` without ``--out`` writes into ``$NST_RT_MODELS`` when it is set, else into ``./models`` when
that directory exists, else into the per-user directory, so an export is found again from any working
directory (rembg's ``U2NET_HOME`` convention). This module is the one home of that order; the CLI's help,
the README and every message derive from it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..errors import ModelNotFoundError
from ..system.user_dirs import user_dir
from ..model_format import ARCHITECTURES, DEFAULT_POOLING, FEATURES_FILE, POOLINGS, RANDOM_SUFFIX, VJP_FILE, model_name

ENV_MODELS_DIR = "NST_RT_MODELS"
LOCAL_MODELS_DIR = Path("models")
DEFAULT_MODEL = model_name("vgg19", DEFAULT_POOLING)
ENV_MODEL = "NST_RT_MODEL"  # the user's own default model (a name or a path)
DEFAULT_MODEL_HELP = f"${ENV_MODEL} if set, else {DEFAULT_MODEL}"
# One line each for --help: the search order after --models-dir, and export's default destination.
SEARCH_ORDER = f"${ENV_MODELS_DIR}, then ./{LOCAL_MODELS_DIR}, then the user data directory"
EXPORT_DESTINATION = (f"${ENV_MODELS_DIR} if set, else ./{LOCAL_MODELS_DIR} if it exists, "
                      f"else the user data directory")
# The ways to export without a download, named wherever an export is suggested.
OFFLINE_OPTIONS = "--weights FILE for a torchvision-format state dict, or --random-weights SEED to try nst-rt out"
OFFLINE_HINT = f"offline: {OFFLINE_OPTIONS}"


def default_model() -> tuple[str, str]:
    """The model a run uses without ``--model``, and where that choice comes from, in a user's words."""
    value = os.environ.get(ENV_MODEL, "").strip()
    if value:
        return value, f"from ${ENV_MODEL}"
    return DEFAULT_MODEL, f"nst-rt's default; set ${ENV_MODEL} to choose another"


def default_model_name() -> str:
    """The model a run uses without ``--model`` (:func:`default_model`'s name)."""
    return default_model()[0]


def user_models_dir() -> Path:
    """The per-user data directory for models (XDG on Linux and other Unix systems)."""
    return user_dir("data") / "models"


def absolute(path: str | os.PathLike) -> Path:
    """``path`` with ``~`` expanded, made absolute against the working directory (symlinks kept)."""
    return Path(os.path.abspath(os.path.expanduser(path)))


def _env_dir() -> Path | None:
    value = os.environ.get(ENV_MODELS_DIR)
    return absolute(value) if value else None


def default_dirs() -> list[Path]:
    """Places 2-4 of the search order, absolute."""
    dirs = [_env_dir(), absolute(LOCAL_MODELS_DIR), user_models_dir()]
    return list(dict.fromkeys(d for d in dirs if d is not None))


def export_dir() -> Path:
    """Where ``nst-rt export`` writes without ``--out``."""
    local = absolute(LOCAL_MODELS_DIR)
    return _env_dir() or (local if local.is_dir() else user_models_dir())


def found_from(directory: Path) -> str:
    """Where a model exported into ``directory`` is found by name, in a user's words ("" if only when pointed to)."""
    if directory == _env_dir():
        return f"found from any directory while ${ENV_MODELS_DIR} is set"
    if directory == absolute(LOCAL_MODELS_DIR):
        return f"found by runs from this directory (./{LOCAL_MODELS_DIR})"
    if directory == user_models_dir():
        return "the per-user model directory, found from any directory"
    return ""


def is_model_dir(path: Path) -> bool:
    """Does ``path`` look like one export (rather than a directory of exports)?"""
    return (path / FEATURES_FILE).exists() or (path / VJP_FILE).exists()


def check_models_dir(models_dir: str | os.PathLike) -> Path:
    """``models_dir`` made absolute, or an error if it is missing or is a model itself (one level too deep)."""
    path = absolute(models_dir)
    if not path.is_dir():
        problem = "is not a directory" if path.exists() else "does not exist"
        raise ModelNotFoundError(f"--models-dir {path} {problem}; pass the directory that holds your exports "
                                 f"(one subdirectory per model, e.g. vgg19/), or create it with "
                                 f"`{export_command(DEFAULT_MODEL, path)}`")
    if is_model_dir(path):
        raise ModelNotFoundError(f"--models-dir {path} is a model itself, not a directory of models; pass its "
                                 f"parent (--models-dir {path.parent}) or the model directly (--model {path})")
    return path


def search_dirs(models_dir: str | os.PathLike | None = None) -> list[Path]:
    """The directories searched for a model given by name, in order, absolute."""
    first = [check_models_dir(models_dir)] if models_dir is not None else []
    return list(dict.fromkeys(first + default_dirs()))


def split_name(name: str) -> tuple[str, str] | None:
    """(architecture, pooling) of a name that ``nst-rt export`` writes by default, else None."""
    names = {model_name(arch, pooling, random): (arch, pooling)
             for arch in ARCHITECTURES for pooling in POOLINGS for random in (False, True)}
    return names.get(name)


def export_command(name: str, out: Path | None = None, force: bool = False) -> str:
    """The ``nst-rt export`` command that writes the model ``out/name`` (``out`` defaults to :func:`export_dir`)."""
    arch, pooling = split_name(name) or split_name(DEFAULT_MODEL)
    command = f"nst-rt export {arch}" + (f" --pooling {pooling}" if pooling != DEFAULT_POOLING else "")
    if out is not None and absolute(out) != export_dir():
        command += f" --out {absolute(out)}"
    if split_name(name) is None:
        command += f" --name {name}"
    elif name.endswith(RANDOM_SUFFIX):
        command += " --random-weights 0"
    return command + (" --force" if force else "")


def create_hint(name: str, out: Path | None = None, force: bool = False) -> str:
    """'create it with `nst-rt export ...` (offline, ...)': the end of every message about a missing model."""
    return f"create it with `{export_command(name, out, force)}` ({OFFLINE_HINT})"


def not_found_message(name: str, dirs: list[Path], models_dir_given: bool) -> str:
    """No export called ``name`` in ``dirs``: name the places searched, the ways to point elsewhere, the export."""
    looked = ", ".join(str(d) for d in dirs)
    elsewhere = "" if models_dir_given else (f"if it was exported elsewhere, pass --models-dir DIR or set "
                                             f"${ENV_MODELS_DIR}=DIR; otherwise ")
    out = dirs[0] if models_dir_given else None
    arch = name.split("-")[0]
    if re.fullmatch(r"vgg\d+", arch) and arch not in ARCHITECTURES:  # e.g. vgg13: an export would mislabel it
        found = sorted({p.name for d in dirs if d.is_dir() for p in d.iterdir() if p.is_dir() and is_model_dir(p)})
        exportable = ", ".join(model_name(arch, pooling) for arch in ARCHITECTURES for pooling in POOLINGS)
        return (f"no exported model {name!r} in {looked}, and {arch} is not an architecture nst-rt "
                f"exports; models found: {', '.join(found) or 'none'}; `nst-rt export` writes {exportable}")
    return f"no exported model {name!r} in {looked}; {elsewhere}{create_hint(name, out)}"
