"""Joining a Ray cluster, or starting a local Ray, with one error for every way that fails."""

from __future__ import annotations

import logging
import signal
import socket
import threading
from contextlib import contextmanager

from ..errors import ClusterError
from .interrupts import STOP_SIGNALS

REACH_SECONDS = 5.0  # how long a head node's port may take to answer before the address is refused


def connect(ray, address: str | None, loggers=("ray",)) -> bool:
    """``ray.init`` on ``address`` (a local Ray when None) unless Ray is running in this process already;
    True when it was started here (the caller then shuts it down). ClusterError when it cannot be reached."""
    check_reachable(address)  # also when Ray runs here already: a bad --address is refused either way
    if ray.is_initialized():
        return False
    for name in loggers:
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        with handlers_kept():
            ray.init(address=address, include_dashboard=False, configure_logging=False, log_to_driver=False)
    except Exception as exc:  # Ray raises ConnectionError, RuntimeError, ValueError, ... for the same problem
        where = f"the Ray cluster at {address}" if address else "a local Ray"
        detail = " ".join(str(exc).split())[:300] or type(exc).__name__
        raise ClusterError(f"could not start or reach {where} ({detail}); check --address, or leave it out "
                           f"to run a local Ray") from None
    return True


@contextmanager
def handlers_kept():
    """The stop signals' handlers set in Python (e.g. by ``stop_signals``) as they were before the block.
    ``ray.init`` sets its own for SIGTERM (one that exits with status 1, and a native one that prints a stack),
    which would lose the best image of a run stopped by SIGTERM; Ray's processes still end, as the caller shuts
    Ray down on the way out. Default handlers are left to Ray: its own then ends its processes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in STOP_SIGNALS}
    try:
        yield
    finally:
        for s, handler in previous.items():
            if callable(handler) and handler is not signal.default_int_handler:
                signal.signal(s, handler)


def check_reachable(address: str | None) -> None:
    """ClusterError, at once, for a HOST:PORT (or ray://HOST:PORT) address that is malformed or whose port does
    not answer: ``ray.init`` would wait minutes on it. Other addresses (auto, local) are Ray's to resolve."""
    if not address or address in ("auto", "local"):
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ClusterError(f"--address must be HOST:PORT (e.g. 10.0.0.5:6379), ray://HOST:PORT or auto, got {address!r}")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=REACH_SECONDS).close()
    except OSError as exc:
        raise ClusterError(f"could not reach the Ray cluster at {address} ({exc.strerror or exc}); check --address, "
                           "or leave it out to run a local Ray") from None
