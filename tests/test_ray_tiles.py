"""``stylize --engine ray``: a picture's tile windows evaluated by Ray actors (nst_rt.pipeline.ray_tiles) against the
local tiled objective (nst_rt.objective.tiled), which test_tiling.py holds against the untiled one.

With the same tiles and one thread per network, the actors' windows give the local value and gradient to the
bit (the driver adds them in the local order), also when an actor is killed mid-evaluation, and a run gives the
local tiled run's picture, stopped and resumed or not. The 229x40 images with 32 px tiles are test_tiling.py's:
windows with a halo on both sides, windows at the border, sizes that are not multiples of the stride.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from nst_rt.cli import app
from nst_rt.errors import ClusterError, MemoryLimitError, OptionError
from nst_rt.network.model import load_model
from nst_rt.network.session import Network
from nst_rt.objective.tiled import TiledObjective
from nst_rt.pipeline import memory, ray_pool
from nst_rt.pipeline.checkpoint import Checkpoint, path_for
from nst_rt.pipeline.options import Options
from nst_rt.pipeline.ray_tiles import RayEngine, engine_for, parse_memory
from nst_rt.pipeline.stylizer import Stylizer, stylize
from synthetic import gradient, noise, stripes

HEIGHT, WIDTH, TILE = 40, 229, 32
SETTINGS = dict(content_weight=1.0, style_weight=10.0, tv_weight=2.0, normalize=True)
RUN = dict(size=96, tile=32, threads=1, scales=1, iterations=6)
DEADLINE = 240  # seconds a test may wait on Ray
STOP_SECONDS = 60  # how long a stopped run may take to save its image and end its Ray


def rel(a, b) -> float:
    return float(np.linalg.norm(np.asarray(a, np.float64) - b) / np.linalg.norm(b))


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(3)
    content = rng.random((HEIGHT, WIDTH, 3), dtype=np.float32)
    styles = [rng.random((40, 60, 3), dtype=np.float32), rng.random((36, 50, 3), dtype=np.float32)]
    left = np.zeros((HEIGHT, WIDTH), np.float32)
    left[:, :100] = 1.0
    return content, styles, [left, 1.0 - left], rng.random((1, 3, HEIGHT, WIDTH))


@pytest.fixture(scope="module")
def network(models):
    return Network(load_model("vgg19", models), "cpu", 1)


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray", reason="the ray extra is not installed")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(autouse=True)
def deadline():
    """A test that waits on Ray past DEADLINE seconds fails instead of hanging."""
    def expire(*_):
        raise TimeoutError(f"waited on Ray for more than {DEADLINE} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(DEADLINE)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.fixture  # not shared: its two actors would hold both of the local Ray's CPUs from the tests that start a pool
def engine(local_ray, models):
    engine = RayEngine(actors=2)
    engine.start(Options(models_dir=models, threads=1))
    yield engine
    engine.close()


MASKED = {"plain": False, "style and content masks": True}


@pytest.mark.slow  # a local Ray and its actors take seconds to start
@pytest.mark.parametrize("masked", MASKED.values(), ids=MASKED.keys())
def test_the_actors_give_the_local_tiled_value_and_gradient(engine, network, images, masked):
    content, styles, masks, x = images
    settings = dict(SETTINGS, style_masks=masks, content_mask=masks[0]) if masked else SETTINGS
    local = TiledObjective(network, content, styles, tile=TILE, **settings)
    value, grad = local(x)
    grad = grad.copy()
    remote = engine.objective(network, content, styles, tile=TILE, **settings)
    assert remote.tiles == local.tiles and len(local.tiles) > 2
    for name in ("content_targets", "style_targets"):
        for layer, target in getattr(local, name).items():
            np.testing.assert_array_equal(getattr(remote, name)[layer], target)
    remote_value, remote_grad = remote(x)
    assert abs(remote_value - value) <= 1e-6 * abs(value) and rel(remote_grad, grad) <= 1e-6
    assert remote_value == value and np.array_equal(remote_grad, grad)  # the same sums in the same order
    assert remote.terms_at(remote_value) == local.terms_at(value)


@pytest.mark.slow
def test_an_actor_killed_mid_evaluation_has_its_window_run_again(engine, network, images, local_ray):
    content, styles, _, x = images
    value, grad = TiledObjective(network, content, styles, tile=TILE, **SETTINGS)(x)
    grad = grad.copy()
    killed = []

    def kill(pass_, index, count):  # one actor in pass 1, the other in pass 2, while windows are out
        if index == 2 and pass_ not in killed:
            killed.append(pass_)
            local_ray.kill(engine.pool.actors[pass_ - 1], no_restart=False)

    remote = engine.objective(network, content, styles, tile=TILE, on_tile=kill, **SETTINGS)
    remote_value, remote_grad = remote(x)
    assert killed == [1, 2]
    assert remote_value == value and np.array_equal(remote_grad, grad)
    again = remote(x)  # the restarted actors fetch the scale again
    assert again[0] == value and np.array_equal(again[1], grad)


@pytest.mark.slow
def test_a_run_on_ray_gives_the_local_tiled_picture(local_ray, models):
    content, styles = gradient(60, 90), [noise(), stripes()]
    local = np.asarray(stylize(content, styles, models_dir=models, **RUN))
    on_ray = np.asarray(stylize(content, styles, models_dir=models, engine="ray", actors=2, **RUN))
    np.testing.assert_array_equal(on_ray, local)


@pytest.mark.slow
def test_a_run_on_ray_stopped_and_resumed_equals_the_local_uninterrupted_run(local_ray, models, tmp_path):
    content, styles = gradient(60, 90), [noise()]
    whole = Stylizer(models_dir=models, **RUN).run(content, styles)
    on_ray = Stylizer(models_dir=models, engine="ray", actors=2, **RUN)
    path = tmp_path / "out.png.ckpt"

    def stop(p):
        if p.iteration == 3:
            raise KeyboardInterrupt

    try:
        stopped = on_ray.run(content, styles, stop, checkpoint=Checkpoint(path, 1e-9, write_share=None))
        assert stopped.interrupted and stopped.iterations == 3 and path.exists()
        resumed = on_ray.run(content, styles, checkpoint=Checkpoint(path, 1e-9, write_share=None, resume=True))
    finally:
        on_ray.close()
    np.testing.assert_array_equal(resumed.image, whole.image)
    assert (resumed.loss, resumed.iterations, resumed.evaluations) == (whole.loss, whole.iterations, whole.evaluations)


@pytest.mark.slow
def test_more_workers_than_the_cluster_has_room_for_are_refused(local_ray, models, monkeypatch):
    monkeypatch.setattr(ray_pool, "READY_SECONDS", 20.0)
    engine = RayEngine(actors=3)  # one CPU each on a Ray of two CPUs: the third would wait for ever
    try:
        with pytest.raises(ClusterError, match="1 of 3 Ray workers found no room"):
            engine.start(Options(models_dir=models, threads=1))
        assert engine.pool is None
        for _ in range(100):  # the two that started are killed; Ray frees their CPUs a moment later
            if local_ray.available_resources().get("CPU") == 2:
                break
            time.sleep(0.2)
        assert local_ray.available_resources().get("CPU") == 2
    finally:
        engine.close()


def test_a_bad_address_is_refused_in_one_line(tmp_path, models):
    from synthetic import save

    content, style = save(gradient(), tmp_path / "c.png"), save(noise(), tmp_path / "s.png")
    for address, words in (("127.0.0.1:1", "could not reach the Ray cluster at 127.0.0.1:1"),
                           ("head-node", "--address must be HOST:PORT")):
        result = CliRunner().invoke(app, ["stylize", str(content), str(style), "-o", str(tmp_path / "out.png"),
                                          "--models-dir", str(models), "--no-normalize", "--size", "32",
                                          "--engine", "ray", "--address", address])
        lines = result.stderr.splitlines()
        assert result.exit_code == 1 and len(lines) == 1 and words in lines[0], result.stderr
    assert not (tmp_path / "out.png").exists()


def test_the_ray_settings_go_with_the_ray_engine_only():
    with pytest.raises(OptionError, match="--actors go"):
        engine_for("local", actors=2)
    with pytest.raises(OptionError, match="unknown engine"):
        engine_for("dask")
    with pytest.raises(OptionError, match="--actors must"):
        engine_for("ray", actors=0)
    assert engine_for("local") is None


def test_worker_memory_reads_sizes_with_units():
    assert parse_memory("16G") == 16 << 30 and parse_memory("512MiB") == 512 << 20 and parse_memory(1000) == 1000
    for bad in ("lots", "-3G", "0"):
        with pytest.raises(OptionError, match="--worker-memory"):
            parse_memory(bad)


def test_the_cluster_plan_sizes_tiles_by_the_workers_and_the_history_by_the_driver(network, monkeypatch):
    h = w = 4096
    monkeypatch.setattr(memory, "available_bytes", lambda: 16 << 30)  # the driver's
    roomy = memory.cluster_plan(network, h, w, 100, tile=0, halo=80, content_layers=("relu4_2",),
                                worker_bytes=64 << 30, workers=4)
    tight = memory.cluster_plan(network, h, w, 100, tile=0, halo=80, content_layers=("relu4_2",),
                                worker_bytes=3 << 30, workers=4)
    assert roomy.tile > tight.tile  # the tiles follow the workers' memory, not the driver's 16 GiB
    assert roomy.history == tight.history < 100 and "this machine's memory" in roomy.note
    assert roomy.need <= 16 << 30
    assert memory.window_count(h, w, roomy.tile, 80) >= 4  # every worker gets a window
    with pytest.raises(MemoryLimitError, match="per Ray worker"):
        memory.cluster_plan(network, h, w, 100, tile=2048, halo=80, content_layers=(), worker_bytes=1 << 30,
                            workers=4)


def marked_processes(marker: str) -> list[int]:
    """This user's processes whose environment holds ``marker``: a Ray started by a run (its raylet, its
    workers) inherits the driver's environment."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if marker.encode() in (entry / "environ").read_bytes():
                    found.append(int(entry.name))
            except OSError:  # gone, or another user's
                pass
    return found


