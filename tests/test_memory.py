"""Tests for nst_rt.pipeline.memory: the memory available inside a container (cgroup v2 and v1) and the estimate."""

from __future__ import annotations

from pathlib import Path

import pytest

from nst_rt.pipeline import memory
from nst_rt.system import memory_probes

GIB = 1 << 30


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.fixture
def proc(tmp_path):
    """A fake /proc/meminfo with 16 GiB available, and a fake /proc/self/cgroup writer."""
    meminfo = tmp_path / "meminfo"
    _write(meminfo, f"MemTotal: {32 * GIB // 1024} kB\nMemFree: 1000 kB\nMemAvailable: {16 * GIB // 1024} kB\n")

    def cgroup(text: str) -> Path:
        path = tmp_path / "self_cgroup"
        _write(path, text)
        return path

    return meminfo, cgroup


def test_cgroup_v2_limit_below_meminfo(tmp_path, proc):
    meminfo, cgroup = proc
    root = tmp_path / "cg"
    _write(root / "app" / "memory.max", str(4 * GIB))
    _write(root / "app" / "memory.current", str(3 * GIB))
    _write(root / "app" / "memory.stat", f"anon 100\ninactive_file {GIB // 2}\nactive_file 7\n")
    self_cgroup = cgroup("0::/app\n")
    assert memory_probes.cgroup_available_bytes(root, self_cgroup) == GIB + GIB // 2
    assert memory_probes.available_bytes(meminfo, root, self_cgroup) == GIB + GIB // 2


def test_cgroup_v2_without_limit_leaves_meminfo(tmp_path, proc):
    meminfo, cgroup = proc
    root = tmp_path / "cg"
    _write(root / "memory.max", "max\n")
    _write(root / "memory.current", str(3 * GIB))
    self_cgroup = cgroup("0::/\n")
    assert memory_probes.cgroup_available_bytes(root, self_cgroup) is None
    assert memory_probes.available_bytes(meminfo, root, self_cgroup) == 16 * GIB


