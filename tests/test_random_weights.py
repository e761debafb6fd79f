"""A model of random weights (``nst-rt export ... --random-weights SEED``) is marked as such: ``info`` says so, and
a run at the normalised defaults says once, in one line, which settings keep the content recognisable."""

from __future__ import annotations

import warnings

import pytest
from typer.testing import CliRunner

import nst_rt
from nst_rt.cli import app
from nst_rt.errors import RandomWeightsNotice
from nst_rt.network.model import load_model
from nst_rt.pipeline.options import RANDOM_WEIGHTS_SETTINGS
from synthetic import gradient, noise, save

runner = CliRunner()
NOTE = "has random weights (seed 0), for trying nst-rt out"
FLAGS = "--no-normalize --style-weight 1e6 --tv-weight 0 --scales 1"


@pytest.fixture(scope="module")
def random_models(tmp_path_factory):
    from nst_rt.export import export_model

    root = tmp_path_factory.mktemp("random-models")
    export_model("vgg19", root, random_seed=0)
    return root


@pytest.fixture()
def pictures(tmp_path):
    return save(gradient(40, 48), tmp_path / "content.png"), save(noise(40, 48), tmp_path / "style.png")


def stylize(pictures, models, tmp_path, *extra):
    content, style = pictures
    args = ["stylize", content, style, "--models-dir", models, "--model", "vgg19-random", "--size", "32", "--iterations", "2", "--threads", "1",
            "-o", tmp_path / "out.png", *extra]
    return runner.invoke(app, [str(a) for a in args])


def test_the_export_records_random_weights_and_the_model_reports_them(random_models, vgg19):
    assert sorted(p.name for p in random_models.iterdir()) == ["vgg19-random"]  # never taken for the real vgg19
    assert load_model("vgg19-random", random_models).random_weights
    assert not vgg19.random_weights  # the test fixtures' weights come from a file


def test_info_marks_a_random_weights_model(random_models):
    result = runner.invoke(app, ["info", "--models-dir", str(random_models)])
    assert result.exit_code == 0, result.output
    assert f"\nvgg19-random  ({random_models / 'vgg19-random'})  [random weights: for trying nst-rt out, not for pictures]\n" in \
        result.stdout


def test_stylize_says_once_which_flags_keep_the_content(random_models, pictures, tmp_path):
    result = stylize(pictures, random_models, tmp_path)
    assert result.exit_code == 0, result.output
    notes = [line for line in result.stderr.splitlines() if NOTE in line]
    assert len(notes) == 1 and notes[0].startswith("nst-rt: note: model vgg19-random") and FLAGS in notes[0], notes


def test_the_named_flags_are_real_options_and_silence_the_note(random_models, pictures, tmp_path):
    result = stylize(pictures, random_models, tmp_path, *FLAGS.split())
    assert result.exit_code == 0, result.output
    assert NOTE not in result.stderr


def test_batch_says_it_once_for_many_pictures(random_models, pictures, tmp_path):
    content, style = pictures
    save(noise(40, 48, seed=1), tmp_path / "pictures" / "a.png")
    save(noise(40, 48, seed=2), tmp_path / "pictures" / "b.png")
    result = runner.invoke(app, ["batch", str(tmp_path / "pictures"), "--style", str(style), "-o",
                                 str(tmp_path / "out"), "--models-dir", str(random_models), "--model", "vgg19-random", "--size", "32",
                                 "--iterations", "1", "--threads", "1"])
    assert result.exit_code == 0, result.output
    assert sum(NOTE in line for line in result.stderr.splitlines()) == 1


def test_the_python_api_warns_with_the_settings_by_their_python_names(random_models, pictures):
    content, style = pictures
    with pytest.warns(RandomWeightsNotice, match="normalize=False, style_weight=1e6, tv_weight=0, scales=1"):
        nst_rt.stylize(content, style, models_dir=random_models, model="vgg19-random", size=32, iterations=1, threads=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RandomWeightsNotice)
        nst_rt.stylize(content, style, models_dir=random_models, model="vgg19-random", size=32, iterations=1, threads=1,
                       **RANDOM_WEIGHTS_SETTINGS)


def test_the_readmes_offline_quick_start_uses_the_settings_a_run_names():
    import re
    from pathlib import Path

    from nst_rt.pipeline.options import random_weights_note

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = re.search(r"<!-- offline-quick-start -->\n```\n(.*?)\n```", readme, re.S).group(1)
    assert "nst-rt export vgg19 --random-weights 0 && nst-rt stylize " in block and FLAGS in block
    assert "--model vgg19-random" in block  # the name the export writes random weights under
    assert FLAGS in random_weights_note("vgg19", "random weights (seed 0)")
