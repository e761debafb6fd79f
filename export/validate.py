"""Check written graphs against the plain-PyTorch oracle before an export is declared good."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from nst_rt.model_format import (CONTENT_LOSS, CONTENT_WEIGHTS, STYLE_LOSS, STYLE_WEIGHTS, content_target_name,
                                 gram_target_name)

from .graphs import GRAD_IMAGE, IMAGE, cotangent_name
from .vgg import VGGFeatures

FEATURES_TOLERANCE = 1e-5  # max |ort - torch| / max |torch|, per activation
VJP_TOLERANCE = 1e-5  # ||ort - autograd|| / ||autograd||, on identical activations
LOSS_TOLERANCE = 1e-5  # |ort - torch| / |torch|, the objective graph's loss terms
# The objective graph computes its own activations: a ReLU whose pre-activation is within rounding of zero may
# take the other side than in torch, which moves the gradient by more than the VJP's identical-input tolerance.
OBJECTIVE_TOLERANCE = 1e-4
OBJECTIVE_GRADIENT = "objective_gradient"  # the objective graph's grad_image, as the log names it


@dataclass(frozen=True)
class Check:
    output: str
    max_abs_error: float
    relative_error: float
    tolerance: float

    @property
    def ok(self) -> bool:
        return bool(self.relative_error <= self.tolerance)  # False for NaN as well


def reference_vjp(reference: VGGFeatures, image: np.ndarray, cotangents: dict[str, np.ndarray]):
    """Activations and the image gradient from torch autograd (weights frozen)."""
    x = torch.from_numpy(image).requires_grad_(True)
    acts = reference(x)
    names = list(cotangents)
    (grad,) = torch.autograd.grad([acts[n] for n in names], [x], [torch.from_numpy(cotangents[n]) for n in names])
    return {n: a.detach().numpy() for n, a in acts.items()}, grad.numpy()


def validate_export(features_path: Path, vjp_path: Path, reference: VGGFeatures, height: int = 45,
                    width: int = 67, seed: int = 0) -> list[Check]:
    """Run both graphs in ONNX Runtime on a random image and compare them with torch.

    The VJP graph is fed torch's own activations: independently computed ReLU masks may differ where a
    pre-activation lies within float rounding of zero, which says nothing about the graph.
    """
    import onnxruntime as ort

    rng = np.random.default_rng(seed)
    image = rng.random((1, 3, height, width), dtype=np.float32)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    features = ort.InferenceSession(str(features_path), options, providers=["CPUExecutionProvider"])
    vjp = ort.InferenceSession(str(vjp_path), options, providers=["CPUExecutionProvider"])

    names = [o.name for o in features.get_outputs()]
    ort_acts = dict(zip(names, features.run(None, {IMAGE: image})))
    cotangents = {n: rng.standard_normal(a.shape, dtype=np.float32) for n, a in ort_acts.items()}
    with torch.no_grad():
        torch_acts = {n: a.numpy() for n, a in reference(torch.from_numpy(image)).items()}
    checks = []
    for n in names:
        err = float(np.max(np.abs(ort_acts[n] - torch_acts[n])))
        checks.append(Check(n, err, err / max(float(np.max(np.abs(torch_acts[n]))), 1e-30), FEATURES_TOLERANCE))

    acts, expected = reference_vjp(reference, image, cotangents)
    feeds = {**acts, **{cotangent_name(n): c for n, c in cotangents.items()}}
    (grad,) = vjp.run([GRAD_IMAGE], feeds)
    checks.append(Check(GRAD_IMAGE, float(np.max(np.abs(grad - expected))), _relative(grad, expected), VJP_TOLERANCE))
    return checks


def _relative(got: np.ndarray, expected: np.ndarray) -> float:
    return float(np.linalg.norm(got - expected) / max(float(np.linalg.norm(expected)), 1e-30))


def validate_objective(objective_path: Path, reference: VGGFeatures, style_layers, content_layers,
                       height: int = 45, width: int = 67, seed: int = 1) -> list[Check]:
    """Run the objective graph on a random image, random targets and weights, and compare its loss terms and
    gradient with torch autograd of the same recipe (nst_rt.objective.losses) on the same weights."""
    import onnxruntime as ort

    rng = np.random.default_rng(seed)
    image, other = (rng.random((1, 3, height, width), dtype=np.float32) for _ in range(2))
    style_weights = rng.uniform(0.5, 2.0, len(style_layers)).astype(np.float32)
    content_weights = rng.uniform(0.5, 2.0, len(content_layers)).astype(np.float32)

    def gram(a):
        flat = a.reshape(a.shape[1], -1)
        return flat @ flat.T / flat.numel()

    with torch.no_grad():
        targets = reference(torch.from_numpy(other))
    x = torch.from_numpy(image).requires_grad_(True)
    acts = reference(x)
    style = sum(w * torch.sum((gram(acts[l]) - gram(targets[l])) ** 2) / acts[l].shape[1] ** 2
                for w, l in zip(style_weights.tolist(), style_layers))
    content = sum(w * torch.mean((acts[l] - targets[l]) ** 2) for w, l in zip(content_weights.tolist(), content_layers))
    (grad,) = torch.autograd.grad(style + content, [x])

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(objective_path), options, providers=["CPUExecutionProvider"])
    feeds = {IMAGE: image, STYLE_WEIGHTS: style_weights, CONTENT_WEIGHTS: content_weights,
             **{gram_target_name(l): gram(targets[l]).numpy() for l in style_layers},
             **{content_target_name(l): targets[l].numpy() for l in content_layers}}
    got_style, got_content, got_grad = session.run([STYLE_LOSS, CONTENT_LOSS, GRAD_IMAGE], feeds)
    checks = []
    for name, got, expected in ((STYLE_LOSS, got_style, style), (CONTENT_LOSS, got_content, content)):
        expected = float(expected.detach())
        checks.append(Check(name, abs(float(got) - expected), abs(float(got) - expected) / max(abs(expected), 1e-30),
                            LOSS_TOLERANCE))
    expected = grad.numpy()
    checks.append(Check(OBJECTIVE_GRADIENT, float(np.max(np.abs(got_grad - expected))),
                        _relative(got_grad, expected), OBJECTIVE_TOLERANCE))
    return checks
