"""`nst-rt serve` under hostile load: a server process on 127.0.0.1, a normal job, and a few hundred hostile
requests (the kinds docs/serve.md's limits refuse) from 4 threads while it runs; the server's peak RSS (VmHWM),
every answer's status, whether the normal job finished, and the time from DELETE to a job's stop during its setup.

    python benchmarks/serve_hostile.py --models-dir DIR [--model vgg19] [--requests 300] [--seconds 120]

A watchdog kills the server once its RSS passes --rss-ceiling-gb (so a server without limits cannot take the
machine); every loop is bounded by --requests and --seconds. tests/test_serve_load.py runs ``hostile_load``.
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx2 as httpx
import numpy as np
from PIL import Image


def picture(size=(48, 40), seed=0, mode="RGB") -> bytes:
    buffer = io.BytesIO()
    if mode == "1":
        Image.new("1", size).save(buffer, "PNG")
    else:
        rng = np.random.default_rng(seed)
        Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def gradient(size) -> bytes:
    """A smooth picture: many pixels, a small PNG."""
    w, h = size
    x = np.linspace(0, 255, w, dtype=np.float32)[None, :, None]
    y = np.linspace(0, 255, h, dtype=np.float32)[:, None, None]
    rgb = np.broadcast_to((x + y) / 2, (h, w, 3)).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, "PNG")
    return buffer.getvalue()


def hostile_requests():
    """(name, httpx request kwargs) for each kind of hostile request."""
    small, big = picture(), picture((9000, 9000), mode="1")
    files = [("content", ("c.png", small)), ("style", ("s.png", picture(seed=1)))]

    def job(options=None, styles=None, **extra):
        parts = [("content", ("c.png", small))] + [("style", (f"s{i}.png", s)) for i, s in enumerate(styles or [small])]
        return dict(method="POST", url="/api/jobs", files=parts, data={"options": json.dumps(options or {})}, **extra)

    return [
        ("huge 1-bit styles", job(styles=[big] * 4)),
        ("a million scales", job({"scales": 10**6})),
        ("style_scale 1e6", job({"style_scale": 1e6})),
        ("style_scale 100", job({"style_scale": 100, "size": 512})),
        ("threads", job({"threads": 7})),
        ("another model", job({"model": "vgg16"})),
        ("precision", job({"precision": "bf16"})),
        ("queue filler", job({"iterations": 1})),
        ("foreign origin", job(headers={"origin": "http://evil.example"})),
        ("foreign host", dict(method="GET", url="/api/options", headers={"host": "evil.example"})),
        ("nested options", dict(method="POST", url="/api/jobs", files=files, data={"options": "[" * 100_000})),
        ("options as a file", dict(method="POST", url="/api/jobs", files=files + [("options", ("o.json", b"{}"))])),
        ("seed -1", job({"seed": -1})),
    ]


def rss(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(models_dir, model, results_dir, python_path=None, timeout=120):
    port = free_port()
    env = dict(os.environ)
    if python_path:
        env["PYTHONPATH"] = python_path
    process = subprocess.Popen([sys.executable, "-m", "nst_rt", "serve", "--port", str(port), "--models-dir",
                                str(models_dir), "--model", model, "--results-dir", str(results_dir)],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    end = time.monotonic() + timeout
    while True:
        try:
            httpx.get(url + "/api/options", timeout=5)
            return process, url
        except httpx.TransportError:
            if process.poll() is not None or time.monotonic() > end:
                process.kill()
                raise RuntimeError(f"the server did not start: {process.stderr.read()}")
            time.sleep(0.2)


def end_server(process) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_status(client, job_id, seconds, until=("done", "stopped", "failed")):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        status = client.get(f"/api/jobs/{job_id}").json()["status"]
        if status in until:
            return status
        time.sleep(0.05)
    return None


def hostile_load(url, pid, requests=300, seconds=120, ceiling=6 << 30) -> dict:
    """Post a normal job, send up to ``requests`` hostile requests within ``seconds`` from 4 threads; return the
    answers' statuses, the server's peak RSS, and the normal job's final status (None if it never ended)."""
    client = httpx.Client(base_url=url, timeout=60)
    normal = client.post("/api/jobs", files=[("content", ("c.png", picture())), ("style", ("s.png", picture(seed=1)))],
                         data={"options": json.dumps({"size": 48, "iterations": 20})})
    statuses, killed, stop = Counter({f"normal {normal.status_code}": 1}), [], threading.Event()

    def watchdog():
        while not stop.is_set():
            try:
                if rss(pid, "VmRSS") > ceiling:
                    os.kill(pid, signal.SIGKILL)
                    killed.append(True)
                    return
            except OSError:
                return
            time.sleep(0.05)

    guard = threading.Thread(target=watchdog, daemon=True)
    guard.start()
    kinds, end = itertools.cycle(hostile_requests()), time.monotonic() + seconds
    lock = threading.Lock()

    def one(_):
        if time.monotonic() > end or killed:
            return
        with lock:
            name, request = next(kinds)
        try:
            answer = client.request(**request)
            statuses[answer.status_code] += 1
        except httpx.HTTPError as exc:
            statuses[type(exc).__name__] += 1

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(one, range(requests)))
    peak = rss(pid, "VmHWM") if not killed else ceiling
    finished = None if killed else wait_status(client, normal.json()["id"], 120) if normal.status_code == 201 else None
    if not killed:
        peak = max(peak, rss(pid, "VmHWM"))
    stop.set()
    return {"statuses": dict(statuses), "peak_rss": peak, "killed_at_ceiling": bool(killed), "normal": finished}


