"""Hostile requests to the HTTP API: each is refused (or costs one job) before it costs the server memory or time,
a stop is seen during a job's setup, the worker outlives any job, and no other site may use the server."""

from __future__ import annotations

import io
import json
import threading

import pytest

pytest.importorskip("starlette.testclient")
from PIL import Image  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402

import nst_rt.pipeline.stylizer as stylizer_module  # noqa: E402
from nst_rt.serve.app import create_app  # noqa: E402
from nst_rt.serve.limits import Limits  # noqa: E402
from serve_helpers import LONG, URL, base, png, post, wait, wait_running  # noqa: E402


@pytest.fixture
def client(models_dir, tmp_path):
    app = create_app(base(models_dir()), results_dir=tmp_path / "results", limits=Limits(max_queue=2))
    with TestClient(app, base_url=URL) as c:
        yield c


def refused(response, status, field=None) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "field"} and body["field"] == field, body
    return body["error"]


def huge_bilevel_png() -> bytes:
    """A 9000x9000 1-bit picture: a few kilobytes as a file, 81 megapixels once decoded."""
    buffer = io.BytesIO()
    Image.new("1", (9000, 9000)).save(buffer, "PNG")
    return buffer.getvalue()


def test_pictures_over_the_pixel_caps_are_refused_from_their_headers(client):
    big = huge_bilevel_png()
    assert len(big) < 100_000
    message = refused(post(client, style=big, styles=4), 413, "style")
    assert "81.0 megapixels" in message and "--max-megapixels" in message
    assert "more than this server's 8" in refused(post(client, styles=9), 400, "style")
    assert not client.app.state.jobs.jobs


def test_a_million_scales_is_refused_and_the_schedule_is_linear(client):
    assert "use --scales 2 or fewer" in refused(post(client, {"scales": 10**6}), 400, "scales")
    from nst_rt.pipeline.schedule import plan

    stages = plan(512, 10, 100_000)  # 2**halvings per scale would take minutes here
    assert len(stages) == 100_000 and stages[-1].size == 512 and stages[0].iterations == 40
    assert wait(client, post(client).json()["id"])["status"] == "done"


def test_a_huge_style_scale_is_refused(client):
    assert "2048 px" in refused(post(client, {"style_scale": 1e6}), 400, "style_scale")
    assert "style_scale" in refused(post(client, {"style_scale": 100, "size": 512}), 400, "style_scale")


def test_a_stop_during_setup_is_seen_there(client, monkeypatch):
    """DELETE while the run computes its memory plan: the job stops before its first iterate."""
    in_setup, go_on = threading.Event(), threading.Event()
    real = stylizer_module.plan_scales

    def slow_plan(*args, **kwargs):
        if threading.current_thread().name == "nst-rt-serve-worker":
            in_setup.set()
            go_on.wait(60)
        return real(*args, **kwargs)

    monkeypatch.setattr(stylizer_module, "plan_scales", slow_plan)
    job = post(client).json()
    assert in_setup.wait(60)
    assert client.delete(f"/api/jobs/{job['id']}").json()["status"] == "stopping"
    go_on.set()
    stopped = wait(client, job["id"])
    assert stopped["status"] == "stopped" and not stopped["has_result"] and stopped["iteration"] is None


@pytest.mark.parametrize("name, value", [("threads", 1), ("provider", "cpu"), ("precision", "fp32"),
                                         ("model", "vgg16")])
def test_what_costs_a_network_is_fixed_by_the_server(client, name, value):
    message = refused(post(client, {name: value}), 400, name)
    assert "fixed when the server starts" in message and f"--{name} {value}" in message
    assert post(client, {"model": "vgg19", "threads": None}).status_code == 201  # the server's own values


def test_the_queue_is_bounded(client):
    running = post(client, LONG).json()
    wait_running(client, running["id"])
    assert [post(client).status_code for _ in range(2)] == [201, 201]
    assert "queue is full" in refused(post(client), 429)
    client.delete(f"/api/jobs/{running['id']}")


def test_a_finished_job_keeps_its_record_and_file_not_its_arrays(client):
    job = wait(client, post(client).json()["id"])
    kept = client.app.state.jobs.jobs[job["id"]]
    assert job["status"] == "done" and kept.pictures == [] and kept.progress.image is None
    assert client.get(f"/api/jobs/{job['id']}/preview").headers["content-type"] == "image/jpeg"


@pytest.mark.parametrize("headers", [{"origin": "http://evil.example"}, {"host": "evil.example"},
                                     {"host": "evil.example:8000", "origin": "http://evil.example:8000"}])
