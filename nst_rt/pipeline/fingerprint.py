"""A run's fingerprint: what its result depends on (inputs, options, model), and the differences between two."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Mapping

import numpy as np

# Options that say where and how fast a run computes, not what: a run may resume with other values (on
# another provider the last bits of the result may differ; see the README).
NOT_FINGERPRINTED = ("model", "models_dir", "provider", "precision", "threads", "tile")
MASKS = ("style_masks", "content_mask")  # fingerprinted by their pixels, not their paths
# Options added after checkpoints existed, with the value that does what runs did before them: a fingerprint
# written before an option existed matches that value.
ADDED_LATER = {"--settle": 0.0, "--coarse-iterations": 2.0}
# Model metadata that records where a model came from, not what it computes.
MODEL_PROVENANCE = ("exporter_version", "weights_source", "opset", "weights_file_size", "weights_file_sha256")


def fingerprint(options, model_metadata: Mapping[str, str], content: np.ndarray, styles, init,
                masks=None) -> dict[str, str]:
    """What a run's result depends on, as ``{name: text}``: options by their CLI names, images (masks among
    them: ``masks``, an :class:`nst_rt.pipeline.masks.Masks`) and model hashed."""
    prints = {}
    for field in dataclasses.fields(options):
        if field.name in MASKS:  # by their pixels, below: a moved mask file is the same mask
            prints["--" + field.name.replace("_", "-")] = json.dumps(getattr(options, field.name) is not None)
        elif field.name not in NOT_FINGERPRINTED:
            value = "an image" if field.name == "init" and init is not None else getattr(options, field.name)
            prints["--" + field.name.replace("_", "-")] = json.dumps(value, default=_plain)
    model = {key: value for key, value in sorted(model_metadata.items()) if key not in MODEL_PROVENANCE}
    prints["model"] = hashlib.sha256(json.dumps(model).encode()).hexdigest()
    images = {"content image": content, **{f"style image {i + 1}": s for i, s in enumerate(styles)}}
    if init is not None:
        images["init image"] = init
    if masks is not None:
        images.update({f"style mask {i + 1}": m for i, m in enumerate(masks.styles or [])})
        images.update({"content mask": masks.content} if masks.content is not None else {})
    for name, image in images.items():
        image = np.ascontiguousarray(image)
        digest = hashlib.sha256(f"{image.dtype.str}{image.shape}".encode())
        digest.update(memoryview(image).cast("B"))
        prints[name] = digest.hexdigest()
    return prints


def describe_differences(saved: Mapping[str, str], current: Mapping[str, str]) -> str:
    """One phrase per difference, e.g. "--style-weight 10.0 then, 20.0 now; another content image"."""
    phrases = []
    for name in list(saved) + [n for n in current if n not in saved]:
        then, now = saved.get(name), current.get(name)
        if then == now or (then is None and name in ADDED_LATER and json.loads(now) == ADDED_LATER[name]):
            continue
        if name.startswith("--"):
            shown = {None: "unset", "null": "default"}  # null: the option's automatic default (e.g. --scales)
            phrases.append(f"{name} {shown.get(then, then)} then, {shown.get(now, now)} now")
        elif then is None or now is None:
            phrases.append(f"{name} now, none then" if then is None else f"{name} then, none now")
        else:
            phrases.append(f"another {name}")
    return "; ".join(phrases)


def _plain(value):
    """JSON for numpy numbers and paths in options."""
    return value.item() if hasattr(value, "item") else os.fspath(value)
