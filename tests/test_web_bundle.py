"""``nst-rt web-bundle`` without a browser: what a bundle holds, where onnxruntime-web comes from, and the refusals
(one line, exit code 1, nothing of the user's touched). A small stand-in package with the pinned name and version
plays onnxruntime-web here; tests/test_web_browser.py runs the real one."""

from __future__ import annotations

import io
import json
import tarfile

import pytest
from typer.testing import CliRunner

from nst_rt.cli import app
from nst_rt.errors import OptionError
from nst_rt.model_format import FEATURES_FILE, OBJECTIVE_FILE, WEIGHTS_FILE
from nst_rt.pipeline.options import Options
from nst_rt.serve.app import create_app
from nst_rt.web import onnxruntime_web
from nst_rt.web.bundle import BROWSER_SIZE, PAGE_FILES


def package(path, version=onnxruntime_web.VERSION, leave_out=()):
    """A packed npm package as npm writes one (files under package/), each dist file holding its own name."""
    entries = {"package/package.json": json.dumps({"name": "onnxruntime-web", "version": version, "license": "MIT"})}
    entries.update({f"package/dist/{name}": name for name in onnxruntime_web.FILES if name not in leave_out})
    with tarfile.open(path, "w:gz") as archive:
        for name, text in entries.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def bundle(runner, models_dir, out, *extra):
    return runner.invoke(app, ["web-bundle", str(out), "--models-dir", str(models_dir), *extra])


@pytest.fixture
def runner():
    return CliRunner()


def test_a_bundle_holds_the_page_the_runtime_the_model_and_its_facts(runner, models_dir, export_path, tmp_path):
    out = tmp_path / "site"
    done = bundle(runner, models_dir(), out, "--onnxruntime-web", str(package(tmp_path / "ort.tgz")))
    assert done.exit_code == 0, done.output
    for name in PAGE_FILES:
        assert (out / name).is_file()
    for name in onnxruntime_web.FILES:
        assert (out / "ort" / name).read_text() == name
    assert "MIT" in (out / "ort" / onnxruntime_web.NOTICE).read_text()
    for name in (FEATURES_FILE, OBJECTIVE_FILE, WEIGHTS_FILE):
        assert (out / "model" / name).read_bytes() == (export_path() / name).read_bytes()
    facts = json.loads((out / "bundle.json").read_text())
    assert facts["model"]["objective_style_layers"] == ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]
    assert facts["model"]["channels"] == {"relu1_1": 64, "relu2_1": 128, "relu3_1": 256, "relu4_1": 512,
                                          "relu5_1": 512, "relu4_2": 512}
    o = Options()
    assert facts["defaults"] == {"size": BROWSER_SIZE, "iterations": o.iterations, "content_weight": o.content_weight,
                                 "style_weight": o.style_weight, "tv_weight": o.tv_weight, "normalize": o.normalize,
                                 "history": o.history}
    assert "chelsea.png" in facts["examples"]["content"]
    assert all((out / "examples" / "content" / name).is_file() for name in facts["examples"]["content"])
    # Every URL the page names is relative, inside the bundle.
    page = (out / "index.html").read_text() + (out / "app.js").read_text()
    assert "http://" not in page and "https://" not in page and "//cdn" not in page

    (out / "stale.txt").write_text("from an earlier bundle")
    again = bundle(runner, models_dir(), out, "--onnxruntime-web", str(tmp_path / "ort.tgz"))
    assert again.exit_code == 0 and not (out / "stale.txt").exists()  # an earlier bundle is replaced whole
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no staging folder left


def test_an_unpacked_package_folder_works_too(runner, models_dir, tmp_path):
    with tarfile.open(package(tmp_path / "ort.tgz")) as archive:
        archive.extractall(tmp_path / "unpacked", filter="data")
    done = bundle(runner, models_dir(), tmp_path / "site", "--onnxruntime-web", str(tmp_path / "unpacked" / "package"))
    assert done.exit_code == 0, done.output
    assert (tmp_path / "site" / "ort" / "ort.wasm.min.mjs").read_text() == "ort.wasm.min.mjs"


