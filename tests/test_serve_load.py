"""``nst-rt serve`` as a process under a bounded hostile load (benchmarks/serve_hostile.py: a few hundred of the
requests docs/serve.md's limits refuse, from 4 threads, on 127.0.0.1, within a time limit) while a normal job
runs: the job finishes, every answer is a 4xx or a 201, and the server's peak RSS stays under a bound."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("uvicorn")
pytest.importorskip("httpx2")

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "serve_hostile.py"
PEAK_RSS_BOUND = 1 << 30  # the loaded VGG-19, a small run and the refused requests' buffers: 0.5 GiB measured (docs/serve.md)


def load_script():
    spec = importlib.util.spec_from_file_location("serve_hostile", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_hostile_load_costs_nothing_but_refusals(models_dir, tmp_path):
    script = load_script()
    process, url = script.start_server(models_dir(), "vgg19", tmp_path / "results")
    try:
        result = script.hostile_load(url, process.pid, requests=200, seconds=90, ceiling=4 << 30)
    finally:
        script.end_server(process)

    assert not result["killed_at_ceiling"], result
    assert result["normal"] == "done", result
    statuses = result["statuses"]
    assert statuses.pop("normal 201") == 1
    assert sum(statuses.values()) == 200 and all(isinstance(s, int) and (s == 201 or 400 <= s < 500)
                                                 for s in statuses), statuses
    assert {400, 403, 413} <= set(statuses), statuses  # the refusals happened
    assert result["peak_rss"] < PEAK_RSS_BOUND, result
