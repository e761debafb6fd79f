"""Shared fixtures: seeded random VGG weights in torchvision's format, models exported from them, the
plain-PyTorch network on the same weights, a home, data directory and working directory of each test's own
(autouse), and a recorder of the optimiser's calls.

Exports are made once per test session (a few seconds each) and shared read-only by every test.
"""

from __future__ import annotations

from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
# The caller's home and working directory, as the test session found them: no test may see either.
CALLER_HOME = Path.home()
CALLER_CWD = Path.cwd()


@pytest.fixture(scope="session")
def weights_file(tmp_path_factory):
    """``weights_file(arch, seed=0) -> Path`` of a torchvision-format state dict with seeded random weights.

    The values are rounded to float16 (and stored as float32), so that an export of either weights dtype
    computes with exactly the weights the torch oracle (``reference``) uses.
    """
    import torch

    from nst_rt.export.vgg import random_state_dict

    cache: dict[tuple[str, int], Path] = {}
    root = tmp_path_factory.mktemp("weights")

    def make(arch: str = "vgg19", seed: int = 0) -> Path:
        if (arch, seed) not in cache:
            path = root / f"{arch}-seed{seed}.pth"
            torch.save({k: v.half().float() for k, v in random_state_dict(arch, seed).items()}, path)
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
def export_path(models_dir):
    """``export_path(arch="vgg19", pooling="avg") -> Path`` of that export's own directory (``vgg19``, ``vgg19-max``)."""

    def path(arch: str = "vgg19", pooling: str = "avg") -> Path:
        return models_dir(arch, pooling) / (arch if pooling == "avg" else f"{arch}-{pooling}")

    return path


@pytest.fixture(scope="session")
def vgg19(models_dir):
    """The ModelInfo of the random-weights VGG-19 export with average pooling."""
    from nst_rt.network.model import load_model

    return load_model("vgg19", models_dir())


@pytest.fixture(scope="session")
def reference(weights_file):
    """``reference(arch="vgg19", pooling="avg", dtype=float32)``: the plain-PyTorch truncated VGG on the same weights."""
    import torch

    from nst_rt.export.reference import load_network

    def make(arch: str = "vgg19", pooling: str = "avg", dtype=torch.float32):
        return load_network(arch, weights_file(arch), dtype, pooling)

    return make


@pytest.fixture(scope="session")
def models(models_dir):
    """The models directory holding the random-weights VGG-19 export with average pooling."""
    return models_dir("vgg19", "avg")


@pytest.fixture
def isolated(own_home, monkeypatch, tmp_path) -> Path:
    """As ``own_home``, with the working directory the test's own ``tmp_path`` (returned) and the per-user data
    directory ``tmp_path / "user-data"``, for tests that look at what a run leaves there."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "user-data"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def minimize_calls(monkeypatch):
    """Records every call of nst_rt.optimize.minimize (x0 and keyword arguments) and passes it through."""
    import numpy as np

    import nst_rt.optimize

    calls = []
    real = nst_rt.optimize.minimize

    def wrapper(fun, x0, **kwargs):
        calls.append({"x0": np.array(x0, copy=True), **kwargs})
        return real(fun, x0, **kwargs)

    monkeypatch.setattr(nst_rt.optimize, "minimize", wrapper)
    return calls


@pytest.fixture
def evaluation_budget(monkeypatch):
    """Caps the optimiser's function evaluations at ``budget["maxfun"]`` (4 unless changed), so that a run
    stops before its iterations."""
    import nst_rt.optimize

    budget = {"maxfun": 4}
    real = nst_rt.optimize.minimize

    def capped(fun, x0, **kwargs):
        options = {**kwargs.get("options", {}), "maxfun": budget["maxfun"]}
        return real(fun, x0, **{**kwargs, "options": options})

    monkeypatch.setattr(nst_rt.optimize, "minimize", capped)
    return budget


@pytest.fixture(autouse=True)
def own_home(monkeypatch, tmp_path_factory):
    """Every test runs as a user of its own: an empty home, per-user data and config directories and working
    directory of the test's own, and no ``NST_RT_*`` variable of the caller's, so that no model, setting or file
    of the person running the tests is found (a test that needs one sets it itself). The precision probe's
    cache is one directory for the whole test session (it records measurements, not choices)."""
    import os

    own = tmp_path_factory.mktemp("own")
    for name in ("home", "data", "config", "cwd"):
        (own / name).mkdir()
    for key in [k for k in os.environ if k.startswith("NST_RT_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("HOME", str(own / "home"))
    monkeypatch.setenv("XDG_DATA_HOME", str(own / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(own / "config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "user-cache"))
    monkeypatch.chdir(own / "cwd")
    return own
