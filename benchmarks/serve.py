"""Serve path overhead: one run through the server (queue, worker, progress stored, a client pulling the JPEG
preview 4 times a second over HTTP) against the same run through ``Stylizer``; and Start to first preview.

    python benchmarks/serve.py --models-dir DIR [--model vgg16] [--size 256] [--iterations 20]
"""

from __future__ import annotations

import argparse
import io
import platform
import time
from pathlib import Path

from starlette.testclient import TestClient

from nst_rt.io.image_load import load_image
from nst_rt.pipeline.options import Options
from nst_rt.pipeline.stylizer import Stylizer
from nst_rt.serve.app import create_app

ROOT = Path(__file__).resolve().parents[1]
CONTENT, STYLE = ROOT / "examples/content/chelsea.png", ROOT / "examples/style/starry_night.jpg"


def cpu() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models-dir", required=True)
    parser.add_argument("--model", default="vgg16")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--iterations", type=int, default=20)
    args = parser.parse_args()
    options = Options(model=args.model, models_dir=args.models_dir, size=args.size, iterations=args.iterations,
                      scales=1)
    stylizer = Stylizer(options)
    content, style = load_image(CONTENT), load_image(STYLE)
    stylizer.run(content, [style])  # warm up
    started = time.perf_counter()
    stylizer.run(content, [style])
    direct = time.perf_counter() - started

    app = create_app(options)
    app.state.jobs._stylizers[(str(options.model), str(options.models_dir), options.provider, options.precision,
                               options.threads)] = stylizer  # the same loaded model: only the serve path differs
    with TestClient(app) as client:
        files = [("content", ("c.png", CONTENT.read_bytes())), ("style", ("s.jpg", STYLE.read_bytes()))]
        started = time.perf_counter()
        job = client.post("/api/jobs", files=files, data={"options": "{}"}).json()
        first = None
        while True:
            s = client.get(f"/api/jobs/{job['id']}").json()
            if first is None and client.get(f"/api/jobs/{job['id']}/preview").status_code == 200:
                first = time.perf_counter() - started
            if s["status"] == "done":
                break
            time.sleep(0.25)
        served = time.perf_counter() - started
    print(f"CPU: {cpu()}; {args.model}, {args.size} px, {args.iterations} iterations, one scale")
    print(f"Stylizer.run   {direct:7.2f} s")
    print(f"serve (HTTP)   {served:7.2f} s   ratio {served / direct:.3f}  (includes upload decoding, 0.25 s polling)")
    print(f"Start to first preview {first:.2f} s")


if __name__ == "__main__":
    main()
