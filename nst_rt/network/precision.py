"""Which arithmetic the OpenVINO execution provider runs in: fp32, or bf16 where the CPU has it.

bf16 halves the width of every multiply; on CPUs with AMX it runs the convolutions faster, and the image
gradient differs from fp32 by a few percent (relative L2) while the result looks the same. With AVX512_BF16
alone (no AMX) OpenVINO's bf16 pass measured slower than the CPU provider's fp32 on one Intel CPU (the
figures are in docs/openvino.md), so ``auto`` asks for AMX. The CPU and CUDA providers run fp32 only.
"""

from __future__ import annotations

from ..errors import OptionError

PRECISIONS = ("auto", "fp32", "bf16")
BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # /proc/cpuinfo flags of CPUs with native bf16 arithmetic
FAST_BF16_FLAG = "amx_bf16"  # where bf16 was measured faster than fp32
OPENVINO_HINT = {"fp32": "f32", "bf16": "bf16"}  # OpenVINO's INFERENCE_PRECISION_HINT values


def cpu_bf16_flags(cpuinfo: str = "/proc/cpuinfo") -> list[str]:
    """The bf16 flags the CPU reports (empty where none, or where /proc/cpuinfo cannot be read)."""
    try:
        with open(cpuinfo) as handle:
            for line in handle:
                if line.startswith("flags"):
                    flags = set(line.partition(":")[2].split())
                    return [f for f in BF16_FLAGS if f in flags]
    except OSError:
        pass
    return []


def choose_precision(precision: str, provider: str, cpuinfo: str = "/proc/cpuinfo") -> tuple[str, str]:
    """``(fp32 or bf16, why)`` for a run on ``provider`` (the resolved one: cpu, cuda or openvino)."""
    if precision not in PRECISIONS:
        raise OptionError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    if provider != "openvino":
        if precision == "bf16":
            raise OptionError(f"bf16 runs on the OpenVINO provider only, not on {provider}; install 'nst-rt[openvino]' "
                              f"and use --provider openvino, or --precision fp32")
        amx = provider == "cpu" and FAST_BF16_FLAG in cpu_bf16_flags(cpuinfo)
        hint = f"; this CPU has {FAST_BF16_FLAG}: with 'nst-rt[openvino]' it would run bf16" if amx else ""
        return "fp32", f"the {provider} provider runs fp32{hint}"
    if precision != "auto":
        return precision, f"--precision {precision}"
    flags = cpu_bf16_flags(cpuinfo)
    if FAST_BF16_FLAG in flags:
        return "bf16", f"the CPU has {FAST_BF16_FLAG} (AMX)"
    if flags:
        return "fp32", f"the CPU has {flags[0]} but no AMX, where bf16 measured slower than fp32"
    return "fp32", "the CPU has no bf16 arithmetic (no avx512_bf16 or amx_bf16 flag)"
