"""Estimate the memory a stylization needs before starting it, choose tiles and the L-BFGS history so that
it fits, and refuse runs that cannot fit.

The estimate is built from the sizes the run allocates: a multiple of one image's activations (the
bound buffers and ONNX Runtime's working memory, calibrated against measured peak RSS, see
``ACTIVATION_FACTOR``), the optimiser's float64 vectors and its float32 L-BFGS history. The memory
available is the smaller of the system's (MemAvailable) and the container's (cgroup limit less usage);
on CUDA the activations are checked against the device's free memory instead.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import MemoryLimitError
from ..system.memory_probes import available_bytes, device_free_bytes
from ..network.session import activation_shape

# Peak RSS in units of one set of activations (all ReLU outputs of one image), fitted to measured peaks of
# CPU runs at 256, 512 and 1024 px on VGG-19 (550 MB, 1.5 GB, 5.6 GB; the fit is 6.1-6.4, rounded up): the
# bound activation and cotangent buffers, ONNX Runtime's blocked-layout copies and arena, loss temporaries.
ACTIVATION_FACTOR = 6.5
FIXED_BYTES = 300 << 20  # both graphs' weights (~100 MB), prepacked copies, Python, numpy, onnxruntime
OPTIMIZER_VECTORS = 12  # float64 vectors of image size the optimiser and objective keep
HISTORY_ITEM_BYTES = 4  # the L-BFGS pairs are stored in float32 (their dot products are taken in float64)


def activation_bytes(network, height: int, width: int) -> int:
    total = 0
    for layer in network.layers:
        _, c, h, w = activation_shape(layer, network.channels[layer], height, width)
        total += c * h * w * 4
    return total


def estimate_bytes(network, height: int, width: int, history: int, style_shapes=()) -> int:
    """Peak memory of a run at ``height`` x ``width`` with an L-BFGS history of ``history`` pairs.

    Style images are run through the network before the optimisation starts, so the larger of the two
    activation sets counts, not their sum.
    """
    return FIXED_BYTES + int(ACTIVATION_FACTOR * _activations(network, height, width, style_shapes)) + \
        _optimizer_bytes(height, width, history)


def _activations(network, height, width, style_shapes) -> int:
    return max([activation_bytes(network, height, width)] + [activation_bytes(network, h, w) for h, w in style_shapes])


def _optimizer_bytes(height: int, width: int, history: int) -> int:
    pixels = 3 * height * width
    return OPTIMIZER_VECTORS * pixels * 8 + 2 * history * pixels * HISTORY_ITEM_BYTES


def gib(n: int) -> str:
    return f"{n / (1 << 30):.1f} GiB"


def check_fits(network, height: int, width: int, history: int, style_shapes=(), device_optimizer: bool = False) -> int:
    """Raise MemoryLimitError when the estimate exceeds the available memory; return the estimate.

    On CUDA the activations and ONNX Runtime's working memory live on the device and are checked against
    its free memory (the factor is the CPU calibration; it has not been fitted to GPU peaks); the host
    keeps the optimiser's vectors and one host copy of the activations and cotangents. With
    ``device_optimizer`` (the iterate in CuPy) the optimiser's vectors and L-BFGS history count on the device
    too (and still on the host: an objective that cannot take a device iterate keeps them there).
    """
    acts = _activations(network, height, width, style_shapes)
    need = estimate_bytes(network, height, width, history, style_shapes)
    advice = "use a smaller --size (memory grows with the pixel count)"
    if getattr(network, "device", "cpu") == "cuda":
        device_need = FIXED_BYTES + int(ACTIVATION_FACTOR * acts)
        if device_optimizer:
            device_need += _optimizer_bytes(height, width, history)
        device_have = device_free_bytes(getattr(network, "device_id", 0))
        if device_have is not None and device_need > device_have:
            raise MemoryLimitError(f"a {width}x{height} run needs about {gib(device_need)} of GPU memory but "
                                   f"{gib(device_have)} is free on the device; {advice}"
                                   f"{' or a smaller --history' if device_optimizer else ''}")
        need = FIXED_BYTES + 2 * acts + _optimizer_bytes(height, width, history)
    have = available_bytes()
    if have is not None and need > have:
        raise MemoryLimitError(
            f"a {width}x{height} run needs about {gib(need)} of memory but {gib(have)} is available; "
            f"{advice} or a smaller --history"
        )
    return need


# Tiled runs (nst_rt.objective.tiled): float64 vectors of image size besides the optimiser's, fitted to measured peaks
# (the objective's gradient, the pipeline's images and copies of the point, the tv term's differences).
TILED_VECTORS = 6
TILE_SIZES = (2048, 1536, 1024, 768, 512, 384, 256)  # what the automatic choice tries
SHRINK_TILE = 512  # where the whole history does not fit, tiles this large or smaller give room to some of it
MIN_HISTORY = 3  # below this many pairs L-BFGS is barely quasi-Newton: refuse rather than shrink further


@dataclass(frozen=True)
class Plan:
    """How one scale of a run fits in memory."""

    tile: int | None  # tile size in pixels, or None: the whole image at once
    history: int  # L-BFGS pairs (fewer than asked when they would not fit)
    need: int  # estimated peak bytes
    note: str = ""  # why the history was shrunk, when it was


def tiled_estimate_bytes(network, height: int, width: int, history: int, tile: int, halo: int,
                         content_layers=()) -> int:
    """Peak memory of a tiled run: one window's activations (tile plus a halo on each side), the optimiser,
    the whole-image vectors of the tiled objective and the content targets, kept at full size."""
    return FIXED_BYTES + int(ACTIVATION_FACTOR * _window_activations(network, height, width, tile, halo)) + \
        _tiled_host_bytes(network, height, width, history, content_layers)


def window_area(height: int, width: int, tile: int, halo: int) -> int:
    """Pixels the network computes per pass over tiles of ``tile`` px: the sum of the windows' areas."""
    from ..objective.tiled import plan_tiles

    return sum((t.window[1] - t.window[0]) * (t.window[3] - t.window[2]) for t in plan_tiles(height, width, tile, halo))


