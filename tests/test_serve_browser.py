"""The page in a real headless Chromium (Debian's /usr/bin/chromium) driven by Playwright; skips without them."""

from __future__ import annotations

import io
import socket
import threading
import time
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


@pytest.fixture
def server(models_dir, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = create_app(Options(model="vgg19", models_dir=models_dir()), results_dir=tmp_path / "results")
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    while not srv.started:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/"
    srv.should_exit = True
    thread.join(30)


def image_file(path: Path, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)).save(path)
    return path


def test_page_runs_previews_downloads_and_shows_errors(server, tmp_path):
    content, style = image_file(tmp_path / "c.png", 0), image_file(tmp_path / "s.png", 1)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        page = browser.new_page()
        page.goto(server)
        page.wait_for_selector("#opt-size")
        page.set_input_files("#content", str(content))
        page.set_input_files("#style", str(style))
        page.fill("#opt-size", "48")
        page.fill("#opt-iterations", "5")
        page.click("#start")
        page.wait_for_function("document.getElementById('status').textContent.includes('iteration')")
        first = page.text_content("#status")
        page.wait_for_selector("#download:not([hidden])", timeout=60000)
        assert page.text_content("#status") != first and page.text_content("#status").startswith("done")
        assert page.evaluate("document.getElementById('preview').naturalWidth") == 48
        with page.expect_download() as info:
            page.click("#download")
        assert Image.open(info.value.path()).size == (48, 48)
        page.set_input_files("#content", str(bad))
        page.click("#start")
        page.wait_for_function("document.getElementById('error').textContent.length > 0")
        assert "bad.png" in page.text_content("#error")
        browser.close()
