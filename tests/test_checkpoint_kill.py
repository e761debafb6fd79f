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

KILLS = 16  # at most; fewer when the run finishes first
# Each kill lands after a seeded number of checkpoint writes (0: during start-up) plus a seeded delay, so the
# kills fall at random points of the run (inside a write too) however fast or loaded the machine is.
WRITES_BEFORE_KILL = (0, 3)
EXTRA_DELAY = (0.0, 0.05)  # seconds
HANG_GUARD = 120  # seconds: a process that neither writes nor ends is a hang, not a slow machine
RUN = ["--size", "48", "--scales", "2", "--iterations", "16", "--threads", "1"]  # 32 + 16 iterations


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


def stamp(path):
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    return stat.st_mtime_ns, stat.st_ino


def wait_for_writes(process, path, writes: int) -> None:
    """Return once ``path`` has been replaced ``writes`` times since now, or the process has ended."""
    seen, last = 0, stamp(path)
    deadline = time.monotonic() + HANG_GUARD
    while seen < writes and process.poll() is None:
        assert time.monotonic() < deadline, "the run neither wrote a checkpoint nor ended"
        current = stamp(path)
        if current != last and current is not None:
            seen, last = seen + 1, current
        time.sleep(0.002)


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
        process = start(run_args, output, "--checkpoint-every", "0.01", *(["--resume"] if round_ else []))
        wait_for_writes(process, checkpoint, rng.randint(*WRITES_BEFORE_KILL))
        time.sleep(rng.uniform(*EXTRA_DELAY))
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            kills += 1
        _, stderr = process.communicate()
        assert process.returncode in (0, -signal.SIGKILL), stderr
        if output.exists():
            whole_image(output)
        if checkpoint.exists():
            positions.append(checkpoint_position(checkpoint))
            assert positions[-1] >= positions[-2]  # a later process never replaced it with an earlier state
        if output.exists() and not checkpoint.exists():
            break  # finished (a kill after the result was written and the checkpoint deleted counts too)

    assert kills >= KILLS // 2, kills  # the run outlasted most kills: they landed during it
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
    match = re.fullmatch(rf"nst-rt: stopped by SIGTERM after \d+ iterations; saved the best image so far to "
                         rf"{re.escape(str(output))}; --resume continues from {re.escape(str(checkpoint))} "
                         rf"\(scale (\d), iteration (\d+)\)\n", stderr)
    assert match, stderr
    assert checkpoint_position(checkpoint) == (int(match.group(1)), int(match.group(2)))
    whole_image(output, sizes=[(24, 16), (48, 32)])  # stopped at the first scale, its result is that scale's

    done = subprocess.run(command(run_args, output, "--resume", "-q"), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stderr == "", done.stderr  # the stopped run's output is replaced
    assert output.read_bytes() == uninterrupted(directory, run_args)
    assert not checkpoint.exists()
