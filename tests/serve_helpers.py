"""What the serve tests share: small generated pictures, posting a job, waiting for it, and the app under
Starlette's test client on the session's random-weights VGG-19."""

from __future__ import annotations

import io
import json
import threading
import time
from contextlib import contextmanager

import numpy as np
from PIL import Image

from nst_rt.pipeline.options import Options
from nst_rt.pipeline.stylizer import Stylizer
from nst_rt.serve.limits import Limits

FINAL = ("done", "stopped", "failed")
BASE = dict(model="vgg19", size=32, iterations=3)  # the servers' own options in these tests
LONG = {"size": 48, "iterations": Limits().max_iterations, "scales": 1}  # a run that lasts until it is stopped
URL = "http://127.0.0.1:8000"  # the test clients' base URL: a name the server answers to (nst_rt.serve.guard)


def png(seed: int, size=(48, 40)) -> bytes:
    rng = np.random.default_rng(seed)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def base(models_dir) -> Options:
    return Options(models_dir=models_dir, **BASE)


def post(client, options=None, content=None, styles=2, style=None):
    files = [("content", ("c.png", content if content is not None else png(0), "image/png"))]
    files += [("style", (f"s{i}.png", style if style is not None else png(i + 1), "image/png"))
              for i in range(styles)]
    return client.post("/api/jobs", files=files, data={"options": json.dumps(options or {})})


def wait(client, job_id, until=FINAL, timeout=120):
    """Poll the job until its status is one of ``until`` (a hang guard, not a speed limit)."""
    end = time.monotonic() + timeout
    while True:
        s = client.get(f"/api/jobs/{job_id}").json()
        if s["status"] in until:
            return s
        assert time.monotonic() < end, f"job {job_id} never reached {until}: {s}"
        time.sleep(0.02)


def wait_running(client, job_id, timeout=120):
    """Until the job has done at least one iteration (so a stop keeps an image)."""
    end = time.monotonic() + timeout
    while True:
        s = client.get(f"/api/jobs/{job_id}").json()
        if s["status"] == "running" and s["iteration"]:
            return s
        assert s["status"] not in FINAL and time.monotonic() < end, s
        time.sleep(0.02)


def events(client, job_id) -> list[dict]:
    with client.stream("GET", f"/api/jobs/{job_id}/events") as stream:
        return [json.loads(line[5:]) for line in stream.iter_lines() if line.startswith("data:")]


def gated(jobs) -> threading.Event:
    """Make the server's runs wait at the second iteration of their last scale until the returned event is set,
    so that a test sees a run in progress however fast the machine is."""
    gate = threading.Event()

    class Gated(Stylizer):
        def run(self, content, styles, progress=None, **kwargs):
            def held(p):
                progress(p)
                if p.scale == p.scales and p.iteration == 2:
                    gate.wait(120)

            return super().run(content, styles, held, **kwargs)

    jobs._factory = Gated
    return gate


@contextmanager
def serving(app):
    """``app`` served by uvicorn on a free port of 127.0.0.1, in a thread; yields its URL (no trailing slash)."""
    import socket

    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    while not srv.started:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        thread.join(60)
