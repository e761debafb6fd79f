"""The terminal progress display of a video run: one bar over the frames, one over the current frame's
iterations (rich, on stderr, only on a terminal)."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Column

from .progress import SPEED_WINDOW, RateColumn, format_terms


class VideoProgressDisplay:
    """A progress callback for ``stylize_video``; ``enabled=None`` means: only when stderr is a terminal."""

    def __init__(self, enabled: bool | None = None, console: Console | None = None):
        self.console = console or Console(stderr=True)
        self.enabled = self.console.is_terminal if enabled is None else enabled
        self._progress: Progress | None = None
        self._frames = self._frame = None
        self._frame_number = 0

    def __call__(self, p) -> None:
        if not self.enabled:
            return
        if self._progress is None:
            self._start(p)
        if p.step is None:  # a frame is finished
            self._progress.update(self._frames, completed=p.frame)
            return
        if p.frame != self._frame_number:  # a new frame: its own iteration count (the first frame has more)
            self._frame_number = p.frame
            self._progress.reset(self._frame, total=p.step.iterations, description=f"frame {p.frame}",
                                 terms="")
        self._progress.update(self._frame, completed=p.step.iteration, terms=format_terms(p.step.loss, p.step.terms))

    def _start(self, p) -> None:
        self._progress = Progress(
            TextColumn("{task.description}", table_column=Column(no_wrap=True, min_width=9)),
            BarColumn(bar_width=16), MofNCompleteColumn(),
            TextColumn("{task.fields[terms]}", table_column=Column(no_wrap=True, overflow="ellipsis",
                                                                     max_width=max(8, self.console.width - 62))),
            RateColumn(), TimeRemainingColumn(), console=self.console, refresh_per_second=4,
            speed_estimate_period=SPEED_WINDOW)
        # Frames done by an earlier run count as done, so the rate and time left are this run's.
        self._frames = self._progress.add_task("frames", total=p.frames, completed=p.resumed, terms="")
        self._frame = self._progress.add_task(f"frame {p.frame}", total=None, terms="")
        self._progress.start()

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
