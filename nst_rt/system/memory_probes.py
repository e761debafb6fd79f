"""How much memory this process can get: the system's MemAvailable, its cgroup's limit less usage, and a CUDA
device's free memory. Read-only probes of the machine, no estimates (those are in nst_rt.pipeline.memory)."""

from __future__ import annotations

import ctypes
import os
from pathlib import Path


def available_bytes(meminfo="/proc/meminfo", cgroup_root="/sys/fs/cgroup", self_cgroup="/proc/self/cgroup") -> int | None:
    """Memory this process can get without swapping or being killed: the smaller of the system's
    MemAvailable and what its cgroup limits leave; None where neither is known."""
    known = [n for n in (_meminfo_available(meminfo), cgroup_available_bytes(cgroup_root, self_cgroup)) if n is not None]
    return min(known) if known else None


def _meminfo_available(meminfo) -> int | None:
    try:
        with open(meminfo) as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


# cgroup v2 files, then v1 (under the "memory" controller's own mount): limit, usage, stat key of reclaimable cache.
_CGROUP_FILES = (("", "memory.max", "memory.current", "inactive_file"),
                 ("memory", "memory.limit_in_bytes", "memory.usage_in_bytes", "total_inactive_file"))
_UNLIMITED = 1 << 60  # v1 writes "no limit" as a number near 2^63


def cgroup_available_bytes(root="/sys/fs/cgroup", self_cgroup="/proc/self/cgroup") -> int | None:
    """The tightest of (limit - usage + reclaimable page cache) over this process's memory cgroup and its
    ancestors, v2 or v1; None where no limit is set or the files cannot be read."""
    paths = _cgroup_paths(self_cgroup)
    best = None
    for subdir, limit_name, usage_name, inactive_key in _CGROUP_FILES:
        relative = paths.get(subdir)
        base = Path(root, subdir) if subdir else Path(root)
        if relative is None or not base.is_dir():
            continue
        # In a container the cgroup namespace makes the process's own cgroup the mount's root.
        parts = [p for p in relative.strip("/").split("/") if p]
        for depth in range(len(parts), -1, -1):
            directory = base.joinpath(*parts[:depth])
            limit = _read_int(directory / limit_name)
            if limit is None or limit >= _UNLIMITED:
                continue
            usage = _read_int(directory / usage_name) or 0
            left = max(0, limit - usage + _stat_value(directory / "memory.stat", inactive_key))
            best = left if best is None else min(best, left)
    return best


def _cgroup_paths(self_cgroup) -> dict:
    """This process's cgroup path per hierarchy: "" for v2, "memory" for the v1 memory controller."""
    paths = {}
    try:
        with open(self_cgroup) as handle:
            for line in handle:
                fields = line.rstrip("\n").split(":", 2)
                if len(fields) != 3:
                    continue
                if fields[0] == "0" and fields[1] == "":
                    paths[""] = fields[2]
                elif "memory" in fields[1].split(","):
                    paths["memory"] = fields[2]
    except OSError:
        pass
    return paths


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
        return None if text == "max" else int(text)
    except (OSError, ValueError):
        return None


def _stat_value(path: Path, key: str) -> int:
    try:
        for line in path.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == key:
                return int(value)
    except (OSError, ValueError):
        pass
    return 0


_CUDART = ("libcudart.so", "libcudart.so.12", "libcudart.so.13", "libcudart.so.11.0")


def device_free_bytes(device_id: int = 0) -> int | None:
    """Free memory of CUDA device ``device_id`` (cudaMemGetInfo through the CUDA runtime), or None where
    the runtime cannot be loaded or asked. onnxruntime's CUDA provider has loaded the runtime already."""
    for name in _CUDART:
        try:
            cudart = ctypes.CDLL(name)
        except OSError:
            continue
        free, total = ctypes.c_size_t(), ctypes.c_size_t()
        try:
            if cudart.cudaSetDevice(ctypes.c_int(device_id)) != 0:
                return None
            if cudart.cudaMemGetInfo(ctypes.byref(free), ctypes.byref(total)) != 0:
                return None
        except AttributeError:
            continue
        return int(free.value)
    return None
