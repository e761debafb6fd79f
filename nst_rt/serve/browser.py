"""``/browser/``: a bundle written by ``nst-rt web-bundle``, served as static files, cross-origin isolated so that
its WASM backend may use threads (SharedArrayBuffer needs both headers)."""

from __future__ import annotations

from pathlib import Path

from starlette.responses import RedirectResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..errors import OptionError

URL = "/browser"
ISOLATION = [(b"cross-origin-opener-policy", b"same-origin"), (b"cross-origin-embedder-policy", b"require-corp")]


def bundle_app(folder: str | Path):
    """The ASGI app serving ``folder`` with the isolation headers on every response."""
    folder = Path(folder)
    if not (folder / "index.html").is_file() or not (folder / "bundle.json").is_file():
        raise OptionError(f"{folder} is not a browser bundle (no index.html and bundle.json); write one with "
                          f"`nst-rt web-bundle {folder}`")
    files = StaticFiles(directory=folder, html=True)

    async def app(scope, receive, send):
        async def send_isolated(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *ISOLATION]}
            await send(message)

        await files(scope, receive, send_isolated)

    return app


def routes(folder: str | Path) -> list:
    """``/browser/`` serving the bundle in ``folder``, and ``/browser`` sending there."""
    return [Route(URL, lambda request: RedirectResponse(f"{URL}/")), Mount(URL, app=bundle_app(folder))]
