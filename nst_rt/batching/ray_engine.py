"""The batch on Ray Data: a pool of actors, each holding one Stylizer, reads, stylizes and writes the files.

Each input is one block of a dataset of (input, output) paths; ``map_batches`` sends it to an actor of a fixed
``ActorPoolStrategy`` pool. An actor reserves as many CPUs as its ONNX Runtime threads (and a GPU with the
CUDA provider), so Ray never runs more threads than the cluster has. The driver only plans and reports:
the pictures never travel through Ray, so every worker must see the same paths (a shared file system).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from .items import FAILED, Item, ItemResult, stylize_one
from ..system.ray_start import connect
from ..errors import MissingDependencyError, NstError, install_hint
from ..pipeline.options import Options
# One home for what both Ray engines give their actors (re-exported: the batch's API and tests name them here).
from ..pipeline.ray_pool import DEFAULT_THREADS, WORKER_ENV, absolute, actor_resources, pool_size, \
    worker_options  # noqa: F401


def import_ray():
    try:
        import ray
        import ray.data
    except ImportError:
        raise MissingDependencyError(f"--engine ray needs Ray Data; install it with: {install_hint('ray')}") \
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


def run_ray(todo: Sequence[Item], styles: Sequence, options: Options, overwrite: bool,
            report: Callable[[ItemResult], None], *, address: str | None = None, actors: int | None = None) -> None:
    """Stylize ``todo`` on Ray (a local one unless ``address``); ``report`` gets each result as it arrives."""
    ray = import_ray()
    if not todo:
        return
    options = worker_options(replace(options, threads=options.threads or DEFAULT_THREADS))
    started_here = connect(ray, address, loggers=("ray", "ray.data"))
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
