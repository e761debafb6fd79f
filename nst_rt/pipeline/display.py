"""The terminal progress display of a stylization: a rich progress bar on stderr, one task per scale.

The CLI's ``stylize`` and the Python API's ``stylize(..., progress=True)`` draw the same display (it lives
below both: a progress callback of ``Stylizer.run``, imported only when asked for).

Each task shows the iteration count, the loss and its terms, the rate and the time left at that scale (or, once
the settle stop ended it, "settled at N"), and
in a tiled run the tile being evaluated (and in a bf16 run each scale's arithmetic: bf16, or fp32 once it went on in
fp32). On a terminal narrower than about 110 columns the loss and its terms
of the scale being run take a line of their own under the bars, whole.
It is drawn only on a terminal: captured or redirected stderr gets no control codes. There (under nohup, in
a log file) it prints a plain line every ``print_every`` iterations instead (neural-style's ``-print_iter``).
"""

from __future__ import annotations

import math

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeRemainingColumn
from rich.table import Column
from rich.text import Text


# The rate and time left average the iterations of the last hour: rich's default of 30 s leaves a large
# image's iterations (minutes each at 4096 px) without any estimate.
SPEED_WINDOW = 3600.0


class RateColumn(ProgressColumn):
    """Iterations per second, or seconds per iteration when an iteration takes longer than a second."""

    def render(self, task) -> Text:
        speed = task.finished_speed or task.speed
        if not speed:
            return Text("- it/s")
        return Text(f"{speed:.2f} it/s" if speed >= 1 else f"{1 / speed:.1f} s/it")


class RemainingOrNoteColumn(ProgressColumn):
    """The time left at this scale; a task that ended early shows why instead of a stale estimate."""

    def __init__(self) -> None:
        super().__init__(table_column=Column(no_wrap=True))
        self.remaining = TimeRemainingColumn()

    def render(self, task) -> Text:
        note = task.fields.get("note")
        return Text(note) if note else self.remaining.render(task)


# Where stderr is not a terminal, a plain progress line every this many iterations of a scale.
PRINT_EVERY = 50

# The loss and its terms at three significant figures: "loss 1.119 (content 0.819 style 3.46 tv 0.133)".
TERMS_WIDTH = 48
OTHER_COLUMNS = 62  # about what the other columns of a row take


class _TermsBelow(Progress):
    """A Progress that shows the current scale's loss terms on a line of their own, under the bars: a narrow
    terminal has no room for them in the row."""

    current = None

    def get_renderables(self):
        yield self.make_tasks_table(self.tasks)
        task = next((t for t in self.tasks if t.id == self.current), None)
        terms = task.fields.get("terms", "") if task is not None else ""
        if terms:
            yield Text(f"  {terms}", no_wrap=True, overflow="ellipsis")


def format_terms(loss: float, terms: dict) -> str:
    if not math.isfinite(loss):
        return ""
    parts = " ".join(f"{name} {value:.3g}" for name, value in terms.items() if value)
    return f"loss {loss:.4g}" + (f" ({parts})" if parts else "")


