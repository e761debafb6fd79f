"""The terminal progress displays of the commands: a stylization's (from :mod:`nst_rt.pipeline.display`, shared
with the Python API) and a batch's, one bar over the pictures.

Drawn only on a terminal: captured or redirected stderr gets no control codes, only the summary.
"""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from ..pipeline.display import SPEED_WINDOW, ProgressDisplay, RateColumn, format_terms  # noqa: F401 (the CLI's names)


class BatchProgressDisplay:
    """A progress callback for ``batching.batch``: one bar over the pictures, each failure printed above it as
    it happens. ``enabled=None`` means: only when stderr is a terminal."""

    def __init__(self, enabled: bool | None = None, console: Console | None = None):
        self.console = console or Console(stderr=True)
        self.enabled = self.console.is_terminal if enabled is None else enabled
        self._progress: Progress | None = None
        self._task = None

    def __call__(self, result, finished: int, total: int) -> None:
        if not self.enabled:
            return
        if self._progress is None:
            self._progress = Progress(
                TextColumn("pictures"), BarColumn(bar_width=24), MofNCompleteColumn(),
                TextColumn("{task.fields[last]}"), TimeRemainingColumn(), console=self.console, refresh_per_second=4,
                speed_estimate_period=SPEED_WINDOW)
            self._task = self._progress.add_task("pictures", total=total, last="")
            self._progress.start()
        if result.status == "failed":
            self._progress.console.print(f"failed: {result.input}: {result.message}", markup=False, highlight=False)
        self._progress.update(self._task, completed=finished, last=f"{result.status} {result.input.name}")

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
