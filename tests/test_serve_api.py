"""The HTTP API through Starlette's test client, on a random-weights model at 32-48 px: each route's answer, the
options and examples the page is built from, and the static page."""

from __future__ import annotations

import io
import json
import re
from dataclasses import fields
from pathlib import Path

import pytest

pytest.importorskip("starlette.testclient")
from PIL import Image  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402

from nst_rt.pipeline.options import Options  # noqa: E402
from nst_rt.serve.app import create_app  # noqa: E402
from nst_rt.serve.options import MAIN  # noqa: E402
from serve_helpers import URL, base, events, gated, png, post, wait  # noqa: E402

ROOT_EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture
def client(models_dir, tmp_path):
    app = create_app(base(models_dir()), results_dir=tmp_path / "results", keep=3, max_upload_mb=1)
    with TestClient(app, base_url=URL) as c:
        yield c


def test_run_status_events_preview_result(client):
    r = post(client, {"iterations": 3, "style_blend_weights": [3, 1]})
    assert r.status_code == 201
    job = r.json()
    assert set(job) == {"id", "status", "position"} and job["status"] in ("queued", "running")
    assert job["position"] in (0, 1)
    seen = events(client, job["id"])
    assert seen[-1]["status"] == "done" and [e["id"] for e in seen] == [job["id"]] * len(seen)
    assert seen[-1]["iteration"] == seen[-1]["iterations"] and seen[-1]["done"] == seen[-1]["total"]
    s = client.get(f"/api/jobs/{job['id']}").json()
    assert {"id", "status", "scale", "iteration", "iterations", "loss", "terms", "eta_s", "error"} <= set(s)
    assert s["status"] == "done" and s["loss"] > 0 and set(s["terms"]) >= {"content", "style"}
    assert s["error"] is None and s["position"] is None and s["eta_s"] is None
    assert s["settings"]["content"] == "c.png" and s["settings"]["styles"] == ["s0.png", "s1.png"]
    assert s["settings"]["options"]["style_blend_weights"] == [3.0, 1.0]
    assert s["settings"]["options"]["size"] == 32  # the server's size: what made the result, not only what was sent
    assert set(MAIN) <= set(s["settings"]["options"])
    preview = client.get(f"/api/jobs/{job['id']}/preview")
    assert preview.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(preview.content)).format == "JPEG"
    result = client.get(f"/api/jobs/{job['id']}/result")
    assert result.status_code == 200 and result.headers["content-type"] == "image/png"
    assert max(Image.open(io.BytesIO(result.content)).size) == 32


def test_progress_events_change_as_the_run_goes(client):
    gate = gated(client.app.state.jobs)
    job = post(client, {"size": 48, "iterations": 5, "scales": 1}).json()
    seen = []
    with client.stream("GET", f"/api/jobs/{job['id']}/events") as stream:
        for line in stream.iter_lines():
            if line.startswith("data:"):
                seen.append(json.loads(line[5:]))
                if seen[-1]["iteration"] == 2:
                    assert seen[-1]["status"] == "running" and seen[-1]["rate"] > 0 and seen[-1]["eta_s"] > 0
                    assert seen[-1]["done"] == 2 and seen[-1]["total"] == 5 and seen[-1]["position"] == 0
                    gate.set()  # seen mid-run: let it finish
    assert seen[-1]["status"] == "done" and seen[-1]["iteration"] == 5
    running = [e["iteration"] for e in seen if e["status"] == "running" and e["iteration"] is not None]
    assert 2 in running and running == sorted(running)


def test_delete_of_a_finished_job_answers_it_unchanged(client):
    job = post(client).json()
    done = wait(client, job["id"])
    again = client.delete(f"/api/jobs/{job['id']}")
    assert again.status_code == 200 and again.json()["status"] == done["status"] == "done"
    assert client.get(f"/api/jobs/{job['id']}/result").status_code == 200


def test_options_come_from_the_options_dataclass_and_the_server(client):
    answer = client.get("/api/options").json()
    described = {o["name"]: o for o in answer["options"]}
    assert described["size"] == {"name": "size", "type": "int", "nullable": False, "default": 32, "main": True,
                                 "fixed": False}
    assert described["content_weight"]["default"] == Options().content_weight  # not set by the server
    assert described["scales"]["nullable"] and described["scales"]["default"] is None
    assert described["style_layers"]["type"] == "strs" and described["style_layers"]["default"] == list(
        Options().style_layers)
    assert described["model"]["choices"] == [described["model"]["default"]] == ["vgg19"]  # the server's only
    assert {name for name, o in described.items() if o["fixed"]} == {"model", "provider", "precision", "threads"}
    assert described["optimizer"]["choices"] == ["lbfgs", "adam"]
    assert described["color_transfer"]["choices"] == ["none", "pca", "chol", "sym", "histogram"]
    assert {name for name, o in described.items() if o["main"]} == set(MAIN)
    offered = {f.name for f in fields(Options)} - {"models_dir", "style_masks", "content_mask"}
    assert set(described) == offered