STOPS = {"SIGTERM": signal.SIGTERM, "Ctrl-C": signal.SIGINT}


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="finds the run's Ray processes through /proc")
@pytest.mark.parametrize("signum", STOPS.values(), ids=STOPS.keys())
def test_a_stop_saves_the_best_image_and_ends_the_ray_workers(tmp_path, models, signum):
    pytest.importorskip("ray", reason="the ray extra is not installed")
    from synthetic import save

    content, style = save(gradient(), tmp_path / "c.png"), save(noise(), tmp_path / "s.png")
    output, marker = tmp_path / "out.png", f"NST_RT_RAY_STOP_TEST={uuid.uuid4().hex}"
    name, value = marker.split("=")
    env = {k: v for k, v in os.environ.items() if k != "NST_RT_MODELS"} | {name: value}
    argv = [sys.executable, "-m", "nst_rt", "stylize", str(content), str(style), "-o", str(output),
            "--models-dir", str(models), "--size", "60", "--tile", "32", "--scales", "1", "--iterations", "500",
            "--threads", "1", "--engine", "ray", "--actors", "1", "--checkpoint-every", "0.01"]
    process = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        while not path_for(output).exists():  # an iteration is done: there is a best image to save
            assert process.poll() is None, process.communicate()
            time.sleep(0.05)
        assert len(marked_processes(marker)) > 1  # the run's Ray (its raylet, its worker, ...) is found
        process.send_signal(signum)
        _, stderr = process.communicate(timeout=STOP_SECONDS)
        left = marked_processes(marker)
        for _ in range(100):  # Ray's processes end a moment after the driver's shutdown
            if not left:
                break
            time.sleep(0.2)
            left = marked_processes(marker)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
        for pid in marked_processes(marker):  # only what this run started
            os.kill(pid, signal.SIGKILL)
    assert process.returncode == 128 + signum, stderr
    what = "interrupted" if signum == signal.SIGINT else "stopped by SIGTERM"
    assert re.fullmatch(rf"nst-rt: {what} after \d+ iterations; saved the best image so far \(60x40\) to "
                        rf"{re.escape(str(output))}; --resume continues from .*\n", stderr), stderr
    with Image.open(output) as image:
        image.load()  # decodes every byte: a truncated file raises
        assert image.size == (60, 40)
    assert path_for(output).exists()  # kept for --resume
    assert left == [], "Ray processes of the stopped run are still running"
