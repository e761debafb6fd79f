"""``nst-rt batch``: stylize many pictures with one model load, on this machine or on Ray."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..batching.items import DEFAULT_FORMAT, DONE, ENGINES, FAILED, SKIPPED
from .common import choices, fail, notice, notices, say, with_stylization_options
from ..errors import NstError
from ..io.formats import SAVE_SUFFIXES
from ..system.interrupts import stop_signals
from ..pipeline.options import Options

Engine = choices("Engine", ENGINES)


@with_stylization_options
def batch(
    inputs: Annotated[list[str], typer.Argument(
        help="Pictures to stylize: files, directories (their image files, not recursive) and glob patterns such as "
             "'frames/*.png' ('**' recurses).", metavar="INPUT", show_default=False)],
    styles: Annotated[list[Path], typer.Option(
        "--style", "-s", help="A style image; repeat the option for several (see --style-blend-weights).",
        show_default=False)],
    out_dir: Annotated[Path, typer.Option(
        "--output", "-o", help="Directory of the results, created if needed; each result is named after its "
        "input, with the --format suffix.", show_default=False)],
    format: Annotated[str, typer.Option(
        help=f"Suffix of the results: {', '.join(s.lstrip('.') for s in SAVE_SUFFIXES)}.")] = DEFAULT_FORMAT,
    overwrite: Annotated[bool, typer.Option(help="Redo inputs whose result exists; without it they are skipped, so "
                                                 "a rerun resumes where the last one stopped.")] = False,
    engine: Annotated[Engine, typer.Option(help="local: one picture after another in this process; ray: on Ray "
                                                "Data (install the ray extra).")] = Engine(ENGINES[0]),
    address: Annotated[Optional[str], typer.Option(
        help="With --engine ray: the Ray cluster to join, e.g. auto or HEAD_IP:6379 [default: start a local Ray].",
        show_default=False)] = None,
    actors: Annotated[Optional[int], typer.Option(
        help="With --engine ray: the number of workers, each loading the model once and running --threads threads "
             "(1 when not given) [default: as many as the cluster's CPUs hold, or its GPUs with CUDA].",
        show_default=False)] = None,
    options: Options = None,  # every stylization option, declared once: see with_stylization_options
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress display or summary; failures are "
                                                              "still listed.")] = False,
) -> None:
    """Stylize every INPUT with the --style images into the --output directory, loading the model once.

    Results that exist are skipped, so an interrupted batch resumes where it stopped. A failed input is reported
    and the batch goes on; the exit code is 1 if any failed.
    """
    from ..batching import api as batching
    from .progress import BatchProgressDisplay

    display = BatchProgressDisplay(enabled=False if quiet else None)
    with stop_signals() as stop, notices(quiet):
        try:
            report = batching.batch(inputs, styles, out_dir, format=format, overwrite=overwrite,
                                    engine=engine.value, address=address, actors=actors, options=options,
                                    progress=display)
        except NstError as exc:
            display.close()
            raise fail(str(exc)) from None
        except KeyboardInterrupt:  # before the batch began (loading Ray, planning): nothing was written
            display.close()
            raise notice(f"{stop.what}; nothing was written", stop.exit_code) from None
    display.close()
    for failed in report.failed:
        typer.echo(f"nst-rt: error: {failed.input}: {failed.message}", err=True)
    say(f"{report.total} inputs: {report.count(DONE)} stylized, {report.count(SKIPPED)} skipped (already in {out_dir}), "
        f"{report.count(FAILED)} failed, in {report.seconds:.1f} s", quiet)
    if report.interrupted:
        raise notice(f"{stop.what} with {report.remaining} inputs left; run the same command again to resume",
                     stop.exit_code)
    if report.failed:
        raise typer.Exit(1)