def delete_during_setup(url, size=2048) -> float | None:
    """Seconds from DELETE to the job's stop, for a job deleted while it is still in setup (no iterate yet)."""
    client = httpx.Client(base_url=url, timeout=60)
    big = gradient((4000, 3000))
    job = client.post("/api/jobs", files=[("content", ("c.png", big)), ("style", ("s.png", big))],
                      data={"options": json.dumps({"size": size, "iterations": 10})})
    if job.status_code != 201:
        return None
    job_id = job.json()["id"]
    while client.get(f"/api/jobs/{job_id}").json()["status"] == "queued":
        time.sleep(0.02)
    time.sleep(0.5)  # into the setup: decoding, colour, schedule, memory plan, resizes, targets
    started = time.perf_counter()
    client.delete(f"/api/jobs/{job_id}")
    return time.perf_counter() - started if wait_status(client, job_id, 600) else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models-dir", required=True)
    parser.add_argument("--model", default="vgg19")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--rss-ceiling-gb", type=float, default=6.0)
    parser.add_argument("--python-path", help="run the server from another checkout (e.g. an older commit)")
    parser.add_argument("--results-dir", default="/tmp/nst-rt-serve-hostile")
    args = parser.parse_args()
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor())
    print(f"CPU: {cpu}, {os.cpu_count()} cores")
    process, url = start_server(args.models_dir, args.model, args.results_dir, args.python_path)
    try:
        result = hostile_load(url, process.pid, args.requests, args.seconds, int(args.rss_ceiling_gb * (1 << 30)))
        print(f"hostile load: answers {result['statuses']}; normal job: {result['normal']}; peak RSS "
              f"{result['peak_rss'] / 2**30:.2f} GiB" + (" (killed at the ceiling)" if result["killed_at_ceiling"] else ""))
    finally:
        end_server(process)
    process, url = start_server(args.models_dir, args.model, args.results_dir, args.python_path)
    try:
        seconds = delete_during_setup(url)
        print(f"DELETE during setup (4000x3000 content and style, size 2048): stopped after "
              f"{'never (600 s)' if seconds is None else f'{seconds:.2f} s'}")
    finally:
        end_server(process)


if __name__ == "__main__":
    main()
