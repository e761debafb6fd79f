"""The HTTP API through Starlette's test client, on a random-weights model at 32-48 px."""

from __future__ import annotations

import io
import json
import time

import numpy as np
import pytest

pytest.importorskip("starlette")
pytest.importorskip("httpx")
from PIL import Image  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402

from nst_rt.pipeline.options import Options  # noqa: E402
from nst_rt.serve.app import create_app  # noqa: E402


def png(seed: int, size=(48, 40)) -> bytes:
    rng = np.random.default_rng(seed)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture
def client(models_dir, tmp_path):
    app = create_app(Options(model="vgg19", models_dir=models_dir(), size=32, iterations=3),
                     results_dir=tmp_path / "results", keep=3, max_upload_mb=1)
    with TestClient(app) as c:
        yield c


def post(client, options=None, content=None, styles=2):
    files = [("content", ("c.png", content if content is not None else png(0), "image/png"))]
    files += [("style", (f"s{i}.png", png(i + 1), "image/png")) for i in range(styles)]
    return client.post("/api/jobs", files=files, data={"options": json.dumps(options or {})})


def wait(client, job_id, timeout=60):
    end = time.time() + timeout
    while time.time() < end:
        s = client.get(f"/api/jobs/{job_id}").json()
        if s["status"] in ("done", "stopped", "failed"):
            return s
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish: {s}")


def test_run_status_events_preview_result(client):
    r = post(client, {"size": 32, "iterations": 3})
    assert r.status_code == 201
    job = r.json()
    assert set(job) == {"id", "status", "position"} and job["status"] in ("queued", "running")
    with client.stream("GET", f"/api/jobs/{job['id']}/events") as stream:
        events = [json.loads(line[5:]) for line in stream.iter_lines() if line.startswith("data:")]
    assert events[-1]["status"] == "done"
    assert [e["id"] for e in events] == [job["id"]] * len(events)
    assert events[-1]["iteration"] == events[-1]["iterations"]
    s = client.get(f"/api/jobs/{job['id']}").json()
    assert {"id", "status", "scale", "iteration", "iterations", "loss", "terms", "eta_s", "error"} <= set(s)
    assert s["status"] == "done" and s["loss"] > 0 and set(s["terms"]) >= {"content", "style"}
    preview = client.get(f"/api/jobs/{job['id']}/preview")
    assert preview.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(preview.content)).format == "JPEG"
    result = client.get(f"/api/jobs/{job['id']}/result")
    assert result.status_code == 200
    assert max(Image.open(io.BytesIO(result.content)).size) == 32


def test_errors(client):
    bad = post(client, content=b"not an image")
    assert bad.status_code == 400 and "c.png" in bad.json()["error"] and "\n" not in bad.json()["error"]
    small = post(client, content=png(0, (8, 8)))
    assert small.status_code == 400 and "8x8" in small.json()["error"]
    assert post(client, {"colour": 1}).json()["error"].startswith("unknown option 'colour'")
    assert "size must be a whole number" in post(client, {"size": -1}).json()["error"]
    assert post(client, {"init": "/etc/passwd"}).status_code == 400
    assert post(client, {"models_dir": "/tmp"}).status_code == 400
    for name, value in [("style_masks", ["/etc/passwd", "/etc/passwd"]), ("content_mask", "/etc/passwd")]:
        refused = post(client, {name: value})  # the server never opens a client-given path
        assert refused.status_code == 400 and "never opens a path" in refused.json()["error"], name
    big = post(client, content=b"x" * (2 * 1024 * 1024))
    assert big.status_code == 413
    for method, path in [("GET", ""), ("GET", "/events"), ("GET", "/preview"), ("GET", "/result"), ("DELETE", "")]:
        assert client.request(method, f"/api/jobs/nope{path}").status_code == 404


def test_queue_order_stop_and_delete(client):
    long = post(client, {"size": 48, "iterations": 400, "scales": 1}).json()
    second = post(client, {"iterations": 2}).json()
    third = post(client, {"iterations": 2}).json()
    assert (second["position"], third["position"]) == (2, 3) or second["position"] < third["position"]
    assert client.get(f"/api/jobs/{long['id']}/result").status_code == 409
    removed = client.delete(f"/api/jobs/{third['id']}").json()
    assert removed["status"] == "stopped" and not removed["has_result"]
    while client.get(f"/api/jobs/{long['id']}").json()["iteration"] in (None, 0):
        time.sleep(0.05)
    client.delete(f"/api/jobs/{long['id']}")
    stopped = wait(client, long["id"])
    assert stopped["status"] == "stopped" and stopped["has_result"]
    assert client.get(f"/api/jobs/{long['id']}/result").status_code == 200
    assert wait(client, second["id"])["status"] == "done"


def test_options_from_options_dataclass(client):
    described = {o["name"]: o for o in client.get("/api/options").json()["options"]}
    assert described["size"] == {"name": "size", "type": "int", "nullable": False, "default": 512}
    assert described["optimizer"]["choices"] == ["lbfgs", "adam"] or "lbfgs" in described["optimizer"]["choices"]
    assert "models_dir" not in described
    assert "style_masks" not in described and "content_mask" not in described
    assert described["color_transfer"]["choices"] == ["none", "pca", "chol", "sym", "histogram"]


def test_page_served(client):
    page = client.get("/")
    assert page.status_code == 200 and "app.js" in page.text
