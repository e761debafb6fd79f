"""The batch engines: naming, skipping finished outputs, broken inputs, interrupts, and Ray against local.

Runs use the session's random-weights VGG-19 export, 32 px pictures and a few iterations.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from PIL import Image

from nst_rt import batch

from nst_rt.io import image_save
from nst_rt.batching.api import DONE, FAILED, SKIPPED, collect_inputs, plan
from nst_rt.batching.record import RECORD
from nst_rt.errors import ImageError, OptionError
from nst_rt.pipeline.stylizer import Stylizer
from synthetic import gradient, noise, save, stripes

pytestmark = pytest.mark.usefixtures("isolated")
FAST = {"size": 32, "iterations": 3, "threads": 1}


@pytest.fixture
def photos(tmp_path):
    """Three good pictures in photos/, a broken one among them, and a style image."""
    folder = tmp_path / "photos"
    save(gradient(), folder / "a.png")
    save(noise(40, 56, seed=3), folder / "b.jpg")
    save(gradient(48, 36)[::-1], folder / "c.png")
    (folder / "broken.png").write_bytes(b"this is no picture")
    (folder / "notes.txt").write_text("not an image suffix: left out of a directory")
    return folder, save(stripes(), tmp_path / "style.png")


def statuses(report) -> dict[str, str]:
    return {r.input.name: r.status for r in report.results}


# ----------------------------------------------------------------------------- inputs and names


def test_inputs_are_files_directories_and_patterns(tmp_path, photos):
    folder, _ = photos
    save(gradient(), tmp_path / "more" / "deep" / "d.png")
    found = collect_inputs([folder / "c.png", folder, str(tmp_path / "more" / "**" / "*.png")])
    # the explicit file first and only once; the directory's images sorted; hidden and .txt files left out
    assert [p.name for p in found] == ["c.png", "a.png", "b.jpg", "broken.png", "d.png"]


def test_an_input_that_matches_nothing_is_refused(tmp_path):
    with pytest.raises(OptionError, match="no file, directory or matching pattern"):
        collect_inputs([tmp_path / "typo*.png"])


def test_outputs_are_named_after_inputs_with_the_format(tmp_path, photos):
    folder, _ = photos
    todo, done = plan([folder], tmp_path / "new" / "out", format="jpg")
    assert done == []
    assert [(i.input.name, i.output.name) for i in todo] == [
        ("a.png", "a.jpg"), ("b.jpg", "b.jpg"), ("broken.png", "broken.jpg"), ("c.png", "c.jpg")]
    assert {i.output.parent for i in todo} == {tmp_path / "new" / "out"}  # created, parents too
    assert (tmp_path / "new" / "out").is_dir()


def test_two_inputs_with_one_output_name_are_refused(tmp_path, photos):
    folder, _ = photos
    save(gradient(), tmp_path / "other" / "a.jpg")
    with pytest.raises(OptionError, match="would both be written to"):
        plan([folder / "a.png", tmp_path / "other" / "a.jpg"], tmp_path / "out")


def test_an_output_that_would_replace_its_input_is_refused(photos):
    folder, _ = photos
    with pytest.raises(OptionError, match="would replace an input"):
        plan([folder], folder, format="png")


def test_an_unknown_format_is_refused_before_any_work(tmp_path, photos):
    folder, _ = photos
    with pytest.raises(OptionError, match="unknown --format 'xyz'; use one of: bmp, jpeg, jpg, png"):
        plan([folder], tmp_path / "out", format="xyz")


# ----------------------------------------------------------------------------- the local engine


def test_a_broken_input_is_reported_and_the_batch_goes_on(tmp_path, photos, models):
    folder, style = photos
    seen = []
    report = batch([folder], style, tmp_path / "out", models_dir=models, **FAST,
                   progress=lambda result, finished, total: seen.append((result.input.name, finished, total)))
    assert statuses(report) == {"a.png": DONE, "b.jpg": DONE, "broken.png": FAILED, "c.png": DONE}
    broken = report.failed[0]
    assert "broken.png" in broken.message and "not an image" in broken.message
    assert sorted(os.listdir(tmp_path / "out")) == [RECORD, "a.png", "b.png", "c.png"]  # nothing for the broken one
    assert seen == [("a.png", 1, 4), ("b.jpg", 2, 4), ("broken.png", 3, 4), ("c.png", 4, 4)]
    with Image.open(tmp_path / "out" / "c.png") as img:
        assert img.size == (24, 32)  # 36x48 content at a longest side of 32
    assert not report.interrupted and report.remaining == 0


def test_finished_outputs_are_skipped_so_a_rerun_resumes(tmp_path, photos, models):
    folder, style = photos
    out = tmp_path / "out"
    out.mkdir()
    placeholder = save(noise(8, 8), out / "b.png")  # as if an earlier run had finished b
    before = placeholder.read_bytes()
    report = batch([folder / "a.png", folder / "b.jpg"], [style], out, models_dir=models, **FAST)
    assert statuses(report) == {"b.jpg": SKIPPED, "a.png": DONE}
    assert placeholder.read_bytes() == before
    again = batch([folder / "a.png", folder / "b.jpg"], [style], out, models_dir=models, **FAST)
    assert statuses(again) == {"a.png": SKIPPED, "b.jpg": SKIPPED}
    redone = batch([folder / "b.jpg"], [style], out, overwrite=True, models_dir=models, **FAST)
    assert statuses(redone) == {"b.jpg": DONE} and placeholder.read_bytes() != before


def test_the_same_inputs_and_seed_give_the_same_bytes(tmp_path, photos, models):
    folder, style = photos
    for name in ("one", "two"):
        batch([folder / "a.png", folder / "c.png"], style, tmp_path / name, models_dir=models, seed=5,
              init="noise", **FAST)
    for picture in ("a.png", "c.png"):
        assert (tmp_path / "one" / picture).read_bytes() == (tmp_path / "two" / picture).read_bytes()


def test_a_bad_style_fails_the_batch_before_any_work(tmp_path, photos, models):
    folder, _ = photos
    with pytest.raises(ImageError, match="style image 1"):
        batch([folder], folder / "broken.png", tmp_path / "out", models_dir=models, **FAST)
    assert not (tmp_path / "out").exists()


def test_ctrl_c_during_a_run_stops_the_batch_and_leaves_that_input_for_the_rerun(tmp_path, photos, models,
                                                                                monkeypatch):
    folder, style = photos
    real_run, calls = Stylizer.run, []

    def run(self, content, styles, progress=None):
        calls.append(Path(content).name)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_run(self, content, styles, progress)

    monkeypatch.setattr(Stylizer, "run", run)
    report = batch([folder], style, tmp_path / "out", models_dir=models, **FAST)
    assert report.interrupted and statuses(report) == {"a.png": DONE}
    assert report.remaining == 3
    assert sorted(os.listdir(tmp_path / "out")) == [RECORD, "a.png"]  # no temporary file, no half-done b


def test_a_stop_signal_during_a_save_lets_the_save_finish_first(tmp_path, photos, models, monkeypatch):
    folder, style = photos
    real_save = image_save.save_image

    def save_then_signal(image, path, **kwargs):
        signal.raise_signal(signal.SIGINT)  # Ctrl-C arrives while the file is being written
        return real_save(image, path, **kwargs)

    monkeypatch.setattr(image_save, "save_image", save_then_signal)
    # Ctrl-C as an interactive Python has it (a background job may have started with SIGINT ignored)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        report = batch([folder], style, tmp_path / "out", models_dir=models, **FAST)
        handler = signal.getsignal(signal.SIGINT)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert report.interrupted
    assert statuses(report) == {"a.png": DONE}  # saved and counted; the batch stopped right after
    with Image.open(tmp_path / "out" / "a.png") as img:
        img.load()
    assert handler is signal.default_int_handler  # the handler is given back


def test_unknown_engine_and_ray_only_options_are_refused(tmp_path, photos):
    folder, style = photos
    with pytest.raises(OptionError, match="unknown engine"):
        batch([folder], style, tmp_path / "out", engine="spark")
    with pytest.raises(OptionError, match="--engine ray only"):
        batch([folder], style, tmp_path / "out", actors=2)


# ----------------------------------------------------------------------------- the Ray engine


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray for the module's tests (starting one takes seconds), with 2 CPUs as on this machine."""
    ray = pytest.importorskip("ray", reason="the ray extra is not installed")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.mark.slow
