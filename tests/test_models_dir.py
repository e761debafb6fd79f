"""Where models are looked up and written, the messages that point to them, and importing the exporter.

The search order and export destination are nst_rt.network.models_dir's; these tests hold the CLI and the library
to it: absolute places in every message, a missing or too-deep --models-dir refused, offline options named
wherever an export is suggested, and `python -m nst_rt export` working from a source checkout.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import nst_rt
from nst_rt.cli import exporter_loader
from nst_rt.network import models_dir
from nst_rt.cli import app
from nst_rt.errors import MissingDependencyError
from nst_rt.network.model import load_model

REPO = Path(__file__).resolve().parents[1]
OFFLINE = ("--weights FILE", "--random-weights SEED")
runner = CliRunner()
pytestmark = pytest.mark.usefixtures("isolated")


def one_error_line(result, *needles) -> str:
    assert result.exit_code == 1, (result.exit_code, result.output, result.exception)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("nst-rt: error: "), result.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def stylize(*extra):
    """A stylize command that fails on its model before the images are read."""
    return runner.invoke(app, ["stylize", "content.png", "style.png", *map(str, extra)])


def link_model(models: Path, directory: Path, name: str = "vgg19") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).symlink_to(models / "vgg19", target_is_directory=True)
    return directory / name


@pytest.fixture
def user_dir(tmp_path) -> Path:
    return tmp_path / "user-data" / "nst-rt" / "models"  # XDG_DATA_HOME is set by the `isolated` fixture


# ----------------------------------------------------------------------------- the order


def test_search_order_is_absolute_and_ends_in_the_user_data_directory(tmp_path, user_dir, monkeypatch):
    assert models_dir.search_dirs() == [tmp_path / "models", user_dir]
    monkeypatch.setenv("NST_RT_MODELS", "from-env")  # relative: made absolute against the working directory
    (tmp_path / "mine").mkdir()
    assert models_dir.search_dirs("mine") == [tmp_path / "mine", tmp_path / "from-env", tmp_path / "models", user_dir]


@pytest.mark.parametrize("platform, environ, expected", [
    ("linux", {"XDG_DATA_HOME": "/data"}, "/data/nst-rt/models"),
    ("linux", {"XDG_DATA_HOME": "relative"}, "HOME/.local/share/nst-rt/models"),  # the XDG spec ignores it
    ("linux", {}, "HOME/.local/share/nst-rt/models"),
    ("darwin", {"XDG_DATA_HOME": "/data"}, "HOME/Library/Application Support/nst-rt/models"),
    ("win32", {"LOCALAPPDATA": "/appdata"}, "/appdata/nst-rt/models"),
])
def test_user_data_directory_per_platform(tmp_path, monkeypatch, platform, environ, expected):
    monkeypatch.setattr(sys, "platform", platform)
    monkeypatch.setenv("HOME", str(tmp_path))
    for key in ("XDG_DATA_HOME", "LOCALAPPDATA"):
        monkeypatch.delenv(key, raising=False)
    for key, value in environ.items():
        monkeypatch.setenv(key, value)
    assert models_dir.user_models_dir() == Path(expected.replace("HOME", str(tmp_path)))


def test_a_model_in_the_user_data_directory_is_found_from_any_directory(models, tmp_path, user_dir, monkeypatch):
    link_model(models, user_dir)
    elsewhere = tmp_path / "somewhere" / "else"
    elsewhere.mkdir(parents=True)
    monkeypatch.chdir(elsewhere)
    assert load_model("vgg19").path == user_dir / "vgg19"
    # ./models comes before it
    local = link_model(models, elsewhere / "models")
    assert load_model("vgg19").path == local


def test_export_destination_follows_the_order(tmp_path, user_dir, monkeypatch):
    assert models_dir.export_dir() == user_dir  # no ./models: the per-user directory
    (tmp_path / "models").mkdir()
    assert models_dir.export_dir() == tmp_path / "models"
    monkeypatch.setenv("NST_RT_MODELS", str(tmp_path / "not-yet"))  # set: used, and created by the export
    assert models_dir.export_dir() == tmp_path / "not-yet"


def test_export_without_out_writes_where_any_directory_finds_it(tmp_path, user_dir, monkeypatch):
    result = runner.invoke(app, ["export", "vgg16", "--random-weights", "0"])
    assert result.exit_code == 0, result.output
    assert f"to {user_dir / 'vgg16-random'} in " in result.stderr
    exported = [line for line in result.stderr.splitlines() if line.startswith("exported ")]
    assert len(exported) == 1 and exported[0].endswith("; the per-user model directory, found from any directory")
    assert "--models-dir" not in result.stderr  # found by name: no hint needed
    assert "use it with --model vgg16-random, or make it the default model with NST_RT_MODEL=vgg16-random" in \
        result.stderr
    (tmp_path / "other").mkdir()
    monkeypatch.chdir(tmp_path / "other")
    assert load_model("vgg16-random").path == user_dir / "vgg16-random"


# ----------------------------------------------------------------------------- messages


def test_missing_model_names_absolute_places_the_ways_elsewhere_and_the_export(tmp_path, user_dir):
    line = one_error_line(stylize(), "no exported model 'vgg19'", "--models-dir DIR", "$NST_RT_MODELS",
                          "`nst-rt export vgg19`", *OFFLINE)
    assert f"in {tmp_path / 'models'}, {user_dir};" in line


def test_missing_model_in_the_given_directory_suggests_exporting_there(tmp_path):
    (tmp_path / "mine").mkdir()
    line = one_error_line(stylize("--models-dir", "mine", "--model", "vgg19-max"), *OFFLINE)
    assert f"in {tmp_path / 'mine'}, " in line
    assert f"`nst-rt export vgg19 --pooling max --out {tmp_path / 'mine'}`" in line


def test_a_models_dir_that_does_not_exist_is_an_error_even_when_models_has_the_model(models, tmp_path):
    link_model(models, tmp_path / "models")
    line = one_error_line(stylize("--models-dir", "typo"), f"--models-dir {tmp_path / 'typo'} does not exist")
    assert "nst-rt export vgg19 --out" in line
    info = runner.invoke(app, ["info", "--models-dir", "typo"])
    one_error_line(info, "does not exist")


def test_a_models_dir_one_level_too_deep_names_its_parent(models, tmp_path):
    model = link_model(models, tmp_path / "models")
    one_error_line(stylize("--models-dir", "models/vgg19"), "is a model itself",
                   f"--models-dir {tmp_path / 'models'}", f"--model {model}")


def test_model_given_as_a_directory_of_models(models, tmp_path):
    link_model(models, tmp_path / "store")
    line = one_error_line(stylize("--model", "store"), f"--models-dir {tmp_path / 'store'} --model vgg19",
                          f"--model {tmp_path / 'store' / 'vgg19'}")
    assert "export" not in line


def test_model_given_as_an_unrelated_directory_is_never_offered_as_an_export_target(tmp_path, user_dir):
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "cat.jpg").write_bytes(b"not a model")
    line = one_error_line(stylize("--model", "photos"), f"{tmp_path / 'photos'} is not an exported model",
                          str(user_dir / "vgg19"))
    assert "--force" not in line and "--out" not in line


def test_model_given_as_an_empty_directory_gets_the_export_that_fills_it(tmp_path):
    target = tmp_path / "mine"
    target.mkdir()
    line = one_error_line(stylize("--model", target))
    command = re.search(r"`(nst-rt export [^`]*)`", line).group(1)
    assert f"--out {tmp_path}" in command and "--name mine" in command
    args = shlex.split(command)[1:] + ["--random-weights", "0"]
    assert runner.invoke(app, args).exit_code == 0
    assert load_model(target).path == target  # the suggested command wrote exactly that directory


def test_model_given_as_a_missing_path_gets_an_export_to_that_path(tmp_path):
    line = one_error_line(stylize("--model", "exports/vgg16-max"), *OFFLINE)
    assert f"`nst-rt export vgg16 --pooling max --out {tmp_path / 'exports'}`" in line


def test_export_name_must_be_a_plain_directory_name(tmp_path):
    for name in ("../up", "a/b", ".hidden", ""):
        result = runner.invoke(app, ["export", "vgg16", "--random-weights", "0", "--out", "m", "--name", name])
        one_error_line(result, "--name")
    assert not (tmp_path / "m").exists()


def test_info_without_models_names_the_offline_options(tmp_path, user_dir):
    result = runner.invoke(app, ["info"])
    assert result.exit_code == 0, result.output
    assert f"model search path: {tmp_path / 'models'}, {user_dir}\n" in result.stdout
    assert "nst-rt export vgg19" in result.stdout and all(option in result.stdout for option in OFFLINE)


def test_download_failure_names_both_offline_options(tmp_path, monkeypatch):
    import torch

    from nst_rt.errors import ExportError
    from nst_rt.export.exporter import export_model

    def offline(url, *args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    with pytest.raises(ExportError) as excinfo:
        export_model("vgg16", tmp_path / "out")
    assert all(option in str(excinfo.value) for option in OFFLINE), excinfo.value
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------- importing the exporter


def run_python(code: str, *args, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


# `python -m nst_rt` with the source folder shadowing an installed wheel: a wheel has no import hook, so the
# editable install's hook is taken out of the import system first.
AS_IF_WHEEL_INSTALLED = """
import runpy, sys
sys.meta_path[:] = [f for f in sys.meta_path if not getattr(f, "__module__", "").startswith("__editable__")]
sys.argv = ["nst_rt", *sys.argv[1:]]
runpy.run_module("nst_rt", run_name="__main__", alter_sys=True)
"""


@pytest.mark.slow  # a fresh process that imports torch and exports
@pytest.mark.parametrize("how", ["as typed", "source folder shadowing a wheel"])
def test_python_m_export_from_the_repository_root(tmp_path, how):
    out = tmp_path / "out"
    argv = ["export", "vgg16", "--random-weights", "0", "--out", out]
    if how == "as typed":
        done = subprocess.run([sys.executable, "-m", "nst_rt", *map(str, argv)], cwd=REPO, capture_output=True,
                              text=True, timeout=300, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    else:
        done = run_python(AS_IF_WHEEL_INSTALLED, *argv, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert f"exported vgg16 (avg pooling) to {out / 'vgg16-random'}" in done.stderr
    assert load_model(out / "vgg16-random").architecture == "vgg16"


def test_missing_torch_is_named_as_such(tmp_path):
    code = ("import sys; sys.modules['torch'] = None\n"  # `import torch` now fails as if it were not installed
            "sys.argv = ['nst-rt', *sys.argv[1:]]\nfrom nst_rt.cli import main\nmain()")
    done = run_python(code, "export", "vgg16", "--random-weights", "0", "--out", tmp_path / "out", cwd=REPO)
    assert done.returncode == 1
    assert done.stderr.startswith("nst-rt: error: the exporter needs torch, which is not installed: pip install "), \
        done.stderr
    assert len(done.stderr.splitlines()) == 1 and "nst_rt.export" not in done.stderr
    assert not (tmp_path / "out").exists()


def test_an_install_without_the_exporter_says_so(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "nst_rt.export", None)  # as if the subpackage were not there
    monkeypatch.setattr(exporter_loader, "CHECKOUT_ROOT", tmp_path)  # and no source checkout around it
    with pytest.raises(MissingDependencyError, match=r"nst_rt\.export is not part of the nst_rt package imported "
                                                     rf"from {re.escape(str(Path(nst_rt.__file__).parent))}"):
        exporter_loader.import_exporter()


def test_the_default_model_is_the_users_own_when_set_and_info_says_where_it_comes_from(monkeypatch, models_dir):
    from nst_rt.pipeline.options import Options

    line = [ln for ln in runner.invoke(app, ["info"]).stdout.splitlines() if ln.startswith("default model: ")]
    assert line == ["default model: vgg19 (nst-rt's default; set $NST_RT_MODEL to choose another)"]
    monkeypatch.setenv("NST_RT_MODEL", "vgg19-max")
    line = [ln for ln in runner.invoke(app, ["info"]).stdout.splitlines() if ln.startswith("default model: ")]
    assert line == ["default model: vgg19-max (from $NST_RT_MODEL)"]
    assert Options().model == "vgg19-max" and load_model(models_dir=models_dir("vgg19", "max")).name == "vgg19-max"
    monkeypatch.setenv("NST_RT_MODEL", "vgg19-random")  # a name no directory holds: the run names it and its export
    one_error_line(stylize("--models-dir", models_dir()), "'vgg19-random'",
                   "`nst-rt export vgg19 --out", "--random-weights 0`")
