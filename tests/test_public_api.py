"""The public API is what the README names, importable from ``nst_rt`` itself, whatever the folders."""

from __future__ import annotations

import re
from pathlib import Path

import nst_rt

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_every_name_the_readme_lists_is_public_and_importable():
    sentence = README.split("The public names, all importable from `nst_rt`:", 1)[1].split("More in", 1)[0]
    named = set(re.findall(r"`(\w+)`", sentence))
    assert {"stylize", "batch", "Stylizer", "Options", "Objective", "TiledObjective", "Network", "load_model",
            "minimize"} <= named
    for name in named:
        assert name in nst_rt.__all__, name
        assert getattr(nst_rt, name) is not None


def test_the_public_names_are_the_library_objects_and_the_exceptions_are_typed():
    from nst_rt.errors import NstError
    from nst_rt.objective.tiled import TiledObjective
    from nst_rt.pipeline.stylizer import Stylizer

    assert nst_rt.Stylizer is Stylizer and nst_rt.TiledObjective is TiledObjective
    assert issubclass(nst_rt.TiledObjective, nst_rt.Objective)
    errors = [getattr(nst_rt, n) for n in nst_rt.__all__ if n.endswith("Error")]
    assert errors and all(issubclass(e, NstError) for e in errors)
    assert callable(nst_rt.batch) and callable(nst_rt.stylize)  # functions, not the subpackages of those names
