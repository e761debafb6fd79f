"""Screenshot of the serve page in the middle of a run, by headless Chromium through Playwright.

    python benchmarks/serve_screenshot.py --models-dir DIR [--model vgg16] [--out examples/output/serve.png]
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models-dir", required=True)
    parser.add_argument("--model", default="vgg16")
    parser.add_argument("--out", default=str(ROOT / "examples/output/serve.png"))
    args = parser.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = create_app(Options(model=args.model, models_dir=args.models_dir))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 900, "height": 900})
        page.goto(f"http://127.0.0.1:{port}/")
        page.wait_for_selector("#opt-size")
        page.set_input_files("#content", str(ROOT / "examples/content/chelsea.png"))
        page.set_input_files("#style", str(ROOT / "examples/style/starry_night.jpg"))
        page.fill("#opt-size", "256")
        page.fill("#opt-iterations", "60")
        page.click("#start")
        page.wait_for_function("/iteration ([1-9][0-9]+)\\//.test(document.getElementById('status').textContent)",
                               timeout=300000)
        page.wait_for_timeout(500)
        page.screenshot(path=args.out)
        page.click("#stop")
        browser.close()
    server.should_exit = True
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
