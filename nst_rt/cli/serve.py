"""``nst-rt serve``: a local web page with live preview, and its HTTP API (the ``web`` extra)."""

from __future__ import annotations

import ipaddress
import signal
import threading
from pathlib import Path
from typing import Annotated, Optional

import typer

from .app import app
from .common import Precision, Provider, fail, notices, say
from ..network.models_dir import DEFAULT_MODEL_HELP, default_model_name
from ..pipeline.options import Options
from ..serve.limits import Limits

DEFAULTS = Options()
LIMITS = Limits()


def exposure_warning(host: str) -> str | None:
    """The line said when the server listens beyond this machine (any address but loopback), else None."""
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if loopback:
        return None
    return f"nst-rt: warning: listening on {host}, reachable beyond this machine; the API has no authentication"


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on; anything but loopback exposes the server.")]
        = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    model: Annotated[Optional[str], typer.Option(help=f"The model every job uses [default: {DEFAULT_MODEL_HELP}].",
                                                 show_default=False)] = None,
    models_dir: Annotated[Optional[Path], typer.Option(help="Where to look for exported models.")] = None,
    provider: Annotated[Provider, typer.Option(help="ONNX Runtime execution provider of every job.")]
        = Provider(DEFAULTS.provider),
    precision: Annotated[Precision, typer.Option(help="OpenVINO's arithmetic for every job.")]
        = Precision(DEFAULTS.precision),
    threads: Annotated[Optional[int], typer.Option(help="CPU threads for ONNX Runtime [default: all cores].",
                                                   show_default=False)] = DEFAULTS.threads,
    results_dir: Annotated[Optional[Path], typer.Option(
        help="Where results are kept [default: a temporary directory, removed at exit].", show_default=False)]
        = None,
    keep: Annotated[int, typer.Option(help="Finished results kept; the oldest are removed first.")] = 50,
    max_upload_mb: Annotated[int, typer.Option(help="Largest request accepted, in MB (413 above).")] = 25,
    max_megapixels: Annotated[float, typer.Option(help="Largest picture accepted, in megapixels (413 above).")]
        = LIMITS.max_megapixels,
    max_job_megapixels: Annotated[float, typer.Option(help="A job's pictures together, in megapixels (413 above).")]
        = LIMITS.max_job_megapixels,
    max_queue: Annotated[int, typer.Option(help="Jobs that may wait behind the running one (429 above).")]
        = LIMITS.max_queue,
    allow_host: Annotated[Optional[list[str]], typer.Option(
        help="Another name the server answers to in the Host header (repeat the option).", show_default=False,
        metavar="NAME")] = None,
    allow_origin: Annotated[Optional[list[str]], typer.Option(
        help="Another page origin (e.g. http://localhost:3000) allowed to use the API (repeat the option).",
        show_default=False, metavar="ORIGIN")] = None,
    examples_dir: Annotated[Optional[Path], typer.Option(
        help="A folder with content/ and style/ pictures the page offers [default: a source checkout's examples/].",
        show_default=False)] = None,
    browser: Annotated[Optional[Path], typer.Option(
        help="A folder written by `nst-rt web-bundle`, served at /browser/ (stylizes in the visitor's browser).",
        show_default=False)] = None,
    open_browser: Annotated[bool, typer.Option("--open", help="Open the page in a browser.")] = False,
) -> None:
    """Serve a web page to stylize with live preview, and the HTTP API behind it (docs/serve.md)."""
    from ..errors import NstError, OptionError, install_hint

    try:
        import uvicorn

        from ..serve.app import create_app
    except ImportError as exc:
        raise fail(f"nst-rt serve needs the web extra ({exc.name} is missing): {install_hint('web')}") from None

    try:
        if threads is not None and not 1 <= threads <= 1024:
            raise OptionError(f"threads must be a whole number from 1 to 1024, got {threads}")
        base = Options(model=model or default_model_name(), models_dir=models_dir, provider=provider.value, precision=precision.value,
                       threads=threads).validated()
        limits = Limits(max_megapixels=max_megapixels, max_job_megapixels=max_job_megapixels, max_queue=max_queue)
        application = create_app(base, results_dir=results_dir, keep=keep, max_upload_mb=max_upload_mb,
                                 examples_dir=examples_dir, limits=limits, host=host, allow_hosts=allow_host or (),
                                 allow_origins=allow_origin or (), browser_dir=browser)
    except NstError as exc:
        raise fail(str(exc)) from None
    warning = exposure_warning(host)
    if warning:
        say(warning, False)
    jobs = application.state.jobs
    stopped_by = []

    class Server(uvicorn.Server):
        def handle_exit(self, sig, frame):
            """Ctrl-C / SIGTERM: stop the run now (its best image is saved while the server shuts down, before
            the results directory is cleaned up) and end with exit code 0; a second Ctrl-C forces the exit.
            (uvicorn's own handler would raise the signal again once it is down.)"""
            threading.Thread(target=jobs.stop_all, name="nst-rt-serve-stop").start()  # takes the queue's lock
            stopped_by.append(sig)
            if self.should_exit and sig == signal.SIGINT:
                self.force_exit = True
            else:
                self.should_exit = True

    url = f"http://{host if ':' not in host else f'[{host}]'}:{port}/"
    say(f"nst-rt serve on {url} (Ctrl-C stops)", False)
    if open_browser:
        import webbrowser

        webbrowser.open(url)
    with notices():  # the runs' notices (random weights, a history shrunk to fit) as one line each
        Server(uvicorn.Config(application, host=host, port=port, log_level="warning",
                              timeout_graceful_shutdown=5)).run()
    if stopped_by:
        where = f"; results in {results_dir}" if results_dir is not None else ""
        say(f"nst-rt: serve stopped by {signal.Signals(stopped_by[0]).name}{where}", False)


app.command("serve")(serve)