def _window_activations(network, height, width, tile, halo) -> int:
    return activation_bytes(network, min(height, tile + 2 * halo), min(width, tile + 2 * halo))


def _tiled_host_bytes(network, height, width, history, content_layers) -> int:
    return _optimizer_bytes(height, width, history) + TILED_VECTORS * 3 * height * width * 8 + \
        _target_bytes(network, height, width, content_layers)


def _target_bytes(network, height, width, content_layers) -> int:
    """The content targets, kept at full size."""
    return sum(4 * c * h * w for _, c, h, w in
               (activation_shape(l, network.channels[l], height, width) for l in content_layers))


def plan(network, height: int, width: int, history: int, style_shapes=(), *, tile: int = 0, halo: int = 0,
         content_layers=(), device_optimizer: bool = False) -> Plan:
    """Choose how a ``height`` x ``width`` scale runs: untiled when it fits (or ``tile`` covers the image),
    else in tiles of ``tile`` px, or with ``tile=0`` the one of TILE_SIZES that fits with the whole history
    and computes the fewest window pixels (the smaller memory on a tie); when none does, the largest tiles
    up to SHRINK_TILE px (or ``tile``) with as many L-BFGS pairs as fit, and a note saying so. Raises
    MemoryLimitError when not even MIN_HISTORY pairs fit. ``history=0``: an optimiser without one (Adam).
    ``device_optimizer``: an untiled run keeps its optimiser on the GPU (tiles keep it on the host).
    """
    if not tile or max(height, width) <= tile:
        try:
            return Plan(None, history, check_fits(network, height, width, history, style_shapes, device_optimizer))
        except MemoryLimitError as exc:
            if tile:  # the tile covers the whole image: smaller tiles would fit
                raise MemoryLimitError(f"{exc}, or a --tile smaller than {max(height, width)} px") from None
    have = available_bytes()
    on_device = getattr(network, "device", "cpu") == "cuda"
    device_have = device_free_bytes(getattr(network, "device_id", 0)) if on_device else None

    def need(t, m):
        if on_device:  # the window's activations on the device, a host copy of them besides the rest
            return FIXED_BYTES + 2 * _window_activations(network, height, width, t, halo) + \
                _tiled_host_bytes(network, height, width, m, content_layers)
        return tiled_estimate_bytes(network, height, width, m, t, halo, content_layers)

    def fits(t, m):
        device_need = FIXED_BYTES + int(ACTIVATION_FACTOR * _window_activations(network, height, width, t, halo))
        return (have is None or need(t, m) <= have) and (device_have is None or device_need <= device_have)

    if tile:
        if fits(tile, history):
            return Plan(tile, history, need(tile, history))
    else:
        fitting = [t for t in TILE_SIZES if t < max(height, width) and fits(t, history)]
        if fitting:  # the least computed: windows overlap by their halos, and border windows reach inside
            t = min(fitting, key=lambda t: (window_area(height, width, t, halo), need(t, history)))
            return Plan(t, history, need(t, history))
    least = min(MIN_HISTORY, history)
    shrink_sizes = [tile] if tile else [t for t in TILE_SIZES if t <= SHRINK_TILE]
    t = next((t for t in shrink_sizes if fits(t, least)), None)
    if t is None:
        t = shrink_sizes[-1]
        raise MemoryLimitError(
            f"a {width}x{height} run needs about {gib(need(t, least))} of memory even in tiles of {t} px with an "
            f"L-BFGS history of {least} pairs, but {gib(have or 0)} is available"
            f"{f' ({gib(device_have)} free on the GPU)' if device_have is not None else ''}; "
            f"use a smaller --size" + (" or a smaller --tile" if tile else ""))
    fitting = next(m for m in range(history, least - 1, -1) if fits(t, m))
    note = (f"the L-BFGS history was shrunk from {history} to {fitting} pairs at {width}x{height} to fit in the "
            f"{gib(have)} of memory available (tiles of {t} px)")
    return Plan(t, fitting, need(t, fitting), note)



