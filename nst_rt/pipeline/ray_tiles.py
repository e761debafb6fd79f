"""``--engine ray`` of ``stylize``: one picture's windows evaluated by a pool of Ray actors.

The driver (this process) runs the optimiser, the schedule and the memory plan as the local engine does;
its objective is a :class:`nst_rt.objective.tiled.TiledObjective` whose windows run on the actors of a
:class:`nst_rt.pipeline.ray_pool.Pool`. Per evaluation the image goes into the object store once (float32, as
the network reads it); pass 1 brings back each window's Gram sums and content sums, pass 2 (given the style
factors, C x C matrices put once) each window's gradient. The driver adds them in the local objective's
order, so value and gradient are the local tiled run's to the bit when the actors run the same threads.
The targets are taken in windows on the actors too; the driver keeps the content targets.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..errors import MissingDependencyError, OptionError, install_hint
from ..objective.tiled import TiledObjective, add_window_sums, place_cores
from ..system.ray_start import connect
from .options import ENGINES, Options
from .ray_pool import DEFAULT_THREADS, Pool, actor_resources, pool_size, worker_options

def import_ray():
    try:
        import ray
    except ImportError:
        raise MissingDependencyError(f"--engine ray needs Ray; install it with: {install_hint('ray')}") from None
    return ray


def parse_memory(value) -> int | None:
    """--worker-memory: bytes, or a number with K, M, G or T (binary units, an optional B: 16G, 512MB)."""
    if value is None or isinstance(value, int) and not isinstance(value, bool):
        return value
    text = str(value).strip().upper().removesuffix("B").removesuffix("I")
    scale = 1 << 10 * ("KMGT".index(text[-1]) + 1) if text and text[-1] in "KMGT" else 1
    try:
        number = float(text[:-1] if scale > 1 else text)
    except ValueError:
        number = -1.0
    if not number > 0:
        raise OptionError(f"--worker-memory must be a size such as 16G or 512M, got {value!r}")
    return int(number * scale)


def engine_for(engine: str, address=None, actors=None, worker_memory=None) -> RayEngine | None:
    """The engine of ``engine`` (one of ENGINES): None for the local one, which takes none of the Ray settings."""
    if engine not in ENGINES:
        raise OptionError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    if engine == "local":
        given = [f"--{n}" for n, v in (("address", address), ("actors", actors), ("worker-memory", worker_memory))
                 if v is not None]
        if given:
            raise OptionError(f"{', '.join(given)} go{'es' if len(given) == 1 else ''} with --engine ray only")
        return None
    return RayEngine(address, actors, worker_memory)


def cluster_for(engine: RayEngine | None, options: Options) -> tuple | None:
    """What the memory plan sizes the tiles by: (bytes per worker or None, workers) of ``engine``'s pool, started
    here; None for the local engine (the plan then goes by this machine's memory)."""
    if engine is None:
        return None
    workers = len(engine.start(options).actors)  # start() finds the workers' memory when not given
    return engine.worker_memory, workers


def tiled(engine: RayEngine | None, network, content, styles, tile: int | None, on_tile, settings: dict):
    """A scale's objective in ``tile`` tiles (chosen by the plan when None), here or on ``engine``'s actors."""
    make = TiledObjective if engine is None else engine.objective
    return make(network, content, styles, tile=tile, on_tile=on_tile, **settings)


class RayEngine:
    """Where a run's windows are evaluated: ``actors`` Ray actors (default: as many as the cluster's CPUs hold
    at --threads each, or its GPUs with CUDA) on the cluster at ``address`` (default: a local Ray started
    here). ``worker_memory``: bytes one actor may use, for the memory plan (default: Ray's figure of the
    smallest node's memory, shared by the actors it holds). The pool starts on first use; :meth:`close`."""

    def __init__(self, address: str | None = None, actors: int | None = None, worker_memory=None):
        if actors is not None and (isinstance(actors, bool) or not isinstance(actors, int) or actors < 1):
            raise OptionError(f"--actors must be a whole number >= 1, got {actors!r}")
        self.address, self.actors, self.worker_memory = address, actors, parse_memory(worker_memory)
        self.pool: Pool | None = None
        self._ray, self._started_here = None, False

    def start(self, options: Options) -> Pool:
        """The pool for ``options`` (its model, provider and threads; 1 thread per actor when not given)."""
        if self.pool is None:
            ray = self._ray = import_ray()
            self._started_here = connect(ray, self.address)
            options = worker_options(replace(options, threads=options.threads or DEFAULT_THREADS))
            resources = actor_resources(options, ray.cluster_resources().get("GPU", 0))
            size = pool_size(self.actors, resources, ray.cluster_resources())
            try:
                self.pool = Pool(ray, options, size)
            except BaseException:
                self.close()
                raise
            if self.worker_memory is None:
                self.worker_memory = self._memory_per_actor(resources)
        return self.pool

    def _memory_per_actor(self, resources: dict) -> int | None:
        """The smallest node's memory (Ray's figure) over the actors its CPUs hold."""
        shares = []
        for node in self._ray.nodes():
            have = node.get("Resources", {}) if node.get("Alive") else {}
            if have.get("memory") and have.get("CPU"):
                shares.append(int(have["memory"] / max(1, have["CPU"] // resources["num_cpus"])))
        return min(shares) if shares else None

    def objective(self, network, content, styles, **settings) -> RayTiledObjective:
        if self.pool is None:
            raise RuntimeError("start() the engine first")
        return RayTiledObjective(self.pool, network, content, styles, **settings)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()
            self.pool = None
        if self._started_here:
            self._ray.shutdown()
            self._started_here = False


class RayTiledObjective(TiledObjective):
    """:class:`TiledObjective` whose windows run on ``pool``'s actors (the same value and gradient)."""

    _serial = 0  # each objective's scale key, unique in this process

    def __init__(self, pool: Pool, network, content, styles, **settings):
        self.pool = pool
        RayTiledObjective._serial += 1
        self._scale = [f"targets-{id(self)}-{RayTiledObjective._serial}", None]  # a bare objective on the actors
        self._current = None  # (the image being evaluated, its object reference)
        super().__init__(network, content, styles, fused=False, **settings)
        from ..objective.windows import window_state

        self._scale = [f"scale-{id(self)}-{RayTiledObjective._serial}", pool.put(window_state(self))]

    def _image_ref(self, image: np.ndarray):
        if self._current is not None and image is self._current[0]:
            return self._current[1]
        return self.pool.put(np.ascontiguousarray(image, dtype=np.float32))

    def __call__(self, x: np.ndarray, out: np.ndarray | None = None):
        self._current = (x, self.pool.put(np.ascontiguousarray(x, dtype=np.float32)))
        try:
            return super().__call__(x, out)
        finally:
            self._current = None

    def _notify(self, pass_: int):
        return None if self.on_tile is None else lambda index, count: self.on_tile(pass_, index, count)

    def _target_features(self, image, layers):
        if not layers:
            return {}
        from ..network.session import activation_shape
        from ..objective.tiled import plan_tiles

        _, _, h, w = image.shape
        out = {l: np.empty(activation_shape(l, self.network.channels[l], h, w), np.float32) for l in layers}
        tiles, ref = plan_tiles(h, w, self.tile, self._halo_for(layers)), self._image_ref(image)
        self.pool.map(lambda actor, i: actor.features.remote(self._scale, ref, tiles[i], list(layers)), len(tiles),
                      lambda i, cores: place_cores(out, tiles[i], cores))
        return out

    def _gram_sums(self, image, tiles, layers, content=None, guided_grams=False) -> dict:
        content = {} if content is None else content
        sums, ref, content_layers = {l: 0.0 for l in layers}, self._image_ref(image), list(content)
        self.pool.map(lambda actor, i: actor.sums.remote(self._scale, ref, tiles[i], list(layers), content_layers,
                                                         guided_grams),
                      len(tiles), lambda i, window: add_window_sums(sums, content, window),
                      self._notify(1) if guided_grams else None)
        return sums

    def _backward_tiles(self, x, factors, grad):
        grad.fill(0.0)
        tiles, ref, factors_ref = self.tiles[::-1], self._image_ref(x), self.pool.put(factors)

        def gather(i, window_grad):
            r0, r1, c0, c1 = tiles[i].window
            grad[:, :, r0:r1, c0:c1] += window_grad

        self.pool.map(lambda actor, i: actor.gradient.remote(self._scale, ref, tiles[i], factors_ref), len(tiles),
                      gather, self._notify(2))
        return grad
