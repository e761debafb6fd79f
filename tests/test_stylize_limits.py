"""The stylization pipeline at its limits: stops and interruptions, runs that end early, sizes and memory,
providers and threads, bad image inputs, and the one-call API."""

from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import nst_rt.pipeline.stylizer as stylize_module
from nst_rt.io import images
from nst_rt.pipeline import memory, outcome
from nst_rt.errors import (ImageError, MemoryLimitError, ModelError, ModelNotFoundError, NstError, OptionError,
                           ProviderError)
from nst_rt.pipeline.stylizer import Stylizer, stylize
from synthetic import gradient, noise, save
from stylize_helpers import CONTENT, CONTENT_32, STYLE, STYLE2, VGG19_LAYERS, as_bytes, mean_sq_neighbour_diff, objectives, run  # noqa: F401

pytestmark = pytest.mark.usefixtures("isolated")


# ----------------------------------------------------------------------------- Ctrl-C


def _interrupt_at(iteration: int, seen: list):
    def progress(p):
        if p.iteration == 0:
            return
        seen.append((p.loss, as_bytes(p.image())))
        if p.iteration == iteration:
            raise KeyboardInterrupt

    return progress


def test_ctrl_c_returns_the_image_so_far(run):
    seen = []
    result = run(iterations=20, progress=_interrupt_at(3, seen))
    assert result.interrupted is True
    assert result.message == "interrupted"
    assert len(seen) == 3
    assert result.image.shape == (21, 32, 3)
    assert as_bytes(result.image) == seen[-1][1]
    assert result.loss == pytest.approx(seen[-1][0])


def test_ctrl_c_result_counts_the_iterations_done(run):
    result = run(iterations=20, progress=_interrupt_at(3, []))
    assert result.interrupted
    assert result.iterations == 3


def test_ctrl_c_before_the_first_iteration_returns_the_start_image(run, monkeypatch):
    def interrupted(self, x):
        raise KeyboardInterrupt

    monkeypatch.setattr(stylize_module.Objective, "__call__", interrupted)
    result = run(iterations=5)
    assert result.interrupted is True
    assert as_bytes(result.image) == as_bytes(CONTENT_32)


def test_ctrl_c_in_the_second_scale_returns_a_full_size_image(run):
    def progress(p):
        if p.scale == 2 and p.iteration == 1:
            raise KeyboardInterrupt

    result = run(size=48, scales=2, iterations=2, coarse_iterations=2, progress=progress)
    assert result.interrupted is True
    assert result.image.shape == (32, 48, 3)
    assert result.iterations == 5  # 4 at the first scale (twice the full size's), 1 at the second


def test_ctrl_c_with_adam_returns_the_best_image_so_far(run):
    seen = []
    # A learning rate large enough that Adam overshoots: the 3rd iterate is worse than the 2nd.
    result = run(optimizer="adam", learning_rate=1.0, iterations=20, progress=_interrupt_at(3, seen))
    losses = [loss for loss, _ in seen]
    assert min(losses) < losses[-1]  # the premise: the last iterate is not the best
    best = int(np.argmin(losses))
    assert result.interrupted
    assert result.loss == pytest.approx(losses[best])
    assert as_bytes(result.image) == seen[best][1]


def test_progress_image_is_the_current_iterate_even_when_adam_goes_up(run):
    seen = []
    run(optimizer="adam", learning_rate=1.0, iterations=3,
        progress=lambda p: p.iteration and seen.append((p.loss, as_bytes(p.image()))))
    losses = [loss for loss, _ in seen]
    assert losses[2] > losses[1]  # the premise: the 3rd Adam step went up
    assert seen[2][1] != seen[1][1]  # Adam moved the pixels, so the current image is a new one


# ----------------------------------------------------------------------------- fewer iterations than asked


def test_a_run_cut_short_says_why_in_the_result(run, evaluation_budget):
    progress = []
    result = run(iterations=20, progress=progress.append)
    assert 0 < result.iterations < 20
    assert not result.interrupted
    assert result.message == (f"stopped after {result.iterations} of 20 iterations: the optimiser used up its "
                              f"budget of loss evaluations ({result.evaluations}) in its line searches")
    assert result.stopped_early == {1: result.message}
    assert progress[-1].iteration == result.iterations  # what the display saw last is where the run ended


