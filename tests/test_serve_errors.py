"""Bad requests to the HTTP API: each answer's status, its one-line message (the CLI's own, for the same bad
picture or value) and the field it names; nothing a client sends becomes a path."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("starlette.testclient")
from starlette.testclient import TestClient  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from nst_rt.cli import app as cli  # noqa: E402
from nst_rt.pipeline.stylizer import Stylizer  # noqa: E402
from nst_rt.serve.app import create_app  # noqa: E402
from serve_helpers import URL, LONG, base, png, post, wait, wait_running  # noqa: E402

CLI_PREFIX = "nst-rt: error: "


@pytest.fixture
def client(models_dir, tmp_path):
    app = create_app(base(models_dir()), results_dir=tmp_path / "results", max_upload_mb=1)
    with TestClient(app, base_url=URL) as c:
        yield c


def refused(response, status=400, field=None) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "field"} and body["field"] == field, body
    assert body["error"] and "\n" not in body["error"] and "Traceback" not in body["error"]
    return body["error"]


# The same bad input to the API (picture bytes as c.png / s.png, options) and to `nst-rt stylize c.png s.png ...`.
SAME = {
    "unreadable content": (dict(content=b"not an image"), [], "content"),
    "too small style": (dict(style=png(3, (8, 8)), styles=1), [], "style"),
    "size": (dict(options={"size": -1}), ["--size", "-1"], "size"),
    "style scale": (dict(options={"style_scale": 0}), ["--style-scale", "0"], "style_scale"),
    "negative weight": (dict(options={"tv_weight": -1}), ["--tv-weight", "-1"], "tv_weight"),
    "blend weights for another number of styles": (dict(options={"style_blend_weights": [1]}),
                                                   ["--style-blend-weights", "1"], "style_blend_weights"),
    "unknown layer": (dict(options={"style_layers": ["relu1_1", "relu9_9"]}), ["--style-layers", "relu1_1,relu9_9"],
                      "style_layers"),
}


@pytest.mark.parametrize("case", SAME, ids=list(SAME))
def test_the_message_is_the_clis_and_names_the_field(case, client, models_dir, tmp_path, monkeypatch):
    request, flags, field = SAME[case]
    message = refused(post(client, **request), field=field)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "c.png").write_bytes(request.get("content", png(0)))
    styles = ["s0.png"] if request.get("styles") == 1 else ["s0.png", "s1.png"]
    for k, name in enumerate(styles):
        (tmp_path / name).write_bytes(request.get("style", png(k + 1)))
    result = CliRunner().invoke(cli, ["stylize", "c.png", *styles, "-o", "out.png", "--models-dir", str(models_dir()),
                                      "--model", "vgg19", "--size", "32", "--iterations", "2", *flags])
    assert result.exit_code == 1, result.output
    assert result.stderr.strip() == CLI_PREFIX + message
    assert not (tmp_path / "out.png").exists()


def test_options_the_cli_cannot_be_given_wrong(client):
    assert refused(post(client, {"colour": 1}), field="colour").startswith("unknown option 'colour'")
    assert "must be a whole number" in refused(post(client, {"size": "big"}), field="size")
    assert "must be one of lbfgs, adam" in refused(post(client, {"optimizer": "sgd"}), field="optimizer")
    assert "is fixed when the server starts (vgg19)" in refused(post(client, {"model": "../vgg19"}), field="model")
    assert "JSON object" in refused(post(client, [1]))  # not an object: no one field to blame
    bad_json = client.post("/api/jobs", files=[("content", ("c.png", png(0))), ("style", ("s.png", png(1)))],
                           data={"options": "{size: 1"})
    assert refused(bad_json, field="options").startswith("options is not valid JSON")


def test_missing_pictures_and_a_body_that_is_no_form(client):
    no_content = client.post("/api/jobs", files=[("style", ("s.png", png(1)))])
    assert "content image" in refused(no_content, field="content")
    no_style = client.post("/api/jobs", files=[("content", ("c.png", png(0)))])
    assert "style images" in refused(no_style, field="style")
    text_for_file = client.post("/api/jobs", data={"content": "c.png", "style": "s.png"})
    refused(text_for_file, field="content")
    garbled = client.post("/api/jobs", content=b"--x\r\nnonsense", headers={"content-type": "multipart/form-data"})
    assert refused(garbled).startswith("the request is not a readable multipart form")


def test_no_client_given_path_is_opened(client):
    assert "must be one of content, noise, style" in refused(post(client, {"init": "/etc/passwd"}), field="init")
    assert refused(post(client, {"models_dir": "/tmp"}), field="models_dir").startswith("unknown option")
    for name, value in [("style_masks", ["/etc/passwd", "/etc/passwd"]), ("content_mask", "/etc/passwd")]:
        assert "never opens a path" in refused(post(client, {name: value}), field=name)
    traversing = client.post("/api/jobs", files=[("content", ("../../etc/passwd", b"not an image")),
                                                 ("style", ("s.png", png(1)))])
    message = refused(traversing, field="content")
    assert "'passwd'" in message and "etc/" not in message  # the client's name is shown, never used


def test_an_upload_over_the_limit_is_413(client):
    message = refused(post(client, content=b"x" * (2 * 1024 * 1024)), status=413)
    assert "1 MB" in message and "--max-upload-mb" in message


@pytest.mark.parametrize("method, route", [("GET", ""), ("GET", "/events"), ("GET", "/preview"),
                                           ("GET", "/result"), ("DELETE", "")])
def test_an_unknown_job_is_404(client, method, route):
    message = refused(client.request(method, f"/api/jobs/0b9e4f1c-0000-4000-8000-000000000000{route}"), status=404)
    assert message.startswith("no job '0b9e4f1c-")


def test_preview_and_result_before_there_is_one_are_409(client):
    running = post(client, LONG).json()
    queued = post(client).json()
    assert "no image yet (queued)" in refused(client.get(f"/api/jobs/{queued['id']}/preview"), status=409)
    assert "no result yet (queued)" in refused(client.get(f"/api/jobs/{queued['id']}/result"), status=409)
    wait_running(client, running["id"])
    assert "no result yet (running)" in refused(client.get(f"/api/jobs/{running['id']}/result"), status=409)
    client.delete(f"/api/jobs/{running['id']}")
    assert wait(client, queued["id"])["status"] == "done"


def test_a_run_that_fails_says_why_and_the_server_goes_on(client, monkeypatch):
    jobs = client.app.state.jobs

    class Broken(Stylizer):
        def run(self, *args, **kwargs):
            raise RuntimeError("the network fell over")

    monkeypatch.setattr(jobs, "stylizer", lambda options: Broken(options))
    failed = wait(client, post(client).json()["id"])
    assert failed["status"] == "failed" and not failed["has_result"]
    assert failed["error"] == "internal error: RuntimeError: the network fell over"
    assert json.loads(json.dumps(failed)) == failed
    monkeypatch.undo()
    assert wait(client, post(client).json()["id"])["status"] == "done"


def test_an_unknown_path_or_method_answers_in_the_same_shape(client):
    assert refused(client.get("/api/nothing"), status=404) == "not found: GET /api/nothing"
    wrong = client.put("/api/jobs")
    assert refused(wrong, status=405) == "method not allowed: PUT /api/jobs; use POST"
    assert wrong.headers["allow"] == "POST"
    assert client.post("/api/jobs/x/result").headers["allow"] == "GET, HEAD"
    assert refused(client.get("/nothing.html"), status=404) == "not found: GET /nothing.html"
