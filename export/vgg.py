"""Weights loading and a plain-PyTorch reference of the truncated network.

torchvision's VGG keeps its convolutions in ``features`` (``features.{i}.weight`` / ``.bias``); the layer
tables (:mod:`nst_rt.model_format`) reproduce torchvision's ``cfgs`` so that its published state dicts
load without torchvision itself (which cannot be imported next to a CPU-only torch build).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from nst_rt.errors import ExportError
from nst_rt.model_format import ARCHITECTURES, POOLINGS, PREPROCESSES, RANDOM_WEIGHTS_SOURCE, Conv, Pool, layer_table
from nst_rt.network.models_dir import OFFLINE_OPTIONS

# The ImageNet weights torchvision publishes (the hash prefix in the name is checked on download).
WEIGHT_URLS = {
    "vgg16": "https://download.pytorch.org/models/vgg16-397923af.pth",
    "vgg19": "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",
}


def _missing_ancestors(path: Path) -> list[Path]:
    """``path`` and its ancestors that do not exist yet, deepest first."""
    missing = []
    while not path.exists() and path != path.parent:
        missing.append(path)
        path = path.parent
    return missing


def _fetch_published(arch: str) -> tuple[dict, str, str]:
    url = WEIGHT_URLS[arch]
    created = _missing_ancestors(Path(torch.hub.get_dir()) / "checkpoints")  # torch.hub makes them first
    try:
        state = torch.hub.load_state_dict_from_url(url, progress=True, check_hash=True, map_location="cpu")
    except Exception as exc:  # URLError, HTTPError, hash mismatch, ...
        for directory in created:  # a failed download leaves no empty cache directories behind
            try:
                directory.rmdir()
            except OSError:  # not empty (something else wrote there meanwhile) or already gone
                break
        raise ExportError(
            f"could not download the ImageNet {arch} weights from {url} ({type(exc).__name__}: {exc}); "
            f"without network access, pass {OFFLINE_OPTIONS}"
        ) from None
    cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(url).name
    return state, url, sha256_file(cached) if cached.is_file() else ""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_weights(arch: str, weights: Path | None = None,
                 random_seed: int | None = None) -> tuple[list[tuple[np.ndarray, np.ndarray]], str, str]:
    """Return ``[(weight, bias), ...]`` float32 per conv of the truncated net, the source, and its sha256.

    ``weights=None`` fetches torchvision's ImageNet weights through torch.hub's cache; ``random_seed``
    uses :func:`random_state_dict` instead (the sha256 is then of the tensors' bytes).
    """
    table = [layer for layer in layer_table(arch) if isinstance(layer, Conv)]
    if random_seed is not None:
        state = random_state_dict(arch, random_seed)
        source = f"{RANDOM_WEIGHTS_SOURCE} (seed {random_seed})"
        digest = hashlib.sha256(b"".join(t.numpy().tobytes() for t in state.values())).hexdigest()
    elif weights is None:
        state, source, digest = _fetch_published(arch)
    else:
        weights = Path(weights)
        if not weights.is_file():
            raise ExportError(f"weights file {weights} does not exist; pass a torchvision-format state dict")
        try:
            state = torch.load(weights, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise ExportError(
                f"{weights} is not a readable torch state dict ({type(exc).__name__}); "
                f"save one with torch.save(torchvision.models.{arch}().state_dict(), FILE)"
            ) from None
        source, digest = str(weights), sha256_file(weights)
    if not isinstance(state, dict):
        raise ExportError(f"{source} holds a {type(state).__name__}, not a state dict; save model.state_dict()")
    params = []
    for conv in table:
        pair = []
        for kind, shape in (("weight", (conv.out_channels, conv.in_channels, 3, 3)), ("bias", (conv.out_channels,))):
            key = f"features.{conv.index}.{kind}"
            tensor = state.get(key)
            if tensor is None:
                raise ExportError(f"{source} has no {key}: it is not a torchvision {arch} state dict")
            if tuple(tensor.shape) != shape:
                raise ExportError(
                    f"{source} does not fit {arch}: {key} has shape {tuple(tensor.shape)}, expected {shape} "
                    f"(is it the weights of another architecture?)"
                )
            pair.append(tensor.detach().to(torch.float32).numpy().copy())
        params.append((pair[0], pair[1]))
    return params, source, digest


def random_state_dict(arch: str, seed: int = 0) -> dict[str, torch.Tensor]:
    """Seeded random VGG weights in torchvision's state-dict format (features only).

    Convolutions use torchvision's initialisation (Kaiming normal, fan-out); biases are small random
    values rather than torchvision's zeros so that tests exercise them. The classifier is left out:
    it is never used, and loaders ignore it.
    """
    generator = torch.Generator().manual_seed(seed)
    state: dict[str, torch.Tensor] = {}
    index, channels = 0, 3
    for item in ARCHITECTURES[arch]:
        if item == "M":
            index += 1
            continue
        std = (2.0 / (item * 9)) ** 0.5
        state[f"features.{index}.weight"] = torch.randn(item, channels, 3, 3, generator=generator) * std
        state[f"features.{index}.bias"] = torch.randn(item, generator=generator) * 0.01
        index, channels = index + 2, item
    return state


class VGGFeatures(torch.nn.Module):
    """Plain-PyTorch truncated VGG: [0, 1] RGB image -> dict of every ReLU activation up to relu5_1.

    ``preprocess`` names the input transform of :data:`nst_rt.model_format.PREPROCESSES`, done here the
    plain way (channel reorder, scale, mean, std on the image, before any padding). This is the oracle
    the exported graphs are checked against.
    """

    def __init__(self, arch: str, params: list[tuple[np.ndarray, np.ndarray]], pooling: str = "avg",
                 preprocess: str = "torchvision"):
        super().__init__()
        if pooling not in POOLINGS:
            raise ExportError(f"unknown pooling {pooling!r}; choose one of {', '.join(POOLINGS)}")
        self.table = layer_table(arch)
        self.pooling = pooling
        self.weights = [torch.from_numpy(w) for w, _ in params]
        self.biases = [torch.from_numpy(b) for _, b in params]
        spec = PREPROCESSES[preprocess]
        self.reverse = spec.channel_order == "BGR"
        self.scale = spec.scale
        self.mean = torch.tensor(spec.mean).view(1, 3, 1, 1)
        self.std = torch.tensor(spec.std).view(1, 3, 1, 1)

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        x = image.flip(1) if self.reverse else image
        x = ((x * self.scale if self.scale != 1 else x) - self.mean) / self.std
        out, conv = {}, 0
        for layer in self.table:
            if isinstance(layer, Pool):
                x = F.avg_pool2d(x, 2) if self.pooling == "avg" else F.max_pool2d(x, 2)
            else:
                x = F.relu(F.conv2d(x, self.weights[conv], self.biases[conv], padding=1))
                out[layer.name] = x
                conv += 1
        return out
