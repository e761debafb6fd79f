"""Every test runs isolated from the person running the tests: their models, environment and working directory
(the autouse ``own_home`` fixture in conftest.py)."""

from __future__ import annotations

import os
from pathlib import Path

from conftest import CALLER_CWD, CALLER_HOME

from nst_rt.network.models_dir import default_dirs, export_dir, user_models_dir


def test_no_model_directory_of_the_caller_is_searched_or_written():
    for directory in [*default_dirs(), export_dir(), user_models_dir()]:
        assert not directory.is_relative_to(CALLER_HOME), directory
        assert not directory.is_relative_to(CALLER_CWD), directory


def test_a_model_in_the_home_directory_is_not_found_by_name(tmp_path):
    from nst_rt.errors import ModelNotFoundError
    from nst_rt.network.model import load_model

    assert Path.home() != CALLER_HOME and Path.cwd() != CALLER_CWD
    assert not any(key.startswith("NST_RT_") for key in os.environ)
    try:
        load_model("vgg19")
    except ModelNotFoundError as error:
        assert str(CALLER_HOME) not in str(error)
    else:
        raise AssertionError("a model named vgg19 was found outside the test's own directories")
