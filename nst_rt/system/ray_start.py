"""Joining a Ray cluster, or starting a local Ray, with one error for every way that fails."""

from __future__ import annotations

import logging
import os

from ..errors import ClusterError


def connect(ray, address: str | None, loggers=("ray",)) -> bool:
    """``ray.init`` on ``address`` (a local Ray when None) unless Ray is running in this process already;
    True when it was started here (the caller then shuts it down). ClusterError when it cannot be reached."""
    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")  # Ray's own notices are not the user's concern
    for name in loggers:
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        ray.init(address=address, include_dashboard=False, configure_logging=False, log_to_driver=False)
    except Exception as exc:  # Ray raises ConnectionError, RuntimeError, ValueError, ... for the same problem
        where = f"the Ray cluster at {address}" if address else "a local Ray"
        detail = " ".join(str(exc).split())[:300] or type(exc).__name__
        raise ClusterError(f"could not start or reach {where} ({detail}); check --address, or leave it out "
                           f"to run a local Ray") from None
    return True
