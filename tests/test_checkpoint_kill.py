"""A real ``nst-rt stylize`` process killed at random moments loses nothing: after every SIGKILL the output and
the checkpoint are each absent or whole, the checkpoint never goes back, and ``--resume`` finishes with the bytes
of a run never interrupted. SIGTERM saves the best image and leaves a checkpoint that ``--resume`` continues."""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from nst_rt.io import images
from nst_rt.pipeline.checkpoint import path_for
from nst_rt.cli import app
from synthetic import gradient, noise

KILLS = 16
# Each kill lands at a seeded checkpoint write of its process (0: the first), at a seeded moment of that write:
# before it starts, with the temporary file whole but not yet renamed, or after the rename. The process waits
# at every such moment until the test lets it go on or kills it, so every kill lands where it was aimed however
# fast or loaded the machine is; a checkpoint is written after every iteration (48 in all), not spaced by time.
WRITES_BEFORE_KILL = (0, 3)
MOMENTS = ("before", "inside", "after")
HANG_GUARD = 120  # seconds: a process that neither reaches a write nor ends is a hang, not a slow machine
RUN = ["--size", "48", "--scales", "2", "--iterations", "16", "--coarse-iterations", "2", "--threads", "1"]  # 32 + 16 iterations
EVERY_ITERATION = ["--checkpoint-every", "1e-9"]
GATE = """
import os, runpy, sys
from nst_rt.pipeline import checkpoint
reached, go_on = int(sys.argv.pop(1)), int(sys.argv.pop(1))

def gate(moment):
    os.write(reached, moment.encode() + b"\\n")
    if os.read(go_on, 1) != b"c":
        os._exit(99)  # the test went away

real_create, real_replace, real_sync = checkpoint.create_temp, os.replace, checkpoint._fsync_directory

def create_temp(path):
    gate("before")
    return real_create(path)

def replace(src, dst, *args, **kwargs):
    if os.fspath(dst).endswith(checkpoint.SUFFIX):
        gate("inside")
    return real_replace(src, dst, *args, **kwargs)

def fsync_directory(directory):
    real_sync(directory)
    gate("after")

real_init = checkpoint.Checkpoint.__init__

def init(self, *args, **kwargs):  # a write after every iteration: no spacing by the time writes take
    real_init(self, *args, **dict(kwargs, write_share=None))

checkpoint.create_temp, checkpoint._fsync_directory, os.replace = create_temp, fsync_directory, replace
checkpoint.Checkpoint.__init__ = init
sys.argv[0] = "nst-rt"
runpy.run_module("nst_rt", run_name="__main__")
"""


@pytest.fixture
def run_files(tmp_path, models):
    content, style = tmp_path / "content.png", tmp_path / "style.png"
    Image.fromarray(images.to_uint8(gradient())).save(content)
    Image.fromarray(images.to_uint8(noise())).save(style)
    return tmp_path, [str(content), str(style), "--models-dir", str(models), *RUN]


def command(run_args, output, *extra):
    return [sys.executable, "-m", "nst_rt", "stylize", *run_args, "-o", str(output), *extra]


def start(run_args, output, *extra):
    env = {k: v for k, v in os.environ.items() if k != "NST_RT_MODELS"}
    return subprocess.Popen(command(run_args, output, *extra), env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def uninterrupted(directory, run_args) -> bytes:
    reference = directory / "reference.png"
    result = CliRunner().invoke(app, ["stylize", *run_args, "-o", str(reference), "--checkpoint-every", "0"])
    assert result.exit_code == 0, result.output
    return reference.read_bytes()


def whole_image(path, sizes=((48, 32),)) -> None:
    with Image.open(path) as image:
        image.load()  # decodes every byte: a truncated file raises
        assert image.size in sizes


def start_gated(directory, run_args, output, *extra):
    """A stylize process that stops at each moment of each checkpoint write until told to go on."""
    runner = directory / "gated.py"
    runner.write_text(GATE)
    reached_r, reached_w = os.pipe()
    go_on_r, go_on_w = os.pipe()
    env = {k: v for k, v in os.environ.items() if k != "NST_RT_MODELS"}
    argv = [sys.executable, str(runner), str(reached_w), str(go_on_r), *command(run_args, output, *extra)[3:]]
    process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               pass_fds=(reached_w, go_on_r))
    os.close(reached_w)
    os.close(go_on_r)
    return process, os.fdopen(reached_r, "rb", buffering=0), go_on_w


