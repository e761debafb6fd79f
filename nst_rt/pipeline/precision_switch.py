"""bf16 while it helps, fp32 where its noise would stall the optimiser: one scale's L-BFGS run, watched.

bf16 rounds every product to 8 significant bits, so each evaluation's loss and gradient carry a noise of about
1e-3 relative. Far from the optimum an iteration lowers the loss by much more than that and bf16 does as well as
fp32 in less time. Near convergence the decrease per iteration falls to the size of the noise: the strong-Wolfe
line search needs more and more evaluations to find a lower point and finally finds none (a 192 px scale of
200 iterations on OpenVINO bf16 took 1013 evaluations for 172 iterations, then stopped).

So a scale run in bf16 is watched. Once its last ``window`` iterations took more than ``struggle`` evaluations
each on average, or its line search gave up, it goes on in fp32 from the same point for the iterations it has
left: the objective is rebuilt on an fp32 network (its targets computed in fp32), the loss and gradient at the
point are evaluated again, and the L-BFGS memory of the bf16 iterations is kept (curvature pairs measured with
bf16's noise are still good estimates; keeping them saves re-learning the curvature). ``finish_fp32`` also runs
the last iterations of the last scale in fp32 whatever the line search does. The trade-off of these choices is
measured by ``benchmarks/precision.py`` (docs/openvino.md).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..network.precision import REDUCED
from ..optimize import CALLBACK_STOP, LINE_SEARCH_FAILED, pairs_kept


@dataclass(frozen=True)
class SwitchPolicy:
    """When a bf16 scale goes on in fp32."""

    window: int = 10  # iterations the evaluation count is averaged over
    struggle: float = 1.5  # mean evaluations per iteration over the window at which the scale switches
    on_line_search_failure: bool = True  # a bf16 line search that finds no lower point: go on in fp32
    finish_fp32: int = 0  # the last scale's last iterations run in fp32 (0: none)
    keep_memory: bool = True  # the L-BFGS pairs of the bf16 iterations go on into fp32 (else it starts afresh)

    @classmethod
    def never(cls) -> SwitchPolicy:
        """Stay in bf16 to the end (what a bf16 run did before the switch existed)."""
        return cls(struggle=math.inf, on_line_search_failure=False)


DEFAULT_POLICY = SwitchPolicy()


class _Handover:
    """An L-BFGS ring handed to the fp32 run: read into its own ring once (the resume protocol's ``read_into``),
    then let go, so that the bf16 run's ring is not held while the fp32 run goes on."""

    def __init__(self, array: np.ndarray):
        self.array, self.shape = array, array.shape

    def read_into(self, out: np.ndarray) -> None:
        out[...] = self.array
        self.array = None


class ScaleRun:
    """One scale's minimisation, in bf16 with the switch to fp32 when ``network`` runs bf16, else as it is.

    ``build(network)`` makes the scale's objective on a network; ``minimize(objective, callback, resume)`` runs
    the optimiser on it; ``callback_for(objective)`` is the progress callback for an objective; ``fp32_network()``
    gives the fp32 network (made on first use). ``objective`` and ``evaluations`` are always those of the
    objective in use, so an interrupted scale can be counted; ``switched_at`` is the iteration the scale went
    on in fp32 at (None while it has not). ``record()`` is where the switch stands, for a checkpoint; ``restored``
    (a record read back) makes a resumed scale switch where the uninterrupted one does.
    """

    def __init__(self, build: Callable, network, fp32_network: Callable, policy: SwitchPolicy, *,
                 iterations: int, history: int, last_scale: bool, watch: bool = True, restored=None):
        self.build, self.fp32_network, self.policy = build, fp32_network, policy
        self.iterations, self.history = iterations, history
        self.reduced = getattr(network, "precision", "fp32")  # the arithmetic the scale starts in
        self.watching = watch and self.reduced in REDUCED  # L-BFGS on bf16 or TF32 only
        self.finish_at = iterations - policy.finish_fp32 if last_scale and policy.finish_fp32 > 0 else None
        self.window = deque(maxlen=policy.window + 1)  # nfev after each of the last window iterations
        self.evaluations_before = 0  # of objectives no longer in use
        self.switched_at: int | None = None
        self.reason = ""
        if restored is not None:  # resumed from a checkpoint of this scale: where its switch stood
            if int(np.asarray(restored["switched_at"])) >= 0:
                self.switched_at, self.reason = int(np.asarray(restored["switched_at"])), str(restored["switch_reason"])
            self.window.extend(int(n) for n in np.asarray(restored["watch_nfev"]))
        self.objective = build(fp32_network() if self.watching and self.switched_at is not None else network)

    @property
    def evaluations(self) -> int:
        # No objective while the fp32 one is being built: a stop there counts what the bf16 one did.
        return self.evaluations_before + (self.objective.evaluations if self.objective is not None else 0)

    def record(self) -> dict:
        """Where the switch stands, for a checkpoint: ``restored`` takes it back, so that a resumed scale switches
        at the iteration the uninterrupted one does (-1: not switched)."""
        return {"switched_at": np.int64(-1 if self.switched_at is None else self.switched_at),
                "switch_reason": np.array(self.reason), "watch_nfev": np.array(self.window, np.int64)}

    @property
    def precision(self) -> str:
        return "fp32" if self.switched_at is not None or not self.watching else self.reduced

    def run(self, minimize: Callable, callback_for: Callable, resume=None):
        if not self.watching or self.switched_at is not None:
            return minimize(self.objective, callback_for(self.objective), resume)
        if self.finish_at is not None and self.finish_at <= 0:
            return self._go_on_in_fp32(minimize, callback_for, resume, "the last iterations run in fp32")
        if resume is not None:  # the checkpoint was written just before its iteration's switch test: test again
            why = self._why(int(np.asarray(resume["nit"])))
            if why is not None:
                return self._go_on_in_fp32(minimize, callback_for, resume if self.policy.keep_memory
                                           else self._state_of_point(resume), why)
        stop = {}
        result = minimize(self.objective, self._watched(callback_for(self.objective), stop), resume)
        if result.reason == CALLBACK_STOP and "state" in stop:
            return self._go_on_in_fp32(minimize, callback_for, stop["state"], stop["why"])
        if (result.reason == LINE_SEARCH_FAILED and self.policy.on_line_search_failure
                and int(result.nit) < self.iterations):
            return self._go_on_in_fp32(minimize, callback_for, self._state_of_point(
                {"x": result.x, "nit": result.nit, "nfev": result.nfev}),
                                       f"the {self.reduced} line search found no lower point")
        return result

    def _why(self, nit: int) -> str | None:
        """Why the scale goes on in fp32 after iteration ``nit`` (the window holds its nfev), or None."""
        if self.finish_at is not None and self.finish_at <= nit < self.iterations:
            return "the last iterations run in fp32"
        if len(self.window) > self.policy.window and nit < self.iterations:
            mean = (self.window[-1] - self.window[0]) / self.policy.window
            if mean > self.policy.struggle:
                return (f"{self.reduced}'s line searches took {mean:.1f} evaluations per iteration over the last "
                        f"{self.policy.window}")
        return None

    def _watched(self, callback: Callable, stop: dict) -> Callable:
        """``callback``, then the switch test: StopIteration (with the state kept in ``stop``) to switch."""

        def watched(state):
            self.window.append(int(state.nfev))  # before the callback: a checkpoint it writes holds this count
            callback(state)
            why = self._why(int(state.nit))
            if why is not None:
                # Views of the optimiser's arrays: it stops at once, and the fp32 run reads them into its own.
                saved = state.state(copy=False)
                if self.policy.keep_memory:  # handed over once, so the bf16 run's ring is freed after the read
                    saved.update(s=_Handover(saved["s"]), y=_Handover(saved["y"]))
                else:
                    saved = self._state_of_point(saved)
                stop.update(state=saved, why=why)
                raise StopIteration

        return watched

    def _state_of_point(self, state) -> dict:
        """A resume state at ``state``'s point and counts, with an empty L-BFGS memory (fun and jac filled later)."""
        n = np.asarray(state["x"]).size
        m = pairs_kept(self.history, self.iterations)
        return {"method": "lbfgs", "x": state["x"], "fun": math.nan, "jac": None, "fun_old": math.nan,
                "nit": int(np.asarray(state["nit"])), "nfev": int(np.asarray(state["nfev"])), "maxcor": m,
                "s": np.empty((0, n), np.float32),
                "y": np.empty((0, n), np.float32), "sy": np.empty((0, 0)), "yy": np.empty((0, 0)),
                "rho": np.empty(0), "head": 0, "count": 0, "gamma": 1.0}

    def _go_on_in_fp32(self, minimize: Callable, callback_for: Callable, state: dict | None, why: str):
        self.switched_at = 0 if state is None else int(np.asarray(state["nit"]))
        self.reason = why
        self.evaluations_before += self.objective.evaluations
        self.objective = None  # its targets go before the fp32 ones are computed
        self.objective = self.build(self.fp32_network())
        if state is None:  # nothing ran in bf16 at this scale
            return minimize(self.objective, callback_for(self.objective), None)
        state = dict(state)
        x = np.asarray(state["x"], np.float64)
        fun, jac = self.objective(x)  # the point's loss and gradient in fp32: the line search compares with them
        # fun_old nan: the bf16 loss before is not comparable with an fp32 one, and every comparison with nan is
        # false, so the "loss stalled" test (ftol) is not made at the switch, whatever ftol; it is made again
        # from the first fp32 iteration on, on two fp32 losses.
        state.update(fun=float(fun), jac=np.array(jac, np.float64), nfev=int(np.asarray(state["nfev"])) + 1,
                     fun_old=math.nan)
        return minimize(self.objective, callback_for(self.objective), state)
