"""The browser bundle (``nst-rt web-bundle``) in a real headless Chromium (Debian's /usr/bin/chromium) driven by
Playwright, served by ``nst-rt serve --browser`` at /browser/: the page's objective against the Python runtime's,
a short run, the errors, Stop, and that it loads nothing from outside its folder. Skips without Chromium, Playwright
or npm (which fetches onnxruntime-web once per session)."""

from __future__ import annotations

import functools
import http.server
import io
import re
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.slow
if not CHROMIUM.exists():
    pytest.skip("no /usr/bin/chromium (apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")
uvicorn = pytest.importorskip("uvicorn")
from PIL import Image  # noqa: E402

from nst_rt.errors import NstError  # noqa: E402
from nst_rt.io.image_load import load_image  # noqa: E402
from nst_rt.io.layout import to_nchw  # noqa: E402
from nst_rt.network.model import load_model  # noqa: E402
from nst_rt.network.session import Network  # noqa: E402
from nst_rt.objective.whole import Objective  # noqa: E402
from nst_rt.pipeline.options import Options  # noqa: E402
from nst_rt.serve.app import create_app  # noqa: E402
from nst_rt.web import onnxruntime_web  # noqa: E402
from nst_rt.web.bundle import write_bundle  # noqa: E402
from serve_helpers import serving  # noqa: E402
from synthetic import gradient, noise  # noqa: E402

DOC = Path(__file__).resolve().parents[1] / "docs" / "browser.md"


@pytest.fixture(scope="session")
def onnxruntime_web_package(tmp_path_factory):
    """onnxruntime-web's pinned npm package, packed by npm into a temporary folder (npm keeps its own cache)."""
    if shutil.which("npm") is None:
        pytest.skip("no npm to fetch onnxruntime-web (apt-get install npm)")
    path = tmp_path_factory.mktemp("npm") / onnxruntime_web.tarball_name()
    try:
        onnxruntime_web._npm_pack(path)
    except NstError as exc:
        pytest.skip(str(exc))
    return path


@pytest.fixture(scope="module")
def site(models_dir, onnxruntime_web_package, tmp_path_factory):
    folder = tmp_path_factory.mktemp("site") / "site"
    write_bundle(folder, "vgg19", models_dir(), onnxruntime_web_package)
    return folder


@pytest.fixture(scope="module")
def server(models_dir, site, tmp_path_factory):
    app = create_app(Options(model="vgg19", models_dir=models_dir()), results_dir=tmp_path_factory.mktemp("results"),
                     browser_dir=site)
    with serving(app) as url:
        yield url


@pytest.fixture(scope="module")
def playwright():
    with sync_api.sync_playwright() as p:  # one per thread: both browsers come from it
        yield p


@pytest.fixture(scope="module")
def browser(playwright):
    chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
    yield chromium
    chromium.close()


@pytest.fixture(scope="module")
def webgpu_browser(playwright):
    """Chromium with WebGPU on: without a GPU its adapter is SwiftShader's, a CPU doing the GPU's work."""
    chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox", "--enable-unsafe-webgpu"])
    yield chromium
    chromium.close()


def open_page(browser, server, query="", requests=None):
    page = browser.new_page()
    if requests is not None:
        page.on("request", lambda request: requests.append(request.url))
    page.goto(f"{server}/browser/{query}")
    page.wait_for_selector("body[data-ready]", timeout=120000)
    return page


def picture(path: Path, pixels: np.ndarray) -> Path:
    Image.fromarray(np.round(pixels * 255).astype(np.uint8)).save(path)
    return path


def pick(page, content: Path, style: Path, size: int, iterations: int):
    page.set_input_files("#content", str(content))
    page.set_input_files("#style", str(style))
    page.fill("#opt-size", str(size))
    page.fill("#opt-iterations", str(iterations))


def rel_l2(a, b) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