def test_ray_gives_the_same_bytes_and_failures_as_local(tmp_path, photos, models, local_ray):
    folder, style = photos
    options = dict(models_dir=models, seed=2, noise_ratio=0.3, **FAST)
    local = batch([folder], [style], tmp_path / "local", **options)
    on_ray = batch([folder], [style], tmp_path / "ray", engine="ray", actors=2, **options)
    assert statuses(on_ray) == statuses(local) == {"a.png": DONE, "b.jpg": DONE, "broken.png": FAILED,
                                                   "c.png": DONE}
    assert "not an image" in on_ray.failed[0].message
    assert sorted(os.listdir(tmp_path / "ray")) == [RECORD, "a.png", "b.png", "c.png"]
    for picture in ("a.png", "b.png", "c.png"):
        assert (tmp_path / "ray" / picture).read_bytes() == (tmp_path / "local" / picture).read_bytes()
    # a rerun on Ray skips what is there, as the local engine does
    assert set(statuses(batch([folder], [style], tmp_path / "ray", engine="ray", **options)).values()) == {
        SKIPPED, FAILED}


@pytest.mark.slow  # with the other: a local Ray takes seconds to start
def test_a_worker_without_the_model_reports_it_for_each_input(tmp_path, photos, local_ray):
    folder, style = photos
    report = batch([folder / "a.png", folder / "c.png"], style, tmp_path / "out", engine="ray", actors=1,
                   models_dir=tmp_path, model="nowhere", **FAST)
    assert [r.status for r in report.results] == [FAILED, FAILED]
    assert all("nowhere" in r.message for r in report.results)


