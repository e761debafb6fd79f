"""The optimisers' names and each one's options with their defaults (SciPy's names)."""

from __future__ import annotations

from typing import Any

METHODS = ("lbfgs", "adam")
_LBFGS_DEFAULTS: dict[str, Any] = {
    "maxiter": 1000,
    "maxfun": 15000,
    "maxcor": 100,
    "ftol": 2.220446049250313e-09,
    "gtol": 1e-5,
    "maxls": 20,
}
_ADAM_DEFAULTS: dict[str, Any] = {
    "lr": 0.02,
    "beta1": 0.9,
    "beta2": 0.999,
    "eps": 1e-8,
    "maxiter": 1000,
}
# Each method's options and their defaults, by method (the pipeline keeps its own L-BFGS history, Options.history).
DEFAULTS = {"lbfgs": _LBFGS_DEFAULTS, "adam": _ADAM_DEFAULTS}


def pairs_kept(maxcor: int, maxiter: int) -> int:
    """The L-BFGS pairs a run of ``maxiter`` iterations keeps with ``maxcor``: one per iteration at most."""
    return max(0, min(int(maxcor), int(maxiter)))
