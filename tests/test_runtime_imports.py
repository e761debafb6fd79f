"""The runtime needs numpy + onnxruntime only: torch, onnx, scipy and torchvision must never be imported by it."""

from __future__ import annotations

import json
import subprocess
import sys

FORBIDDEN = ("torch", "onnx", "scipy", "torchvision")

RUNTIME_SCRIPT = r"""
import json, sys
models_dir = sys.argv[1]
import nst_rt, nst_rt.network.session, nst_rt.objective.whole, nst_rt.io.images, nst_rt.io.image_load, nst_rt.io.image_save, nst_rt.io.layout
import nst_rt.optimize, nst_rt.optimize._lbfgs, nst_rt.optimize._adam
import numpy as np
from nst_rt.network.model import load_model
from nst_rt.network.session import Network
network = Network(load_model("vgg19", models_dir), "cpu", threads=1)
image = np.random.default_rng(0).random((1, 3, 20, 24))
acts = network.forward(image)
cot = network.cotangents({"relu3_1"})
cot["relu3_1"][...] = 1.0
grad = network.backward()
assert grad.shape == (1, 3, 20, 24) and float(np.abs(grad).sum()) > 0
print(json.dumps({"modules": sorted(sys.modules)}))
"""

LIGHT_SCRIPT = r"""
import json, sys
import nst_rt
print(json.dumps(sorted(sys.modules)))
"""


def _run(script: str, *args: str) -> str:
    result = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def _top_level(modules) -> set[str]:
    return {name.split(".")[0] for name in modules}


def test_runtime_does_not_import_export_dependencies(models_dir):
    out = json.loads(_run(RUNTIME_SCRIPT, str(models_dir())))
    loaded = _top_level(out["modules"])
    assert "onnxruntime" in loaded and "numpy" in loaded  # the run really happened
    assert "nst_rt.network.session" in out["modules"] and "nst_rt.optimize._lbfgs" in out["modules"]
    for name in FORBIDDEN:
        assert name not in loaded, f"{name} was imported by the runtime"
    assert "nst_rt.export" not in out["modules"]


def test_import_nst_rt_is_light():
    loaded = _top_level(json.loads(_run(LIGHT_SCRIPT)))
    for name in ("onnxruntime", "numpy", "PIL", *FORBIDDEN):
        assert name not in loaded, f"import nst_rt imported {name}"


def test_the_library_leaves_the_cli_dependencies_alone(models_dir):
    """typer and rich (with pydantic and Pygments) are the CLI's and the progress display's: a library run
    without a progress display imports none of them (docs/footprint.md)."""
    script = RUNTIME_SCRIPT.replace("import nst_rt,", "import nst_rt.pipeline.stylizer, nst_rt.batching, nst_rt,")
    out = json.loads(_run(script, str(models_dir())))
    loaded = _top_level(out["modules"])
    assert "nst_rt.pipeline.stylizer" in out["modules"] and "onnxruntime" in loaded
    for name in ("typer", "rich", "pydantic", "pygments", "click"):
        assert name not in loaded, f"the library imported {name}"
