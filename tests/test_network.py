"""Tests for nst_rt.network.session (providers, sizes, IO binding) and nst_rt.network.model.load_model (search, broken models)."""

from __future__ import annotations

import shutil

import numpy as np
import onnxruntime as ort
import pytest

from nst_rt.model_format import MODEL_FILES

from nst_rt.network import model as model_module
from nst_rt.errors import ModelError, ModelNotFoundError, OptionError, ProviderError
from nst_rt.network.model import load_model
from nst_rt.network.session import Network, activation_shape, choose_providers

HAS_CUDA = "CUDAExecutionProvider" in ort.get_available_providers()


@pytest.fixture(scope="module")
def network(vgg19):
    return Network(vgg19, "cpu")


def _image(seed, height, width, dtype=np.float32):
    return np.random.default_rng(seed).random((1, 3, height, width)).astype(dtype)


# ------------------------------------------------------------------ providers and options


def test_choose_cpu():
    assert choose_providers("cpu") == ["CPUExecutionProvider"]


@pytest.mark.parametrize("offered", [["CUDAExecutionProvider", "CPUExecutionProvider"],
                                     ["CPUExecutionProvider", "CUDAExecutionProvider"]])
def test_choose_auto_prefers_cuda_and_keeps_cpu_last(monkeypatch, offered):
    import nst_rt.network.session as network_module

    monkeypatch.setattr(network_module, "available_providers", lambda: offered)
    assert choose_providers("auto") == ["CUDAExecutionProvider", "CPUExecutionProvider"]


@pytest.mark.skipif(HAS_CUDA, reason="onnxruntime here offers CUDA")
def test_choose_cuda_unavailable():
    with pytest.raises(ProviderError) as excinfo:
        choose_providers("cuda")
    message = str(excinfo.value)
    assert "\n" not in message and "cpu" in message


def test_choose_cuda_unavailable_monkeypatched(monkeypatch):
    import nst_rt.network.session as network_module

    monkeypatch.setattr(network_module, "available_providers", lambda: ["CPUExecutionProvider"])
    with pytest.raises(ProviderError):
        choose_providers("cuda")
    assert choose_providers("auto") == ["CPUExecutionProvider"]


@pytest.mark.parametrize("provider", ["bogus", "CPU", "", "gpu"])
def test_choose_unknown(provider):
    with pytest.raises(OptionError) as excinfo:
        choose_providers(provider)
    assert "auto" in str(excinfo.value) and "cuda" in str(excinfo.value)


@pytest.mark.parametrize("threads", [0, -1])
def test_threads_below_one(vgg19, threads):
    with pytest.raises(OptionError):
        Network(vgg19, "cpu", threads=threads)


def test_network_layers(network, vgg19):
    assert network.device == "cpu"
    assert network.providers == ["CPUExecutionProvider"]
    assert network.layers == vgg19.layers
    assert len(network.layers) == 13 and network.layers[0] == "relu1_1" and network.layers[-1] == "relu5_1"


@pytest.mark.parametrize("height,width", [(15, 40), (40, 15), (8, 8)])
def test_images_below_16px(network, height, width):
    image = _image(0, height, width)
    with pytest.raises(OptionError) as excinfo:
        network.features(image)
    assert "16" in str(excinfo.value) and "\n" not in str(excinfo.value)
    with pytest.raises(OptionError):
        network.forward(image)
    with pytest.raises(OptionError):
        network.bind(height, width)


def test_smallest_size_works(network):
    acts = network.features(_image(1, 16, 16))
    assert acts["relu5_1"].shape == (1, 512, 1, 1)


# ------------------------------------------------------------------ IO binding against plain runs


def _plain_vjp(network, acts, cotangents):
    feeds = {n: a for n, a in acts.items()}
    feeds.update({f"grad_{n}": c for n, c in cotangents.items()})
    (grad,) = network.vjp_session.run(["grad_image"], feeds)
    return grad


