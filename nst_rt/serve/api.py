"""The HTTP routes: jobs (post, status, events, preview, result, delete) and the options.

Errors answer ``{"error": "..."}`` with the library's own one-line message: 400 for a bad image or
option, 404 for an unknown job, 409 for a result asked too early, 413 for an upload over the limit.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ..errors import NstError
from .jobs import FINAL
from .options import describe, parse

EVENT_INTERVAL = 0.25  # seconds: an event stream sends at most 4 updates a second


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _job(request: Request):
    return request.app.state.jobs.jobs.get(request.path_params["id"])


def _decode(data: bytes, filename: str, role: str, folder: Path):
    """Decode an upload with the library's loader; its message names the client's file, not ours."""
    from ..io.image_load import load_image
    from ..model_format import MIN_SIZE

    path = folder / f"upload-{uuid.uuid4().hex}"  # our own name: nothing the client sends becomes a path
    path.write_bytes(data)
    try:
        return load_image(path, role=role, min_side=MIN_SIZE)
    except NstError as exc:
        raise NstError(str(exc).replace(f"'{path}'", repr(os.path.basename(filename or "upload")))) from None
    finally:
        path.unlink(missing_ok=True)


async def _body(request: Request, limit: int) -> bytes | None:
    """The request body, or None once it grows past ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


async def post_job(request: Request) -> Response:
    state = request.app.state
    limit = state.max_upload_mb * 1024 * 1024
    body = await _body(request, limit)
    if body is None:
        return error(413, f"the upload is over the server's limit of {state.max_upload_mb} MB; send smaller "
                          "images or start the server with a larger --max-upload-mb")

    async def replay():
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        form = await Request(request.scope, replay).form()
    except Exception as exc:  # noqa: BLE001  (malformed multipart)
        return error(400, f"the request is not a readable multipart form: {exc}")
    content = form.get("content")
    styles = form.getlist("style")
    if content is None or isinstance(content, str):
        return error(400, "give a content image as the file field 'content'")
    if not styles or any(isinstance(s, str) for s in styles):
        return error(400, "give one or more style images as the file field 'style'")
    try:
        raw = json.loads(form.get("options") or "{}")
    except json.JSONDecodeError as exc:
        return error(400, f"options is not valid JSON: {exc}")
    try:
        options = parse(raw, state.base, state.models)
        blend = options.style_blend_weights
        if blend is not None and len(blend) != len(styles):
            return error(400, f"style_blend_weights has {len(blend)} weights for {len(styles)} style images; "
                              "give one per style image")
        uploads = [(await content.read(), content.filename, "content image")]
        uploads += [(await s.read(), s.filename, f"style image {i + 1}") for i, s in enumerate(styles)]
        arrays = [await run_in_threadpool(_decode, data, name, role, state.jobs.results_dir)
                  for data, name, role in uploads]
    except NstError as exc:
        return error(400, str(exc))
    settings = {"content": content.filename, "styles": [s.filename for s in styles], **raw}
    jobs = state.jobs
    job = jobs.submit(options, arrays[0], arrays[1:], settings)
    return JSONResponse({"id": job.id, "status": job.status, "position": jobs.position(job)}, status_code=201)


async def get_job(request: Request) -> Response:
    job = _job(request)
    if job is None:
        return error(404, f"no job {request.path_params['id']!r}")
    return JSONResponse(request.app.state.jobs.snapshot(job))


async def events(request: Request) -> Response:
    job = _job(request)
    if job is None:
        return error(404, f"no job {request.path_params['id']!r}")
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
    if job is None:
        return error(404, f"no job {request.path_params['id']!r}")
    data = await run_in_threadpool(request.app.state.jobs.preview, job)
    if data is None:
        return error(409, f"job {job.id} has no image yet ({job.status})")
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": "no-store"})


async def result(request: Request) -> Response:
    job = _job(request)
    if job is None:
        return error(404, f"no job {request.path_params['id']!r}")
    if job.result is None:
        return error(409, f"job {job.id} has no result yet ({job.status})")
    return FileResponse(job.result, media_type="image/png", filename=f"nst-rt-{job.id[:8]}.png")


async def delete_job(request: Request) -> Response:
    job = _job(request)
    if job is None:
        return error(404, f"no job {request.path_params['id']!r}")
    jobs = request.app.state.jobs
    jobs.cancel(job)
    return JSONResponse(jobs.snapshot(job))


async def options(request: Request) -> Response:
    return JSONResponse({"options": describe(request.app.state.models), "examples": request.app.state.examples})


ROUTES = [
    Route("/api/jobs", post_job, methods=["POST"]),
    Route("/api/jobs/{id}", get_job, methods=["GET"]),
    Route("/api/jobs/{id}", delete_job, methods=["DELETE"]),
    Route("/api/jobs/{id}/events", events, methods=["GET"]),
    Route("/api/jobs/{id}/preview", preview, methods=["GET"]),
    Route("/api/jobs/{id}/result", result, methods=["GET"]),
    Route("/api/options", options, methods=["GET"]),
]
