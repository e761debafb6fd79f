"""--precision auto on OpenVINO decided by a timed probe, cached per machine (faked timer, flags and cache)."""

from __future__ import annotations

import sys
import json

import pytest

from nst_rt.network import probe
from nst_rt.network.precision import choose_precision


def fake_timer(durations):
    """A perf_counter whose successive start/stop pairs are ``durations`` apart."""
    clock, ticks = [0.0], []
    for d in durations:
        ticks += [clock[0], clock[0] + d]
        clock[0] += d + 1
    it = iter(ticks)
    return lambda: next(it)


def test_measure_takes_the_interleaved_medians():
    calls = []
    passes = {"fp32": lambda: calls.append("fp32"), "bf16": lambda: calls.append("bf16")}
    # interleaved fp32, bf16 per repeat; one outlier per precision does not move the median
    times = probe.measure(passes, repeats=3, timer=fake_timer([1.0, 0.5, 9.0, 0.4, 1.2, 7.0]))
    assert times == pytest.approx({"fp32": 1.2, "bf16": 0.5})
    assert calls == ["fp32", "bf16"] * 4  # one warm-up each, then 3 interleaved repeats


@pytest.mark.parametrize("fp32_s,bf16_s,expected", [(1.0, 0.79, "bf16"), (1.0, 0.81, "fp32"), (1.0, 1.3, "fp32")])
def test_bf16_is_kept_only_when_at_least_1_25x_faster(fp32_s, bf16_s, expected):
    assert probe.decide(fp32_s, bf16_s)["precision"] == expected


def test_the_decision_is_cached_per_machine_and_probed_once(tmp_path):
    path, runs = tmp_path / "precision.json", []

    def fake_probe(model, threads):
        runs.append(model)
        return probe.decide(1.0, 0.5)

    first, probed = probe.auto_precision("m", path=path, run_probe=fake_probe)
    again, probed_again = probe.auto_precision("m", path=path, run_probe=fake_probe)
    assert (first["precision"], probed, probed_again, again, runs) == ("bf16", True, False, first, ["m"])
    assert probe.machine_key() in json.loads(path.read_text())
    assert "onnxruntime-openvino" in probe.machine_key() and "cores" in probe.machine_key()


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", '{"KEY": {"precision": "fp16"}}', '{"KEY": 3}', ""])
def test_a_corrupt_cache_is_ignored_and_redone(tmp_path, content):
    path = tmp_path / "precision.json"
    path.write_text(content.replace("KEY", probe.machine_key()))
    entry, probed = probe.auto_precision("m", path=path, run_probe=lambda m, t: probe.decide(1.0, 0.9))
    assert probed and entry["precision"] == "fp32"
    assert probe.load_cached(probe.machine_key(), path) == entry


def test_another_machine_key_is_not_reused(tmp_path):
    path = tmp_path / "precision.json"
    probe.store("Other CPU | 64 cores | onnxruntime-openvino 1.0", probe.decide(1.0, 0.1), path)
    entry, probed = probe.auto_precision("m", path=path, run_probe=lambda m, t: probe.decide(1.0, 1.0))
    assert probed and entry["precision"] == "fp32"


def test_cache_path_follows_xdg_cache_home(monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert probe.cache_path() == tmp_path / "nst-rt" / "precision.json"


def test_cpu_model_is_read_from_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: Fake Xeon 9999\nflags\t\t: amx_bf16\n")
    assert probe.cpu_model(str(info)) == "Fake Xeon 9999"


def test_no_probe_on_the_cpu_provider_whatever_the_flags(tmp_path, monkeypatch, vgg19):
    info = tmp_path / "cpuinfo"
    info.write_text("model name\t: Fake\nflags\t\t: avx512_bf16 amx_bf16\n")
    monkeypatch.setattr(probe, "auto_precision", lambda *a, **k: pytest.fail("probed on the CPU provider"))
    assert choose_precision("auto", "cpu", str(info))[0] == "fp32"
    from nst_rt.network.session import Network

    assert Network(vgg19, "cpu").precision == "fp32"


def test_info_shows_the_cached_decision_and_its_path_and_redoes_a_corrupt_one(models, tmp_path, monkeypatch):
    import onnxruntime as ort
    from cli_helpers import invoke

    if "OpenVINOExecutionProvider" not in ort.get_available_providers():
        pytest.skip("onnxruntime-openvino is not installed")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    path = tmp_path / "nst-rt" / "precision.json"
    probe.store(probe.machine_key(), probe.decide(0.9, 0.3), path)
    result = invoke("info", "--models-dir", models)
    assert result.exit_code == 0 and "openvino provider, bf16" in result.output
    assert str(path) in result.output and "3.00x" in result.output and "300 ms" in result.output
    path.write_text("{corrupt")
    result = invoke("info", "--models-dir", models)
    assert result.exit_code == 0 and "probed now" in result.output
    assert probe.load_cached(probe.machine_key(), path) is not None
