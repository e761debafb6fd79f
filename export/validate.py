"""Check written graphs against the plain-PyTorch oracle before an export is declared good."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .graphs import GRAD_IMAGE, IMAGE, cotangent_name
from .vgg import VGGFeatures

FEATURES_TOLERANCE = 1e-5  # max |ort - torch| / max |torch|, per activation
VJP_TOLERANCE = 1e-5  # ||ort - autograd|| / ||autograd||, on identical activations


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
    rel_l2 = float(np.linalg.norm(grad - expected) / max(float(np.linalg.norm(expected)), 1e-30))
    checks.append(Check(GRAD_IMAGE, float(np.max(np.abs(grad - expected))), rel_l2, VJP_TOLERANCE))
    return checks
