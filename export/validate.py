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
# The objective graph's gradient against the validated VJP graph on the same activations (its own decisions).
OBJECTIVE_TOLERANCE = 1e-5
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


def validate_objective(objective_path: Path, features_path: Path, vjp_path: Path, reference: VGGFeatures,
                       style_layers, content_layers, height: int = 45, width: int = 67,
                       seed: int = 1) -> list[Check]:
    """Run the objective graph on a random image, random targets and weights, and compare its loss terms with
    torch (the recipe of nst_rt.objective.losses on the same weights) and its gradient with torch's loss
    cotangents taken through the validated VJP graph.

    The gradient is compared on ONNX Runtime's own activations (the features graph's), not torch's: the
    objective graph computes its activations itself, and where a pre-activation lies within rounding of zero,
    or two values of a max-pooling window within rounding of each other, its branch may differ from torch's.
    At about one random image in ten such a flip moved the gradient by 1e-3 relative with max pooling, though
    both gradients are right for their branch. The branch ONNX Runtime took is the one to check.
    """
    import onnxruntime as ort

    rng = np.random.default_rng(seed)
    image, other = (rng.random((1, 3, height, width), dtype=np.float32) for _ in range(2))
    style_weights = rng.uniform(0.5, 2.0, len(style_layers)).astype(np.float32)
    content_weights = rng.uniform(0.5, 2.0, len(content_layers)).astype(np.float32)

    def gram(a):
        flat = a.reshape(a.shape[1], -1)
        return flat @ flat.T / flat.numel()

    def losses(acts):
        style = sum(w * torch.sum((gram(acts[l]) - gram(targets[l])) ** 2) / acts[l].shape[1] ** 2
                    for w, l in zip(style_weights.tolist(), style_layers))
        content = sum(w * torch.mean((acts[l] - targets[l]) ** 2)
                      for w, l in zip(content_weights.tolist(), content_layers))
        return style, content

    with torch.no_grad():
        targets = reference(torch.from_numpy(other))
        style, content = losses(reference(torch.from_numpy(image)))

    options = ort.SessionOptions()
    options.log_severity_level = 3
    sessions = {path: ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
                for path in (objective_path, features_path, vjp_path)}
    feeds = {IMAGE: image, STYLE_WEIGHTS: style_weights, CONTENT_WEIGHTS: content_weights,
             **{gram_target_name(l): gram(targets[l]).numpy() for l in style_layers},
             **{content_target_name(l): targets[l].numpy() for l in content_layers}}
    got_style, got_content, got_grad = sessions[objective_path].run([STYLE_LOSS, CONTENT_LOSS, GRAD_IMAGE], feeds)

    features = sessions[features_path]
    names = [o.name for o in features.get_outputs()]
    ort_acts = dict(zip(names, features.run(None, {IMAGE: image})))
    used = {l: torch.from_numpy(ort_acts[l]).requires_grad_(True) for l in {*style_layers, *content_layers}}
    cotangents = dict(zip(used, torch.autograd.grad(sum(losses(used)), list(used.values()))))
    vjp_feeds = {**ort_acts, **{cotangent_name(n): np.zeros_like(a) for n, a in ort_acts.items()},
                 **{cotangent_name(n): c.numpy() for n, c in cotangents.items()}}
    (expected,) = sessions[vjp_path].run([GRAD_IMAGE], vjp_feeds)

    checks = []
    for name, got, want in ((STYLE_LOSS, got_style, style), (CONTENT_LOSS, got_content, content)):
        want = float(want)
        checks.append(Check(name, abs(float(got) - want), abs(float(got) - want) / max(abs(want), 1e-30),
                            LOSS_TOLERANCE))
    checks.append(Check(OBJECTIVE_GRADIENT, float(np.max(np.abs(got_grad - expected))),
                        _relative(got_grad, expected), OBJECTIVE_TOLERANCE))
    return checks
