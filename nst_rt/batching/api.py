"""Many pictures, one model: plan the outputs, skip the finished ones, stylize the rest, report each input.

``batch()`` is the Python API of ``nst-rt batch``. The local engine stylizes the inputs one after another in
this process with one ``Stylizer`` (the model is loaded once); ``engine="ray"`` hands them to Ray Data
(``nst_rt.batching.ray_engine``); ``nst_rt.batching.items`` stylizes one input for either. Both engines share the plan and the report, so they name, skip and fail alike.
"""

from __future__ import annotations

import glob
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..io import image_load, image_save
from ..errors import OptionError
from ..pipeline import masks
from ..pipeline.options import Options
from . import record
from .items import DEFAULT_FORMAT, DONE, ENGINES, FAILED, SKIPPED, Item, ItemResult, run_local  # noqa: F401



@dataclass
class BatchReport:
    """Every input's outcome, in the order they finished; ``interrupted`` if a stop signal ended the batch."""

    results: list[ItemResult] = field(default_factory=list)
    total: int = 0
    interrupted: bool = False
    seconds: float = 0.0

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.results)

    @property
    def failed(self) -> list[ItemResult]:
        return [r for r in self.results if r.status == FAILED]

    @property
    def remaining(self) -> int:
        """Inputs not attempted because the batch was interrupted."""
        return self.total - len(self.results)


# A progress callback receives each input's result as it finishes, with the count finished so far and the total.
ProgressCallback = Callable[[ItemResult, int, int], None]


def readable_suffixes() -> set[str]:
    """File suffixes of the formats Pillow can open: what a directory given as input contributes."""
    from PIL import Image

    return {suffix for suffix, fmt in Image.registered_extensions().items() if fmt in Image.OPEN}


def collect_inputs(inputs: Iterable[str | os.PathLike]) -> list[Path]:
    """Files as given, the image files of a directory (sorted, not recursive, hidden ones left out), and the
    matches of a glob pattern (``**`` recurses). Each file once, in the order first met."""
    suffixes = readable_suffixes()
    found: dict[Path, None] = {}
    for given in inputs:
        path = Path(os.fspath(given))
        matches = [path] if path.exists() else [Path(m) for m in sorted(glob.glob(os.fspath(given), recursive=True))]
        if not matches:
            raise OptionError(f"input '{given}' is no file, directory or matching pattern; check the name")
        for match in matches:
            if match.is_dir():
                files = sorted(p for p in match.iterdir() if p.is_file() and not p.name.startswith(".")
                               and p.suffix.lower() in suffixes)
            else:
                files = [match]
            found.update(dict.fromkeys(files))
    if not found:
        raise OptionError(f"no image files in {', '.join(map(str, inputs))}")
    return list(found)


def plan(inputs: Iterable[str | os.PathLike], out_dir: str | os.PathLike, format: str = DEFAULT_FORMAT,
         overwrite: bool = False) -> tuple[list[Item], list[Item]]:
    """Return (to do, already done): each input is written to OUT_DIR/its name with the ``format`` suffix.

    Without ``overwrite`` an existing output counts as done, so a rerun resumes where the last one stopped.
    Two inputs that would write the same output, or an output that is one of the inputs, are refused.
    """
    out_dir = Path(os.fspath(out_dir))
    suffix = "." + format.lower().lstrip(".")
    if suffix not in image_save.SAVE_SUFFIXES:
        known = ", ".join(s.lstrip(".") for s in image_save.SAVE_SUFFIXES)
        raise OptionError(f"unknown --format '{format}'; use one of: {known}")
    files = collect_inputs(inputs)
    items = [Item(path, out_dir / (path.stem + suffix)) for path in files]
    by_output: dict[Path, Path] = {}
    for item in items:
        if item.output in by_output:
            raise OptionError(f"'{by_output[item.output]}' and '{item.input}' would both be written to "
                              f"'{item.output}'; rename one or stylize them in two batches")
        by_output[item.output] = item.input
    resolved_inputs = {p.resolve() for p in files}
    for item in items:
        if item.output.resolve() in resolved_inputs:
            raise OptionError(f"output '{item.output}' would replace an input; choose another output directory "
                              f"or --format")
    if out_dir.exists() and not out_dir.is_dir():
        raise OptionError(f"output directory '{out_dir}' is a file; choose a directory")
    out_dir.mkdir(parents=True, exist_ok=True)
    # The directory's permissions, checked once before any work (raises ImageError).
    image_save.check_output_path(out_dir / f"probe{suffix}", overwrite=True, what="-o")
    done = [item for item in items if not overwrite and os.path.lexists(item.output)]
    finished = set(done)
    return [item for item in items if item not in finished], done


def batch(inputs: Iterable[str | os.PathLike], styles, out_dir: str | os.PathLike, *,
          format: str = DEFAULT_FORMAT, overwrite: bool = False, engine: str = "local", address: str | None = None,
          actors: int | None = None, progress: ProgressCallback | None = None, options: Options | None = None,
          **overrides) -> BatchReport:
    """Stylize every input with ``styles`` into ``out_dir`` and return a report; never raises for one bad input.

    ``inputs`` are files, directories and glob patterns. Outputs are named after their inputs with the
    ``format`` suffix; those already there are skipped unless ``overwrite`` (and refused if they were made with
    other settings: see :mod:`nst_rt.batching.record`). Ctrl-C stops after the file being
    saved (the report says ``interrupted``). ``engine="ray"`` runs on Ray Data: a local Ray, or the cluster
    at ``address``, with ``actors`` workers. Options are an ``Options`` and/or its fields as keywords.
    """
    if engine not in ENGINES:
        raise OptionError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    if engine == "local" and (address is not None or actors is not None):
        raise OptionError("--address and --actors apply to --engine ray only")
    if engine == "ray":
        from .ray_engine import import_ray

        import_ray()  # a missing extra is said before any work
    options = replace(options or Options(), **overrides).validated()
    styles = [Path(os.fspath(s)) for s in (styles if isinstance(styles, (list, tuple)) else [styles])]
    if not styles:
        raise OptionError("give at least one style image")
    for i, style in enumerate(styles):  # a bad style fails the batch before any work, not every input
        image_load.load_image(style, role=f"style image {i + 1}")
    masks.load(options, len(styles))  # one mask set for every picture: a bad one fails the batch up front
    started = time.perf_counter()
    todo, done = plan(inputs, out_dir, format, overwrite)
    # Skipping a result is right only if it was made with these settings.
    out = Path(os.fspath(out_dir))
    results = bool(done) or any(p.is_file() and not p.name.startswith(".") for p in out.iterdir())
    record.check_and_record(out, record.settings(styles, options), results, overwrite)
    report = BatchReport(total=len(todo) + len(done))

    def report_one(result: ItemResult) -> None:
        report.results.append(result)
        if progress is not None:
            progress(result, len(report.results), report.total)

    for item in done:
        report_one(ItemResult(item.input, item.output, SKIPPED))
    try:
        if engine == "local":
            run_local(todo, styles, options, overwrite, report_one)
        else:
            from .ray_engine import run_ray

            run_ray(todo, styles, options, overwrite, report_one, address=address, actors=actors)
    except KeyboardInterrupt:
        report.interrupted = True
    report.seconds = time.perf_counter() - started
    return report
