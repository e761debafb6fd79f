"""A bf16 scale that goes on in fp32 (nst_rt/pipeline/precision_switch.py): when, and that nothing is lost.

bf16 needs OpenVINO; here a CPU-provider network stands in for it, marked bf16 and, where the test needs
bf16's noise, with its activations rounded to bf16 (8 significant bits) as OpenVINO's would be.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from nst_rt.network.session import CPU, OPENVINO
from nst_rt.optimize import LINE_SEARCH_FAILED, minimize
from nst_rt.pipeline import precision_switch
from nst_rt.pipeline.precision_switch import ScaleRun, SwitchPolicy
from nst_rt.pipeline.stylizer import Stylizer
from stylize_helpers import CONTENT, STYLE


def to_bf16(array: np.ndarray) -> None:
    """Round float32 ``array`` in place to bf16's 8 significant bits (to nearest, ties away: close enough)."""
    bits = array.view(np.uint32)
    bits += np.uint32(0x8000)
    bits &= np.uint32(0xFFFF0000)


class StandIn:
    """A network marked ``precision`` that counts its passes; ``noisy`` rounds its activations to bf16. It reports
    OpenVINO's providers, as a bf16 network does: the objectives then take its two graphs, whose passes count."""

    def __init__(self, network, precision: str, noisy: bool = False):
        self._network, self.precision, self.noisy, self.passes = network, precision, noisy, 0
        self.providers = [OPENVINO, CPU]

    def __getattr__(self, name):
        return getattr(self._network, name)

    def forward(self, image, layers=None):
        self.passes += 1
        acts = self._network.forward(image, layers)
        if self.noisy:
            for array in acts.values():
                to_bf16(array)
        return acts


def stylizer_on(models, policy: SwitchPolicy = precision_switch.DEFAULT_POLICY, precision: str = "bf16",
                **options) -> tuple[Stylizer, StandIn, StandIn]:
    """A Stylizer whose network is a noisy stand-in marked ``precision``, with a counting fp32 one to switch to."""
    stylizer = Stylizer(**{"models_dir": models, "size": 32, "threads": 1, **options})
    real = stylizer.network
    bf16, fp32 = StandIn(real, precision, noisy=True), StandIn(real, "fp32")
    stylizer.network, stylizer._fp32, stylizer.switch_policy = bf16, fp32, policy
    return stylizer, bf16, fp32


def test_a_bf16_scale_whose_line_searches_struggle_goes_on_in_fp32_for_the_iterations_left(models):
    # A threshold any line search's second evaluation crosses: the switch is then certain within the window.
    stylizer, bf16, fp32 = stylizer_on(models, policy=SwitchPolicy(window=2, struggle=1.0), iterations=12)
    seen = []
    result = stylizer.run(CONTENT, STYLE, progress=lambda p: seen.append((p.iteration, p.precision)))
    assert result.iterations == 12 and not result.stopped_early
    (at, why), = result.fp32_from.values()
    assert 2 <= at < 12 and "evaluations per iteration" in why
    assert bf16.passes > 0 and fp32.passes > 0
    assert [p for i, p in seen if 0 < i <= at] == ["bf16"] * at
    assert [p for i, p in seen if i > at] == ["fp32"] * (12 - at)
    assert result.evaluations == bf16.passes + fp32.passes  # every evaluation counted once, the switch's too


def test_going_on_in_fp32_keeps_the_optimiser_s_memory_so_that_the_run_is_that_of_fp32_throughout(models):
    """With a bf16 stand-in that computes exactly what fp32 does, a run that switches half way ends at the very
    point of a run that never switched: the state (iterate, memory, counts) carries over whole."""
    plain, _, _ = stylizer_on(models, policy=SwitchPolicy.never(), iterations=10)
    plain.network.noisy = False
    expected = plain.run(CONTENT, STYLE)
    switching, bf16, _ = stylizer_on(models, policy=SwitchPolicy(finish_fp32=5), iterations=10)
    bf16.noisy = False
    result = switching.run(CONTENT, STYLE)
    assert list(result.fp32_from.values()) == [(5, "the last iterations run in fp32")]
    np.testing.assert_array_equal(result.image, expected.image)
    assert result.loss == expected.loss
    assert result.evaluations == expected.evaluations + 1  # the switch point's loss, again on the fp32 network