def test_another_site_is_refused(client, headers):
    job = post(client).json()
    for method, path in [("GET", "/api/options"), ("GET", f"/api/jobs/{job['id']}"),
                         ("GET", f"/api/jobs/{job['id']}/result"), ("DELETE", f"/api/jobs/{job['id']}"),
                         ("POST", "/api/jobs")]:
        message = refused(client.request(method, path, headers=headers), 403)
        assert "evil.example" in message and ("--allow-origin" in message or "--allow-host" in message)
    assert client.get("/api/options", headers={"origin": URL}).status_code == 200  # the server's own page
    assert client.delete(f"/api/jobs/{job['id']}").status_code == 200


def test_a_removed_results_directory_costs_nothing(client):
    import shutil

    shutil.rmtree(client.app.state.jobs.results_dir)
    answer = post(client)
    assert answer.status_code == 201, answer.text
    assert wait(client, answer.json()["id"])["status"] == "done"


def test_a_result_that_cannot_be_saved_fails_its_job_not_the_worker(client, monkeypatch):
    def unwritable(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied")

    content, style = png(0), png(1)
    monkeypatch.setattr(Image.Image, "save", unwritable)
    failed = wait(client, post(client, content=content, style=style).json()["id"], timeout=60)
    assert failed["status"] == "failed" and "could not be saved" in failed["error"]
    monkeypatch.undo()
    assert wait(client, post(client).json()["id"], timeout=60)["status"] == "done"


def test_malformed_options_answer_json(client):
    nested = client.post("/api/jobs", files=[("content", ("c.png", png(0))), ("style", ("s.png", png(1)))],
                         data={"options": "[" * 100_000})
    assert "nested too deeply" in refused(nested, 400, "options")
    as_file = client.post("/api/jobs", files=[("content", ("c.png", png(0))), ("style", ("s.png", png(1))),
                                              ("options", ("o.json", json.dumps({"size": 32})))])
    assert "not a file" in refused(as_file, 400, "options")
    assert "seed must be a whole number >= 0" in refused(post(client, {"seed": -1}), 400, "seed")


def test_the_model_notice_reaches_the_api(models_dir, tmp_path, monkeypatch):
    from nst_rt.network.model import ModelInfo

    with TestClient(create_app(base(models_dir())), base_url=URL) as plain:
        assert plain.get("/api/options").json()["notices"] == []
    monkeypatch.setattr(ModelInfo, "random_weights", property(lambda self: True))
    with TestClient(create_app(base(models_dir())), base_url=URL) as random:
        notices = random.get("/api/options").json()["notices"]
    assert len(notices) == 1 and notices[0].startswith("model vgg19 has ") and "content is lost" in notices[0]


def test_what_the_run_would_refuse_at_its_start_is_refused_at_post(client, monkeypatch):
    message = refused(post(client, {"size": 64, "scales": 5}), 400, "scales")
    assert "below the network's" in message and "--scales 3 or fewer" in message
    import nst_rt.pipeline.memory as memory

    monkeypatch.setattr(memory, "available_bytes", lambda: 1 << 20)  # 1 MiB: no run fits
    assert "needs about" in refused(post(client, {"size": 64}), 400, "size")
    assert not client.app.state.jobs.jobs


def test_the_names_a_server_answers_to():
    from nst_rt.serve.guard import Guard

    def answers(host, headers, **kwargs):
        return Guard(None, host, **kwargs).refusal(headers) is None

    assert all(answers("127.0.0.1", {"host": h}) for h in ("127.0.0.1:8000", "localhost:8000", "[::1]:8000"))
    assert not answers("127.0.0.1", {"host": "evil.example:8000"})
    assert not answers("127.0.0.1", {"host": "[::1"})  # unreadable
    assert answers("0.0.0.0", {"host": "192.168.1.5:8000"}) and not answers("0.0.0.0", {"host": "box.lan:8000"})
    assert answers("0.0.0.0", {"host": "box.lan:8000"}, allow_hosts=("box.lan",))
    assert not answers("192.168.1.5", {"host": "127.0.0.1:8000"})
    page = {"host": "127.0.0.1:8000", "origin": "http://localhost:3000"}
    assert not answers("127.0.0.1", page) and answers("127.0.0.1", page, allow_origins=("http://localhost:3000",))
    assert not answers("127.0.0.1", {"host": "127.0.0.1:8000", "origin": "null"})


def test_a_jobs_pictures_together_are_capped(models_dir, tmp_path):
    limits = Limits(max_megapixels=0.002, max_job_megapixels=0.003)  # one 48x40 picture fits, two do not
    with TestClient(create_app(base(models_dir()), limits=limits), base_url=URL) as small:
        message = refused(post(small, styles=1), 413, "style")
        assert "--max-job-megapixels" in message and "'s0.png'" in message
        assert small.get("/api/options").json()["limits"]["max_job_megapixels"] == 0.003
