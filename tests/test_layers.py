"""The runtime's layers call one way: the import-linter contracts in pyproject.toml, and no import cycles."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

grimp = pytest.importorskip("grimp")

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = (ROOT / "pyproject.toml").read_text()
LAYERS = [line.strip().strip('",') for line in
          PYPROJECT.split("layers = [", 1)[1].split("]", 1)[0].strip().splitlines()]


@pytest.fixture(scope="module")
def graph():
    return grimp.build_graph("nst_rt", include_external_packages=True)


def test_the_import_linter_contracts_are_kept():
    lint = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    done = subprocess.run([lint, "--config", str(ROOT / "pyproject.toml")], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def test_every_subpackage_has_a_layer_and_the_architecture_page_names_it():
    in_layers = {name for layer in LAYERS for name in re.split(r"\s*\|\s*", layer)}
    folders = {f"nst_rt.{p.parent.name}" for p in (ROOT / "nst_rt").glob("*/__init__.py")}
    modules = {f"nst_rt.{p.stem}" for p in (ROOT / "nst_rt").glob("*.py") if p.stem not in ("__init__", "__main__")}
    assert folders | modules == in_layers
    page = (ROOT / "docs" / "architecture.md").read_text()
    for name in in_layers:
        path = name.replace(".", "/") + ("" if name in modules else "/")
        assert path.rstrip("/") in page, f"docs/architecture.md does not name {path}"


def _illegal(graph):
    layers = [grimp.Layer(*re.split(r"\s*\|\s*", layer), independent=True) for layer in LAYERS]
    return graph.find_illegal_dependencies_for_layers(layers=layers)


def test_an_upward_import_would_be_caught(graph):
    assert _illegal(graph) == set()
    graph.add_import(importer="nst_rt.system.interrupts", imported="nst_rt.cli.app")  # the negative control
    try:
        found = _illegal(graph)
        assert any(d.importer == "nst_rt.system" and d.imported == "nst_rt.cli" for d in found)
    finally:
        graph.remove_import(importer="nst_rt.system.interrupts", imported="nst_rt.cli.app")


def _cycles(graph) -> list[list[str]]:
    modules = sorted(m for m in graph.modules if m.startswith("nst_rt"))
    # A package imports its own submodules to register or re-export them; that is not a cycle of two concerns.
    edges = {m: sorted(i for i in graph.find_modules_directly_imported_by(m)
                       if i.startswith("nst_rt") and not m.startswith(i + ".")) for m in modules}
    state, stack, found = {}, [], []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for n in edges.get(m, ()):
            if state.get(n) == 1:
                found.append(stack[stack.index(n):] + [n])
            elif n not in state:
                visit(n)
        stack.pop()
        state[m] = 2

    for m in modules:
        if m not in state:
            visit(m)
    return found


def test_no_module_imports_one_that_imports_it_back(graph):
    assert _cycles(graph) == []
    graph.add_import(importer="nst_rt.batching.items", imported="nst_rt.batching.api")  # the negative control
    try:
        assert _cycles(graph)
    finally:
        graph.remove_import(importer="nst_rt.batching.items", imported="nst_rt.batching.api")


def test_no_module_is_over_300_lines():
    long = {p.relative_to(ROOT).as_posix(): n for folder in ("nst_rt", "export") for p in (ROOT / folder).rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 300}
    assert long == {}


@pytest.mark.parametrize("module", ["nst_rt.pipeline.options", "nst_rt.cli"])
def test_the_defaults_and_the_cli_start_without_heavy_imports(module):
    # `nst-rt --version` and `--help` pay only for what they import: Options and the command declarations
    # must not pull in numpy, Pillow, ONNX Runtime or the pipeline (the startup time is in docs/performance.md).
    code = (f"import sys, {module}\n"
            "heavy = {'numpy', 'PIL', 'onnxruntime', 'av', 'cv2', 'ray', 'torch'}\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & heavy), "
            "'nst_rt.pipeline.stylizer' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["[]", "False"]
