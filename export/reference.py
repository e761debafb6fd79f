"""Plain-PyTorch Gatys style transfer: the reference that nst-rt's stylization is held against.

The same recipe as nst-rt (content: mean squared error on relu4_2; style: mean squared Gram error
averaged over relu1_1..relu5_1, Gram = F F^T / (C H W); total = content_weight * content + style_weight
* style), the same truncated VGG on the same weights (``nst_rt.export.vgg.VGGFeatures``), the same
image loading and Lanczos resizing, optimised with torch's own L-BFGS (history 100, strong Wolfe) from
the content image, unbounded, clamped when saved. The parity tests and ``benchmarks/bench.py`` hold nst-rt
against it; the tests also take its Gram matrix and layer choices as their oracle.

    python -m nst_rt.export.reference CONTENT STYLE OUTPUT --weights FILE [--size 256] [--iterations 100]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from nst_rt.io import image_load

from nst_rt.io import image_save

from nst_rt.io import images

from nst_rt.io import layout
from .vgg import VGGFeatures, load_weights

CONTENT_LAYERS = ("relu4_2",)
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


def gram(features: torch.Tensor) -> torch.Tensor:
    c = features.shape[1]
    flat = features.reshape(c, -1)
    return flat @ flat.T / flat.numel()


class ReferenceLoss:
    """total(x) for a (1, 3, H, W) tensor, with targets from the content and style images."""

    def __init__(self, network: VGGFeatures, content: np.ndarray, style: np.ndarray,
                 content_weight: float = 1.0, style_weight: float = 1e6, dtype=torch.float32):
        self.network, self.dtype = network, dtype
        self.content_weight, self.style_weight = content_weight, style_weight
        with torch.no_grad():
            acts = network(self.tensor(content))
            self.content_targets = {l: acts[l] for l in CONTENT_LAYERS}
            style_acts = network(self.tensor(style))
            self.style_targets = {l: gram(style_acts[l]) for l in STYLE_LAYERS}

    def tensor(self, image: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(layout.to_nchw(image)).to(self.dtype)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        acts = self.network(x)
        content = sum(torch.mean((acts[l] - t) ** 2) for l, t in self.content_targets.items())
        style = sum(torch.mean((gram(acts[l]) - t) ** 2) for l, t in self.style_targets.items())
        return self.content_weight * content + self.style_weight * style / len(STYLE_LAYERS)


def load_network(arch: str, weights: Path, dtype=torch.float32, pooling: str = "avg") -> VGGFeatures:
    """The truncated VGG on a torchvision-format weights file, computing in ``dtype``."""
    params, _, _ = load_weights(arch, weights)
    network = VGGFeatures(arch, params, pooling)
    network.weights = [w.to(dtype) for w in network.weights]
    network.biases = [b.to(dtype) for b in network.biases]
    network.mean, network.std = network.mean.to(dtype), network.std.to(dtype)
    return network


def prepare(content_path, style_path, size: int, style_scale: float = 1.0):
    content = images.resize_longest(image_load.load_image(content_path), size)
    style = images.resize_longest(image_load.load_image(style_path), max(1, round(size * style_scale)))
    return content, style


def stylize(loss: ReferenceLoss, content: np.ndarray, iterations: int) -> np.ndarray:
    """torch.optim.LBFGS from the content image; returns the (H, W, 3) image as saved (clamped)."""
    x = loss.tensor(content).requires_grad_(True)
    # Tolerances 0: run exactly ``iterations`` iterations, as nst-rt does (random-weight losses are tiny).
    optimizer = torch.optim.LBFGS([x], lr=1, max_iter=iterations, max_eval=iterations * 2 + 20, history_size=100,
                                  tolerance_grad=0.0, tolerance_change=0.0, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        value = loss(x)
        value.backward()
        return value

    optimizer.step(closure)
    return np.clip(layout.from_nchw(x.detach().numpy()), 0, 1)


def score(saved: np.ndarray, content: np.ndarray, style: np.ndarray, network64: VGGFeatures,
          content_weight: float = 1.0, style_weight: float = 1e6) -> float:
    """The objective of an image as saved (8-bit, clamped), in float64."""
    loss = ReferenceLoss(network64, content, style, content_weight, style_weight, dtype=torch.float64)
    with torch.no_grad():
        return float(loss(loss.tensor(images.to_uint8(saved).astype(np.float32) / 255)))


def main() -> None:
    parser = argparse.ArgumentParser(description="Plain-PyTorch reference stylization")
    parser.add_argument("content")
    parser.add_argument("style")
    parser.add_argument("output", type=Path)
    parser.add_argument("--weights", type=Path, required=True)
    parser.add_argument("--arch", default="vgg19")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    content, style = prepare(args.content, args.style, args.size)
    loss = ReferenceLoss(load_network(args.arch, args.weights), content, style)
    result = stylize(loss, content, args.iterations)
    image_save.save_image(result, args.output, overwrite=True)
    print(f"wrote {args.output} in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
