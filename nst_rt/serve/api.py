"""The HTTP routes: jobs (post, status, events, preview, result, delete) and the options.

Errors answer ``{"error": "...", "field": ...}`` with the library's own one-line message: 400 for a bad image
or option, 403 for another site (guard.py), 404 for an unknown job, 409 for a preview or result asked too early,
413 for an upload or a picture over the limits, 429 when the queue is full, and 500 (the same shape) for a bug.
``field`` names the form field or option at fault (or is null), so the page can show the message there.
"""

from __future__ import annotations

import asyncio
import json

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from .jobs import FINAL
from .options import describe
from .refused import Refused
from .uploads import read_submission

EVENT_INTERVAL = 0.25  # seconds: an event stream sends at most 4 updates a second


def error(status: int, message: str, field: str | None = None) -> JSONResponse:
    return JSONResponse({"error": message, "field": field}, status_code=status)


def _job(request: Request):
    job = request.app.state.jobs.jobs.get(request.path_params["id"])
    if job is None:
        raise Refused(404, f"no job {request.path_params['id']!r}; it may have been removed (the server keeps "
                           "the last --keep results)")
    return job


async def refused(request: Request, exc: Refused) -> Response:
    return error(exc.status, exc.message, exc.field)


async def http_error(request: Request, exc: HTTPException) -> Response:
    """Starlette's own answers (an unknown path, a method a route lacks) in the same JSON shape."""
    answer = error(exc.status_code, f"{str(exc.detail).lower()}: {request.method} {request.url.path}")
    answer.headers.update(exc.headers or {})
    return answer


async def post_job(request: Request) -> Response:
    job_request = await read_submission(request)
    jobs = request.app.state.jobs
    job = jobs.submit(job_request.options, job_request.pictures, job_request.settings)
    return JSONResponse({"id": job.id, "status": job.status, "position": jobs.position(job)}, status_code=201)


async def get_job(request: Request) -> Response:
    return JSONResponse(request.app.state.jobs.snapshot(_job(request)))


async def events(request: Request) -> Response:
    job = _job(request)
    jobs = request.app.state.jobs

    async def stream():
        sent = -1
        while True:
            if job.version != sent:
                sent = job.version
                snapshot = jobs.snapshot(job)
                yield f"data: {json.dumps(snapshot)}\n\n"
                if snapshot["status"] in FINAL:
                    return
            if await request.is_disconnected():
                return
            await asyncio.sleep(EVENT_INTERVAL)

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


async def preview(request: Request) -> Response:
    job = _job(request)
    data = await run_in_threadpool(request.app.state.jobs.preview, job)
    if data is None:
        return error(409, f"job {job.id} has no image yet ({job.status})")
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": "no-store"})


async def result(request: Request) -> Response:
    job = _job(request)
    if job.result is None:
        return error(409, f"job {job.id} has no result yet ({job.status})")
    return FileResponse(job.result, media_type="image/png", filename=f"nst-rt-{job.id[:8]}.png")


async def delete_job(request: Request) -> Response:
    job = _job(request)
    jobs = request.app.state.jobs
    jobs.cancel(job)
    return JSONResponse(jobs.snapshot(job))


async def internal_error(request: Request, exc: Exception) -> Response:
    """A bug: the documented JSON shape, never a plain-text 500."""
    return error(500, f"internal error: {type(exc).__name__}: {exc}")


async def options(request: Request) -> Response:
    state = request.app.state
    return JSONResponse({"options": describe(state.base, state.models), "examples": state.examples,
                         "limits": state.limits.describe(), "notices": state.notices})


async def no_route(request: Request) -> Response:
    """Any other path under /api/, or a method its route lacks: 404 or 405, never the static page's answer."""
    path = request.url.path
    allowed = sorted({m for r in ROUTES for m in r.methods if r.path_regex.match(path)})
    if allowed:
        return JSONResponse({"error": f"method not allowed: {request.method} {path}; use {', '.join(allowed)}",
                             "field": None}, status_code=405, headers={"Allow": ", ".join(allowed)})
    return error(404, f"not found: {request.method} {path}")


ROUTES = [
    Route("/api/jobs", post_job, methods=["POST"]),
    Route("/api/jobs/{id}", get_job, methods=["GET"]),
    Route("/api/jobs/{id}", delete_job, methods=["DELETE"]),
    Route("/api/jobs/{id}/events", events, methods=["GET"]),
    Route("/api/jobs/{id}/preview", preview, methods=["GET"]),
    Route("/api/jobs/{id}/result", result, methods=["GET"]),
    Route("/api/options", options, methods=["GET"]),
]
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
CATCH_ALL = Route("/api/{rest:path}", no_route, methods=METHODS)  # after ROUTES
EXCEPTION_HANDLERS = {Refused: refused, HTTPException: http_error, Exception: internal_error}
