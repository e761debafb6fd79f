"""Packaging: the runtime's dependency closure has no torch, and the package metadata is what it claims."""

from __future__ import annotations

import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = {"torch", "torchvision", "onnx", "scipy", "nvidia-cudnn-cu12", "triton"}


def _name(requirement: str) -> str:
    return re.split(r"[\s;<>=!~\[(]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _closure(requirements: list[str]) -> set[str]:
    """Installed distributions that ``requirements`` pull in, following each one's own non-extra requirements."""
    seen: set[str] = set()
    todo = [_name(r) for r in requirements]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        todo += [_name(r) for r in requires if "extra ==" not in r]
    return seen


def _runtime_requirements() -> list[str]:
    requires = metadata.requires("nst-rt") or []
    return [r for r in requires if "extra ==" not in r or re.search(r"extra == ['\"]cpu['\"]", r)]


def test_runtime_closure_installs_no_torch():
    runtime = _closure(_runtime_requirements())
    assert "onnxruntime" in runtime and "numpy" in runtime  # the closure was really followed
    assert not runtime & HEAVY, sorted(runtime & HEAVY)


def test_export_extra_brings_torch_and_onnx_but_not_torchvision():
    requires = metadata.requires("nst-rt") or []
    export = {_name(r) for r in requires if re.search(r"extra == ['\"]export['\"]", r)}
    assert {"torch", "onnx"} <= export and "torchvision" not in export


def test_version_comes_from_package_metadata():
    import nst_rt

    assert nst_rt.__version__ == metadata.version("nst-rt")
    out = subprocess.run([sys.executable, "-m", "nst_rt", "--version"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == f"nst-rt {nst_rt.__version__}"


def test_runtime_says_which_extra_to_install_without_onnxruntime():
    # Hide onnxruntime from the import system, as on a machine where neither extra is installed.
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'onnxruntime' or name.startswith('onnxruntime.'):\n"
        "            raise ImportError('No module named onnxruntime')\n"
        "sys.meta_path.insert(0, Block())\n"
        "from nst_rt.cli import main\n"
        "sys.argv = ['nst-rt', 'info']\n"
        "main()\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "pip install -e '.[cpu]'" in lines[0] and "gpu" in lines[0], out.stderr
    assert "nst-rt[" not in lines[0]  # nst-rt is on no package index


def test_runtime_never_imports_heavy_packages_at_module_level():
    pattern = re.compile(r"^(import|from) (torch|torchvision|onnx|scipy)\b", re.M)
    offenders = [str(p) for p in (ROOT / "nst_rt").rglob("*.py") if pattern.search(p.read_text())]
    assert not offenders


def _test_requirements() -> list[str]:
    """Every requirement `pip install -e '.[test]'` names: the base dependencies and the test extra, with the
    extras it names of nst-rt itself followed."""
    import pytest

    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras, todo, out = project["optional-dependencies"], ["test"], list(project["dependencies"])
    while todo:
        for requirement in extras[todo.pop()]:
            own = re.fullmatch(r"nst-rt\[(.+)\]", requirement)
            todo += own.group(1).split(",") if own else []
            out += [] if own else [requirement]
    return out


def test_constraints_pin_every_package_the_tests_install():
    from packaging.requirements import Requirement

    pins = dict(line.split("==") for line in (ROOT / ".ci" / "constraints.txt").read_text().splitlines()
                if line and not line.startswith("#"))
    requirements = [Requirement(r) for r in _test_requirements()]
    assert {"pytest", "pytest-timeout", "onnxruntime", "torch"} <= {r.name for r in requirements}
    for requirement in requirements:
        assert requirement.name in pins, f"{requirement.name} is not pinned in .ci/constraints.txt"
        assert requirement.specifier.contains(pins[requirement.name]), (requirement, pins[requirement.name])
