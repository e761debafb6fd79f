"""`nst-rt info`, `--version` and `export` in-process, and nst-rt run as real processes."""

from __future__ import annotations

import importlib.metadata
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import typer.testing

import nst_rt
import nst_rt.optimize
from nst_rt.cli import commands as cli
from nst_rt.cli import app
from nst_rt.pipeline.options import Options
from oracles import LAYERS

VGG19_LAYERS = LAYERS["vgg19"]
from cli_helpers import (ERROR_PREFIX, assert_ok, assert_one_error_line, assert_one_notice_line, fake_stylizer,  # noqa: F401
                         invoke, listing, paths, pixels, run_process, runner, stylize_args, subprocess_env)

pytestmark = pytest.mark.usefixtures("isolated")


# ----------------------------------------------------------------------------- info, version, export


def test_info_lists_models_their_metadata_and_the_providers(models, tmp_path):
    result = invoke("info", "--models-dir", models)
    assert_ok(result)
    out = result.stdout
    assert f"nst-rt {nst_rt.__version__}, onnxruntime " in out
    providers = re.search(r"^execution providers: (.*)$", out, re.M).group(1).split(", ")
    assert "CPUExecutionProvider" in providers
    searched = [models, tmp_path / "models", tmp_path / "user-data" / "nst-rt" / "models"]  # absolute, in order
    assert f"\nmodel search path: {', '.join(map(str, searched))}\n" in out
    assert f"\nvgg19  ({models / 'vgg19'})\n" in out
    for line in ("  architecture: vgg19", "  pooling: avg", "  nst_rt.format: 2", "  weights_dtype: float16", "  opset: 17",
                 f"  layers: {','.join(VGG19_LAYERS)}", f"  exporter_version: {nst_rt.__version__}"):
        assert f"\n{line}\n" in out, line
    assert re.search(r"^  weights_sha256: [0-9a-f]{64}$", out, re.M)


def test_info_finds_models_through_the_environment(models, tmp_path):
    result = invoke("info", env={"NST_RT_MODELS": str(models)})
    assert_ok(result)
    searched = [models, tmp_path / "models", tmp_path / "user-data" / "nst-rt" / "models"]
    assert f"\nmodel search path: {', '.join(map(str, searched))}\n" in result.stdout
    assert "  architecture: vgg19" in result.stdout


def test_info_with_no_models_says_how_to_export_one(tmp_path):
    (tmp_path / "nothing").mkdir()
    result = invoke("info", "--models-dir", tmp_path / "nothing")
    assert_ok(result)
    assert "no exported models found" in result.stdout
    assert f"nst-rt export vgg19 --out {tmp_path / 'nothing'}`" in result.stdout  # into the directory asked about
    assert "CPUExecutionProvider" in result.stdout


def test_info_marks_a_broken_model_unusable(models, tmp_path):
    broken = tmp_path / "models" / "vgg19-broken"
    shutil.copytree(models / "vgg19", broken)
    (broken / "vjp.onnx").unlink()
    result = invoke("info", "--models-dir", tmp_path / "models")
    assert_ok(result)
    assert re.search(r"^vgg19-broken  \(.*\): unusable: .*vjp\.onnx", result.stdout, re.M)


def test_version(models):
    result = invoke("--version")
    assert_ok(result)
    assert result.stdout == f"nst-rt {importlib.metadata.version('nst-rt')}\n"
    assert nst_rt.__version__ == importlib.metadata.version("nst-rt")


def test_export_writes_a_validated_model_and_refuses_to_overwrite_it(weights_file, paths, tmp_path):
    out = tmp_path / "exported"
    result = invoke("export", "vgg19", "--weights", weights_file("vgg19"), "--out", out)
    assert_ok(result)
    for output in [*VGG19_LAYERS, "grad_image"]:
        match = re.search(rf"^  {output} +max abs error (\S+) .* ok$", result.stderr, re.M)
        assert match, output
        assert float(match.group(1)) < 1e-4
    assert re.search(rf"^exported vgg19 \(avg pooling\) to {re.escape(str(out / 'vgg19'))} in ", result.stderr, re.M)
    model = out / "vgg19"
    from nst_rt.model_format import WRITTEN_FILES

    assert sorted(p.name for p in model.iterdir()) == sorted(WRITTEN_FILES)
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in model.iterdir()}

    again = invoke("export", "vgg19", "--weights", weights_file("vgg19"), "--out", out)
    assert_one_error_line(again, "already exists", "--force")
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in model.iterdir()} == before
    assert listing(out) == ["vgg19"]  # no staging directories left

    # The fresh export stylizes, given as a path.
    assert_ok(invoke("stylize", paths.content, paths.style, "-o", paths.output, "--model", model, "--size", "32",
                     "--iterations", "1", "-q"))
    assert pixels(paths.output).shape == (21, 32, 3)


