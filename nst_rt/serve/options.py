"""The options a client may send, read from ``Options``' fields, and their checks.

Names are the Python field names. Anything that would make the server open a client-given path is left
out: ``models_dir``, ``init`` other than its keywords, ``model`` other than a name the server offers, and the
masks (``style_masks``, ``content_mask``: paths; the API has no mask upload), which are refused.
"""

from __future__ import annotations

import numbers
from dataclasses import fields, replace

from ..errors import OptionError
from ..network.precision import PRECISIONS
from ..network.providers import PROVIDERS
from ..optimize import METHODS
from ..pipeline.options import COLOR_TRANSFERS, INITS, ORIGINAL_COLORS_MODES, Options

# The options the page shows first; the rest go under "Advanced".
MAIN = ("size", "iterations", "style_weight", "tv_weight", "original_colors", "style_scale", "model")
SERVER_ONLY = ("models_dir",)  # set by the server's command line, never by a client
# Fixed when the server starts (its own flags): each costs a loaded network or threads. A job may send the server's
# own value (the page does not send it), any other is refused.
FIXED = ("model", "provider", "precision", "threads")
PATHS = ("style_masks", "content_mask")  # would open a client-given path: refused, and not offered
CHOICES = {"init": INITS, "optimizer": tuple(METHODS), "provider": PROVIDERS, "precision": PRECISIONS,
           "color_transfer": COLOR_TRANSFERS, "original_colors_mode": ORIGINAL_COLORS_MODES}


def _kind(annotation: str) -> tuple[str, bool]:
    """(int | float | bool | str | floats | strs, nullable) from a field's annotation string."""
    nullable = "None" in annotation
    base = annotation.replace("| None", "").strip()
    if base.startswith("Sequence[str]"):
        return "strs", nullable
    if base.startswith("Sequence[float]"):
        return "floats", nullable
    if base in ("int", "float", "bool"):
        return base, nullable
    return "str", nullable


def _plain(value):
    """A value as JSON has it: tuples as lists, paths as strings."""
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def describe(base: Options, models: list[str]) -> list[dict]:
    """GET /api/options: every field a client may set, with its type, its default (the server's ``base``, which
    is ``Options()`` but for the command line's model, provider, precision and threads) and its choices; ``main``
    marks the ones shown first, ``fixed`` the ones set by the server (FIXED)."""
    out = []
    for field in fields(Options):
        if field.name in SERVER_ONLY or field.name in PATHS:
            continue
        kind, nullable = _kind(str(field.type))
        entry = {"name": field.name, "type": kind, "nullable": nullable,
                 "default": _plain(getattr(base, field.name)), "main": field.name in MAIN,
                 "fixed": field.name in FIXED}
        choices = models if field.name == "model" else CHOICES.get(field.name)
        if choices:
            entry["choices"] = list(choices)
        out.append(entry)
    return out


def settings(options: Options, raw: dict) -> dict:
    """What a result's caption shows: the main options and every one the client sent, as the run used them."""
    return {name: _plain(getattr(options, name)) for name in (*MAIN, *(n for n in raw if n not in MAIN))
            if name not in PATHS}


def _check_type(name: str, value, kind: str, nullable: bool):
    if value is None and nullable:
        return None
    number = isinstance(value, numbers.Real) and not isinstance(value, bool)
    ok = {"int": isinstance(value, int) and not isinstance(value, bool),
          "float": number, "bool": isinstance(value, bool), "str": isinstance(value, str),
          "strs": isinstance(value, list) and all(isinstance(v, str) for v in value),
          "floats": isinstance(value, list) and all(isinstance(v, numbers.Real) and not isinstance(v, bool)
                                                    for v in value)}[kind]
    if not ok:
        words = {"int": "a whole number", "float": "a number", "bool": "true or false", "str": "a string",
                 "strs": "a list of strings", "floats": "a list of numbers"}[kind]
        raise OptionError(f"option {name!r} must be {words}{' or null' if nullable else ''}, got {value!r}")
    if kind == "float":
        return float(value)
    if kind in ("strs", "floats"):
        return tuple(value)
    return value


def parse(raw, base: Options, models: list[str]) -> Options:
    """The ``options`` JSON object of a job, over the server's ``base``; OptionError says what is wrong."""
    if not isinstance(raw, dict):
        raise OptionError("options must be a JSON object of Options fields, e.g. {\"size\": 256}")
    known = {f.name: f for f in fields(Options) if f.name not in SERVER_ONLY}
    changes = {}
    for name, value in raw.items():
        if name in PATHS:
            if value is None:
                continue
            raise OptionError(f"option {name!r} is not offered here: the server never opens a path a client "
                              "gives, and the API takes no mask uploads; run masks with the nst-rt command")
        if name not in known:
            raise OptionError(f"unknown option {name!r}; the options are: {', '.join(known)}")
        kind, nullable = _kind(str(known[name].type))
        value = _check_type(name, value, kind, nullable)
        if name in FIXED and _plain(value) != _plain(getattr(base, name)):
            raise OptionError(f"option {name!r} is fixed when the server starts ({_plain(getattr(base, name))}); "
                              f"leave it out, or start nst-rt serve with --{name} {_plain(value)}")
        choices = models if name == "model" else CHOICES.get(name)
        if choices and value not in choices:
            raise OptionError(f"option {name!r} must be one of {', '.join(map(str, choices))}, got {value!r}")
        changes[name] = value
    return replace(base, **changes).validated()


def blame(raw, base: Options, models: list[str]) -> str | None:
    """The option that makes ``parse(raw, ...)`` fail on its own (the first one), so the page can show the
    message next to it; None when no single one does (or ``raw`` is no object)."""
    if not isinstance(raw, dict):
        return None
    for name, value in raw.items():
        try:
            parse({name: value}, base, models)
        except OptionError:
            return name
    return None
