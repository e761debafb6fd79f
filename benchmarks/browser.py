"""Seconds per objective evaluation in headless Chromium (the bundle's page, WASM backend, 1 and 2 threads) against
the Python runtime on ONNX Runtime's CPU provider (same threads), side by side in one run, and the bundle's size.

    python benchmarks/browser.py --model MODEL_DIR [--size 256] [--repeats 5] [--threads 1,2]
                                 [--onnxruntime-web PATH] [--webgpu] [--run-iterations 100 --out DIR]

Both evaluate the default objective (five style layers, relu4_2, tv; Options' weights) at the content picture,
examples/content/chelsea.png in the style of examples/style/starry_night.jpg, resized once with Pillow and handed
to both as the same PNG files. For each thread count the evaluations alternate (Python, browser, Python, ...),
and the median of each is printed with their ratio. The page is served cross-origin isolated (as
``nst-rt serve --browser`` does), which WASM threads need. With --webgpu the page also runs on WebGPU (the adapter
Chromium offers with --enable-unsafe-webgpu: on a machine without a GPU that is SwiftShader, a CPU doing the GPU's
work, and the page says so), against Python on all cores.

With --run-iterations N, a whole single-scale run of N iterations follows in the page (its default threads) and in
Python (``nst_rt.Stylizer``, scales 1, the same weights): both pictures are written to --out, and the final losses,
the wall times and the mean absolute difference of the two pictures (8-bit values) are printed.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import os
import platform
import statistics
import tempfile
import threading
import time
from pathlib import Path

import nst_rt  # noqa: F401  (first, as the CLI does)
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
CONTENT = ROOT / "examples" / "content" / "chelsea.png"
STYLE = ROOT / "examples" / "style" / "starry_night.jpg"
CHROMIUM = "/usr/bin/chromium"


def resized(source: Path, size: int, out: Path) -> Path:
    image = Image.open(source).convert("RGB")
    scale = size / max(image.size)
    image.resize((round(image.width * scale), round(image.height * scale)), Image.LANCZOS).save(out)
    return out


def serve(folder: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    from nst_rt.serve.browser import ISOLATION

    class Handler(http.server.SimpleHTTPRequestHandler):
        def end_headers(self):
            for name, value in ISOLATION:
                self.send_header(name.decode(), value.decode())
            super().end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def python_objective(model, content: Path, style: Path, threads: int):
    from nst_rt.io.image_load import load_image
    from nst_rt.io.layout import to_nchw
    from nst_rt.network.session import Network
    from nst_rt.objective.whole import Objective
    from nst_rt.pipeline.options import Options

    o = Options()
    objective = Objective(Network(model, "cpu", threads=threads), load_image(content), [load_image(style)],
                          content_weight=o.content_weight, style_weight=o.style_weight, tv_weight=o.tv_weight,
                          normalize=o.normalize)
    x = to_nchw(load_image(content)).astype(np.float64)
    objective(x)  # warm-up
    return lambda: objective(x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="an exported model's directory")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--onnxruntime-web", default=None, help="the onnxruntime-web package (default: the cache)")
    parser.add_argument("--webgpu", action="store_true",
                        help="also time the page on WebGPU (Chromium's --enable-unsafe-webgpu; SwiftShader without a GPU)"
                             " against Python on all cores")
    parser.add_argument("--run-iterations", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("."))
    args = parser.parse_args()

    import onnxruntime
    from playwright.sync_api import sync_playwright

    from nst_rt.network.model import load_model
    from nst_rt.web.bundle import write_bundle
    from nst_rt.web.onnxruntime_web import VERSION

    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor())
    print(f"machine: {cpu}, {os.cpu_count()} cores; onnxruntime {onnxruntime.__version__}, onnxruntime-web {VERSION}")
    model = load_model(args.model)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        sizes = write_bundle(tmp / "site", args.model, onnxruntime_web_source=args.onnxruntime_web)
        total = sum(sizes.values())
        runtime = sum(v for k, v in sizes.items() if k.startswith("ort/"))
        wasm_only = sum(v for k, v in sizes.items() if k.startswith("ort/") and "webgpu" not in k and "asyncify" not in k)
        weights = sum(v for k, v in sizes.items() if k.startswith("model/"))
        print(f"bundle: {total / 1e6:.1f} MB ({len(sizes)} files): onnxruntime-web {runtime / 1e6:.1f} MB (a WASM-only "
              f"visitor loads {wasm_only / 1e6:.1f} MB of it), model {weights / 1e6:.1f} MB")
        content, style = resized(CONTENT, args.size, tmp / "content.png"), resized(STYLE, args.size, tmp / "style.png")
        server, url = serve(tmp / "site")
        print(f"model {model.name} ({model.metadata.get('weights_source', '')}), {Image.open(content).size} px, "
              f"median of {args.repeats}")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            for threads in (int(t) for t in args.threads.split(",")):
                side_by_side(browser, f"{url}?backend=wasm&threads={threads}", model, content, style, args, threads)
            if args.webgpu:  # Chromium shows WebGPU with this flag; on a machine without a GPU, SwiftShader's adapter
                gpu_browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--enable-unsafe-webgpu"])
                side_by_side(gpu_browser, f"{url}?backend=webgpu", model, content, style, args, os.cpu_count())
                gpu_browser.close()
            if args.run_iterations:
                whole_runs(browser, url, args, content, style)
            browser.close()
        server.shutdown()


def side_by_side(browser, url: str, model, content: Path, style: Path, args, threads: int) -> None:
    """Evaluations alternating between the Python runtime (``threads``) and the page at ``url``; their medians."""
    page = browser.new_page()
    page.goto(url)
    page.wait_for_selector("body[data-ready]", timeout=300000)
    page.set_input_files("#content", str(content))
    page.set_input_files("#style", str(style))
    page.fill("#opt-size", str(args.size))
    page.evaluate("nstPage.timeEvaluations(0)")  # makes the objective and warms it up
    evaluate = python_objective(model, content, style, threads)
    python_times, browser_times = [], []
    for _ in range(args.repeats):
        started = time.perf_counter()
        evaluate()
        python_times.append(time.perf_counter() - started)
        time.sleep(0.3)  # let ONNX Runtime's idle threads stop spinning
        browser_times.append(page.evaluate("nstPage.timeEvaluations(1)"))
    py, web = statistics.median(python_times), statistics.median(browser_times)
    print(f"  {threads} thread{'s' if threads > 1 else ' '}: Python CPU provider {py:.3f} s, browser "
          f"({page.text_content('#backend').split(' · ')[0].removeprefix('runs on ')}) {web:.3f} s, "
          f"ratio {web / py:.2f}")
    page.close()


def whole_runs(browser, url: str, args, content: Path, style: Path) -> None:
    from nst_rt import Stylizer
    from nst_rt.pipeline.options import Options

    page = browser.new_page()
    page.goto(f"{url}?backend=wasm")
    page.wait_for_selector("body[data-ready]", timeout=300000)
    page.set_input_files("#content", str(content))
    page.set_input_files("#style", str(style))
    page.fill("#opt-size", str(args.size))
    page.fill("#opt-iterations", str(args.run_iterations))
    started = time.perf_counter()
    page.click("#start")
    page.wait_for_selector("#download:not([hidden])", timeout=3600000)
    web_seconds = time.perf_counter() - started
    with page.expect_download() as info:
        page.click("#download")
    args.out.mkdir(parents=True, exist_ok=True)
    web = Image.open(info.value.path()).convert("RGB")
    web.save(args.out / "browser.png")
    web_loss = page.evaluate("nstPage.result.loss")
    label = page.text_content("#backend").split(" · ")[0].removeprefix("runs on ")
    page.close()
    o = Options()
    started = time.perf_counter()
    outcome = Stylizer(model=args.model, size=args.size, iterations=args.run_iterations, scales=1,
                       history=o.history).run(content, style)
    python = outcome.to_pil()
    python_seconds = time.perf_counter() - started
    python.save(args.out / "python.png")
    difference = np.abs(np.asarray(web, float) - np.asarray(python, float)).mean()
    print(f"  {args.run_iterations} iterations: browser ({label}) loss {web_loss:.5g} in {web_seconds:.0f} s, Python "
          f"(all cores) loss {outcome.loss:.5g} in {python_seconds:.0f} s; pictures differ by {difference:.2f}/255 on average "
          f"({args.out / 'browser.png'}, {args.out / 'python.png'})")


if __name__ == "__main__":
    main()
