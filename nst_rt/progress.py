"""A one-line terminal progress display for stylization runs (stderr, only on a terminal)."""

from __future__ import annotations

import sys
import time


def format_seconds(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


class ProgressBar:
    """Redraws one line per iteration: scale, iteration, loss and its terms, time per iteration, ETA."""

    def __init__(self, enabled: bool | None = None, stream=None, width: int = 20):
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.width = width
        self._scale_started: tuple[int, float] | None = None
        self._drawn = False

    def __call__(self, p) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if self._scale_started is None or self._scale_started[0] != p.scale:
            self._scale_started = (p.scale, now - 1e-9)
            self._first_iteration = p.iteration - 1
        per_iteration = (now - self._scale_started[1]) / max(p.iteration - self._first_iteration, 1)
        # Later scales have 4x the pixels of the one before, so they take about 4x as long per iteration.
        remaining = (p.iterations - p.iteration) * per_iteration
        remaining += sum(p.iterations * per_iteration * 4 ** k for k in range(1, p.scales - p.scale + 1))
        done = int(self.width * p.iteration / max(p.iterations, 1))
        bar = "#" * done + "-" * (self.width - done)
        scale = f"scale {p.scale}/{p.scales} " if p.scales > 1 else ""
        terms = " ".join(f"{k} {v:.3g}" for k, v in p.terms.items() if v)
        line = (f"{scale}[{bar}] {p.iteration}/{p.iterations} loss {p.loss:.4g} ({terms}) "
                f"{per_iteration:.2f} s/it ETA {format_seconds(remaining)}")
        self.stream.write("\r" + line + "\033[K")
        self.stream.flush()
        self._drawn = True

    def close(self) -> None:
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False
