"""The stylization pipeline: images in, optimised image out.

``stylize()`` is the one-call Python API; ``Stylizer`` does the same work and also reports progress,
keeps the best image when interrupted, and hands out intermediate frames (the CLI uses it).
"""

from __future__ import annotations

import copy
import time
import warnings
from collections.abc import Callable
from dataclasses import replace
from functools import partial

import numpy as np

from ..io import colors, images, layout
from . import schedule
from .checkpoint import FROM_THE_START, terms_of
from ..errors import MemoryNotice, RandomWeightsNotice
from ..objective.whole import Objective
from ..network.precision import REDUCED
from ..system.array_module import to_host, to_module
from .inputs import load_inputs
from .options import Options, optimizer_options, random_weights_note
from .start import start_image
from .settle import Settle
from .outcome import Progress, Result, early_stop_note  # noqa: F401 (Progress and Result are part of this module's API)
from . import precision_switch, ray_tiles
from .plan import plan_scales


# The options a Stylizer's model and network are loaded from: a derived Stylizer that changes one loads its own.
LOADED_FROM = ("model", "models_dir", "provider", "threads", "precision")


class Stylizer:
    """Loads the model once; ``run`` stylizes a content image with one or more style images. ``engine="ray"``
    runs the tiles on Ray actors (:mod:`nst_rt.pipeline.ray_tiles`), started by the first run; :meth:`close`."""

    def __init__(self, options: Options | None = None, *, engine: str = "local", address: str | None = None,
                 actors: int | None = None, worker_memory=None, **overrides):
        self.options = replace(options or Options(), **overrides).validated()
        self.engine = ray_tiles.engine_for(engine, address, actors, worker_memory)
        self.switch_policy = precision_switch.DEFAULT_POLICY
        self._load()

    def _load(self) -> None:
        """The model and the network that ``LOADED_FROM``'s options name."""
        from ..network import device_buffers
        from ..network.model import load_model
        from ..network.session import Network

        self.model = load_model(self.options.model, self.options.models_dir)
        self.network = Network(self.model, self.options.provider, self.options.threads, precision=self.options.precision)
        self._fp32 = None  # the fp32 network of a bf16 run, once a scale has gone on in fp32
        self.xp = device_buffers.array_module_for(self.network)  # where the iterate lives: numpy, or CuPy on CUDA
        if self.model.random_weights and self.options.normalize:  # once per process, by the warnings filter
            warnings.warn(random_weights_note(self.model.name, self.model.metadata["weights_source"]),
                          RandomWeightsNotice, stacklevel=3)  # the caller of __init__ or derive

    def derive(self, **overrides) -> Stylizer:
        """A Stylizer with some options changed. It shares this one's loaded model and network, unless an option
        they are loaded from (``LOADED_FROM``) changes: then it loads its own."""
        derived = copy.copy(self)
        derived.options = replace(self.options, **overrides).validated()
        if any(getattr(derived.options, name) != getattr(self.options, name) for name in LOADED_FROM):
            derived._load()
        return derived

    def run(self, content, styles, progress: Callable[[Progress], None] | None = None, *,
            start: np.ndarray | None = None, wrap_objective: Callable | None = None, checkpoint=None,
            on_tile: Callable[[int, int, int], None] | None = None, should_stop: Callable[[], bool] | None = None) -> Result:
        """Stylize. Ctrl-C (KeyboardInterrupt) ends the run early and returns the best image so far.

        ``start``, an (H, W, 3) image, replaces the start image that ``init`` would make (resized to the
        first scale). ``wrap_objective(objective, (h, w))`` may return a callable that the optimiser
        minimises instead, e.g. one that adds a term; it needs the same ``terms_at`` and ``evaluations``.
        ``checkpoint``, an :class:`nst_rt.pipeline.checkpoint.Checkpoint`, saves the run every few seconds and may
        continue it from a saved one; remove it once the result is written.
        ``on_tile(pass_, index, count)`` is called before each tile of a tiled evaluation (see
        :mod:`nst_rt.objective.tiled`). A scale whose L-BFGS history had to be shrunk to fit in memory is announced
        with a :class:`nst_rt.errors.MemoryNotice` warning before the run starts. ``should_stop()`` is asked between
        setup steps (loading, colour transfer, schedule, memory plan, resizes, targets): true stops as Ctrl-C does.
        """
        from ..optimize import minimize

        o = self.options
        def check_stop():  # raises once a stop is asked, else None (so comprehensions ask it per picture)
            if should_stop is not None and should_stop():
                raise KeyboardInterrupt

        content_full, styles_full, init_full, masks = load_inputs(o, content, styles, check_stop)
        # Check sizes and memory on the shapes alone: a huge --size must be refused before it is allocated.
        stages = schedule.stages_for(o, content_full, styles_full)
        sizes = [stage.size for stage in stages]
        check_stop()
        # an untiled scale's optimiser on the GPU where its iterate is in CuPy
        plan_for = partial(plan_scales, self.network, self.model.architecture, o, content_full, styles_full, sizes,
                           [stage.iterations for stage in stages], cluster=ray_tiles.cluster_for(self.engine, o),
                           device_optimizer=self.xp is not np and wrap_objective is None)
        plans = plan_for()
        check_stop()

        switching = o.optimizer == "lbfgs" and getattr(self.network, "precision", "fp32") in REDUCED
        resumed = checkpoint.begin(o, self.model.metadata, content_full, styles_full, init_full, masks,
                                   switching=switching) if checkpoint else FROM_THE_START
        if resumed.state is not None and o.optimizer == "lbfgs":  # the history the run used, whatever fits now
            plans = plan_for(kept=(resumed.scale, int(np.asarray(resumed.state["maxcor"]))))
        for note in dict.fromkeys(p.note for p in plans if p.note):
            warnings.warn(note, MemoryNotice, stacklevel=2)
        for message, kind in masks.notices(content_full.shape[:2]):
            warnings.warn(message, kind, stacklevel=2)
        started = time.perf_counter()
        rng = np.random.default_rng(o.seed)
        x = None
        total_iterations, total_evaluations = resumed.iterations_before, resumed.evaluations_before
        last = {"x": None, "loss": float("nan"), "terms": {}}
        interrupted, stopped_early, fp32_from = False, dict(resumed.stopped_early), dict(resumed.fp32_from)
        for scale, stage in enumerate(stages, start=1):
            longest, iterations = stage.size, stage.iterations
            if scale < resumed.scale:
                continue  # finished before the checkpoint was written
            scale_run = result = None
            saved = resumed.state if scale == resumed.scale else None  # the optimiser's state to continue from
            try:
                check_stop()
                content_img = images.resize_longest(content_full, longest)
                h, w = content_img.shape[:2]
                style_imgs = [images.resize_longest(s, schedule.style_size(longest, o.style_scale))
                              for s in styles_full if check_stop() is None]
                check_stop()
                if saved is not None:  # minimize takes the iterate and the rest from the checkpoint
                    first = None
                elif x is None and start is not None:
                    first = images.resize_to(np.asarray(start, dtype=np.float32), (h, w))
                elif x is None:
                    first = start_image(o, content_img, style_imgs[0], init_full, rng)
                else:  # coarse-to-fine: the previous scale's result, upsampled, is the next start
                    first = images.resize_to(layout.from_nchw(to_host(x)), (h, w))
                # float32 until minimize takes its float64 copy: one image-sized float64 vector less held by the run
                x0 = layout.to_nchw(first) if saved is None else np.asarray(saved["x"], np.float64)
                first = None
                last.update(x=x0, loss=float("inf"), nit=0 if saved is None else resumed.iteration)
                settle = Settle(o.settle, x0, resumed.settle if saved is not None else None)
                plan = plans[scale - 1]
                build = self._objective_builder(content_img, style_imgs, masks, plan, wrap_objective, on_tile,
                                                check_stop)
                scale_run = precision_switch.ScaleRun(build, self.network, self._fp32_network, self.switch_policy,
                                                      iterations=iterations, history=plan.history,
                                                      last_scale=scale == len(stages), watch=o.optimizer == "lbfgs",
                                                      restored=resumed.switch if saved is not None else None)
                if checkpoint:
                    checkpoint.enter_scale(scale, total_iterations, total_evaluations, stopped_early, fp32_from)
                if progress is not None and saved is None:
                    progress(Progress(scale, len(sizes), 0, iterations, float("nan"), {}, total_evaluations,
                                      time.perf_counter() - started, lambda x0=x0: self._finish(x0, content_full),
                                      stages, scale_run.precision))

                def callback_for(objective):  # a new objective (bf16 went on in fp32): its losses start afresh
                    last.update(loss=float("inf"))
                    return self._on_iteration(scale, stages, objective, last, progress, total_evaluations, started,
                                              content_full, checkpoint, scale_run, settle)

                result = scale_run.run(
                    lambda objective, callback, resume: minimize(  # x0 in the objective's array module
                        objective, to_module(x0, getattr(objective, "xp", np)), jac=True, method=o.optimizer,
                        bounds=(0.0, 1.0) if o.bounds else None,
                        options=optimizer_options(o, iterations, plan.history), resume=resume, callback=callback),
                    callback_for, saved)
                objective = scale_run.objective
                if scale_run.switched_at is not None:
                    fp32_from[scale] = (scale_run.switched_at, scale_run.reason)
                resumed.close()  # the optimiser holds what it read from the checkpoint (a no-op after that scale)
                x = result.x  # the scale is finished: from here on a stop keeps it
                last.update(loss=float(result.fun), terms=terms_of(objective, result))
                if int(result.nit) < iterations:
                    stopped_early[scale] = early_stop_note(result, iterations, scale, len(sizes), settle.settled)
            except KeyboardInterrupt:
                resumed.close()
                if last["x"] is None:  # stopped before there was any image to return
                    raise
                interrupted = True
                if result is None:
                    total_iterations += last["nit"]
                    total_evaluations += scale_run.evaluations if scale_run is not None else 0
                    x = last["x"]
                else:  # stopped after the scale finished (e.g. while its terms were evaluated): keep it
                    total_iterations += int(result.nit)
                    total_evaluations += int(result.nfev)
                    x = result.x
                break
            total_iterations += int(result.nit)
            total_evaluations += int(result.nfev)
        message = "interrupted" if interrupted else "; ".join(stopped_early.values())
        try:
            image = self._finish(x, content_full)
        except KeyboardInterrupt:  # the run's work is kept: finish again and report the stop
            interrupted, message = True, "interrupted"
            image = self._finish(x, content_full)
        return Result(image, last["loss"], last["terms"], total_iterations,
                      total_evaluations, time.perf_counter() - started, interrupted, message, stopped_early,
                      fp32_from)

    def _objective_builder(self, content_img, style_imgs, masks, plan, wrap_objective, on_tile,
                           check_stop=lambda: None) -> Callable:
        """``build(network)``: this scale's objective on ``network`` (tiled when the plan says so); ``check_stop``
        is asked before its targets are computed."""
        o = self.options
        shape = content_img.shape[:2]
        settings = dict(content_layers=o.content_layers, style_layers=o.style_layers, content_weight=o.content_weight,
                        style_weight=o.style_weight, tv_weight=o.tv_weight, normalize=o.normalize,
                        style_blend_weights=o.style_blend_weights, style_masks=masks.styles_at(shape),
                        content_mask=masks.content_at(shape))

        def build(network):
            check_stop()  # a wrapper's term is written for numpy: the points stay on the host then
            if self.engine is None and plan.tile is None:
                objective = Objective(network, content_img, style_imgs,
                                      xp=self.xp if wrap_objective is None else np, **settings)
            else:  # in tiles, here or on the Ray engine's actors
                objective = ray_tiles.tiled(self.engine, network, content_img, style_imgs, plan.tile, on_tile, settings)
            return objective if wrap_objective is None else wrap_objective(objective, shape)

        return build

    def close(self) -> None:
        """End the Ray engine's pool (and the local Ray it started); a later run starts it again."""
        if self.engine is not None:
            self.engine.close()

    def _fp32_network(self):
        """The fp32 network a bf16 scale goes on with (made on first use, then kept: it compiles per image size)."""
        if self._fp32 is None:
            from ..network.session import NAMES, Network

            self._fp32 = Network(self.model, NAMES[self.network.providers[0]], self.options.threads, precision="fp32")
        return self._fp32

    def _on_iteration(self, scale, stages, objective, last, progress, evaluations_before, started, content_full,
                      checkpoint, scale_run, settle):
        """The optimiser's callback: keep the best point (Adam may go up), checkpoint, report, end a settled scale."""
        iterations = stages[scale - 1].iterations

        def on_iteration(state):
            last["nit"] = int(state.nit)
            current = state.x  # minimize hands the callback copies
            terms = objective.terms_at(state.fun)  # the reported point's, not the last evaluation's
            if state.fun <= last["loss"]:
                last.update(x=current, loss=float(state.fun), terms=terms)
            settled = settle.observe(current)
            if checkpoint and not settled:  # no checkpoint of a settled iteration: a resume replays it, and stops
                checkpoint.maybe_save(state, scale_run.record, settle.record)
            if progress is not None:
                progress(Progress(scale, len(stages), int(state.nit), iterations, float(state.fun), dict(terms),
                                  evaluations_before + int(state.nfev), time.perf_counter() - started,
                                  lambda: self._finish(current, content_full), stages, scale_run.precision, settled))
            if settled:
                raise StopIteration

        return on_iteration

    def _finish(self, x: np.ndarray, content: np.ndarray) -> np.ndarray:
        """The image as it will be saved: clamped to [0, 1], with the content's colours when asked."""
        image = np.clip(layout.from_nchw(to_host(x)), 0.0, 1.0)  # a device iterate comes to the host here
        if self.options.original_colors:  # resizes the content to the image's size
            image = colors.original_colors(image, content, self.options.original_colors_mode)
        return image


def stylize(content, style, *, progress: bool = False, **options):
    """Stylize ``content`` with ``style`` (one image or a list) and return a PIL RGB image.

    ``content`` and each style may be a path, a PIL image or a numpy array. Keyword options are the
    fields of :class:`Options` (``size``, ``iterations``, ``style_weight``, ``model``, ...) and :class:`Stylizer`'s
    ``engine``, ``address``, ``actors`` and ``worker_memory``. It runs silently; ``progress=True`` draws the
    command line's progress bar on stderr (the loss, the rate, the time left).
    """
    stylizer = Stylizer(**options)
    try:
        if not progress:
            return stylizer.run(content, style).to_pil()
        from .display import ProgressDisplay

        bar = ProgressDisplay(enabled=True)
        try:
            result = stylizer.run(content, style, progress=bar, on_tile=bar.tile)
            bar.close({scale: "stopped early" for scale in result.stopped_early})
        finally:
            bar.close()
        return result.to_pil()
    finally:
        stylizer.close()
