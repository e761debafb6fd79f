"""A stop signal that arrives while the result is saved, or after a scale has finished, loses nothing: the saves
are finished before it is delivered, and a finished scale is kept."""

from __future__ import annotations

import signal

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from nst_rt.io import image_save

from nst_rt.io import images

from nst_rt.pipeline import stylizer as pipeline
from nst_rt.pipeline.checkpoint import path_for
from nst_rt.cli import app
from nst_rt.pipeline.stylizer import Stylizer
from synthetic import gradient, noise

RUN = ["--size", "32", "--iterations", "3", "--scales", "1", "--threads", "1"]


def test_a_signal_during_the_result_save_leaves_the_whole_file_and_says_so(tmp_path, models, monkeypatch):
    content, style, output = tmp_path / "c.png", tmp_path / "s.png", tmp_path / "out.png"
    Image.fromarray(images.to_uint8(gradient())).save(content)
    Image.fromarray(images.to_uint8(noise())).save(style)
    real_save = image_save.save_image

    def save_with_a_stop(image, path, **kwargs):
        signal.raise_signal(signal.SIGTERM)  # arrives while the result is being written
        return real_save(image, path, **kwargs)

    monkeypatch.setattr(image_save, "save_image", save_with_a_stop)
    result = CliRunner().invoke(app, ["stylize", str(content), str(style), "--models-dir", str(models), *RUN,
                                      "-o", str(output), "--checkpoint-every", "1e-9"])
    assert result.exit_code == 128 + signal.SIGTERM, result.output
    assert f"stopped by SIGTERM after the run finished; wrote {output} (3 iterations)" in " ".join(result.output.split())
    assert "nothing was saved" not in result.output
    with Image.open(output) as saved:
        saved.load()
        assert saved.size == (32, 21)  # the gradient is 3:2
    assert not path_for(output).exists()  # the run was complete: its checkpoint went
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left


def test_a_stop_after_a_scale_finished_keeps_it(models, monkeypatch):
    stylizer = Stylizer(models_dir=models, size=32, iterations=3, scales=1, threads=1)
    whole = stylizer.run(gradient(), noise())
    real_terms = pipeline.terms_of

    def stopped(objective, result):
        monkeypatch.setattr(pipeline, "terms_of", real_terms)
        raise KeyboardInterrupt  # after minimize returned, while the finished scale's terms are evaluated

    monkeypatch.setattr(pipeline, "terms_of", stopped)
    kept = stylizer.run(gradient(), noise())
    assert kept.interrupted and kept.iterations == whole.iterations == 3
    np.testing.assert_array_equal(kept.image, whole.image)