def test_a_scale_cut_short_is_named_in_the_message(run, evaluation_budget):
    result = run(size=48, scales=2, iterations=20)
    assert set(result.stopped_early) == {1, 2}
    assert "at scale 1: the optimiser used up" in result.message and "at scale 2: " in result.message


@pytest.mark.parametrize("reason, words", [
    ("gtol", "gradient vanished"), ("ftol", "loss stopped decreasing"), ("maxfun", "budget of loss evaluations (7)"),
    ("linesearch", "line search found no lower point"), ("nonfinite", "nan or infinite"),
])
def test_stop_reasons_are_in_a_users_words(reason, words):
    from types import SimpleNamespace

    from nst_rt.optimize._common import REASONS

    message = next(m for m, code in REASONS.items() if code == reason)
    found = outcome.stop_reason(SimpleNamespace(reason=reason, message=message, nfev=7))
    assert words in found and "PGTOL" not in found and "FACTR" not in found


def test_every_result_carries_its_reason_code():
    import numpy as np

    from nst_rt import minimize

    quadratic = lambda x: (float(x @ x), 2 * x)  # noqa: E731
    assert minimize(quadratic, np.ones(3), jac=True).reason == "gtol"
    assert minimize(quadratic, np.ones(3), jac=True, options={"maxiter": 1, "gtol": 0, "ftol": 0}).reason == "maxiter"


# ----------------------------------------------------------------------------- sizes and memory


@pytest.mark.parametrize("content, size, needle", [
    (gradient(40, 60), 8, "--size"),  # every side below 16 px
    (gradient(20, 100), 48, "48x10"),  # an elongated image: 48x10 px at --size 48
])
def test_an_image_smaller_than_the_network_is_refused(models, minimize_calls, content, size, needle):
    with pytest.raises(OptionError) as excinfo:
        Stylizer(size=size, iterations=1, models_dir=models).run(content, STYLE)
    message = str(excinfo.value)
    assert needle in message and "16" in message and "\n" not in message
    assert minimize_calls == []


@pytest.mark.parametrize("role", ["content", "style", "init"])
def test_a_source_below_the_network_minimum_is_refused_not_upscaled(models, minimize_calls, role):
    tiny = gradient(12, 30)
    content, style, init = CONTENT, STYLE, "content"
    if role == "content":
        content = tiny
    elif role == "style":
        style = tiny
    else:
        init = Image.fromarray(images.to_uint8(tiny))
    with pytest.raises(ImageError) as excinfo:
        Stylizer(size=64, iterations=1, init=init, models_dir=models).run(content, style)  # 64x26 would pass
    assert f"{role} image" in str(excinfo.value) and "30x12 px" in str(excinfo.value)
    assert minimize_calls == []


def test_a_too_small_size_message_says_to_use_a_larger_size(run):
    with pytest.raises(OptionError) as excinfo:
        run(size=8, scales=1)
    message = str(excinfo.value)
    assert "fewer scales" not in message
    assert "larger" in message


def test_a_run_that_does_not_fit_in_memory_is_refused_with_the_estimate(run, monkeypatch, minimize_calls):
    monkeypatch.setattr(memory, "available_bytes", lambda: 1 << 30)
    with pytest.raises(MemoryLimitError) as excinfo:
        run(size=1024, iterations=1, scales=1)  # one scale: the message names the size asked for
    message = str(excinfo.value)
    assert "1024x683" in message and "GiB" in message and "1.0 GiB is available" in message
    assert "--size" in message and "\n" not in message
    assert minimize_calls == []


def test_a_huge_size_is_refused_before_anything_that_size_is_allocated(run, monkeypatch, minimize_calls):
    real_resize_to = images.resize_to

    def guarded(image, size):
        h, w = (int(s) for s in size)
        assert h * w <= 50_000_000, f"resize to {w}x{h} attempted"
        return real_resize_to(image, size)

    monkeypatch.setattr(images, "resize_to", guarded)
    monkeypatch.setattr(memory, "available_bytes", lambda: 64 << 30)
    with pytest.raises(MemoryLimitError) as excinfo:
        run(size=200_000, iterations=1)
    assert "GiB" in str(excinfo.value)
    assert minimize_calls == []