def kill_at(process, reached, go_on, write: int, moment: str) -> bool:
    """Let ``process`` run to ``moment`` of its checkpoint write number ``write`` and SIGKILL it there; False if
    it ended first."""
    writes, deadline = 0, time.monotonic() + HANG_GUARD
    try:
        while True:
            line = b""
            while not line.endswith(b"\n"):
                assert time.monotonic() < deadline, "the run neither reached a checkpoint write nor ended"
                byte = reached.read(1)
                if not byte:
                    return False  # the process ended
                line += byte
            if writes == write and line.strip().decode() == moment:
                process.send_signal(signal.SIGKILL)
                return True
            writes += line.strip() == b"after"
            os.write(go_on, b"c")
    finally:
        reached.close()
        os.close(go_on)


def checkpoint_position(path) -> tuple[int, int]:
    """(scale, iteration) of a checkpoint, after reading every array in it (the zip's checksums are verified)."""
    with np.load(path, allow_pickle=False) as saved:
        arrays = {name: saved[name] for name in saved.files}
    assert np.isfinite(arrays["opt_x"]).all()
    return int(arrays["scale"]), int(arrays["opt_nit"])


def test_sigkill_at_random_moments_loses_nothing_and_resume_completes(run_files):
    directory, run_args = run_files
    output = directory / "out.png"
    checkpoint = path_for(output)
    rng = random.Random(16)
    positions, kills = [(0, 0)], 0
    for round_ in range(KILLS):
        process, reached, go_on = start_gated(directory, run_args, output, *EVERY_ITERATION,
                                              *(["--resume"] if round_ else []))
        kills += kill_at(process, reached, go_on, rng.randint(*WRITES_BEFORE_KILL), rng.choice(MOMENTS))
        _, stderr = process.communicate()
        assert process.returncode in (0, -signal.SIGKILL), stderr
        if output.exists():
            whole_image(output)
        if checkpoint.exists():
            positions.append(checkpoint_position(checkpoint))
            assert positions[-1] >= positions[-2]  # a later process never replaced it with an earlier state
        if output.exists() and not checkpoint.exists():
            break  # finished

    assert kills == KILLS, kills  # every kill landed where it was aimed, on any machine
    assert len(set(positions)) > 2, positions  # work was saved and resumed more than once
    if checkpoint.exists() or not output.exists():
        done = subprocess.run(command(run_args, output, "--resume"), capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
    assert output.read_bytes() == uninterrupted(directory, run_args)
    assert not checkpoint.exists()
    assert not [p.name for p in directory.iterdir() if p.name.startswith(".")]  # no temporary file left


def test_sigterm_saves_the_best_image_and_resume_continues_from_the_checkpoint(run_files):
    directory, run_args = run_files
    output = directory / "out.png"
    checkpoint = path_for(output)
    process = start(run_args, output, "--checkpoint-every", "0.01")
    try:
        deadline = time.monotonic() + 120
        while not checkpoint.exists():
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "no checkpoint within 120 s"
            time.sleep(0.01)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 128 + signal.SIGTERM, stderr
    match = re.fullmatch(rf"nst-rt: stopped by SIGTERM after \d+ iterations; saved the best image so far "
                         rf"\((?:24x16, scale 1|48x32, scale 2) of 2\) to "
                         rf"{re.escape(str(output))}; --resume continues from {re.escape(str(checkpoint))} "
                         rf"\(scale (\d), iteration (\d+)\)\n", stderr)
    assert match, stderr
    assert checkpoint_position(checkpoint) == (int(match.group(1)), int(match.group(2)))
    whole_image(output, sizes=[(24, 16), (48, 32)])  # stopped at the first scale, its result is that scale's

    done = subprocess.run(command(run_args, output, "--resume", "-q"), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stderr == "", done.stderr  # the stopped run's output is replaced
    assert output.read_bytes() == uninterrupted(directory, run_args)
    assert not checkpoint.exists()
