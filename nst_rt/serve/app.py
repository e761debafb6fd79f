"""The Starlette application: the API routes, the static page and example pictures, the job queue's lifetime."""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from ..errors import OptionError
from ..pipeline.options import Options
from . import browser, examples
from .api import CATCH_ALL, EXCEPTION_HANDLERS, ROUTES
from .guard import Guard
from .jobs import Jobs
from .limits import Limits

STATIC = Path(__file__).parent / "static"


def model_notices(base: Options) -> list[str]:
    """What the page and the API client are told of the server's model (that it has random weights)."""
    from ..network.model import load_model
    from ..pipeline.options import random_weights_note

    model = load_model(base.model, base.models_dir)
    if model.random_weights and base.normalize:
        return [random_weights_note(model.name, model.metadata.get("weights_source", "random weights"))]
    return []


class ModelLayers:
    """model name -> its layer names, read from the export once (for checking a job's layer options)."""

    def __init__(self, models_dir):
        self.models_dir, self.known = models_dir, {}

    def __call__(self, model) -> list[str]:
        if str(model) not in self.known:
            from ..network.model import load_model

            self.known[str(model)] = load_model(model, self.models_dir).layers
        return self.known[str(model)]


def create_app(base: Options | None = None, *, results_dir: str | Path | None = None, keep: int = 50,
               max_upload_mb: int = 25, examples_dir: str | Path | None = None, limits: Limits | None = None,
               host: str = "127.0.0.1", allow_hosts=(), allow_origins=(),
               browser_dir: str | Path | None = None) -> Starlette:
    """The server's application. ``base`` holds the server's options (model, models directory, provider,
    precision, threads: fixed for every job; the rest are the page's defaults); ``examples_dir`` the example
    pictures (default: a source checkout's ``examples/``); ``limits`` what a job may cost; ``host`` the address
    it listens on, which with ``allow_hosts`` and ``allow_origins`` says whom it answers (guard.py);
    ``browser_dir`` a bundle of ``nst-rt web-bundle``, served at ``/browser/``."""
    base = (base or Options()).validated()
    limits = (limits or Limits()).validated()
    for name, value in (("keep", keep), ("max-upload-mb", max_upload_mb)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise OptionError(f"{name} must be a whole number >= 1, got {value!r}")
    from ..network.model import resolve_model

    resolve_model(base.model, base.models_dir)  # a server whose own model is missing is refused at start
    found = examples.folders(examples_dir)
    bundle = browser.routes(browser_dir) if browser_dir is not None else []
    temp = None
    if results_dir is None:
        temp = tempfile.TemporaryDirectory(prefix="nst-rt-serve-")
        results_dir = temp.name
    jobs = Jobs(base, Path(results_dir), keep, max_queue=limits.max_queue)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        await run_in_threadpool(jobs.close)  # a running job is stopped and its best image saved first
        if temp is not None:
            temp.cleanup()

    mounts = [Mount(f"{examples.URL}/{kind}", StaticFiles(directory=folder)) for kind, folder in found.items()]
    mounts += bundle
    app = Starlette(routes=[*ROUTES, CATCH_ALL, *mounts, Mount("/", StaticFiles(directory=STATIC, html=True))],
                    exception_handlers=EXCEPTION_HANDLERS, lifespan=lifespan)
    app.add_middleware(Guard, host=host, allow_hosts=tuple(allow_hosts), allow_origins=tuple(allow_origins))
    app.state.jobs, app.state.base, app.state.max_upload_mb = jobs, base, max_upload_mb
    app.state.models, app.state.layers = [str(base.model)], ModelLayers(base.models_dir)
    app.state.limits, app.state.notices = limits, model_notices(base)
    app.state.examples, app.state.tempdir = examples.listing(found), temp
    return app