@pytest.mark.parametrize("height,width", [(23, 17), (32, 48)])
def test_io_binding_matches_plain_run(network, height, width):
    rng = np.random.default_rng(height * 1000 + width)
    image = rng.random((1, 3, height, width))  # float64 on purpose: forward casts it
    acts = network.forward(image)
    plain = network.features_session.run(None, {"image": image.astype(np.float32)})
    assert list(acts) == network.layers
    for name, expected in zip(network.layers, plain):
        assert acts[name].shape == expected.shape == activation_shape(name, network.channels[name], height, width)
        np.testing.assert_array_equal(acts[name], expected, err_msg=name)

    used = {"relu1_1", "relu3_1", "relu4_2", "relu5_1"}
    cotangents = network.cotangents(used)
    assert set(cotangents) == set(network.layers)
    for name in used:
        cotangents[name][...] = rng.standard_normal(cotangents[name].shape, dtype=np.float32)
    for name in set(network.layers) - used:
        assert not np.any(cotangents[name]), name
    grad = network.backward().copy()
    expected = _plain_vjp(network, {n: np.array(a) for n, a in zip(network.layers, plain)},
                          {n: np.array(c) for n, c in cotangents.items()})
    assert grad.shape == (1, 3, height, width)
    assert np.any(grad != 0)
    np.testing.assert_array_equal(grad, expected)
    # a fresh, independently configured session agrees too (to float rounding)
    fresh = ort.InferenceSession(str(network.model.vjp_path), providers=["CPUExecutionProvider"])
    feeds = {n: np.array(a) for n, a in zip(network.layers, plain)}
    feeds.update({f"grad_{n}": np.array(c) for n, c in cotangents.items()})
    (other,) = fresh.run(["grad_image"], feeds)
    assert np.linalg.norm(other - grad) / np.linalg.norm(other) < 1e-6


def test_features_returns_fresh_arrays(network):
    image = _image(3, 20, 20)
    a = network.features(image)
    b = network.features(_image(4, 20, 20))
    assert not np.array_equal(a["relu1_1"], b["relu1_1"])
    bound = network.forward(image)
    assert not np.shares_memory(bound["relu1_1"], a["relu1_1"])


def test_rebinding_at_new_sizes(vgg19):
    network = Network(vgg19, "cpu")
    sizes = [(20, 24), (33, 17), (20, 24), (64, 16)]
    for i, (height, width) in enumerate(sizes):
        image = _image(10 + i, height, width)
        acts = network.forward(image)
        expected = network.features(image)
        for name in network.layers:
            np.testing.assert_array_equal(acts[name], expected[name], err_msg=f"{height}x{width} {name}")
        cotangents = network.cotangents({"relu2_1"})
        cotangents["relu2_1"][...] = 1.0
        grad = network.backward().copy()
        zeros = {n: np.zeros_like(a) for n, a in expected.items()}
        zeros["relu2_1"] = np.ones_like(expected["relu2_1"])
        np.testing.assert_array_equal(grad, _plain_vjp(network, expected, zeros))
        assert grad.shape == (1, 3, height, width)


def test_same_size_keeps_buffers(network):
    first = network.forward(_image(5, 24, 28))["relu1_1"]
    second = network.forward(_image(6, 24, 28))["relu1_1"]
    assert first is second


def test_cotangents_zero_unused_layers(network):
    network.forward(_image(7, 24, 28))
    c = network.cotangents({"relu1_1", "relu2_1"})
    c["relu1_1"][...] = 1.0
    c["relu2_1"][...] = 2.0
    c = network.cotangents({"relu2_1"})
    assert not np.any(c["relu1_1"])
    assert np.all(c["relu2_1"] == 2.0)  # kept: its owner overwrites it


def _device_path_network(vgg19):
    """A CPU network that takes the device path: its buffers are OrtValues of their own, as on CUDA."""
    network = Network(vgg19, "cpu")
    network.shares_host_memory = False
    return network