def test_cgroup_v2_parent_limit_counts(tmp_path, proc):
    meminfo, cgroup = proc
    root = tmp_path / "cg"
    _write(root / "jobs" / "memory.max", str(2 * GIB))
    _write(root / "jobs" / "memory.current", str(GIB))
    _write(root / "jobs" / "one" / "memory.max", "max")
    _write(root / "jobs" / "one" / "memory.current", str(GIB // 4))
    assert memory_probes.available_bytes(meminfo, root, cgroup("0::/jobs/one\n")) == GIB


def test_cgroup_v2_namespaced_container_sees_its_limit_at_the_root(tmp_path, proc):
    # Inside a cgroup namespace /proc/self/cgroup says "0::/" and the mount's root is the container's cgroup.
    meminfo, cgroup = proc
    root = tmp_path / "cg"
    _write(root / "memory.max", str(2 * GIB))
    _write(root / "memory.current", str(GIB // 2))
    assert memory_probes.available_bytes(meminfo, root, cgroup("0::/\n")) == GIB + GIB // 2


def test_cgroup_v1_limit(tmp_path, proc):
    meminfo, cgroup = proc
    root = tmp_path / "cg"
    _write(root / "memory" / "docker" / "abc" / "memory.limit_in_bytes", str(8 * GIB))
    _write(root / "memory" / "docker" / "abc" / "memory.usage_in_bytes", str(7 * GIB))
    _write(root / "memory" / "docker" / "abc" / "memory.stat", f"cache 5\ntotal_inactive_file {GIB}\n")
    _write(root / "memory" / "memory.limit_in_bytes", "9223372036854771712")  # v1's "unlimited"
    self_cgroup = cgroup("5:cpu,cpuacct:/docker/abc\n4:memory:/docker/abc\n1:name=systemd:/docker/abc\n")
    assert memory_probes.available_bytes(meminfo, root, self_cgroup) == 2 * GIB


def test_cgroup_v1_unlimited_leaves_meminfo(tmp_path, proc):
    meminfo, cgroup = proc
    root = tmp_path / "cg"
    _write(root / "memory" / "memory.limit_in_bytes", "9223372036854771712")
    _write(root / "memory" / "memory.usage_in_bytes", str(GIB))
    assert memory_probes.available_bytes(meminfo, root, cgroup("4:memory:/\n")) == 16 * GIB


def test_usage_above_limit_leaves_nothing(tmp_path, proc):
    meminfo, cgroup = proc
    root = tmp_path / "cg"
    _write(root / "memory.max", str(GIB))
    _write(root / "memory.current", str(2 * GIB))
    assert memory_probes.available_bytes(meminfo, root, cgroup("0::/\n")) == 0


def test_nothing_readable(tmp_path):
    missing = tmp_path / "missing"
    assert memory_probes.cgroup_available_bytes(missing, missing) is None
    assert memory.available_bytes(missing, missing, missing) is not None  # falls back to sysconf


class _FakeNetwork:
    layers = ["relu1_1"]
    channels = {"relu1_1": 64}
    device = "cpu"


def test_history_counts_four_bytes_per_element():
    net = _FakeNetwork()
    pixels = 3 * 100 * 80
    grown = memory.estimate_bytes(net, 100, 80, 11) - memory.estimate_bytes(net, 100, 80, 1)
    assert grown == 10 * 2 * pixels * 4  # ten more (s, y) pairs in float32


def test_container_limit_refuses_a_run(monkeypatch, tmp_path, proc):
    meminfo, cgroup = proc
    root = tmp_path / "cg"
    _write(root / "memory.max", str(GIB))
    _write(root / "memory.current", str(GIB // 2))
    self_cgroup = cgroup("0::/\n")
    real = memory.available_bytes
    monkeypatch.setattr(memory, "available_bytes", lambda: real(meminfo, root, self_cgroup))
    net = _FakeNetwork()
    assert memory.check_fits(net, 64, 64, 10) > 0  # small: fits in half a GiB
    with pytest.raises(memory.MemoryLimitError) as excinfo:
        memory.check_fits(net, 4000, 4000, 10)  # fits in 16 GiB of MemAvailable, not in the container
    assert "0.5 GiB is available" in str(excinfo.value)


def test_cuda_checks_the_device_memory(monkeypatch):
    net = _FakeNetwork()
    net.device, net.device_id = "cuda", 3
    asked = []
    monkeypatch.setattr(memory, "device_free_bytes", lambda device_id: asked.append(device_id) or GIB)
    monkeypatch.setattr(memory, "available_bytes", lambda: 64 * GIB)
    memory.check_fits(net, 64, 64, 10)
    with pytest.raises(memory.MemoryLimitError) as excinfo:
        memory.check_fits(net, 1500, 1500, 10)
    assert "GPU memory" in str(excinfo.value) and "1.0 GiB is free" in str(excinfo.value)
    assert asked == [3, 3]


def test_device_free_bytes_without_cuda_is_unknown(monkeypatch):
    monkeypatch.setattr(memory_probes, "_CUDART", ("libcudart-not-here.so",))
    assert memory_probes.device_free_bytes(0) is None


def test_an_optimiser_on_the_gpu_counts_against_the_device_memory(monkeypatch):
    """With the iterate in CuPy the L-BFGS history lives on the GPU: a run whose activations fit there but whose
    history does not is refused untiled (and planned in tiles, whose optimiser stays on the host)."""
    net = _FakeNetwork()
    net.device, net.device_id = "cuda", 0
    monkeypatch.setattr(memory, "available_bytes", lambda: 64 * GIB)
    activations_only = memory.FIXED_BYTES + int(memory.ACTIVATION_FACTOR * memory.activation_bytes(net, 1024, 1024))
    monkeypatch.setattr(memory, "device_free_bytes", lambda device_id: activations_only + GIB)
    memory.check_fits(net, 1024, 1024, 100)  # the history on the host: the device holds the activations
    with pytest.raises(memory.MemoryLimitError, match="of GPU memory .* or a smaller --history"):
        memory.check_fits(net, 1024, 1024, 100, device_optimizer=True)  # 2.4 GiB of pairs more on the device
    assert memory.check_fits(net, 1024, 1024, 3, device_optimizer=True)  # a short history fits beside them
    assert memory.plan(net, 1024, 1024, 100).tile is None
    assert memory.plan(net, 1024, 1024, 100, device_optimizer=True).tile is not None
