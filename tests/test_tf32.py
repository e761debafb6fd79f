"""``--precision tf32``: TF32 convolutions on CUDA, asked for only, with the bf16 runs' go-on-in-fp32 policy.

TF32 needs a CUDA GPU; here the provider settings and the precision choice are checked as they are, and the
policy on a CPU network marked tf32 (with bf16's noise, a stand-in for TF32's 10-bit mantissa).
"""

from __future__ import annotations

import pytest

from nst_rt.errors import OptionError
from nst_rt.network.precision import choose_precision
from nst_rt.network.provider_options import provider_settings
from nst_rt.network.providers import CUDA
from nst_rt.pipeline.precision_switch import SwitchPolicy
from stylize_helpers import CONTENT, STYLE
from test_precision_switch import stylizer_on


def test_tf32_is_asked_for_on_cuda_only_and_never_auto_s_choice():
    assert choose_precision("tf32", "cuda")[0] == "tf32"
    assert choose_precision("auto", "cuda")[0] == "fp32"
    for provider in ("cpu", "openvino"):
        with pytest.raises(OptionError, match="CUDA provider only"):
            choose_precision("tf32", provider)


def test_only_tf32_lets_cuda_convolutions_round_to_tf32():
    assert provider_settings(CUDA, precision="tf32")["use_tf32"] == "1"
    assert provider_settings(CUDA, precision="fp32")["use_tf32"] == "0"


def test_a_tf32_scale_whose_line_searches_struggle_goes_on_in_fp32(models):
    stylizer, tf32, fp32 = stylizer_on(models, policy=SwitchPolicy(window=2, struggle=1.0), precision="tf32",
                                       iterations=12)
    seen = []
    result = stylizer.run(CONTENT, STYLE, progress=lambda p: seen.append((p.iteration, p.precision)))
    (at, why), = result.fp32_from.values()
    assert 2 <= at < 12 and tf32.passes > 0 and fp32.passes > 0
    assert [p for i, p in seen if 0 < i <= at] == ["tf32"] * at
    assert [p for i, p in seen if i > at] == ["fp32"] * (12 - at)