def test_device_path_sees_every_steps_image_and_cotangents(vgg19):
    # A device copies a host input when it is bound; a device path that bound host arrays once (or forgot
    # to upload) would run every step on the first step's image and cotangents.
    network = _device_path_network(vgg19)
    rng = np.random.default_rng(21)
    schedules = [{"relu1_1", "relu4_2"}, {"relu1_1", "relu4_2"}, {"relu2_1"}, {"relu1_1", "relu5_1"}]
    for step, used in enumerate(schedules):
        image = rng.random((1, 3, 24, 20))
        acts = network.forward(image, used)
        assert network._bound.device is not None
        expected = network.features(image)
        for name in used:
            np.testing.assert_array_equal(acts[name], expected[name], err_msg=f"step {step} {name}")
        cotangents = network.cotangents(used)
        for name in used:
            cotangents[name][...] = rng.standard_normal(cotangents[name].shape, dtype=np.float32)
        grad = network.backward().copy()
        feeds = {n: np.zeros_like(a) for n, a in expected.items()}
        feeds.update({n: cotangents[n].copy() for n in used})
        np.testing.assert_array_equal(grad, _plain_vjp(network, expected, feeds), err_msg=f"step {step}")
        assert np.any(grad != 0)


def test_device_path_matches_the_host_path(vgg19, network):
    device = _device_path_network(vgg19)
    image = _image(22, 32, 28)
    used = {"relu3_1", "relu4_2"}
    grads = []
    for net in (network, device):
        net.forward(image, used)
        cotangents = net.cotangents(used)
        for name in used:
            cotangents[name][...] = np.random.default_rng(23).standard_normal(cotangents[name].shape)
        grads.append(net.backward().copy())
    np.testing.assert_array_equal(grads[0], grads[1])


def test_device_path_copies_back_only_the_layers_asked_for(vgg19):
    network = _device_path_network(vgg19)
    acts = network.forward(_image(24, 20, 20), {"relu2_1"})
    before = acts["relu1_1"].copy()
    acts = network.forward(_image(25, 20, 20), {"relu2_1"})
    np.testing.assert_array_equal(acts["relu1_1"], before)  # not copied: no loss reads it
    np.testing.assert_array_equal(acts["relu2_1"], network.features(_image(25, 20, 20))["relu2_1"])


def test_backward_before_forward(vgg19):
    network = Network(vgg19, "cpu")
    with pytest.raises(RuntimeError):
        network.backward()
    with pytest.raises(RuntimeError):
        network.cotangents({"relu1_1"})


# ------------------------------------------------------------------ load_model


def test_missing_model(isolated):
    with pytest.raises(ModelNotFoundError) as excinfo:
        load_model("vgg19", isolated / "nowhere")
    message = str(excinfo.value)
    assert "nst-rt export vgg19" in message and "\n" not in message
    with pytest.raises(ModelNotFoundError) as excinfo:
        load_model("vgg19")
    assert "nst-rt export vgg19" in str(excinfo.value)
    with pytest.raises(ModelNotFoundError) as excinfo:
        load_model(isolated / "nowhere" / "vgg19")  # a path to a directory that is not there
    assert "nst-rt export vgg19" in str(excinfo.value)


def test_search_order(isolated, export_path, monkeypatch):
    export = export_path()
    explicit, env, local = isolated / "explicit", isolated / "env", isolated / "models"
    for directory in (explicit, env, local):
        directory.mkdir()
        (directory / "vgg19").symlink_to(export, target_is_directory=True)

    assert load_model("vgg19").path.resolve() == (local / "vgg19").resolve()
    assert load_model("vgg19").path.parent.resolve() == local.resolve()
    monkeypatch.setenv(model_module.ENV_MODELS_DIR, str(env))
    assert load_model("vgg19").path.parent == env
    info = load_model("vgg19", explicit)
    assert info.path.parent == explicit
    assert info.architecture == "vgg19" and info.pooling == "avg" and info.name == "vgg19"
    # a name missing from the first directory is found in the later ones
    (explicit / "vgg19").unlink()
    assert load_model("vgg19", explicit).path.parent == env
    (env / "vgg19").unlink()
    assert load_model("vgg19", explicit).path.parent.resolve() == local.resolve()


