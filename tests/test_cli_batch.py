"""``nst-rt batch`` end to end: names, the summary and exit codes, resuming, and a stop signal mid-batch."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import typer.main
from PIL import Image
from typer.testing import CliRunner

from nst_rt.batching.record import RECORD
from nst_rt.cli import app
from synthetic import gradient, noise, save, stripes

runner = CliRunner()
pytestmark = pytest.mark.usefixtures("isolated")
FAST = ["--size", "32", "--iterations", "3", "--threads", "1"]


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "photos"
    save(gradient(), folder / "a.png")
    save(noise(40, 56, seed=3), folder / "b.png")
    return folder, save(stripes(), tmp_path / "style.png")


def test_all_good_inputs_exit_0_with_results_named_after_them(tmp_path, photos, models):
    folder, style = photos
    result = runner.invoke(app, ["batch", str(folder), "--style", str(style), "-o", str(tmp_path / "out"),
                                 "--format", "jpg", "--models-dir", str(models), *FAST])
    assert result.exit_code == 0, result.output
    assert sorted(os.listdir(tmp_path / "out")) == [RECORD, "a.jpg", "b.jpg"]
    assert "2 inputs: 2 stylized, 0 skipped" in result.stderr


def test_a_broken_input_gives_exit_1_after_the_others_are_done(tmp_path, photos, models):
    folder, style = photos
    (folder / "broken.png").write_bytes(b"no picture")
    result = runner.invoke(app, ["batch", str(folder / "*.png"), "-s", str(style), "-o", str(tmp_path / "out"),
                                 "--models-dir", str(models), *FAST])
    assert result.exit_code == 1
    assert sorted(os.listdir(tmp_path / "out")) == [RECORD, "a.png", "b.png"]
    errors = [line for line in result.stderr.splitlines() if line.startswith("nst-rt: error:")]
    assert len(errors) == 1 and "broken.png" in errors[0] and "Traceback" not in result.output
    assert "3 inputs: 2 stylized, 0 skipped" in result.stderr and "1 failed" in result.stderr


def test_a_rerun_skips_what_is_done_and_stylization_options_reach_the_run(tmp_path, photos, models):
    folder, style = photos
    out = tmp_path / "out"
    first = runner.invoke(app, ["batch", str(folder / "a.png"), "-s", str(style), "-o", str(out),
                                "--models-dir", str(models), *FAST, "--size", "24"])
    assert first.exit_code == 0, first.output
    with Image.open(out / "a.png") as img:
        assert img.size == (24, 16)  # --size of the shared options: 60x40 content at a longest side of 24
    second = runner.invoke(app, ["batch", str(folder), "-s", str(style), "-o", str(out), "--models-dir", str(models),
                                 *FAST, "--size", "24"])
    assert second.exit_code == 0 and "2 inputs: 1 stylized, 1 skipped" in second.stderr
    with Image.open(out / "a.png") as img:
        assert img.size == (24, 16)  # untouched


def test_a_batch_with_other_settings_is_refused_in_one_line_not_skipped(tmp_path, photos, models):
    folder, style = photos
    scream = save(noise(48, 40, seed=7), tmp_path / "the_scream.png")
    out = tmp_path / "stylized"
    first = runner.invoke(app, ["batch", str(folder), "-s", str(style), "-o", str(out), "--models-dir", str(models),
                                *FAST])
    assert first.exit_code == 0, first.output
    before = {name: (out / name).read_bytes() for name in ("a.png", "b.png")}
    for change in (["-s", str(scream)], ["-s", str(style), "--style-weight", "3"]):
        other = runner.invoke(app, ["batch", str(folder), *change, "-o", str(out), "--models-dir", str(models), *FAST])
        assert other.exit_code == 1, other.output
        lines = other.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"nst-rt: error: '{out}' holds results made with other "
                                                       "settings (") and "--overwrite" in lines[0] and "-o" in lines[0]
        assert ("--style" if "--style-weight" not in change else "--style-weight") in lines[0]
        assert {name: (out / name).read_bytes() for name in before} == before
    other_inputs = save(noise(40, 40, seed=9), tmp_path / "more" / "c.png")  # one record for the whole directory
    mixed = runner.invoke(app, ["batch", str(other_inputs), "-s", str(scream), "-o", str(out), "--models-dir",
                                str(models), *FAST])
    assert mixed.exit_code == 1 and "holds results made with other settings (--style)" in mixed.stderr
    redone = runner.invoke(app, ["batch", str(folder), "-s", str(scream), "-o", str(out), "--models-dir", str(models),
                                 *FAST, "--overwrite"])
    assert redone.exit_code == 0 and "2 inputs: 2 stylized, 0 skipped" in redone.stderr
    rerun = runner.invoke(app, ["batch", str(folder), "-s", str(scream), "-o", str(out), "--models-dir", str(models),
                                *FAST])  # the same settings as the last batch: its results are skipped
    assert rerun.exit_code == 0 and "2 inputs: 0 stylized, 2 skipped" in rerun.stderr


def test_a_bad_option_value_is_one_line_before_any_work(tmp_path, photos, models):
    folder, style = photos
    result = runner.invoke(app, ["batch", str(folder), "-s", str(style), "-o", str(tmp_path / "out"),
                                 "--models-dir", str(models), "--noise-ratio", "2"])
    assert result.exit_code == 1 and result.stderr.strip().splitlines() == [
        "nst-rt: error: noise ratio must be between 0 and 1, got 2.0"]
    assert not (tmp_path / "out").exists()


def test_batch_and_stylize_take_the_same_stylization_options():
    commands = typer.main.get_command(app).commands
    names = {name: {p.name: p for p in commands[name].params} for name in ("stylize", "batch")}
    from nst_rt.cli.common import SHARED

    for name in SHARED:
        a, b = names["stylize"][name], names["batch"][name]
        assert (a.opts, a.default, a.help) == (b.opts, b.default, b.help)
    assert len(SHARED) >= 20


@pytest.mark.slow
def test_sigterm_finishes_the_picture_being_saved_and_a_rerun_resumes(tmp_path, photos, models):
    folder, style = photos
    for k in range(4):
        save(noise(40, 40, seed=10 + k), folder / f"more{k}.png")
    out = tmp_path / "out"
    command = [sys.executable, "-m", "nst_rt", "batch", str(folder), "-s", str(style), "-o", str(out),
               "--models-dir", str(models), "--size", "32", "--iterations", "40", "--threads", "1"]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while not (out.exists() and any(p.suffix == ".png" for p in out.iterdir())) and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 128 + signal.SIGTERM, stderr
    assert "stopped by SIGTERM" in stderr and "run the same command again to resume" in stderr
    assert "Traceback" not in stderr
    written = sorted(name for name in os.listdir(out) if name != RECORD)
    assert written and all(name.endswith(".png") and not name.startswith(".") for name in written)  # no temp files
    assert len(written) < 6
    for name in written:
        with Image.open(out / name) as img:
            img.load()  # complete pictures only
    rerun = subprocess.run(command, stderr=subprocess.PIPE, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{len(written)} skipped" in rerun.stderr and len(os.listdir(out)) == 6 + 1  # and the record of the settings