@pytest.mark.parametrize("backend", ["wasm", "webgpu"])
def test_the_objective_and_gradient_at_the_content_equal_the_python_runtime(server, request, backend, models_dir,
                                                                           tmp_path):
    content = picture(tmp_path / "content.png", gradient(36, 48))
    style = picture(tmp_path / "style.png", noise(48, 40))
    if backend == "wasm":
        page = open_page(request.getfixturevalue("browser"), server, "?threads=1")
        assert page.text_content("#backend").startswith("runs on WASM, 1 thread")
    else:
        page = open_page(request.getfixturevalue("webgpu_browser"), server, "?backend=webgpu")
        if not page.evaluate("async () => !!(navigator.gpu && await navigator.gpu.requestAdapter())"):
            pytest.skip("this Chromium offers no WebGPU adapter, not even SwiftShader's")
        assert page.text_content("#backend").startswith("runs on WebGPU")
    pick(page, content, style, 48, 10)  # both pictures are already 48 px on their longest side: no resizing
    got = page.evaluate("nstPage.objectiveAtContent()")
    o = Options()
    network = Network(load_model("vgg19", models_dir()), "cpu")
    objective = Objective(network, load_image(content), [load_image(style)], content_weight=o.content_weight,
                          style_weight=o.style_weight, tv_weight=o.tv_weight, normalize=o.normalize)
    x = to_nchw(load_image(content)).astype(np.float64)
    total, grad = objective(x)
    terms = objective.terms_at(total)
    assert (got["height"], got["width"]) == (36, 48)
    assert got["total"] == pytest.approx(total, rel=1e-4)
    for name in ("content", "style", "tv"):
        assert got["terms"][name] == pytest.approx(terms[name], rel=1e-4, abs=1e-9)
    assert terms["style"] > 0 and terms["tv"] > 0
    assert rel_l2(np.array(got["grad"]), grad.reshape(-1)) < 1e-4


def test_a_short_run_lowers_the_loss_downloads_and_loads_only_its_own_files(server, browser, tmp_path):
    requests: list[str] = []
    page = open_page(browser, server, requests=requests)  # cross-origin isolated by the mount: WASM threads
    assert page.evaluate("self.crossOriginIsolated")
    content = picture(tmp_path / "c.png", gradient(48, 64))
    style = picture(tmp_path / "s.png", noise(64, 64))
    pick(page, content, style, 64, 10)
    page.click("#start")
    page.wait_for_selector("#download:not([hidden])", timeout=300000)
    assert page.text_content("#status") == "done: 10 iterations"
    losses = page.evaluate("nstPage.losses")
    assert len(losses) == 10 and all(b < a for a, b in zip(losses, losses[1:]))  # L-BFGS lowers it every step
    with page.expect_download() as info:
        page.click("#download")
    result = Image.open(io.BytesIO(Path(info.value.path()).read_bytes()))
    assert result.size == (64, 48) and result.getextrema()[3] == (255, 255)  # canvas PNGs are RGBA, here opaque
    assert np.abs(np.asarray(result.convert("RGB"), float) / 255 - gradient(48, 64)).mean() > 0.01  # it is not the content
    page.close()
    assert requests and all(url.startswith(f"{server}/browser/") or url.startswith("blob:") for url in requests), \
        [url for url in requests if not url.startswith(f"{server}/browser/")]