def _copy_model(export_path, tmp_path, arch="vgg19", pooling="avg", name="vgg19"):
    src = export_path(arch, pooling)
    dst = tmp_path / "copies" / name
    dst.mkdir(parents=True)
    for f in MODEL_FILES:
        shutil.copyfile(src / f, dst / f)
    return dst


def _model_error(path, *needles):
    with pytest.raises(ModelError) as excinfo:
        load_model("vgg19", path.parent)
    message = str(excinfo.value)
    assert "\n" not in message
    assert "re-export" in message, message
    for needle in needles:
        assert needle in message, message
    return message


def test_copied_model_loads(isolated, export_path):
    path = _copy_model(export_path, isolated)
    assert load_model("vgg19", path.parent).layers[-1] == "relu5_1"


def test_missing_vjp(isolated, export_path):
    path = _copy_model(export_path, isolated)
    (path / "vjp.onnx").unlink()
    _model_error(path, "vjp.onnx")


def test_corrupt_features(isolated, export_path):
    path = _copy_model(export_path, isolated)
    (path / "features.onnx").write_bytes(np.random.default_rng(0).bytes(4096))
    _model_error(path, "features.onnx")


@pytest.mark.parametrize("other", [("vgg16", "avg", "architecture"), ("vgg19", "max", "pooling")],
                         ids=["vgg16-vjp", "max-vjp"])
def test_graphs_from_different_exports(isolated, export_path, other):
    arch, pooling, key = other
    path = _copy_model(export_path, isolated)
    source = export_path(arch, pooling)
    shutil.copyfile(source / "vjp.onnx", path / "vjp.onnx")
    _model_error(path, key)


def test_missing_model_names_its_export_command(isolated):
    (isolated / "empty").mkdir()
    with pytest.raises(ModelNotFoundError) as excinfo:
        load_model("vgg16-max", isolated / "empty")
    assert "nst-rt export vgg16 --pooling max" in str(excinfo.value)


class FakeOrt:
    """What load_cuda_libraries reads of onnxruntime: preload_dlls (which reports on stdout) and the logger."""

    def __init__(self, said: str | None = None, raises: Exception | None = None):
        self.severity, self.said, self.raises = None, said, raises
        if said is None and raises is None:
            self.preload_dlls = None  # an onnxruntime-gpu older than 1.21 has none

    def set_default_logger_severity(self, level):
        self.severity = level

    def preload_dlls(self):
        if self.raises:
            raise self.raises
        print(self.said)


def test_cuda_libraries_failing_to_load_are_returned_not_printed(capsys):
    from nst_rt.network.session import load_cuda_libraries

    fake = FakeOrt(said="Failed to load libcudnn.so.9: cannot open shared object file\nPlease follow the docs")
    said = load_cuda_libraries(fake)
    assert said.splitlines()[0] == "Failed to load libcudnn.so.9: cannot open shared object file"
    assert capsys.readouterr().out == ""  # stdout is the user's
    assert fake.severity == 3  # onnxruntime's per-session plugin warnings stay off the terminal


def test_cuda_libraries_on_an_onnxruntime_without_preload_or_with_a_missing_directory():
    from nst_rt.network.session import load_cuda_libraries

    assert load_cuda_libraries(FakeOrt()) == ""
    said = load_cuda_libraries(FakeOrt(raises=RuntimeError("Invalid parameter of directory=x.")))
    assert said.startswith("Failed to load the CUDA libraries: Invalid parameter")
