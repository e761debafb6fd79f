"""A job request (``POST /api/jobs``): the multipart body read within the upload limit, its images decoded by
the library's loader, its options checked as far as can be before the run; each refusal says which field.

Nothing the client sends becomes a path: uploads are written under names of our own, decoded and removed.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from ..errors import NstError, OptionError
from ..pipeline.options import Options
from .options import blame, parse, settings


class Refused(Exception):
    """An answer of 4xx ``{"error": message, "field": field}``: ``field`` is the form field or option at fault
    (``content``, ``style``, an option's name), or None."""

    def __init__(self, status: int, message: str, field: str | None = None):
        super().__init__(message)
        self.status, self.message, self.field = status, message, field


@dataclass
class Submission:
    options: Options
    content: object  # (H, W, 3) float32 array
    styles: list
    settings: dict  # the file names and options a result's caption shows


def _name(upload) -> str:
    return os.path.basename(upload.filename or "upload")


def decode(data: bytes, filename: str, role: str, folder: Path):
    """Decode an upload with the library's loader; its message names the client's file, not ours."""
    from ..io.image_load import load_image
    from ..model_format import MIN_SIZE

    path = folder / f"upload-{uuid.uuid4().hex}"
    path.write_bytes(data)
    try:
        return load_image(path, role=role, min_side=MIN_SIZE)
    except NstError as exc:
        raise NstError(str(exc).replace(f"'{path}'", repr(filename))) from None
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


async def _form(request: Request, max_upload_mb: int):
    body = await _body(request, max_upload_mb * 1024 * 1024)
    if body is None:
        raise Refused(413, f"the upload is over the server's limit of {max_upload_mb} MB; send smaller images or "
                           "start the server with a larger --max-upload-mb")

    async def replay():
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        return await Request(request.scope, replay).form()
    except Exception as exc:  # noqa: BLE001  (whatever the multipart parser says of a malformed body)
        raise Refused(400, f"the request is not a readable multipart form: {exc}") from None


def check_for_run(options: Options, styles: int, raw: dict, layers) -> None:
    """What the run would refuse at its start, refused now: blend weights for another number of styles, and
    layers the model lacks (``layers()`` gives the model's, asked only when the client names layers)."""
    from ..objective.whole import blend_weights, check_layers

    try:
        blend_weights(options.style_blend_weights, styles)
    except OptionError as exc:
        raise Refused(400, str(exc), "style_blend_weights") from None
    for kind in ("content", "style"):
        if f"{kind}_layers" in raw:
            try:
                valid = layers()
            except NstError as exc:
                raise Refused(400, str(exc), "model") from None
            try:
                check_layers(kind, getattr(options, f"{kind}_layers"), valid)
            except OptionError as exc:
                raise Refused(400, str(exc), f"{kind}_layers") from None


async def read_submission(request: Request) -> Submission:
    """The job a request asks for, or ``Refused`` saying what is wrong with it."""
    state = request.app.state
    form = await _form(request, state.max_upload_mb)
    content, styles = form.get("content"), form.getlist("style")
    if content is None or isinstance(content, str):
        raise Refused(400, "give a content image as the file field 'content'", "content")
    if not styles or any(isinstance(s, str) for s in styles):
        raise Refused(400, "give one or more style images as the file field 'style'", "style")
    try:
        raw = json.loads(form.get("options") or "{}")
    except json.JSONDecodeError as exc:
        raise Refused(400, f"options is not valid JSON: {exc}") from None
    try:
        options = parse(raw, state.base, state.models)
    except OptionError as exc:
        raise Refused(400, str(exc), blame(raw, state.base, state.models)) from None
    await run_in_threadpool(check_for_run, options, len(styles), raw, lambda: state.layers(options.model))
    uploads = [(content, "content image", "content")]
    uploads += [(s, f"style image {i + 1}", "style") for i, s in enumerate(styles)]
    arrays = []
    for upload, role, field in uploads:
        data = await upload.read()
        try:
            arrays.append(await run_in_threadpool(decode, data, _name(upload), role, state.jobs.results_dir))
        except NstError as exc:
            raise Refused(400, str(exc), field) from None
    shown = {"content": _name(content), "styles": [_name(s) for s in styles], "options": settings(options, raw)}
    return Submission(options, arrays[0], arrays[1:], shown)