def test_the_memory_estimate_of_a_small_run_fits(models):
    stylizer = Stylizer(size=32, iterations=1, models_dir=models)
    small = memory.estimate_bytes(stylizer.network, 21, 32, 100, [(32, 32)])
    large = memory.estimate_bytes(stylizer.network, 42, 64, 100, [(64, 64)])
    assert memory.FIXED_BYTES < small < large
    assert memory.estimate_bytes(stylizer.network, 21, 32, 0) < memory.estimate_bytes(stylizer.network, 21, 32, 100)



def test_a_run_is_refused_exactly_when_its_estimate_exceeds_the_available_memory(models, monkeypatch):
    stylizer = Stylizer(size=32, iterations=1, models_dir=models)
    need = memory.estimate_bytes(stylizer.network, 21, 32, 100)
    monkeypatch.setattr(memory, "available_bytes", lambda: need)
    memory.check_fits(stylizer.network, 21, 32, 100)
    monkeypatch.setattr(memory, "available_bytes", lambda: need - 1)
    with pytest.raises(MemoryLimitError):
        memory.check_fits(stylizer.network, 21, 32, 100)


# ----------------------------------------------------------------------------- provider, threads, model


def test_provider_cpu_and_threads_reach_onnxruntime(models):
    stylizer = Stylizer(models_dir=models, provider="cpu", threads=1, size=32, iterations=1)
    assert stylizer.network.providers == ["CPUExecutionProvider"]
    assert stylizer.network.features_session.get_providers() == ["CPUExecutionProvider"]
    assert stylizer.network.features_session.get_session_options().intra_op_num_threads == 1
    assert stylizer.network.vjp_session.get_session_options().intra_op_num_threads == 1
    assert stylizer.run(CONTENT, STYLE).image.shape == (21, 32, 3)


def test_provider_cuda_without_cuda_is_a_clear_error(models):
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this onnxruntime offers CUDA")
    with pytest.raises(ProviderError) as excinfo:
        Stylizer(models_dir=models, provider="cuda")
    message = str(excinfo.value)
    assert "CUDA" in message and "--provider cpu" in message and "\n" not in message


def test_threads_below_one_are_refused(models):
    with pytest.raises(OptionError, match="threads"):
        Stylizer(models_dir=models, threads=0)


def test_model_by_path_by_name_by_env_and_by_default_dir(models, monkeypatch, tmp_path):
    by_name = Stylizer(model="vgg19", models_dir=models)
    by_path = Stylizer(model=str(models / "vgg19"))
    assert by_name.model.path == by_path.model.path == models / "vgg19"
    monkeypatch.setenv("NST_RT_MODELS", str(models))
    assert Stylizer().model.path == models / "vgg19"
    monkeypatch.delenv("NST_RT_MODELS")
    (tmp_path / "models").symlink_to(models, target_is_directory=True)  # ./models (the cwd is tmp_path)
    assert Stylizer().model.architecture == "vgg19"
    # --models-dir comes first in the search.
    other = tmp_path / "other"
    shutil.copytree(models / "vgg19", other / "vgg19")
    assert Stylizer(models_dir=other).model.path == other / "vgg19"


def test_a_missing_model_names_the_export_command(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelNotFoundError) as excinfo:
        Stylizer(models_dir=empty)
    assert "nst-rt export" in str(excinfo.value) and "\n" not in str(excinfo.value)
    with pytest.raises(ModelNotFoundError, match="nst-rt export"):
        Stylizer(model=str(tmp_path / "nowhere" / "vgg19"))


@pytest.mark.parametrize("damage", ["garbage features", "no vjp"])
def test_a_broken_model_is_a_model_error(models, tmp_path, damage):
    broken = tmp_path / "broken" / "vgg19"
    shutil.copytree(models / "vgg19", broken)
    if damage == "garbage features":
        (broken / "features.onnx").write_bytes(b"this is not an onnx model\n" * 100)
    else:
        (broken / "vjp.onnx").unlink()
    with pytest.raises(ModelError) as excinfo:
        Stylizer(model=str(broken))
    assert "re-export" in str(excinfo.value) and "\n" not in str(excinfo.value)


