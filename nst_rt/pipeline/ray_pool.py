"""A pool of Ray actors that run the windows of tiled evaluations (``--engine ray`` of ``stylize``).

Each actor loads the network once and keeps, per scale, a window-only copy of the driver's objective
(:mod:`nst_rt.objective.windows`), fetched from the object store the first time a call names a new scale. The
driver hands out one window per call and gives an idle actor the next; a result is gathered in the windows'
order. An actor that dies has its window run again by another (Ray restarts it; it fetches the scale again),
so a run goes on while any actor is left.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..errors import ClusterError, NstError, OptionError
from ..system.threads import OPENBLAS_ENV
from .options import INITS, Options

DEFAULT_THREADS = 1  # ONNX Runtime threads per actor on CPU when --threads is not given
# Ray imports numpy before nst_rt in a worker, so the workers get nst_rt's OpenBLAS setting as environment.
WORKER_ENV = dict(OPENBLAS_ENV)
RESTARTS = 3  # times Ray starts an actor again after it dies; a window is tried on this many actors more
READY_SECONDS = 300.0  # how long the workers may take to find room and load the model before the run is refused
ONE_SCALE = "bare"  # the key of a window-only objective without a scale's state (the targets' windows)


def absolute(path):
    """Paths go to other processes (maybe other machines): relative ones would resolve against their cwd."""
    return None if path is None else str(Path(os.fspath(path)).absolute())


def worker_options(options: Options) -> Options:
    """The options each actor gets: explicit paths made absolute; a model given by name is looked up on the
    worker by the usual rules ($NST_RT_MODELS, ./models in the worker's directory, ...)."""
    model = options.model
    if os.sep in os.fspath(model) or Path(os.fspath(model)).exists():
        model = absolute(model)
    init = options.init if options.init in INITS else absolute(options.init)
    return replace(options, model=model, models_dir=absolute(options.models_dir), init=init)


def actor_resources(options: Options, gpus_in_cluster: float) -> dict:
    """num_cpus = the actor's ONNX Runtime threads; num_gpus = 1 with the CUDA provider (or auto on a GPU cluster)."""
    uses_gpu = options.provider == "cuda" or (options.provider == "auto" and gpus_in_cluster > 0)
    return {"num_cpus": options.threads, "num_gpus": 1 if uses_gpu else 0}


def pool_size(actors: int | None, resources: dict, cluster: dict) -> int:
    """--actors, or as many actors as the cluster can hold at once."""
    if actors is not None:
        if actors < 1:
            raise OptionError(f"--actors must be >= 1, got {actors}")
        return actors
    fits = int(cluster.get("CPU", 0) // resources["num_cpus"])
    if resources["num_gpus"]:
        fits = min(fits, int(cluster.get("GPU", 0)))
    return max(1, fits)


def payload_bytes(value) -> int:
    """Bytes of the arrays in ``value`` (nested dicts, lists and tuples): what a transfer of it moves."""
    if isinstance(value, np.ndarray):
        return value.nbytes
    if isinstance(value, dict):
        return sum(payload_bytes(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return sum(payload_bytes(v) for v in value)
    return 8 if isinstance(value, float) else 0


class WindowWorker:
    """One per Ray actor: the network, loaded once, and the current scale's window-only objective."""

    def __init__(self, options: Options):
        from ..network.model import load_model
        from ..network.session import Network

        self.problem, self.network = "", None
        try:
            self.network = Network(load_model(options.model, options.models_dir), options.provider, options.threads,
                                   precision=options.precision)
        except NstError as exc:  # e.g. no model on this node: said by ready(), the pool refuses to start
            self.problem = str(exc)
        self.key, self.objective = None, None

    def ready(self) -> tuple[str, int]:
        """(the problem that keeps this actor from working, or ""; its process id)."""
        return self.problem, os.getpid()

    def _objective(self, scale: list):
        """The window-only objective of ``scale`` = [key, reference to its state, or None]."""
        from ..objective.windows import for_windows

        key, state = scale
        if key != self.key:
            import ray

            self.objective = for_windows(self.network, None if state is None else ray.get(state))
            self.key = key
        return self.objective

    def sums(self, scale, image, tile, layers, content_layers, guided_grams):
        from ..objective.windows import window_sums

        return window_sums(self._objective(scale), image, tile, layers, content_layers, guided_grams)

    def features(self, scale, image, tile, layers):
        from ..objective.windows import window_features

        return window_features(self._objective(scale), image, tile, layers)

    def gradient(self, scale, image, tile, factors):
        from ..objective.windows import window_gradient

        return window_gradient(self._objective(scale), image, tile, factors)


class Pool:
    """``size`` actors with ``options`` (their threads, provider, model); ``moved`` counts the bytes of the
    arrays that went to and came from them (the image counted once per put, as the object store holds it)."""

    def __init__(self, ray, options: Options, size: int):
        self.ray = ray
        resources = actor_resources(options, ray.cluster_resources().get("GPU", 0))
        remote = ray.remote(max_restarts=RESTARTS, max_task_retries=0, **resources)(WindowWorker)
        self.actors = [remote.options(runtime_env={"env_vars": WORKER_ENV}).remote(options) for _ in range(size)]
        self.moved = 0
        started = [a.ready.remote() for a in self.actors]
        _, waiting = ray.wait(started, num_returns=len(started), timeout=READY_SECONDS)
        if waiting:  # Ray would wait for room for ever: the actors ask for more than the cluster has free
            self.close()
            raise ClusterError(f"{len(waiting)} of {size} Ray workers found no room in {READY_SECONDS:g} s (each "
                               f"asks for {resources['num_cpus']} CPUs and {resources['num_gpus']} GPUs); give fewer "
                               "--actors or --threads, or free or add nodes")
        try:
            answers = ray.get(started)
        except ray.exceptions.RayError as exc:
            self.close()
            raise ClusterError(f"a Ray worker could not start ({' '.join(str(exc).split())[:300]})") from None
        problems = [problem for problem, _ in answers if problem]
        if problems:
            self.close()
            raise ClusterError(f"a Ray worker cannot run: {problems[0]}; every worker needs the model (see "
                               "--model and --models-dir, or ship it with Ray's runtime environment)")
        self.pids = [pid for _, pid in answers]

    def put(self, value):
        """``value`` in the object store, once for every actor."""
        self.moved += payload_bytes(value)
        return self.ray.put(value)

    def map(self, call: Callable, count: int, gather: Callable[[int, object], None], on_window=None) -> None:
        """``call(actor, i)`` for i < ``count``, each on an idle actor; ``gather(i, result)`` in the order of i.
        A call whose actor dies is made again on another; ClusterError when no actor is left or a window has
        failed on more than RESTARTS actors."""
        ray = self.ray
        waiting = list(range(count))[::-1]  # popped from the end: the first window first
        running, idle, results, failures, dead = {}, list(self.actors), {}, {}, {}
        gathered = 0
        while gathered < count:
            while waiting and idle:
                actor = idle.pop(0)
                i = waiting.pop()
                running[call(actor, i)] = (actor, i)
            if not running:
                raise ClusterError("every Ray worker died; check the workers' logs (memory, the model's path), or "
                                   "give fewer --actors")
            (ref,), _ = ray.wait(list(running), num_returns=1)
            actor, i = running.pop(ref)
            try:
                results[i] = ray.get(ref)
            except ray.exceptions.RayActorError:
                failures[i] = failures.get(i, 0) + 1
                dead[actor] = dead.get(actor, 0) + 1
                if failures[i] > RESTARTS:
                    raise ClusterError(f"window {i + 1} of {count} killed {failures[i]} Ray workers; give the workers "
                                       "more memory or use a smaller --tile") from None
                waiting.append(i)
                if dead[actor] <= RESTARTS:  # Ray starts it again; its next call waits for that
                    idle.append(actor)
                continue
            self.moved += payload_bytes(results[i])
            idle.append(actor)
            while gathered in results:
                gather(gathered, results.pop(gathered))
                if on_window is not None:
                    on_window(gathered + 1, count)
                gathered += 1

    def close(self) -> None:
        for actor in self.actors:
            self.ray.kill(actor)
        self.actors = []