def test_finishing_in_fp32_applies_to_the_last_scale_only(models):
    stylizer, bf16, fp32 = stylizer_on(models, policy=SwitchPolicy(struggle=math.inf, finish_fp32=3),
                                       size=64, scales=2, iterations=6)
    result = stylizer.run(CONTENT, STYLE)
    assert result.fp32_from == {2: (3, "the last iterations run in fp32")}


def test_a_finish_longer_than_the_last_scale_runs_it_all_in_fp32(models):
    stylizer, bf16, fp32 = stylizer_on(models, policy=SwitchPolicy(struggle=math.inf, finish_fp32=50),
                                       iterations=6)
    result = stylizer.run(CONTENT, STYLE)
    assert result.fp32_from == {1: (0, "the last iterations run in fp32")}
    assert bf16.passes == 0 and fp32.passes == result.evaluations
    assert result.iterations == 6


def test_fp32_runs_and_adam_are_never_switched(models):
    stylizer, _, fp32 = stylizer_on(models, SwitchPolicy(window=1, struggle=0.0), precision="fp32", iterations=4)
    assert stylizer.run(CONTENT, STYLE).fp32_from == {} and fp32.passes == 0
    stylizer, bf16, fp32 = stylizer_on(models, policy=SwitchPolicy(window=1, struggle=0.0, finish_fp32=2),
                                       iterations=4, optimizer="adam")
    assert stylizer.run(CONTENT, STYLE).fp32_from == {} and fp32.passes == 0


class Quadratic:
    """1 + sum((x - 1)^2 * scales), its value rounded to bf16 when ``noisy``: a toy objective for one ScaleRun.
    Its minimum 1 is far above bf16's resolution there (2^-7), as an image objective's is."""

    def __init__(self, noisy: bool):
        self.noisy, self.evaluations = noisy, 0
        self.scales = np.linspace(1.0, 50.0, 16).reshape(1, 16)

    def __call__(self, x, out=None):
        self.evaluations += 1
        r = x - 1.0
        f = 1.0 + float(np.sum(self.scales * r * r))
        if self.noisy:
            f = _bf16_value(f)
        return f, 2 * self.scales * r


def _bf16_value(f: float) -> float:
    value = np.array([f], np.float32)
    to_bf16(value)
    return float(value[0])


@pytest.mark.parametrize("keep_memory", [True, False])
def test_a_bf16_line_search_that_finds_no_lower_point_goes_on_in_fp32(keep_memory):
    network = type("Net", (), {"precision": "bf16"})()
    run = ScaleRun(lambda net: Quadratic(noisy=net is network), network, lambda: "fp32 network",
                   SwitchPolicy(struggle=math.inf, keep_memory=keep_memory), iterations=200, history=10,
                   last_scale=True)
    results = []

    def minimize_once(objective, callback, resume):
        results.append(minimize(objective, np.zeros((1, 16)), options={"maxiter": 200, "maxcor": 10, "gtol": 0.0,
                                                                       "ftol": 0.0, "maxfun": None},
                                callback=callback, resume=resume))
        return results[-1]

    result = run.run(minimize_once, lambda objective: lambda state: None)
    bf16_end, fp32_end = results
    assert bf16_end.reason == LINE_SEARCH_FAILED
    assert run.switched_at == bf16_end.nit and "no lower point" in run.reason
    assert result is fp32_end and fp32_end.nit > bf16_end.nit
    exact_at_bf16_end = Quadratic(noisy=False)(bf16_end.x)[0]
    assert fp32_end.fun - 1 < 1e-3 * (exact_at_bf16_end - 1)  # fp32 goes on well below where bf16's rounding stopped
    assert run.evaluations == fp32_end.nfev  # counted across both objectives (nfev goes on from bf16's)
