"""The options of ``minimize``: merged into the method's defaults, each checked."""

from __future__ import annotations

import math
from collections.abc import Mapping
from numbers import Integral, Real
from typing import Any

from ..errors import OptionError


def _check_options(options: Mapping[str, Any] | None, defaults: dict[str, Any], method: str) -> dict[str, Any]:
    """Merge ``options`` into the defaults, rejecting unknown names and unusable values."""
    if options is None:
        options = {}
    if not isinstance(options, Mapping):
        raise OptionError(f"options must be a dict, not {type(options).__name__}")
    unknown = sorted(map(str, set(options) - set(defaults)))
    if unknown:
        raise OptionError(
            f"unknown option(s) {', '.join(map(repr, unknown))} for method {method!r}; "
            f"valid options: {', '.join(sorted(defaults))}"
        )
    opts = {**defaults, **options}
    for name in ("maxiter", "maxfun", "maxcor", "maxls"):
        if name == "maxfun" and opts.get(name, 0) is None:
            continue  # no limit on evaluations
        if name in opts:
            opts[name] = _positive_int(name, opts[name])
    for name in ("ftol", "gtol"):
        if name in opts:
            opts[name] = _real(name, opts[name], lo=0.0)
    if method == "adam":
        opts["lr"] = _real("lr", opts["lr"], lo=0.0, lo_open=True)
        opts["eps"] = _real("eps", opts["eps"], lo=0.0, lo_open=True)
        for name in ("beta1", "beta2"):
            opts[name] = _real(name, opts[name], lo=0.0)
            if opts[name] >= 1.0:
                raise OptionError(f"option {name} must be in [0, 1), got {opts[name]}")
    return opts


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool):
        raise OptionError(f"option {name} must be a positive integer, got {value!r}")
    if isinstance(value, Real) and not isinstance(value, Integral):
        if not math.isfinite(float(value)) or not float(value).is_integer():
            raise OptionError(f"option {name} must be a positive integer, got {value!r}")
        value = int(value)
    if not isinstance(value, Integral) or value < 1:
        raise OptionError(f"option {name} must be a positive integer, got {value!r}")
    return int(value)


def _real(name: str, value: Any, *, lo: float, lo_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(float(value)):
        raise OptionError(f"option {name} must be a finite number, got {value!r}")
    value = float(value)
    if value < lo or (lo_open and value == lo):
        relation = ">" if lo_open else ">="
        raise OptionError(f"option {name} must be {relation} {lo}, got {value}")
    return value