def test_an_unreadable_picture_is_named_next_to_its_field(server, browser, tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    page = open_page(browser, server)
    pick(page, bad, picture(tmp_path / "s.png", noise(48, 48)), 48, 5)
    page.click("#start")
    page.wait_for_function("document.getElementById('error-content').textContent.length > 0")
    assert page.text_content("#error-content").startswith("could not read 'bad.png' as a picture")
    assert page.text_content("#error-style") == "" and page.is_hidden("#download")
    page.fill("#opt-size", "8")
    page.click("#start")
    page.wait_for_function("document.getElementById('error-size').textContent.length > 0")
    assert page.text_content("#error-size") == "size must be a whole number >= 16, got 8"


def test_stop_keeps_the_picture_so_far(server, browser, tmp_path):
    page = open_page(browser, server)
    pick(page, picture(tmp_path / "c.png", gradient(48, 48)), picture(tmp_path / "s.png", noise(48, 48)), 48, 100000)
    page.click("#start")
    page.wait_for_function("/iteration 3\\//.test(document.getElementById('status').textContent)", timeout=120000)
    page.click("#stop")
    page.wait_for_selector("#download:not([hidden])", timeout=120000)
    assert page.text_content("#status").startswith("stopped at iteration")
    shown = page.evaluate("""() => {
        const c = document.getElementById('preview');
        return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data);
    }""")
    with page.expect_download() as info:
        page.click("#download")
    saved = np.asarray(Image.open(info.value.path()).convert("RGBA")).reshape(-1)
    assert np.array_equal(saved, np.array(shown, np.uint8))  # the download is the picture on show
    assert np.abs(saved.reshape(48, 48, 4)[..., :3] / 255 - gradient(48, 48)).mean() > 0.01  # a stylised one
    assert page.is_enabled("#start") and page.is_disabled("#stop")


def test_the_docs_own_page_runs_from_the_bundle_folder(server, browser, site):
    block = re.search(r"^```html\n(.*?)^```", DOC.read_text(), re.M | re.S).group(1)
    small = block.replace("128)", "32)").replace("maxiter: 20", "maxiter: 3")
    assert small != block
    (site / "embed.html").write_text(small)
    page = browser.new_page()
    page.goto(f"{server}/browser/embed.html")
    page.wait_for_function("document.body.textContent.startsWith('loss')", timeout=120000)
    assert re.fullmatch(r"loss [0-9.e+-]+ after 3 iterations", page.text_content("body").strip())


def test_a_plain_static_host_runs_it_on_one_thread(browser, site):
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    host = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(site)))
    threading.Thread(target=host.serve_forever, daemon=True).start()
    try:
        page = browser.new_page()
        page.goto(f"http://127.0.0.1:{host.server_address[1]}/")
        page.wait_for_selector("body[data-ready]", timeout=120000)
        assert not page.evaluate("self.crossOriginIsolated")
        assert page.text_content("#backend").startswith("runs on WASM, 1 thread ·")
    finally:
        host.shutdown()


def test_a_software_webgpu_adapter_is_left_for_wasm_unless_asked_for(server, webgpu_browser):
    page = open_page(webgpu_browser, server)
    software = page.evaluate("""async () => {
        const adapter = navigator.gpu && await navigator.gpu.requestAdapter();
        return adapter ? adapter.info.isFallbackAdapter : null;
    }""")
    if software is not True:
        pytest.skip(f"this Chromium's WebGPU adapter is not a software one ({software})")
    assert page.text_content("#backend").startswith("runs on WASM")
    page.close()
    asked = open_page(webgpu_browser, server, "?backend=webgpu")
    assert asked.text_content("#backend").startswith("runs on WebGPU (software adapter")


def test_a_short_run_on_webgpu_lowers_the_loss(server, webgpu_browser, tmp_path):
    page = open_page(webgpu_browser, server, "?backend=webgpu")
    if not page.text_content("#backend").startswith("runs on WebGPU"):
        pytest.skip("this Chromium offers no WebGPU adapter, not even SwiftShader's")
    pick(page, picture(tmp_path / "c.png", gradient(24, 32)), picture(tmp_path / "s.png", noise(32, 32)), 32, 3)
    page.click("#start")
    page.wait_for_selector("#download:not([hidden])", timeout=300000)
    assert page.text_content("#status") == "done: 3 iterations"
    losses = page.evaluate("nstPage.losses")
    assert len(losses) == 3 and all(b < a for a, b in zip(losses, losses[1:]))
    with page.expect_download() as info:
        page.click("#download")
    assert Image.open(io.BytesIO(Path(info.value.path()).read_bytes())).size == (32, 24)