@pytest.mark.parametrize("make, says", [
    (lambda p: package(p, version="1.0.0"), "holds onnxruntime-web 1.0.0, not onnxruntime-web " + onnxruntime_web.VERSION),
    (lambda p: package(p, leave_out=("ort-wasm-simd-threaded.wasm",)), "lacks dist/ort-wasm-simd-threaded.wasm"),
    (lambda p: p.write_bytes(b"not a tarball") and p, "is not a readable .tgz"),
    (lambda p: p, "does not exist"),
])
def test_a_wrong_package_is_refused_and_nothing_is_written(runner, models_dir, tmp_path, make, says):
    source = make(tmp_path / "ort.tgz")
    done = bundle(runner, models_dir(), tmp_path / "site", "--onnxruntime-web", str(source))
    assert done.exit_code == 1 and len(done.output.strip().splitlines()) == 1, done.output
    assert says in done.output and "--onnxruntime-web PATH" in done.output and "Traceback" not in done.output
    assert not (tmp_path / "site").exists()


def test_a_folder_of_the_users_is_never_overwritten(runner, models_dir, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    done = bundle(runner, models_dir(), out, "--onnxruntime-web", str(package(tmp_path / "ort.tgz")))
    assert done.exit_code == 1 and "is not a bundle nst-rt wrote; name a new or empty folder" in done.output
    assert [p.name for p in out.iterdir()] == ["notes.txt"] and (out / "notes.txt").read_text() == "keep me"


def test_without_a_package_the_cache_is_filled_by_npm_or_the_error_says_what_to_do(runner, models_dir, tmp_path,
                                                                                    monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("PATH", str(tmp_path / "no-programs"))  # no npm
    done = bundle(runner, models_dir(), tmp_path / "site")
    assert done.exit_code == 1 and "npm is not installed" in done.output and "--onnxruntime-web PATH" in done.output
    cached = onnxruntime_web.cached_tarball()
    assert str(cached).startswith(str(tmp_path / "cache"))
    cached.parent.mkdir(parents=True)
    package(cached)  # what `npm pack` leaves there
    done = bundle(runner, models_dir(), tmp_path / "site")
    assert done.exit_code == 0, done.output


def test_serve_refuses_a_browser_folder_that_is_not_a_bundle(models_dir, tmp_path):
    with pytest.raises(OptionError, match="is not a browser bundle .* write one with `nst-rt web-bundle"):
        create_app(Options(model="vgg19", models_dir=models_dir()), results_dir=tmp_path / "r", browser_dir=tmp_path)


def test_serve_mounts_a_bundle_at_browser_cross_origin_isolated(runner, models_dir, tmp_path):
    from starlette.testclient import TestClient

    assert bundle(runner, models_dir(), tmp_path / "site", "--onnxruntime-web",
                  str(package(tmp_path / "ort.tgz"))).exit_code == 0
    app = create_app(Options(model="vgg19", models_dir=models_dir()), results_dir=tmp_path / "r",
                     browser_dir=tmp_path / "site")
    with TestClient(app) as client:
        page = client.get("/browser/")
        assert page.status_code == 200 and "nst-rt in the browser" in page.text
        assert page.headers["cross-origin-opener-policy"] == "same-origin"
        assert page.headers["cross-origin-embedder-policy"] == "require-corp"
        assert client.get("/browser/ort/ort.wasm.min.mjs").text == "ort.wasm.min.mjs"
        assert client.get("/browser", follow_redirects=False).headers["location"] == "/browser/"
        assert "cross-origin-opener-policy" not in client.get("/").headers  # the server's own page is unchanged


def test_a_model_with_random_weights_starts_the_page_with_the_settings_that_keep_the_content():
    from nst_rt.pipeline.options import RANDOM_WEIGHTS_SETTINGS
    from nst_rt.web.bundle import page_defaults

    defaults = page_defaults(random_weights=True)
    assert {k: defaults[k] for k in ("normalize", "style_weight", "tv_weight")} == {
        k: RANDOM_WEIGHTS_SETTINGS[k] for k in ("normalize", "style_weight", "tv_weight")}
    assert defaults != page_defaults(random_weights=False)
