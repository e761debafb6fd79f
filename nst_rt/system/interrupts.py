"""Stop signals as one exception: Ctrl-C (SIGINT), SIGTERM and SIGHUP end a command the same way.

Job schedulers (Slurm, Kubernetes, systemd) send SIGTERM before they kill, and a closed terminal sends
SIGHUP. Inside ``stop_signals()`` each of them raises ``Interrupted``, a ``KeyboardInterrupt``, so the code
that keeps the best result on Ctrl-C keeps it on these too; the exit code is the shell's, 128 + signal.
``signals_held()`` defers them while a file is being saved, so a stop never cuts a save short.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))
CTRL_C_EXIT_CODE = 128 + signal.SIGINT


class Interrupted(KeyboardInterrupt):
    """A stop signal arrived; ``signum`` says which."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = int(signum)


class StopSignals:
    """What ``stop_signals()`` yields: the signal that arrived, if any, and the exit code it calls for."""

    def __init__(self) -> None:
        self.signum: int | None = None

    @property
    def exit_code(self) -> int:
        """128 + the signal number; a KeyboardInterrupt raised without a signal counts as Ctrl-C."""
        return 128 + self.signum if self.signum is not None else CTRL_C_EXIT_CODE

    @property
    def what(self) -> str:
        """How the stop is named to the user: "interrupted" for Ctrl-C, "stopped by SIGTERM" otherwise."""
        if self.signum is None or self.signum == signal.SIGINT:
            return "interrupted"
        return f"stopped by {signal.Signals(self.signum).name}"


@contextmanager
def stop_signals(signals=STOP_SIGNALS) -> Iterator[StopSignals]:
    """Turn ``signals`` into ``Interrupted`` while inside; the previous handlers come back on exit.

    Signal handlers can only be set from the main thread: elsewhere this changes nothing (Ctrl-C still
    reaches the main thread as a KeyboardInterrupt).
    """
    state = StopSignals()
    if threading.current_thread() is not threading.main_thread():
        yield state
        return

    def handler(signum, frame):
        state.signum = signum
        raise Interrupted(signum)

    previous = {s: signal.signal(s, handler) for s in signals}
    try:
        yield state
    finally:
        for s, old in previous.items():
            signal.signal(s, old)


@contextmanager
def signals_held():
    """Hold Ctrl-C (and any other stop signal that Python code handles) until the block ends, then deliver it:
    a file being saved is finished before the batch stops. Only the main thread can set handlers."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    held = {s: signal.getsignal(s) for s in STOP_SIGNALS}
    held = {s: handler for s, handler in held.items() if callable(handler)}
    for s in held:
        signal.signal(s, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        for s, handler in held.items():
            signal.signal(s, handler)
        if caught:
            held[caught[0]](caught[0], None)  # the handler it would have met: raises KeyboardInterrupt