class ProgressDisplay:
    """A progress callback for ``Stylizer.run``; ``enabled=None`` means: only when stderr is a terminal.
    ``print_every``: a plain line every that many iterations (0: none; None: ``PRINT_EVERY`` where the bar is not
    drawn because stderr is not a terminal, else none)."""

    def __init__(self, enabled: bool | None = None, console: Console | None = None, print_every: int | None = None):
        self.console = console or Console(stderr=True)
        self.enabled = self.console.is_terminal if enabled is None else enabled
        if print_every is None:
            print_every = PRINT_EVERY if enabled is None and not self.enabled else 0
        self.print_every = print_every
        self._printed: tuple[int, int] | None = None
        self._progress: Progress | None = None
        self._tasks: list = []
        self._current = None
        self._labels: list[str] = []
        self._bf16 = False

    def tile(self, pass_: int, index: int, count: int) -> None:
        """Show which tile of a tiled evaluation is running (``Stylizer.run``'s ``on_tile``)."""
        if self._progress is not None and self._current is not None:
            self._progress.update(self._current, tiles=f"tile {index}/{count} pass {pass_}/2")

    def __call__(self, p) -> None:
        if self.print_every and p.iteration and p.iteration % self.print_every == 0 and \
                self._printed != (p.scale, p.iteration):
            self._print_line(p)
        if not self.enabled:
            return
        if self._progress is None:
            totals = [stage.iterations for stage in p.stages] if p.stages else [p.iterations] * p.scales
            self._start(totals, first_scale=p.scale)
        task = self._tasks[p.scale - 1]
        for earlier in self._tasks[: p.scale - 1]:  # a scale that ended early must not look frozen
            done = self._progress.tasks[earlier].completed
            if done < self._progress.tasks[earlier].total and not self._progress.tasks[earlier].fields.get("note"):
                self._progress.update(earlier, note=f"stopped at {done:.0f}")
                self._progress.stop_task(earlier)
        if not self._progress.tasks[task].started:
            self._progress.start_task(task)
        if self._current is not None and self._current != task:
            self._progress.update(self._current, tiles="")
        self._current = task
        if isinstance(self._progress, _TermsBelow):
            self._progress.current = task
        self._progress.update(task, completed=p.iteration, terms=format_terms(p.loss, p.terms))
        if getattr(p, "settled", False):  # the settle stop ended the scale here (nst_rt.pipeline.settle)
            self._progress.update(task, note=f"settled at {p.iteration}", settled=True)
            self._progress.stop_task(task)
        precision = getattr(p, "precision", "fp32")
        self._bf16 = self._bf16 or precision == "bf16"
        if self._bf16:  # a bf16 run says each scale's arithmetic, so that a scale gone on in fp32 shows it
            self._progress.update(task, description=f"{self._labels[p.scale - 1]} {precision}")

    def _print_line(self, p) -> None:
        """'iteration 50/200, scale 1/3, loss 1.12 (content 0.8 style 0.3), 12.3 s': one line, no control codes."""
        self._printed = (p.scale, p.iteration)
        loss = format_terms(p.loss, p.terms)
        line = (f"iteration {p.iteration}/{p.iterations}, scale {p.scale}/{p.scales}"
                f"{f', {loss}' if loss else ''}, {p.elapsed:.1f} s")
        console = self._progress.console if self._progress is not None else self.console
        console.print(line, markup=False, highlight=False, soft_wrap=True)

    def _start(self, totals: list[int], first_scale: int = 1) -> None:
        """One task per scale; ``totals`` are the scales' iterations. A resumed run starts at a later scale
        (``first_scale``): the ones before it ran before the resume."""
        def fixed():
            return Column(no_wrap=True)

        # Where the row has no room for the loss terms, they go on a line of their own under the bars.
        below = self.console.width - OTHER_COLUMNS < TERMS_WIDTH
        terms = [] if below else [TextColumn("{task.fields[terms]}", table_column=Column(no_wrap=True))]
        self._progress = (_TermsBelow if below else Progress)(
            TextColumn("{task.description}", table_column=fixed()), BarColumn(bar_width=16, table_column=fixed()),
            MofNCompleteColumn(table_column=fixed()), *terms,
            RateColumn(table_column=fixed()), RemainingOrNoteColumn(), TextColumn("{task.fields[tiles]}"),
            console=self.console, refresh_per_second=4, speed_estimate_period=SPEED_WINDOW,
        )
        scales = len(totals)
        for scale, iterations in enumerate(totals, start=1):
            label = f"scale {scale}/{scales}" if scales > 1 else "stylize"
            before = scale < first_scale
            self._labels.append(label)
            self._tasks.append(self._progress.add_task(
                label, total=iterations, completed=iterations if before else 0, start=False, terms="",
                note="before the resume" if before else "", tiles=""))
        self._progress.start()

    def close(self, notes: dict[int, str] | None = None) -> None:
        """Stop drawing; ``notes`` maps a scale to why it ended early, shown in place of its time left."""
        if self._progress is None:
            return
        for scale, note in (notes or {}).items():
            if not self._progress.tasks[self._tasks[scale - 1]].fields.get("settled"):  # that says more
                self._progress.update(self._tasks[scale - 1], note=note)
        if self._current is not None:
            self._progress.update(self._current, tiles="")
        self._progress.stop()
        self._progress = None
        self._tasks = []
        self._labels = []
        self._current = None
