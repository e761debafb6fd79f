"""The page in a real headless Chromium (Debian's /usr/bin/chromium) driven by Playwright; skips without them.

The server runs in this process on the random-weights VGG-19, with a gate in its runs: a run waits at its
second iteration until the test has seen it in the page, so "the preview and the progress change" is seen
however fast the machine is.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip("no /usr/bin/chromium (apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")
uvicorn = pytest.importorskip("uvicorn")
from PIL import Image  # noqa: E402

from nst_rt.pipeline.options import Options  # noqa: E402
from nst_rt.serve.app import create_app  # noqa: E402
from serve_helpers import gated, png, serving  # noqa: E402

RECORD = """() => {  // every text the status line shows and every picture the preview shows, in order
  window.seen = {status: [], preview: [], progress: []};
  new MutationObserver(() => {
    seen.status.push(document.getElementById('status').textContent);
    seen.progress.push(document.getElementById('progress').value);
  }).observe(document.getElementById('status'), {childList: true, characterData: true, subtree: true});
  new MutationObserver(() => seen.preview.push(document.getElementById('preview').getAttribute('src')))
    .observe(document.getElementById('preview'), {attributes: true, attributeFilter: ['src']});
}"""
DROP = """([selector, name, data]) => {  // a file dropped on a drop zone, as a file manager drops it
  const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
  const dt = new DataTransfer();
  dt.items.add(new File([bytes], name, {type: 'image/png'}));
  document.querySelector(selector).dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true,
                                                                        cancelable: true}));
}"""


@pytest.fixture
def app(models_dir, tmp_path):
    return create_app(Options(model="vgg19", models_dir=models_dir()), results_dir=tmp_path / "results")


@pytest.fixture
def gate(app):
    return gated(app.state.jobs)


@pytest.fixture
def server(app, gate):
    with serving(app) as url:
        yield f"{url}/"
        gate.set()


@pytest.fixture
def browser():
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield chromium
        chromium.close()


def image_file(path: Path, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)).save(path)
    return path


def open_page(browser, url):
    page = browser.new_page()
    page.goto(url)
    page.wait_for_selector("body[data-ready]")
    return page


def job_of(page) -> dict:
    job_id = page.evaluate("location.hash").removeprefix("#job=")
    return json.loads(page.evaluate(f"fetch('/api/jobs/{job_id}').then((r) => r.text())"))


def test_page_runs_previews_downloads_and_shows_errors(server, browser, gate, tmp_path):
    content, style = image_file(tmp_path / "c.png", 0), image_file(tmp_path / "s.png", 1)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    page = open_page(browser, server)
    assert page.input_value("#opt-size") == "512" and page.input_value("#opt-iterations") == "100"  # from Options
    page.set_input_files("#content", str(content))
    page.set_input_files("#style", str(style))
    page.fill("#opt-size", "48")
    page.fill("#opt-iterations", "5")
    assert page.evaluate("collectOptions()") == {"size": 48, "iterations": 5}  # only what was changed is sent
    page.evaluate(RECORD)
    page.click("#start")
    page.wait_for_function("/iteration 2\\//.test(document.getElementById('status').textContent)")
    page.wait_for_function("document.getElementById('preview').naturalWidth > 0")
    gate.set()
    page.wait_for_selector("#download:not([hidden])", timeout=120000)
    seen = page.evaluate("window.seen")
    running = [s for s in seen["status"] if s.startswith("running") and "iteration" in s]
    assert len(set(running)) >= 1 and seen["status"][-1].startswith("done")
    assert len(set(seen["status"])) >= 2 and min(seen["progress"]) < 1 and seen["progress"][-1] == 1
    assert any("/preview?" in src for src in seen["preview"]) and seen["preview"][-1].endswith("/result")
    assert page.evaluate("document.getElementById('preview').naturalWidth") == 48
    assert "it/s" in page.text_content("#numbers") or "loss" in page.text_content("#numbers")
    with page.expect_download() as info:
        page.click("#download")
    assert Image.open(info.value.path()).size == (48, 48)
    caption = page.text_content("#results .result figcaption")
    assert "c.png in the style of s.png" in caption and "48 px · 5 iterations" in caption

    page.set_input_files("#content", str(bad))
    page.click("#start")
    page.wait_for_function("document.getElementById('error-content').textContent.length > 0")
    assert "'bad.png'" in page.text_content("#error-content")  # next to the content field, the CLI's message
    page.set_input_files("#content", str(content))
    page.fill("#opt-size", "0")
    page.click("#start")
    page.wait_for_function("document.getElementById('error-size').textContent.length > 0")
    assert page.text_content("#error-size") == "size must be a whole number >= 1, got 0"
    assert page.text_content("#error-content") == ""


def test_dropped_and_example_pictures_blend_weights_stop_and_a_second_tab(server, browser, gate):
    page = open_page(browser, server)
    page.evaluate(DROP, ["#drop-content", "dropped.png", base64.b64encode(png(7, (48, 48))).decode()])
    assert page.text_content("#content-picked") == "dropped.png"
    page.evaluate(DROP, ["#drop-style", "dropped-style.png", base64.b64encode(png(8, (48, 48))).decode()])
    page.click("#examples-style .example[data-name='starry_night.jpg']")
    page.wait_for_selector("#styles li:nth-child(2) .blend")
    assert page.locator("#styles .name").all_text_contents() == ["dropped-style.png", "starry_night.jpg"]
    page.fill("#styles li:nth-child(2) .blend", "0.25")
    assert page.locator("#styles output").all_text_contents() == ["80%", "20%"]
    page.fill("#opt-size", "48")
    page.fill("#opt-iterations", "5000")
    page.click("#start")
    page.wait_for_function("/iteration 2\\//.test(document.getElementById('status').textContent)")
    job = job_of(page)
    assert job["settings"]["content"] == "dropped.png"
    assert job["settings"]["styles"] == ["dropped-style.png", "starry_night.jpg"]
    assert job["settings"]["options"]["style_blend_weights"] == [1.0, 0.25]

    assert page.get_attribute("#watch", "href") == f"#job={job['id']}"
    other = open_page(browser, server + f"#job={job['id']}")  # another tab watches the same run
    other.wait_for_function("document.getElementById('status').textContent.startsWith('running')")
    watched = other.text_content("#job-settings")  # the job's settings, not the watching tab's form
    assert watched.startswith("dropped.png in the style of dropped-style.png (1) + starry_night.jpg (0.25) · 48 px")
    assert watched.endswith(" · model vgg19") and other.is_disabled("#opt-model")
    page.click("#start")  # a second run waits for the first
    page.wait_for_function("document.getElementById('status').textContent === 'queued: place 1 in the queue'")
    queued = job_of(page)
    assert queued["id"] != job["id"] and queued["status"] == "queued"
    page.click("#stop")  # removes the queued one
    page.wait_for_function("document.getElementById('status').textContent === 'stopped'")
    gate.set()
    other.click("#stop")  # the second tab stops the first run
    other.wait_for_selector("#download:not([hidden])", timeout=120000)
    assert "stopped" in other.text_content("#status") and "best image so far" in other.text_content("#status")
    with other.expect_download() as info:
        other.click("#download")
    assert Image.open(info.value.path()).size == (48, 48)
    page.wait_for_selector(f"#results .result[data-id='{job['id']}']")  # the first tab keeps it in its strip
    assert "dropped.png in the style of dropped-style.png (1) + starry_night.jpg (0.25)" in page.text_content(
        "#results .result figcaption")


@pytest.fixture
def random_weights(monkeypatch):
    from nst_rt.network.model import ModelInfo

    monkeypatch.setattr(ModelInfo, "random_weights", property(lambda self: True))


def test_the_model_notice_shows_on_the_page(random_weights, server, browser):
    page = open_page(browser, server)
    assert page.is_visible("#notices")
    assert page.text_content("#notices").startswith("Note: model vgg19 has ")
