"""VGG layer tables, weights loading, and a plain-PyTorch reference of the truncated network.

torchvision's VGG keeps its convolutions in ``features`` (``features.{i}.weight`` / ``.bias``); the
tables below reproduce torchvision's ``cfgs`` so that its published state dicts load without
torchvision itself (which cannot be imported next to a CPU-only torch build).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from nst_rt.errors import ExportError
from nst_rt.model_format import POOLINGS
from nst_rt.models_dir import OFFLINE_OPTIONS

# torchvision's configurations "D" (VGG-16) and "E" (VGG-19): channel counts, "M" for a pooling layer.
CONFIGS = {
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
              512, 512, 512, 512, "M"],
}
# The ImageNet weights torchvision publishes (the hash prefix in the name is checked on download).
WEIGHT_URLS = {
    "vgg16": "https://download.pytorch.org/models/vgg16-397923af.pth",
    "vgg19": "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",
}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DEEPEST_LAYER = "relu5_1"  # the deepest layer any stylization uses; everything after it is dropped


@dataclass(frozen=True)
class Conv:
    name: str  # the ReLU that follows it, e.g. "relu3_2"
    index: int  # position in torchvision's ``features`` Sequential
    in_channels: int
    out_channels: int


@dataclass(frozen=True)
class Pool:
    name: str  # e.g. "pool2"


def layer_table(arch: str) -> list[Conv | Pool]:
    """The truncated network as a list of conv(+ReLU) and pooling layers, ending at relu5_1."""
    if arch not in CONFIGS:
        raise ExportError(f"unknown architecture {arch!r}; choose one of {', '.join(CONFIGS)}")
    layers: list[Conv | Pool] = []
    index, block, n, channels = 0, 1, 1, 3
    for item in CONFIGS[arch]:
        if item == "M":
            layers.append(Pool(f"pool{block}"))
            index, block, n = index + 1, block + 1, 1
        else:
            layers.append(Conv(f"relu{block}_{n}", index, channels, item))
            index, n, channels = index + 2, n + 1, item  # conv and ReLU take one slot each
            if layers[-1].name == DEEPEST_LAYER:
                return layers
    raise AssertionError("unreachable: every table reaches relu5_1")


def relu_names(arch: str) -> list[str]:
    return [layer.name for layer in layer_table(arch) if isinstance(layer, Conv)]


def _fetch_published(arch: str) -> tuple[dict, str, str]:
    url = WEIGHT_URLS[arch]
    try:
        state = torch.hub.load_state_dict_from_url(url, progress=True, check_hash=True, map_location="cpu")
    except Exception as exc:  # URLError, HTTPError, hash mismatch, ...
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
        source = f"random weights (seed {random_seed})"
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
    for item in CONFIGS[arch]:
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

    This is the oracle the exported graphs are checked against.
    """

    def __init__(self, arch: str, params: list[tuple[np.ndarray, np.ndarray]], pooling: str = "avg"):
        super().__init__()
        if pooling not in POOLINGS:
            raise ExportError(f"unknown pooling {pooling!r}; choose avg or max")
        self.table = layer_table(arch)
        self.pooling = pooling
        self.weights = [torch.from_numpy(w) for w, _ in params]
        self.biases = [torch.from_numpy(b) for _, b in params]
        self.mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        self.std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        x = (image - self.mean) / self.std
        out, conv = {}, 0
        for layer in self.table:
            if isinstance(layer, Pool):
                x = F.avg_pool2d(x, 2) if self.pooling == "avg" else F.max_pool2d(x, 2)
            else:
                x = F.relu(F.conv2d(x, self.weights[conv], self.biases[conv], padding=1))
                out[layer.name] = x
                conv += 1
        return out