def test_examples_are_listed_and_served_from_the_checkout(client):
    examples = client.get("/api/options").json()["examples"]
    names = {kind: [e["name"] for e in examples[kind]] for kind in ("content", "style")}
    assert names["content"] == sorted(p.name for p in (ROOT_EXAMPLES / "content").iterdir())
    assert "starry_night.jpg" in names["style"]
    first = examples["style"][0]
    served = client.get(first["url"])
    assert served.status_code == 200 and served.content == (ROOT_EXAMPLES / "style" / first["name"]).read_bytes()
    for outside in ("/examples/content/../../pyproject.toml", "/examples/masks/astronaut_left.png",
                    "/examples/content/%2e%2e/%2e%2e/pyproject.toml"):
        assert client.get(outside).status_code == 404, outside


def test_examples_dir_of_the_server_and_none_without_one(models_dir, tmp_path):
    (tmp_path / "pictures" / "style").mkdir(parents=True)
    (tmp_path / "pictures" / "style" / "mine.png").write_bytes(png(5))
    (tmp_path / "pictures" / "style" / "notes.txt").write_text("not a picture")
    with TestClient(create_app(base(models_dir()), examples_dir=tmp_path / "pictures"), base_url=URL) as c:
        examples = c.get("/api/options").json()["examples"]
        assert examples == {"content": [], "style": [{"name": "mine.png", "url": "/examples/style/mine.png"}]}
        assert c.get("/examples/style/mine.png").content == png(5)


def test_page_and_its_scripts_are_served(client):
    page = client.get("/")
    assert page.status_code == 200 and "app.js" in page.text and "form.js" in page.text
    for name in ("", "app.js", "form.js", "style.css"):
        asset = client.get(f"/{name}")
        assert asset.status_code == 200 and len(asset.content) > 100, name
        assert not re.search(r"https?:|//[a-z]", asset.text), name  # nothing from elsewhere: it works offline


def test_events_are_sent_only_when_the_job_changed_at_most_4_a_second(client, monkeypatch):
    import nst_rt.serve.api as api

    slept, real_sleep = [], api.asyncio.sleep

    async def sleep(seconds):
        slept.append(seconds)
        await real_sleep(seconds)

    monkeypatch.setattr(api.asyncio, "sleep", sleep)
    job = post(client, {"size": 48, "iterations": 20, "scales": 1}).json()
    seen = events(client, job["id"])
    assert set(slept) == {0.25} and len(seen) <= len(slept) + 1  # one check per 0.25 s, at most one event each
    assert all(json.dumps(a) != json.dumps(b) for a, b in zip(seen, seen[1:]))  # never the same object twice


DOC = (Path(__file__).resolve().parents[1] / "docs" / "serve.md").read_text()


def test_the_docs_curl_examples_use_every_route_as_the_code_has_them(client):
    from nst_rt.serve.api import ROUTES
    from nst_rt.serve.options import parse

    block = DOC.split("```\nurl=", 1)[1].split("```", 1)[0]
    used = set()
    for command in block.replace("\\\n", " ").splitlines():
        for match in re.finditer(r"(?:curl\s[^$]*?)(-X (\w+) )?\$url(/api/[\w/$]+)", command):
            method = match.group(2) or ("POST" if " -F " in command else "GET")
            used.add((method, re.sub(r"\$id", "{id}", match.group(3))))
    routes = {(method, route.path) for route in ROUTES for method in route.methods if method != "HEAD"}
    assert used == routes
    posted = re.search(r"-F 'options=(\{.*?\})'", block.replace("\\\n", " ")).group(1)
    parse(json.loads(posted), client.app.state.base, client.app.state.models)  # the example's options are valid
    assert set(re.findall(r"-F '?(\w+)=", block)) == {"content", "style", "options"}
    answer = post(client, {"size": -1}).json()
    assert json.dumps(answer) in DOC  # the error answer the docs show is the server's
