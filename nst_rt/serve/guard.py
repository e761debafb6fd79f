"""No cross-site use: every request must name this server in ``Host`` (a DNS-rebinding page names its own
domain), and a request that carries an ``Origin`` must come from the server's own page (or an origin given with
``--allow-origin``); anything else is answered 403 before it reaches a route.

The names the server answers to: for a loopback address, 127.0.0.1, localhost and ::1; for another address, that
address; for a wildcard (0.0.0.0, ::), any address literal (a rebinding page cannot send one of those as its own
name) and localhost. ``--allow-host`` adds names (e.g. the machine's own, when it listens beyond it).
"""

from __future__ import annotations

import ipaddress
import json
from urllib.parse import urlsplit

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
WILDCARDS = ("0.0.0.0", "::", "")


def _is_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _is_loopback(host: str) -> bool:
    return host == "localhost" or (_is_address(host) and ipaddress.ip_address(host).is_loopback)


class Guard:
    """ASGI middleware: 403 ``{"error", "field": null}`` for a foreign ``Host`` or ``Origin``."""

    def __init__(self, app, host: str = "127.0.0.1", allow_hosts=(), allow_origins=()):
        self.app, self.wildcard = app, host in WILDCARDS
        names = LOOPBACK_NAMES if _is_loopback(host) else (host, "localhost") if self.wildcard else (host,)
        self.hosts = {n.lower() for n in (*names, *allow_hosts)}
        self.origins = {o.rstrip("/").lower() for o in allow_origins}

    def allowed_host(self, name: str) -> bool:
        return name in self.hosts or (self.wildcard and _is_address(name))

    def refusal(self, headers: dict) -> str | None:
        host = headers.get("host", "")
        try:
            name = urlsplit(f"//{host}").hostname or ""
        except ValueError:  # e.g. an unclosed [ of an IPv6 address
            name = ""
        if not self.allowed_host(name):
            return (f"this server does not answer to the host {host!r}; open it as http://127.0.0.1 or a name it "
                    "was started for (--allow-host)")
        origin = headers.get("origin")
        if origin is not None and origin.lower() not in (f"http://{host.lower()}", *self.origins):
            return (f"requests from the page at {origin!r} are refused: only this server's own page may use it; "
                    "start the server with --allow-origin to allow another")
        return None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        message = self.refusal(headers)
        if message is None:
            return await self.app(scope, receive, send)
        body = json.dumps({"error": message, "field": None}).encode()
        await send({"type": "http.response.start", "status": 403,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
