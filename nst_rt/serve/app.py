"""The Starlette application: the API routes, the static page, and the job queue's lifetime."""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path

from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from ..pipeline.options import Options
from .api import ROUTES
from .jobs import Jobs

STATIC = Path(__file__).parent / "static"


def model_names(base: Options) -> list[str]:
    """The model names the page offers: the server's own, and every export in its models directories."""
    from ..network.models_dir import is_model_dir, search_dirs

    names = [str(base.model)]
    for folder in search_dirs(base.models_dir):
        if folder.is_dir():
            names += sorted(p.name for p in folder.iterdir() if is_model_dir(p) and p.name not in names)
    return names


def create_app(base: Options | None = None, *, results_dir: str | Path | None = None, keep: int = 50,
               max_upload_mb: int = 25) -> Starlette:
    base = (base or Options()).validated()
    temp = None
    if results_dir is None:
        temp = tempfile.TemporaryDirectory(prefix="nst-rt-serve-")
        results_dir = temp.name
    jobs = Jobs(base, Path(results_dir), keep)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        jobs.close()
        if temp is not None:
            temp.cleanup()

    app = Starlette(routes=[*ROUTES, Mount("/", StaticFiles(directory=STATIC, html=True))], lifespan=lifespan)
    app.state.jobs, app.state.base, app.state.max_upload_mb = jobs, base, max_upload_mb
    app.state.models, app.state.examples, app.state.tempdir = model_names(base), [], temp
    return app
