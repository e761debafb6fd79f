"""One input of a batch: the file it becomes, its outcome, and the stylizing and saving of it.

Both engines (this process, and each Ray actor) stylize an input through ``stylize_one``, so they save, skip
and fail alike.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import NstError
from ..pipeline.options import ENGINES, Options  # noqa: F401 (ENGINES: the batch's engines are stylize's)
from ..system.interrupts import signals_held

DEFAULT_FORMAT = "png"
DONE, SKIPPED, FAILED = "done", "skipped", "failed"


@dataclass(frozen=True)
class Item:
    """One input and the output it becomes."""

    input: Path
    output: Path


@dataclass(frozen=True)
class ItemResult:
    input: Path
    output: Path
    status: str  # DONE, SKIPPED (the output was already there) or FAILED
    message: str = ""  # why it failed
    seconds: float = 0.0


def stylize_one(stylizer, item: Item, styles: Sequence, overwrite: bool,
                report: Callable[[ItemResult], None]) -> None:
    """Stylize and save one input, reporting the outcome; an interrupted run is not saved (a rerun redoes it)."""
    from ..io import image_save

    started = time.perf_counter()
    try:
        result = stylizer.run(item.input, styles)
        if result.interrupted:
            raise KeyboardInterrupt
        with signals_held():
            image_save.save_image(result.image, item.output, overwrite=overwrite)
            report(ItemResult(item.input, item.output, DONE, seconds=time.perf_counter() - started))
    except NstError as exc:
        report(ItemResult(item.input, item.output, FAILED, str(exc), time.perf_counter() - started))


def run_local(todo: Sequence[Item], styles: Sequence, options: Options, overwrite: bool,
              report: Callable[[ItemResult], None]) -> None:
    from ..pipeline.stylizer import Stylizer  # here: the CLI reads this module's names at startup

    stylizer = Stylizer(options)
    for item in todo:
        stylize_one(stylizer, item, styles, overwrite, report)