def test_export_with_missing_weights_is_one_line(tmp_path):
    result = invoke("export", "vgg19", "--weights", tmp_path / "nope.pth", "--out", tmp_path / "m")
    assert_one_error_line(result, "nope.pth", "does not exist")
    assert not (tmp_path / "m" / "vgg19").exists()


# ----------------------------------------------------------------------------- real processes


def test_process_stylize_succeeds(paths, models, tmp_path):
    done = run_process(*stylize_args(paths, models, size=48, iterations=2), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"wrote {paths.output} (48x32, 2 iterations")
    assert pixels(paths.output).shape == (32, 48, 3)


@pytest.mark.parametrize("case", ["missing content", "provider cuda", "unknown layer"])
def test_process_errors_are_one_line_without_traceback(paths, models, tmp_path, case):
    if case == "missing content":
        args = stylize_args(paths, models, content=paths.src / "missing.png")
    elif case == "provider cuda":
        import onnxruntime

        if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
            pytest.skip("this onnxruntime offers CUDA")
        args = stylize_args(paths, models, "--provider", "cuda")
    else:
        args = stylize_args(paths, models, "--content-layers", "relu4_9")
    done = run_process(*args, cwd=tmp_path)
    assert done.returncode == 1
    assert done.stdout == ""
    assert "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(ERROR_PREFIX), done.stderr
    assert listing(paths.out) == []


def _limit_address_space():
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (8 << 30, 8 << 30))


def test_process_refuses_a_size_far_beyond_memory(paths, models, tmp_path):
    # The address-space limit turns an attempted 200000 px run into a MemoryError instead of an OOM kill.
    done = run_process(*stylize_args(paths, models, "--scales", "1", size=200000), cwd=tmp_path, timeout=120,
                       preexec_fn=_limit_address_space)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(ERROR_PREFIX) and "200000x133333" in lines[0] and "GiB" in lines[0]
    assert listing(paths.out) == []


def test_process_version():
    done = run_process("--version", cwd=Path.cwd())
    assert done.returncode == 0 and done.stderr == ""
    assert done.stdout == f"nst-rt {importlib.metadata.version('nst-rt')}\n"


@pytest.mark.parametrize("signum, words", [(signal.SIGINT, "interrupted"), (signal.SIGTERM, "stopped by SIGTERM"),
                                           (signal.SIGHUP, "stopped by SIGHUP")])
