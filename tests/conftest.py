"""Shared fixtures: seeded random VGG weights in torchvision's format, and models exported from them.

Exports are made once per test session (a few seconds each) and shared read-only by every test.
"""

from __future__ import annotations

from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture(scope="session")
def weights_file(tmp_path_factory):
    """``weights_file(arch, seed=0) -> Path`` of a torchvision-format state dict with seeded random weights."""
    import torch

    from nst_rt.export.vgg import random_state_dict

    cache: dict[tuple[str, int], Path] = {}
    root = tmp_path_factory.mktemp("weights")

    def make(arch: str = "vgg19", seed: int = 0) -> Path:
        if (arch, seed) not in cache:
            path = root / f"{arch}-seed{seed}.pth"
            torch.save(random_state_dict(arch, seed), path)
            cache[arch, seed] = path
        return cache[arch, seed]

    return make


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory, weights_file):
    """``models_dir(arch="vgg19", pooling="avg") -> Path`` of a models directory holding that export."""
    from nst_rt.export import export_model

    root = tmp_path_factory.mktemp("models")
    done: set[tuple[str, str]] = set()

    def make(arch: str = "vgg19", pooling: str = "avg") -> Path:
        if (arch, pooling) not in done:
            export_model(arch, root, weights=weights_file(arch), pooling=pooling)
            done.add((arch, pooling))
        return root

    return make


@pytest.fixture(scope="session")
def vgg19(models_dir):
    """The ModelInfo of the random-weights VGG-19 export with average pooling."""
    from nst_rt.model import load_model

    return load_model("vgg19", models_dir())


@pytest.fixture(scope="session")
def reference(weights_file):
    """``reference(arch="vgg19", pooling="avg", dtype=float32)``: the plain-PyTorch truncated VGG on the same weights."""
    import torch

    from nst_rt.export.vgg import VGGFeatures, load_weights

    def make(arch: str = "vgg19", pooling: str = "avg", dtype=torch.float32):
        params, _, _ = load_weights(arch, weights_file(arch))
        model = VGGFeatures(arch, params, pooling)
        model.weights = [w.to(dtype) for w in model.weights]
        model.biases = [b.to(dtype) for b in model.biases]
        model.mean, model.std = model.mean.to(dtype), model.std.to(dtype)
        return model

    return make


@pytest.fixture(scope="session")
def models(models_dir):
    """The models directory holding the random-weights VGG-19 export with average pooling."""
    return models_dir("vgg19", "avg")


@pytest.fixture
def isolated(monkeypatch, tmp_path):
    """No $NST_RT_MODELS, ./models or per-user models of the caller's leak in; the working directory is the test's own."""
    monkeypatch.delenv("NST_RT_MODELS", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "user-data"))
    monkeypatch.chdir(tmp_path)