# ----------------------------------------------------------------------------- bad image inputs


def _text_jpg(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("this is text, not a JPEG\n")
    return str(path)


def _truncated_png(tmp_path):
    path = tmp_path / "cut.png"
    save(noise(40, 60, seed=9), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return str(path)


@pytest.mark.parametrize("make, needle", [
    (lambda tmp: str(tmp / "missing.png"), "does not exist"),
    (_text_jpg, "not an image"),
    (_truncated_png, "truncated or corrupt"),
])
@pytest.mark.parametrize("role", ["content", "style"])
def test_bad_image_files_are_image_errors(run, tmp_path, minimize_calls, make, needle, role):
    bad = make(tmp_path)
    with pytest.raises(ImageError) as excinfo:
        if role == "content":
            run(content=bad, iterations=1)
        else:
            run(styles=[STYLE, bad], iterations=1)
    message = str(excinfo.value)
    assert needle in message and role in message and "\n" not in message
    assert minimize_calls == []


@pytest.mark.parametrize("limit", [1000, 2000])  # 2400 px: over 2x the limit (error), between 1x and 2x (warning)
def test_a_decompression_bomb_is_refused(run, tmp_path, monkeypatch, limit):
    path = save(gradient(40, 60), tmp_path / "bomb.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", limit)
    with pytest.raises(ImageError) as excinfo:
        run(content=path, iterations=1)
    assert "too large" in str(excinfo.value) and "2400 pixels" in str(excinfo.value)


# ----------------------------------------------------------------------------- the one-call API


def test_stylize_accepts_a_path_a_pil_image_or_an_array(models, tmp_path):
    content_path = save(CONTENT, tmp_path / "content.png")
    style_path = save(STYLE, tmp_path / "style.png")
    content_pil, style_pil = Image.open(content_path), Image.open(style_path)
    content_u8, style_u8 = images.to_uint8(CONTENT), images.to_uint8(STYLE)
    options = {"size": 48, "iterations": 3, "models_dir": models, "threads": 1}
    outputs = [
        stylize(content_path, style_path, **options),
        stylize(content_pil, style_pil, **options),
        stylize(content_u8, style_u8, **options),
        stylize(content_u8.astype(np.float32) / 255, [style_path], **options),
    ]
    for out in outputs:
        assert isinstance(out, Image.Image)
        assert out.mode == "RGB" and out.size == (48, 32)
    assert len({out.tobytes() for out in outputs}) == 1
    assert outputs[0].tobytes() != Image.fromarray(images.to_uint8(images.resize_longest(CONTENT, 48))).tobytes()


def test_stylize_with_several_styles_and_options(models):
    out = stylize(CONTENT, [STYLE, STYLE2], size=32, iterations=2, models_dir=models,
                         style_blend_weights=[1, 3], original_colors=True, threads=1)
    assert out.mode == "RGB" and out.size == (32, 21)


def test_stylize_refuses_unknown_options_and_inputs(models):
    with pytest.raises(TypeError):
        stylize(CONTENT, STYLE, models_dir=models, colour="blue")
    with pytest.raises(ImageError, match="content image must be"):
        stylize(12345, STYLE, size=32, iterations=1, models_dir=models)


def test_nst_rt_stylize_is_the_function_on_every_access():
    code = ("import nst_rt, nst_rt.cli\n"
            "first = nst_rt.stylize\n"
            "second = nst_rt.stylize\n"
            "assert callable(first), type(first)\n"
            "assert callable(second), type(second)\n"
            "from nst_rt.pipeline.stylizer import Stylizer\n"
            "assert callable(nst_rt.stylize), type(nst_rt.stylize)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_every_library_error_is_an_nst_error():
    for cls in (ImageError, MemoryLimitError, ModelError, ModelNotFoundError, OptionError, ProviderError):
        assert issubclass(cls, NstError)
