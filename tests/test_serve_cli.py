"""``nst-rt serve`` as a real process: Ctrl-C (SIGINT) or SIGTERM stop the running job, keep its best image in
the results directory and end the server cleanly; its start-up errors and its warning are one line."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx2")
from PIL import Image  # noqa: E402

from cli_helpers import assert_one_error_line, invoke, subprocess_env  # noqa: E402
from nst_rt.cli.serve import exposure_warning  # noqa: E402
from serve_helpers import LONG, png  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def until_up(url: str, process: subprocess.Popen, timeout=120) -> None:
    end = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url + "api/options"):
                return
        except (urllib.error.URLError, ConnectionError):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < end, "the server did not start"
            time.sleep(0.1)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_stop_signal_keeps_the_running_jobs_best_image_and_ends_cleanly(signum, models_dir, tmp_path):
    port, results = free_port(), tmp_path / "results"
    url = f"http://127.0.0.1:{port}/"
    process = subprocess.Popen([sys.executable, "-m", "nst_rt", "serve", "--port", str(port), "--models-dir",
                                str(models_dir()), "--model", "vgg19", "--results-dir", str(results)],
                               env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        until_up(url, process)
        files = [("content", ("c.png", png(0))), ("style", ("s.png", png(1)))]
        running = httpx.post(url + "api/jobs", files=files, data={"options": json.dumps(LONG)}).json()
        queued = httpx.post(url + "api/jobs", files=files, data={"options": "{}"}).json()
        while not httpx.get(f"{url}api/jobs/{running['id']}").json()["iteration"]:
            assert process.poll() is None
            time.sleep(0.05)
        process.send_signal(signum)
        out, err = process.communicate(timeout=120)  # a hang guard
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert "Traceback" not in err and out == ""
    assert err.splitlines()[-1] == f"nst-rt: serve stopped by {signal.Signals(signum).name}; results in {results}"
    with Image.open(results / running["id"] / "result.png") as kept:
        assert kept.size == (48, 40)
    assert not (results / queued["id"]).exists()  # a queued job is dropped, not run
    assert sorted(p.name for p in results.iterdir()) == [running["id"]]  # no upload left behind


def test_start_up_errors_are_one_line(models_dir, tmp_path):
    common = ["serve", "--models-dir", models_dir(), "--model", "vgg19"]
    assert_one_error_line(invoke(*common, "--examples-dir", tmp_path / "none"), "does not exist")
    assert_one_error_line(invoke(*common, "--examples-dir", tmp_path), "neither a content/ nor a style/")
    assert_one_error_line(invoke(*common, "--keep", "0"), "keep must be a whole number >= 1")
    assert_one_error_line(invoke(*common, "--max-upload-mb", "0"), "max-upload-mb must be a whole number >= 1")
    assert_one_error_line(invoke(*common, "--max-queue", "0"), "max-queue must be a number > 0")
    assert_one_error_line(invoke(*common, "--threads", "100000"), "threads must be a whole number from 1 to 1024")
    assert_one_error_line(invoke("serve", "--models-dir", tmp_path, "--model", "vgg19"), "vgg19")


@pytest.mark.parametrize("host, warned", [("127.0.0.1", False), ("localhost", False), ("::1", False),
                                          ("0.0.0.0", True), ("192.168.1.20", True), ("::", True),
                                          ("myhost.example", True)])
def test_a_warning_when_it_listens_beyond_the_machine(host, warned):
    warning = exposure_warning(host)
    assert (warning is not None) == warned
    if warned:
        assert warning.startswith("nst-rt: warning: ") and host in warning and "no authentication" in warning
