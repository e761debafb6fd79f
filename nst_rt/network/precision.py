"""Which arithmetic the OpenVINO execution provider runs in: fp32, or bf16 where the CPU has it and it is faster.

bf16 halves the width of every multiply. Whether that is faster depends on more than the CPU's flags: with AMX
and on AMD's avx512_bf16 it was, on an Intel Xeon with avx512_bf16 and no AMX it was slower (the figures are in
docs/openvino.md). So on OpenVINO ``auto`` is decided by a timed probe (:mod:`nst_rt.network.probe`) wherever the
CPU has bf16 arithmetic at all, and is fp32 without probing where it has none. The CPU provider runs fp32 only;
its reason says whether 'nst-rt[openvino]' would be faster on this CPU. CUDA runs fp32, or TF32 convolutions
when asked for (``tf32``): not ``auto``'s choice, since a whole TF32 run has not been measured against fp32.
"""

from __future__ import annotations

from ..errors import OptionError

PRECISIONS = ("auto", "fp32", "bf16", "tf32")
# Arithmetic that a scale leaves for fp32 once its line searches struggle (pipeline/precision_switch.py).
REDUCED = ("bf16", "tf32")
BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # /proc/cpuinfo flags of CPUs with native bf16 arithmetic
OPENVINO_HINT = {"fp32": "f32", "bf16": "bf16"}  # OpenVINO's INFERENCE_PRECISION_HINT values

# What OpenVINO bf16 measured against the CPU provider's fp32, per CPU vendor and its best bf16 flag (most
# specific first): (vendor_id, flag, faster, where and what was measured). docs/openvino.md has the tables.
MEASURED = (
    ("GenuineIntel", "amx_bf16", True, "an Intel Xeon with AMX ran a 512 px VGG-16 pass in 0.46x the time"),
    ("AuthenticAMD", "avx512_bf16", True, "an AMD EPYC with avx512_bf16 ran a 512 px run in 0.59x the time"),
    ("GenuineIntel", "avx512_bf16", False, "an Intel Xeon with avx512_bf16 and no AMX ran bf16 passes in "
                                           "1.6-1.95x the time"),
)
# OpenVINO's fp32 runs the same oneDNN avx512 convolutions with or without bf16 hardware: measured 0.95-1.20x.
NO_BF16 = ("the CPU has no bf16 arithmetic, and OpenVINO's fp32 passes took 0.95-1.20x the CPU provider's "
           "time where measured")


def read_cpuinfo(cpuinfo: str = "/proc/cpuinfo") -> tuple[str, set[str]]:
    """``(vendor_id, flags)`` of the first CPU in ``cpuinfo`` (empty where it cannot be read)."""
    vendor, flags = "", set()
    try:
        with open(cpuinfo) as handle:
            for line in handle:
                key, _, value = line.partition(":")
                if key.strip() == "vendor_id" and not vendor:
                    vendor = value.strip()
                elif key.strip() == "flags":
                    flags = set(value.split())
                    break
    except OSError:
        pass
    return vendor, flags


def cpu_bf16_flags(cpuinfo: str = "/proc/cpuinfo") -> list[str]:
    """The bf16 flags the CPU reports (empty where none, or where /proc/cpuinfo cannot be read)."""
    flags = read_cpuinfo(cpuinfo)[1]
    return [f for f in BF16_FLAGS if f in flags]


def openvino_advice(cpuinfo: str = "/proc/cpuinfo") -> str:
    """Whether 'nst-rt[openvino]' would run faster than the CPU provider on this CPU, from what was measured."""
    vendor, flags = read_cpuinfo(cpuinfo)
    if not any(f in flags for f in BF16_FLAGS):
        return f"'nst-rt[openvino]' would not be faster here: {NO_BF16}"
    for known_vendor, flag, faster, measured in MEASURED:
        if vendor == known_vendor and flag in flags:
            verdict = "would likely be faster here in bf16" if faster else "would not be faster here"
            return f"'nst-rt[openvino]' {verdict} ({measured} of the CPU provider's fp32)"
    return ("this CPU has bf16 arithmetic: with 'nst-rt[openvino]', `nst-rt info --probe` measures whether bf16 "
            "is faster here")


def choose_precision(precision: str, provider: str, cpuinfo: str = "/proc/cpuinfo") -> tuple[str, str]:
    """``(fp32 or bf16, why)`` for a run on ``provider`` (the resolved one: cpu, cuda or openvino). On OpenVINO
    ``auto`` with bf16 arithmetic gives fp32 here and ``needs_probe`` is true: the probe decides."""
    if precision not in PRECISIONS:
        raise OptionError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    if precision == "tf32":
        if provider != "cuda":
            raise OptionError(f"tf32 runs on the CUDA provider only, not on {provider}; use --provider cuda, or "
                              f"--precision fp32")
        return "tf32", "--precision tf32 (TF32 convolutions; a struggling scale goes on in fp32)"
    if provider != "openvino":
        if precision == "bf16":
            raise OptionError(f"bf16 runs on the OpenVINO provider only, not on {provider}; install 'nst-rt[openvino]' "
                              f"and use --provider openvino, or --precision fp32")
        advice = f"; {openvino_advice(cpuinfo)}" if provider == "cpu" else ""
        return "fp32", f"the {provider} provider runs fp32{advice}"
    if precision != "auto":
        return precision, f"--precision {precision}"
    if not cpu_bf16_flags(cpuinfo):
        return "fp32", "the CPU has no bf16 arithmetic (no avx512_bf16 or amx_bf16 flag): nothing to measure"
    return "fp32", "bf16 not measured yet"


def needs_probe(precision: str, provider: str, cpuinfo: str = "/proc/cpuinfo") -> bool:
    """Whether ``auto`` on ``provider`` is decided by timing bf16 against fp32: on OpenVINO, where bf16 exists."""
    return precision == "auto" and provider == "openvino" and bool(cpu_bf16_flags(cpuinfo))