def test_without_ray_the_error_names_the_extra(tmp_path, photos, monkeypatch):
    import sys

    from nst_rt.errors import MissingDependencyError

    folder, style = photos
    monkeypatch.setitem(sys.modules, "ray", None)  # as on a machine without the extra
    with pytest.raises(MissingDependencyError, match=r"pip install -e '\.\[ray\]'"):
        batch([folder / "a.png"], style, tmp_path / "out", engine="ray", **FAST)
    assert not (tmp_path / "out").exists()


def test_the_batch_module_does_not_import_ray():
    import subprocess
    import sys

    code = "import sys, nst_rt.batching.api, nst_rt.batching.ray_engine; print('ray' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "False\n"


def test_each_actor_reserves_its_threads_and_a_gpu_with_cuda():
    from nst_rt.pipeline.options import Options
    from nst_rt.batching.ray_engine import actor_resources, pool_size

    assert actor_resources(Options(provider="cpu", threads=2), gpus_in_cluster=4) == {"num_cpus": 2, "num_gpus": 0}
    assert actor_resources(Options(provider="cuda", threads=1), gpus_in_cluster=0) == {"num_cpus": 1, "num_gpus": 1}
    assert actor_resources(Options(provider="auto", threads=1), gpus_in_cluster=2)["num_gpus"] == 1
    assert actor_resources(Options(provider="auto", threads=1), gpus_in_cluster=0)["num_gpus"] == 0
    # by default as many actors as the cluster holds at once; with a GPU each, no more than its GPUs
    assert pool_size(None, {"num_cpus": 2, "num_gpus": 0}, {"CPU": 9.0}) == 4
    assert pool_size(None, {"num_cpus": 1, "num_gpus": 1}, {"CPU": 16.0, "GPU": 2.0}) == 2
    assert pool_size(3, {"num_cpus": 1, "num_gpus": 0}, {"CPU": 1.0}) == 3
    with pytest.raises(OptionError, match="--actors"):
        pool_size(0, {"num_cpus": 1, "num_gpus": 0}, {"CPU": 2.0})


def test_paths_sent_to_workers_are_absolute_and_model_names_stay_names(tmp_path):
    from nst_rt.pipeline.options import Options
    from nst_rt.batching.ray_engine import worker_options

    sent = worker_options(Options(model="vgg19", models_dir="models", init="start.png"))
    assert sent.model == "vgg19"  # looked up on each worker by the usual rules
    assert sent.models_dir == str(tmp_path / "models") and sent.init == str(tmp_path / "start.png")
    assert worker_options(Options(model="exports/vgg16")).model == str(tmp_path / "exports" / "vgg16")
    assert worker_options(Options(init="noise")).init == "noise"
