"""The bf16 -> fp32 switch at its seams: a stop while it happens, a checkpoint on either side of it, a stop
tolerance (ftol) across it. bf16 is stood in for by the noisy CPU network of test_precision_switch."""

from __future__ import annotations

import math
import signal

import numpy as np
import pytest

from cli_helpers import assert_one_notice_line, invoke, paths, pixels, stylize_args  # noqa: F401 (paths: fixture)
from nst_rt.errors import CheckpointError
from nst_rt.optimize import ITERATION_LIMIT, minimize
from nst_rt.pipeline.checkpoint import Checkpoint
from nst_rt.pipeline.precision_switch import ScaleRun, SwitchPolicy
from nst_rt.pipeline.stylizer import Stylizer
from stylize_helpers import CONTENT, STYLE
from test_precision_switch import Quadratic, StandIn, stylizer_on

EVERY_ITERATION = 1e-9  # seconds: a checkpoint at every iteration boundary


def stopped_at(iteration: int, seen: list | None = None):
    def progress(p):
        if seen is not None:
            seen.append((p.iteration, p.image()))
        if p.iteration == iteration:
            raise KeyboardInterrupt

    return progress


def test_a_stop_while_the_fp32_network_is_built_keeps_the_best_image(models):
    stylizer, bf16, _ = stylizer_on(models, policy=SwitchPolicy(finish_fp32=4), iterations=8)

    def stop_in_the_switch():
        raise KeyboardInterrupt

    stylizer._fp32_network = stop_in_the_switch  # the bf16 objective is gone, the fp32 one not yet built
    seen = []
    result = stylizer.run(CONTENT, STYLE, progress=lambda p: seen.append((p.iteration, p.image())))
    assert result.interrupted and result.iterations == 4
    assert result.evaluations == bf16.passes
    np.testing.assert_array_equal(result.image, seen[-1][1])  # the last (and lowest) point reported: iteration 4
    assert seen[-1][0] == 4


def test_sigterm_during_the_switch_saves_the_best_image_and_exits_143(paths, models, monkeypatch):
    plain_init = Stylizer.__init__

    def bf16_init(self, *args, **kwargs):
        plain_init(self, *args, **kwargs)
        self.network, self.switch_policy = StandIn(self.network, "bf16"), SwitchPolicy(finish_fp32=3)

    monkeypatch.setattr(Stylizer, "__init__", bf16_init)
    monkeypatch.setattr(Stylizer, "_fp32_network", lambda self: signal.raise_signal(signal.SIGTERM))
    result = invoke(*stylize_args(paths, models, "--checkpoint-every", "0", iterations=6))
    assert_one_notice_line(result, "stopped by SIGTERM after 3 iterations", "saved the best image",
                           code=128 + signal.SIGTERM)
    assert pixels(paths.output).shape[:2] == (21, 32)


def run_of(models, policy: SwitchPolicy, iterations: int):
    stylizer, _, _ = stylizer_on(models, policy=policy, iterations=iterations)
    return stylizer


# A struggle threshold the noisy stand-in crosses after a few iterations, and a fixed finish in fp32.
STRUGGLING = SwitchPolicy(window=3, struggle=1.3)
FINISHING = SwitchPolicy(struggle=math.inf, finish_fp32=4)


@pytest.mark.parametrize("policy", [STRUGGLING, FINISHING], ids=["struggling", "finishing"])
@pytest.mark.parametrize("where", [-1, 0, 2], ids=["inside the watch window", "at the switch", "after it"])
def test_a_bf16_run_stopped_and_resumed_equals_the_uninterrupted_one(models, tmp_path, policy, where):
    whole = run_of(models, policy, 10).run(CONTENT, STYLE)
    (at, why), = whole.fp32_from.values()
    assert 3 <= at <= 7, at  # the stops below fall where the test means them to
    path = tmp_path / "out.png.ckpt"
    stopped = run_of(models, policy, 10).run(CONTENT, STYLE, stopped_at(at + where),
                                             checkpoint=Checkpoint(path, EVERY_ITERATION, write_share=None))
    assert stopped.interrupted
    resumed = run_of(models, policy, 10).run(
        CONTENT, STYLE, checkpoint=Checkpoint(path, EVERY_ITERATION, write_share=None, resume=True))
    np.testing.assert_array_equal(resumed.image, whole.image)
    assert (resumed.loss, resumed.iterations, resumed.evaluations, resumed.fp32_from) == \
        (whole.loss, whole.iterations, whole.evaluations, whole.fp32_from)


def _as_format_1(path) -> None:
    """Rewrite the checkpoint at ``path`` as format 1 wrote it: no switch state, no fp32_from."""
    with np.load(path, allow_pickle=False) as saved:
        arrays = {name: saved[name] for name in saved.files
                  if not name.startswith("switch_") and name != "fp32_from"}
    arrays["format"] = np.int64(1)
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def test_a_format_1_checkpoint_resumes_a_run_that_cannot_switch_and_is_refused_for_one_that_can(models, tmp_path):
    path = tmp_path / "out.png.ckpt"
    fp32 = Stylizer(models_dir=models, size=32, iterations=8, threads=1)
    whole = fp32.run(CONTENT, STYLE)
    fp32.run(CONTENT, STYLE, stopped_at(4), checkpoint=Checkpoint(path, EVERY_ITERATION, write_share=None))
    _as_format_1(path)
    bf16 = run_of(models, FINISHING, 8)
    with pytest.raises(CheckpointError, match="format 1, which does not record the bf16 run's switch") as caught:
        bf16.run(CONTENT, STYLE, checkpoint=Checkpoint(path, resume=True))
    assert "--precision fp32" in str(caught.value) and "\n" not in str(caught.value)
    resumed = fp32.run(CONTENT, STYLE, checkpoint=Checkpoint(path, resume=True))
    np.testing.assert_array_equal(resumed.image, whole.image)
    assert (resumed.iterations, resumed.evaluations) == (whole.iterations, whole.evaluations)


@pytest.mark.parametrize("ftol", [1e-12, 2.220446049250313e-09])
def test_the_switch_is_no_loss_stall_whatever_ftol(ftol):
    """With a bf16 that computes what fp32 does, a scale that switches half way with ftol > 0 ends where a run that
    never switched does: the switch itself is not taken for a loss that stopped decreasing."""
    options = {"maxiter": 12, "maxcor": 10, "gtol": 0.0, "ftol": ftol, "maxfun": None}
    x0 = np.zeros((1, 16))
    plain = minimize(Quadratic(noisy=False), x0, options=options)
    assert plain.nit > 6  # the plain run goes on past the switch below
    network = type("Net", (), {"precision": "bf16"})()
    run = ScaleRun(lambda net: Quadratic(noisy=False), network, lambda: "fp32 network",
                   SwitchPolicy(struggle=math.inf, finish_fp32=6), iterations=12, history=10, last_scale=True)
    switched = run.run(lambda objective, callback, resume: minimize(objective, x0, options=options, callback=callback,
                                                                     resume=resume),
                       lambda objective: lambda state: None)
    assert run.switched_at == 6
    assert (switched.nit, switched.reason) == (plain.nit, plain.reason)
    np.testing.assert_array_equal(switched.x, plain.x)
    if plain.reason == ITERATION_LIMIT:
        assert switched.nit == 12
