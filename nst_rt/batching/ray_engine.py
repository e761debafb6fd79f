"""The batch on Ray Data: a pool of actors, each holding one Stylizer, reads, stylizes and writes the files.

Each input is one block of a dataset of (input, output) paths; ``map_batches`` sends it to an actor of a fixed
``ActorPoolStrategy`` pool. An actor reserves as many CPUs as its ONNX Runtime threads (and a GPU with the
CUDA provider), so Ray never runs more threads than the cluster has. The driver only plans and reports:
the pictures never travel through Ray, so every worker must see the same paths (a shared file system).
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from .items import FAILED, Item, ItemResult, stylize_one
from ..system.threads import OPENBLAS_ENV
from ..errors import ClusterError, MissingDependencyError, NstError, OptionError
from ..pipeline.stylizer import INITS, Options

DEFAULT_THREADS = 1  # ONNX Runtime threads per actor on CPU when --threads is not given
# Ray imports numpy before nst_rt in a worker, so the workers get nst_rt's OpenBLAS setting as environment.
WORKER_ENV = dict(OPENBLAS_ENV)


def import_ray():
    try:
        import ray
        import ray.data
    except ImportError:
        raise MissingDependencyError("--engine ray needs Ray Data; install it with: pip install 'nst-rt[ray]'") \
            from None
    return ray


class StylizeActor:
    """One per Ray actor: loads the model once, then stylizes one input per call and saves it itself."""

    def __init__(self, options: Options, styles: Sequence[str], overwrite: bool):
        from ..pipeline.stylizer import Stylizer

        self.styles, self.overwrite = [Path(s) for s in styles], overwrite
        try:
            self.stylizer, self.problem = Stylizer(options), ""
        except NstError as exc:  # e.g. no model on this node: every input it gets reports it
            self.stylizer, self.problem = None, str(exc)

    def __call__(self, batch: dict) -> dict:
        results: list[ItemResult] = []
        for source, target in zip(batch["input"], batch["output"]):
            item = Item(Path(source), Path(target))
            if self.stylizer is None:
                results.append(ItemResult(item.input, item.output, FAILED, self.problem))
            else:
                stylize_one(self.stylizer, item, self.styles, self.overwrite, results.append)
        return {"input": [str(r.input) for r in results], "output": [str(r.output) for r in results],
                "status": [r.status for r in results], "message": [r.message for r in results],
                "seconds": [r.seconds for r in results]}


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


def run_ray(todo: Sequence[Item], styles: Sequence, options: Options, overwrite: bool,
            report: Callable[[ItemResult], None], *, address: str | None = None, actors: int | None = None) -> None:
    """Stylize ``todo`` on Ray (a local one unless ``address``); ``report`` gets each result as it arrives."""
    ray = import_ray()
    if not todo:
        return
    options = worker_options(replace(options, threads=options.threads or DEFAULT_THREADS))
    started_here = not ray.is_initialized()
    if started_here:
        os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")  # Ray's own notices are not the user's concern
        for name in ("ray", "ray.data"):
            logging.getLogger(name).setLevel(logging.ERROR)
        try:
            ray.init(address=address, include_dashboard=False, configure_logging=False, log_to_driver=False)
        except Exception as exc:  # Ray raises ConnectionError, RuntimeError, ValueError, ... for the same problem
            where = f"the Ray cluster at {address}" if address else "a local Ray"
            detail = " ".join(str(exc).split())[:300] or type(exc).__name__
            raise ClusterError(f"could not start or reach {where} ({detail}); check --address, or leave it out "
                               f"to run a local Ray") from None
    try:
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False  # the caller shows progress over the images
        context.print_on_execution_start = False
        resources = actor_resources(options, ray.cluster_resources().get("GPU", 0))
        size = min(pool_size(actors, resources, ray.cluster_resources()), len(todo))  # no actor without work
        rows = [{"input": absolute(item.input), "output": absolute(item.output)} for item in todo]
        dataset = ray.data.from_items(rows, override_num_blocks=len(rows))  # one input per block and task
        results = dataset.map_batches(
            StylizeActor, batch_size=1, batch_format="numpy",
            fn_constructor_kwargs={"options": options, "styles": [absolute(s) for s in styles],
                                   "overwrite": overwrite},
            compute=ray.data.ActorPoolStrategy(size=size, max_tasks_in_flight_per_actor=1),
            runtime_env={"env_vars": WORKER_ENV}, **resources)
        with warnings.catch_warnings():  # Ray Data's advice to use more blocks misreads a pool that starts idle
            warnings.filterwarnings("ignore", message="The minimum number of concurrent actors")
            for row in results.iter_rows():
                report(ItemResult(Path(row["input"]), Path(row["output"]), str(row["status"]),
                                  str(row["message"]), float(row["seconds"])))
    finally:
        if started_here:
            ray.shutdown()