def test_process_stop_signal_saves_the_best_image_and_exits_128_plus_signal(paths, models, tmp_path, signum, words):
    # Far more iterations than can run before the signal: the run must end by the signal, not by finishing.
    args = stylize_args(paths, models, "--save-every", "2", iterations=100000)
    proc = subprocess.Popen([sys.executable, "-m", "nst_rt", *map(str, args)], cwd=tmp_path, env=subprocess_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first_frame = paths.out / "result_0002.png"
        deadline = time.monotonic() + 90
        while not first_frame.exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no frame within 90 s"
            time.sleep(0.02)
        proc.send_signal(signum)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 128 + signum, stderr
    assert stdout == "" and "Traceback" not in stderr
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    match = re.fullmatch(rf"nst-rt: {words} after (\d+) iterations; saved the best image so far \(32x21\) to "
                         rf"{re.escape(str(paths.output))}", lines[0])
    assert match, lines[0]
    assert 2 <= int(match.group(1)) < 100000
    assert pixels(paths.output).shape == (21, 32, 3)
    from nst_rt.pipeline.stopped import marker_path

    # no temporary files; the record of the stop (what a later --resume may replace) is kept
    assert [name for name in listing(paths.out) if name.startswith(".")] == [marker_path(paths.output).name]


def test_export_with_random_weights_needs_no_file(tmp_path):
    result = runner.invoke(app, ["export", "vgg16", "--random-weights", "3", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    from nst_rt.network.model import load_model

    assert sorted(p.name for p in tmp_path.iterdir()) == ["vgg16-random"]  # a name that says what it holds
    info = load_model("vgg16-random", tmp_path)
    assert info.metadata["weights_source"] == "random weights (seed 3)"
    assert len(info.metadata["weights_sha256"]) == 64


def test_export_refuses_weights_and_random_weights_together(tmp_path, weights_file):
    result = runner.invoke(app, ["export", "vgg19", "--weights", str(weights_file("vgg19")), "--random-weights", "0",
                                 "--out", str(tmp_path)])
    assert result.exit_code == 1
    assert "not both" in result.stderr and not any(tmp_path.iterdir())


@pytest.mark.parametrize("argv, expected", [
    (["stylize", "a.png", "b.png", "--size", "abc"], "Invalid value for '--size'"),
    (["stylize"], "Missing argument 'CONTENT'"),
    (["no-such-command"], "No such command"),
    (["stylize", "a.png", "b.png", "--provider", "tpu"], "'tpu' is not one of 'auto', 'cpu', 'cuda'"),
])
def test_usage_errors_are_clicks_own_with_exit_code_2(argv, expected):
    done = subprocess.run([sys.executable, "-m", "nst_rt", *argv], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.startswith("Usage: nst-rt") and "--help" in done.stderr
    assert "\nError: " in done.stderr and expected in done.stderr and "Traceback" not in done.stderr
    assert done.stdout == ""


def test_a_bare_command_prints_the_help():
    done = subprocess.run([sys.executable, "-m", "nst_rt"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert all(command in done.stderr + done.stdout for command in ("stylize", "export", "info"))


def test_cli_choices_are_the_librarys():
    from nst_rt.export import vgg
    from nst_rt.model_format import ARCHITECTURES, POOLINGS
    from nst_rt.network.session import PROVIDERS
    from nst_rt.pipeline.options import OPTIMIZERS

    import typing

    from nst_rt.cli import common as cli_common

    # Annotated stripped; the stylization options are declared once, for stylize and batch alike
    hints = {**typing.get_type_hints(cli_common.stylization_options), **typing.get_type_hints(cli.export)}
    choices = {name: tuple(member.value for member in hints[name]) for name in ("provider", "optimizer", "pooling",
                                                                                  "arch")}
    assert choices == {"provider": PROVIDERS, "optimizer": OPTIMIZERS, "pooling": POOLINGS,
                       "arch": tuple(ARCHITECTURES)}
    assert vgg.ARCHITECTURES is ARCHITECTURES and vgg.POOLINGS is POOLINGS  # the exporter reads the same tables


def test_stylize_defaults_are_the_options_defaults():
    command = typer.main.get_command(app).commands["stylize"]
    defaults = Options()
    compared = 0
    for param in command.params:
        if param.name == "model":  # chosen when a run starts ($NST_RT_MODEL, else vgg19), by the one function
            from nst_rt.network.models_dir import default_model_name

            assert param.default is None and defaults.model == default_model_name() == "vgg19"
            compared += 1
        elif param.name in vars(defaults):
            want = getattr(defaults, param.name)
            want = ",".join(want) if isinstance(want, tuple) else want
            got = param.default.value if hasattr(param.default, "value") else param.default
            assert got == want, param.name
            compared += 1
    assert compared == len(vars(defaults))


def test_info_says_what_this_machine_has_when_cuda_is_not_installed(models, monkeypatch):
    import nst_rt.network.session as session

    monkeypatch.setattr(session, "available_providers", lambda: ["CPUExecutionProvider"])
    result = invoke("info", "--models-dir", models)
    assert_ok(result)
    assert "\nCUDA provider: not installed here (this onnxruntime runs on cpu); for an NVIDIA GPU, install the gpu " \
           "extra\n" in result.stdout
    assert "not yet verified" not in result.stdout


def test_info_on_the_cpu_provider_says_whether_openvino_would_be_faster_on_this_cpu(models, monkeypatch):
    import nst_rt.network.session as session
    from nst_rt.network.precision import openvino_advice

    monkeypatch.setattr(session, "available_providers", lambda: ["CPUExecutionProvider"])
    result = invoke("info", "--models-dir", models)
    assert_ok(result)
    line = next(l for l in result.stdout.splitlines() if l.startswith("a run with the defaults uses: "))
    assert line.startswith("a run with the defaults uses: cpu provider, fp32 (the cpu provider runs fp32; ")
    assert line.endswith(f"{openvino_advice()})")  # this CPU's verdict, as the tests of openvino_advice hold it
