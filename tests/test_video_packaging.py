"""The video extra: what it installs, that every package is shipped, and the message when it is missing."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_video_extra_brings_pyav_and_headless_opencv():
    requires = metadata.requires("nst-rt") or []
    video = {re.split(r"[\s;<>=!~\[(]", r, maxsplit=1)[0].lower() for r in requires
             if re.search(r"extra == ['\"]video['\"]", r)}
    assert video == {"av", "opencv-python-headless"}


def test_every_package_of_the_source_tree_is_shipped():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    shipped = set(config["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "nst_rt").rglob("__init__.py")}
    assert found <= shipped, sorted(found - shipped)


@pytest.mark.parametrize("blocked, package", [("av", "av"), ("cv2", "opencv-python-headless")])
def test_missing_video_package_names_the_extra(blocked, package):
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        f"        if name == {blocked!r} or name.startswith({blocked!r} + '.'):\n"
        "            raise ImportError(name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "from nst_rt.video import available, require\n"
        "assert not available()\n"
        "from nst_rt.errors import MissingDependencyError\n"
        "try:\n"
        f"    require({blocked!r})\n"
        "except MissingDependencyError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert package in out.stdout and ".[video]" in out.stdout



def test_video_command_without_the_extra_is_one_line_naming_it(tmp_path):
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name in ('av', 'cv2') or name.startswith(('av.', 'cv2.')):\n"
        "            raise ImportError(name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "from nst_rt.cli import main\n"
        "sys.argv = ['nst-rt', 'video', 'in.mp4', 'style.png', '-o', 'out.mp4']\n"
        "main()\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert out.returncode == 1, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nst-rt: error: ") and ".[video]" in lines[0], out.stderr
    assert list(tmp_path.iterdir()) == []