def cluster_plan(network, height: int, width: int, history: int, *, tile: int, halo: int, content_layers,
                 worker_bytes: int | None, workers: int) -> Plan:
    """The plan of a scale whose windows run on ``workers`` Ray actors of ``worker_bytes`` each: the tiles
    sized by a worker's memory (one window's activations, the content targets and the image), the L-BFGS
    history by this machine's, which holds the optimiser and the image but runs no window. With ``tile=0``
    the one of TILE_SIZES that fits, gives every worker a window and computes the fewest window pixels."""
    def worker_need(t):  # the image is float32 there
        return FIXED_BYTES + int(ACTIVATION_FACTOR * _window_activations(network, height, width, t, halo)) + \
            _target_bytes(network, height, width, content_layers) + 3 * height * width * 4

    def fits(t):
        return worker_bytes is None or worker_need(t) <= worker_bytes

    sizes = [tile] if tile else [t for t in TILE_SIZES if fits(t)]
    if not sizes or not fits(sizes[0]):
        t = sizes[0] if sizes else TILE_SIZES[-1]
        raise MemoryLimitError(f"a {width}x{height} run needs about {gib(worker_need(t))} per Ray worker in tiles of "
                               f"{t} px, but a worker has {gib(worker_bytes)}; use a smaller --tile or --size, or "
                               "give --worker-memory if the workers have more")
    t = min(sizes, key=lambda t: (window_count(height, width, t, halo) < workers, window_area(height, width, t, halo)))
    have = available_bytes()

    def driver_need(m):
        return FIXED_BYTES + _tiled_host_bytes(network, height, width, m, content_layers)

    least = min(MIN_HISTORY, history)
    kept = next((m for m in range(history, least - 1, -1) if have is None or driver_need(m) <= have), None)
    if kept is None:
        raise MemoryLimitError(f"a {width}x{height} run needs about {gib(driver_need(least))} of this machine's memory "
                               f"for the optimiser (L-BFGS history {least}), but {gib(have)} is available; "
                               "use a smaller --size")
    note = "" if kept == history else (
        f"the L-BFGS history was shrunk from {history} to {kept} pairs at {width}x{height} to fit in the {gib(have)} "
        "of this machine's memory, which holds the optimiser (the windows run on the Ray workers)")
    return Plan(t, kept, driver_need(kept), note)


def window_count(height: int, width: int, tile: int, halo: int) -> int:
    from ..objective.tiled import plan_tiles

    return len(plan_tiles(height, width, tile, halo))
