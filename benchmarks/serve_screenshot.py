"""Screenshot of the serve page in the middle of a run, by headless Chromium through Playwright.

A first, small run (examples/content/chelsea.png in the style of woman-with-hat-matisse.jpg, 128 px) fills the
results strip; the second, the one shown running, blends two bundled styles; all chosen from the page's examples.

    python benchmarks/serve_screenshot.py --models-dir DIR [--model vgg16] [--size 256] [--iterations 60]
        [--out examples/output/serve.png]
"""

from __future__ import annotations

import argparse
import socket
import threading
import time
from pathlib import Path

import uvicorn
from playwright.sync_api import sync_playwright

from nst_rt.pipeline.options import Options
from nst_rt.serve.app import create_app

ROOT = Path(__file__).resolve().parents[1]
CONTENT, STYLES, WEIGHTS = "chelsea.png", ("starry_night.jpg", "the_scream.jpg"), ("1", "0.4")
FIRST_STYLE, FIRST_SIZE, FIRST_ITERATIONS = "woman-with-hat-matisse.jpg", 128, 20


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models-dir", required=True)
    parser.add_argument("--model", default="vgg16")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--iterations", type=int, default=60)
    parser.add_argument("--out", default=str(ROOT / "examples/output/serve.png"))
    args = parser.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = create_app(Options(model=args.model, models_dir=args.models_dir), examples_dir=ROOT / "examples")
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1200, "height": 985})
        page.goto(f"http://127.0.0.1:{port}/")
        page.wait_for_selector("body[data-ready]")
        page.click(f"#examples-content .example[data-name='{CONTENT}']")
        page.click(f"#examples-style .example[data-name='{FIRST_STYLE}']")
        page.fill("#opt-size", str(FIRST_SIZE))
        page.fill("#opt-iterations", str(FIRST_ITERATIONS))
        page.click("#start")
        page.wait_for_selector("#results .result", timeout=600000)
        page.click("#styles li .remove")
        for name in STYLES:
            page.click(f"#examples-style .example[data-name='{name}']")
        page.wait_for_selector(f"#styles li:nth-child({len(STYLES)}) .blend")
        for k, weight in enumerate(WEIGHTS, start=1):
            page.fill(f"#styles li:nth-child({k}) .blend", weight)
        page.fill("#opt-size", str(args.size))
        page.fill("#opt-iterations", str(args.iterations))
        page.click("#start")
        # Past the coarser scales (which run more iterations), into the last one.
        page.wait_for_function("document.getElementById('status').textContent.startsWith('running · scale') && "
                               "document.getElementById('progress').value > 0.8", timeout=600000)
        page.wait_for_timeout(400)
        page.screenshot(path=args.out)
        page.click("#stop")
        page.wait_for_selector("#download:not([hidden])", timeout=600000)
        browser.close()
    server.should_exit = True
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
