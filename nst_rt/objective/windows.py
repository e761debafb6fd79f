"""The windows of a tiled evaluation run one at a time, in another process: what a worker needs of a
:class:`nst_rt.objective.tiled.TiledObjective`, and the window's passes it runs with it.

A worker holds the network; the driver's objective hands it :func:`window_state` once per scale (the tiles,
the content targets, the masks and weights), then per evaluation the image and, for pass 2, the style
factors. Each function returns what the local objective adds up, so the driver adds it in the same order.
"""

from __future__ import annotations

import numpy as np

from .tiled import Tile, TiledObjective, core_features

# What a window's passes read besides the network.
WINDOW_STATE = ("shape", "tile", "halo", "tiles", "content", "content_targets", "content_masked", "style_masked",
                "used_layers")


def window_state(objective: TiledObjective) -> dict:
    """The part of ``objective`` that :func:`for_windows` needs to run its windows elsewhere."""
    return {name: getattr(objective, name) for name in WINDOW_STATE}


def for_windows(network, state: dict | None = None) -> TiledObjective:
    """An objective on ``network`` that only runs windows: those of :func:`window_state`'s objective, or
    without ``state`` a bare one (enough for the targets' windows)."""
    objective = TiledObjective.__new__(TiledObjective)
    objective.__dict__.update(network=network, on_tile=None, _last_acts=None, style_masked={}, content_targets={},
                              content_masked={}, content={}, used_layers=set())
    objective.__dict__.update(state or {})
    return objective


def window_sums(objective: TiledObjective, image: np.ndarray, tile: Tile, layers, content_layers,
                guided_grams: bool) -> tuple[dict, dict]:
    """Pass 1 over ``tile``'s window of ``image``: its core's Gram sums and content sums."""
    r0, r1, c0, c1 = tile.window
    acts = objective.network.forward(image[:, :, r0:r1, c0:c1], set(layers) | set(content_layers))
    return objective._window_sums(tile, acts, layers, content_layers, guided_grams)


def window_features(objective: TiledObjective, image: np.ndarray, tile: Tile, layers) -> dict:
    """The activations of ``layers`` over ``tile``'s core (copies), for :func:`nst_rt.objective.tiled.place_cores`."""
    r0, r1, c0, c1 = tile.window
    acts = objective.network.forward(image[:, :, r0:r1, c0:c1], set(layers))
    return {l: np.array(a) for l, a in core_features(tile, acts, layers).items()}


def window_gradient(objective: TiledObjective, image: np.ndarray, tile: Tile, factors: dict) -> np.ndarray:
    """Pass 2 over ``tile``'s window of ``image``: its share of the gradient (float32, a copy)."""
    return np.array(objective._window_gradient(image, tile, factors))
