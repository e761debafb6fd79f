"""A job request (``POST /api/jobs``): refused at once when the queue is full, its body read within the upload
limit, its options and its pictures' headers checked against the server's limits before anything is decoded,
then its pictures decoded by the library's loader (one request at a time) and what the run would refuse at its
start refused now; each refusal says which field. The job keeps its pictures' bytes, not their decoded arrays.

Nothing the client sends becomes a path: uploads are written under names of our own, decoded and removed.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from ..errors import MemoryLimitError, NstError, OptionError
from ..pipeline.options import Options
from .options import blame, parse, settings
from .pictures import Picture, decode
from .refused import Refused

DECODING = threading.Lock()  # one request's pictures decoded at a time: concurrent posts cannot add up in memory


@dataclass
class Submission:
    options: Options
    pictures: list  # Picture: the content, then the styles
    settings: dict  # the file names and options a result's caption shows


def _name(upload) -> str:
    return os.path.basename(upload.filename or "upload")


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


def check_for_run(options: Options, pictures: list, raw: dict, layers, stylizer, folder) -> None:
    """Decode the pictures (the loader's refusals), then refuse what the run would refuse at its start: blend
    weights for another number of styles, layers the model lacks (``layers()`` gives the model's, asked only when
    the client names layers), a picture too small at some scale and a run that cannot fit in memory
    (``stylizer()``: the server's loaded one). The decoded arrays are dropped: the job keeps the bytes."""
    from ..objective.whole import blend_weights, check_layers
    from ..pipeline.plan import plan_scales
    from ..pipeline.schedule import stages_for

    try:
        blend_weights(options.style_blend_weights, len(pictures) - 1)
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
    with DECODING:
        arrays = []
        for picture in pictures:
            try:
                arrays.append(decode(picture, folder))
            except NstError as exc:
                raise Refused(400, str(exc), picture.field) from None
        blamed = next((n for n in ("scales", "style_scale") if n in raw), "size")
        try:
            stages = stages_for(options, arrays[0], arrays[1:])
            loaded = stylizer()
            plan_scales(loaded.network, loaded.model.architecture, options, arrays[0], arrays[1:],
                        [s.size for s in stages], [s.iterations for s in stages])
        except MemoryLimitError as exc:
            raise Refused(400, str(exc), "size") from None
        except OptionError as exc:
            raise Refused(400, str(exc), blamed) from None


def read_options(form) -> dict:
    """The ``options`` form field as a JSON object's dict (any JSON value; ``parse`` checks it is an object)."""
    text = form.get("options")
    if text is None:
        return {}
    if not isinstance(text, str):
        raise Refused(400, "options must be a text field of JSON, not a file", "options")
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:  # RecursionError: nested too deeply to read
        detail = "it is nested too deeply" if isinstance(exc, RecursionError) else exc
        raise Refused(400, f"options is not valid JSON: {detail}", "options") from None


async def read_submission(request: Request) -> Submission:
    """The job a request asks for, or ``Refused`` saying what is wrong with it."""
    state = request.app.state
    state.jobs.check_room()
    form = await _form(request, state.max_upload_mb)
    content, styles = form.get("content"), form.getlist("style")
    if content is None or isinstance(content, str):
        raise Refused(400, "give a content image as the file field 'content'", "content")
    if not styles or any(isinstance(s, str) for s in styles):
        raise Refused(400, "give one or more style images as the file field 'style'", "style")
    raw = read_options(form)
    try:
        options = parse(raw, state.base, state.models)
    except OptionError as exc:
        raise Refused(400, str(exc), blame(raw, state.base, state.models)) from None
    state.limits.check_options(options)
    uploads = [(content, "content image", "content")]
    uploads += [(s, f"style image {i + 1}", "style") for i, s in enumerate(styles)]
    pictures = [Picture(await upload.read(), _name(upload), role, field) for upload, role, field in uploads]
    state.limits.check_pictures(pictures)
    jobs = state.jobs
    await run_in_threadpool(check_for_run, options, pictures, raw, lambda: state.layers(options.model),
                            lambda: jobs.stylizer(options), jobs.results_dir)
    shown = {"content": _name(content), "styles": [_name(s) for s in styles], "options": settings(options, raw)}
    return Submission(options, pictures, shown)
