"""Tests for the exporter (nst_rt.export): graphs against the torch oracle, graph structure, metadata, behaviour."""

from __future__ import annotations

import hashlib
import os
import urllib.error
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

import nst_rt
from nst_rt.errors import ExportError
from nst_rt.export import export_model
from nst_rt.export import exporter as exporter_module
from nst_rt.export import validate as validate_module
from nst_rt.export.vgg import random_state_dict
from oracles import LAYERS

ARCHS = tuple(LAYERS)
POOLINGS = ("avg", "max")
SIZES = ((16, 16), (17, 23), (32, 45), (50, 37))  # (height, width): square, odd, even/odd, non-square
FEATURES_TOL = 1e-5
VJP_TOL = 1e-5



def _session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = 2
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def graphs(export_path, reference):
    """``graphs(arch, pooling) -> (features session, vjp session, torch oracle)``, cached per model."""
    cache = {}

    def get(arch: str, pooling: str):
        if (arch, pooling) not in cache:
            path = export_path(arch, pooling)
            cache[arch, pooling] = (_session(path / "features.onnx"), _session(path / "vjp.onnx"),
                                    reference(arch, pooling))
        return cache[arch, pooling]

    return get


def _seed(*parts) -> int:
    return int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:4], "little")


def _one_line(excinfo, *needles) -> str:
    message = str(excinfo.value)
    assert message and "\n" not in message, repr(message)
    for needle in needles:
        assert needle in message, message
    return message


def _snapshot(directory: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p.relative_to(directory)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(directory.rglob("*")) if p.is_file()}


def _hidden(directory: Path) -> list[str]:
    return [p.name for p in directory.iterdir() if p.name.startswith(".")] if directory.exists() else []


# ------------------------------------------------------------------ graphs against the torch oracle


@pytest.mark.parametrize("height,width", SIZES, ids=[f"{h}x{w}" for h, w in SIZES])
@pytest.mark.parametrize("pooling", POOLINGS)
@pytest.mark.parametrize("arch", ARCHS)
def test_features_graph_matches_torch(graphs, arch, pooling, height, width):
    features, _, oracle = graphs(arch, pooling)
    image = np.random.default_rng(_seed(arch, pooling, height, width)).random((1, 3, height, width), dtype=np.float32)
    names = [o.name for o in features.get_outputs()]
    assert names == LAYERS[arch]
    outputs = dict(zip(names, features.run(None, {"image": image})))
    with torch.no_grad():
        expected = {n: a.numpy() for n, a in oracle(torch.from_numpy(image)).items()}
    assert set(expected) == set(names)
    for name in names:
        assert outputs[name].shape == expected[name].shape, name
        scale = float(np.max(np.abs(expected[name])))
        assert scale > 0, f"{name} is all zeros: the test would prove nothing"
        err = float(np.max(np.abs(outputs[name] - expected[name]))) / scale
        assert err <= FEATURES_TOL, f"{name}: relative error {err:.2e}"


@pytest.mark.parametrize("height,width", SIZES, ids=[f"{h}x{w}" for h, w in SIZES])
@pytest.mark.parametrize("pooling", POOLINGS)
@pytest.mark.parametrize("arch", ARCHS)
def test_vjp_graph_matches_autograd(graphs, arch, pooling, height, width):
    _, vjp, oracle = graphs(arch, pooling)
    rng = np.random.default_rng(_seed("vjp", arch, pooling, height, width))
    image = rng.random((1, 3, height, width), dtype=np.float32)
    x = torch.from_numpy(image).requires_grad_(True)
    acts = oracle(x)
    names = LAYERS[arch]
    cotangents = {n: rng.standard_normal(tuple(acts[n].shape), dtype=np.float32) for n in names}
    (expected,) = torch.autograd.grad([acts[n] for n in names], [x], [torch.from_numpy(cotangents[n]) for n in names])
    expected = expected.numpy()

    inputs = {i.name for i in vjp.get_inputs()}
    assert inputs == set(names) | {f"grad_{n}" for n in names}
    assert [o.name for o in vjp.get_outputs()] == ["grad_image"]
    feeds = {n: acts[n].detach().numpy() for n in names}
    feeds.update({f"grad_{n}": cotangents[n] for n in names})
    (grad,) = vjp.run(["grad_image"], feeds)
    assert grad.shape == (1, 3, height, width)
    rel = float(np.linalg.norm(grad - expected) / np.linalg.norm(expected))
    assert rel <= VJP_TOL, f"relative L2 error {rel:.2e}"


@pytest.mark.parametrize("pooling", POOLINGS)
def test_vjp_single_deep_cotangent(graphs, pooling):
    """Only relu5_1 gets a cotangent: the gradient must travel back through every pooling and conv."""
    _, vjp, oracle = graphs("vgg19", pooling)
    rng = np.random.default_rng(_seed("deep", pooling))
    image = rng.random((1, 3, 37, 50), dtype=np.float32)
    x = torch.from_numpy(image).requires_grad_(True)
    acts = oracle(x)
    cot = rng.standard_normal(tuple(acts["relu5_1"].shape), dtype=np.float32)
    (expected,) = torch.autograd.grad([acts["relu5_1"]], [x], [torch.from_numpy(cot)])
    feeds = {n: a.detach().numpy() for n, a in acts.items()}
    feeds.update({f"grad_{n}": np.zeros(a.shape, np.float32) for n, a in acts.items()})
    feeds["grad_relu5_1"] = cot
    (grad,) = vjp.run(["grad_image"], feeds)
    expected = expected.numpy()
    assert np.linalg.norm(expected) > 0
    assert np.linalg.norm(grad - expected) / np.linalg.norm(expected) <= VJP_TOL


@pytest.mark.parametrize("height,width", [(16, 2048), (2048, 16)], ids=["16x2048", "2048x16"])
def test_large_extent(graphs, height, width):
    features, vjp, oracle = graphs("vgg19", "avg")
    image = np.random.default_rng(_seed("large", height, width)).random((1, 3, height, width), dtype=np.float32)
    names = LAYERS["vgg19"]
    outputs = dict(zip(names, features.run(None, {"image": image})))
    for name in names:
        block = int(name[4])
        assert outputs[name].shape[2:] == (height >> (block - 1), width >> (block - 1)), name
        assert np.all(np.isfinite(outputs[name]))
    if height == 16:  # one full numeric comparison at the large extent (cheap in this orientation)
        with torch.no_grad():
            expected = oracle(torch.from_numpy(image))
        for name in names:
            ref = expected[name].numpy()
            assert np.max(np.abs(outputs[name] - ref)) / np.max(np.abs(ref)) <= FEATURES_TOL, name
    feeds = dict(outputs)
    rng = np.random.default_rng(1)
    feeds.update({f"grad_{n}": rng.standard_normal(a.shape, dtype=np.float32) for n, a in outputs.items()})
    (grad,) = vjp.run(["grad_image"], feeds)
    assert grad.shape == (1, 3, height, width)
    assert np.all(np.isfinite(grad)) and np.any(grad != 0)


# ------------------------------------------------------------------ structure and metadata


@pytest.mark.parametrize("pooling", POOLINGS)
@pytest.mark.parametrize("arch", ARCHS)
def test_vjp_graph_uses_plain_3x3_convs(export_path, arch, pooling):
    model = onnx.load(str(export_path(arch, pooling) / "vjp.onnx"))
    ops = [node.op_type for node in model.graph.node]
    assert "ConvTranspose" not in ops
    assert "Where" not in ops  # the ReLU masks are Cast + Mul: ONNX Runtime's CPU Where runs on one thread
    consumers = {name: node.op_type for node in model.graph.node for name in node.input}
    masks = [node for node in model.graph.node if node.op_type == "Greater"]
    assert masks and all(consumers[m.output[0]] == "Cast" for m in masks)
    assert all(consumers[c.output[0]] == "Mul" for c in model.graph.node if c.op_type == "Cast" and c.input[0] in
               {m.output[0] for m in masks})
    initializers = {t.name: t for t in model.graph.initializer}
    producers = {out: node for node in model.graph.node for out in node.output}
    convs = [node for node in model.graph.node if node.op_type == "Conv"]
    assert len(convs) == len(LAYERS[arch])
    for node in convs:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        assert list(attrs["kernel_shape"]) == [3, 3], node.name
        name = node.input[1]  # the kernel is derived in-graph from the stored forward weight
        while name not in initializers:
            assert producers[name].op_type in ("Mul", "Cast", "Slice", "Transpose"), producers[name].op_type
            name = producers[name].input[0]
        weight = initializers[name]
        assert name.endswith(".weight") and list(weight.dims[2:]) == [3, 3], node.name


@pytest.mark.parametrize("role", ["features", "vjp"])
@pytest.mark.parametrize("pooling", POOLINGS)
@pytest.mark.parametrize("arch", ARCHS)
def test_metadata(export_path, weights_file, arch, pooling, role):
    path = export_path(arch, pooling) / f"{role}.onnx"
    meta = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).get_modelmeta().custom_metadata_map
    assert meta["architecture"] == arch
    assert meta["pooling"] == pooling
    assert meta["layers"].split(",") == LAYERS[arch]
    assert meta["cotangent_layers"].split(",") == LAYERS[arch]
    assert [float(v) for v in meta["normalization_mean"].split(",")] == [0.485, 0.456, 0.406]
    assert [float(v) for v in meta["normalization_std"].split(",")] == [0.229, 0.224, 0.225]
    assert meta["preprocess"] == "torchvision"
    assert meta["weights_sha256"] == hashlib.sha256(weights_file(arch).read_bytes()).hexdigest()
    assert meta["opset"] == str(exporter_module.DEFAULT_OPSET)
    assert meta["exporter_version"] == nst_rt.__version__
    assert meta["role"] == role
    assert meta["nst_rt.format"] == "2"
    assert meta["weights_dtype"] == "float16"  # the default
    assert [o.version for o in onnx.load(str(path), load_external_data=False).opset_import if o.domain == ""] == [
        exporter_module.DEFAULT_OPSET]


# ------------------------------------------------------------------ export behaviour


def test_export_log_overwrite_and_force(tmp_path, weights_file):
    out = tmp_path / "models"
    lines: list[str] = []
    result = export_model("vgg19", out, weights=weights_file("vgg19"), log=lines.append)
    target = out / "vgg19"
    assert result.path == target
    written = ["features.onnx", "objective.onnx", "vjp.onnx", "weights.bin"]
    assert sorted(p.name for p in target.iterdir()) == written
    assert sorted(p.name for p in result.files) == written
    assert _hidden(out) == []

    # the log: one line per checked output, carrying its max error
    assert all("\n" not in line for line in lines)
    checks = {c.output: c for c in result.checks}
    assert list(checks) == LAYERS["vgg19"] + ["grad_image", "style_loss", "content_loss", "objective_gradient"]
    for name, check in checks.items():
        matching = [line for line in lines if line.split() and line.split()[0] == name]
        assert len(matching) == 1, (name, lines)
        assert f"{check.max_abs_error:.2e}" in matching[0]
        assert "ok" in matching[0].split()
        assert check.ok

    # a second export without force fails and leaves the files alone
    before = _snapshot(target)
    with pytest.raises(ExportError) as excinfo:
        export_model("vgg19", out, weights=weights_file("vgg19", seed=1))
    _one_line(excinfo, "--force")
    assert _snapshot(target) == before
    assert _hidden(out) == []

    # with force it replaces them
    export_model("vgg19", out, weights=weights_file("vgg19", seed=1), force=True)
    after = _snapshot(target)
    assert set(after) == set(before)
    for name in before:
        assert after[name][0] != before[name][0], name
    meta = ort.InferenceSession(str(target / "vjp.onnx"), providers=["CPUExecutionProvider"]).get_modelmeta()
    assert meta.custom_metadata_map["weights_sha256"] == hashlib.sha256(
        weights_file("vgg19", seed=1).read_bytes()).hexdigest()
    assert _hidden(out) == []


def test_failed_validation_writes_nothing(tmp_path, weights_file, monkeypatch):
    monkeypatch.setattr(validate_module, "VJP_TOLERANCE", -1.0)  # no error can pass
    out = tmp_path / "models"
    lines: list[str] = []
    with pytest.raises(ExportError) as excinfo:
        export_model("vgg19", out, weights=weights_file("vgg19"), log=lines.append)
    _one_line(excinfo, "grad_image")
    assert not (out / "vgg19").exists()
    assert _hidden(out) == []
    assert not out.exists() or list(out.iterdir()) == []
    assert any("FAILED" in line and line.split()[0] == "grad_image" for line in lines)


def test_failed_forced_export_keeps_old_model(tmp_path, weights_file, monkeypatch):
    out = tmp_path / "models"
    export_model("vgg16", out, weights=weights_file("vgg16"))
    before = _snapshot(out / "vgg16")
    monkeypatch.setattr(validate_module, "FEATURES_TOLERANCE", -1.0)
    with pytest.raises(ExportError):
        export_model("vgg16", out, weights=weights_file("vgg16", seed=1), force=True)
    assert _snapshot(out / "vgg16") == before
    assert _hidden(out) == []


def _wrong_shape_state(tmp_path: Path) -> Path:
    state = random_state_dict("vgg19", seed=3)
    state["features.5.weight"] = torch.zeros(128, 64, 3, 2)
    path = tmp_path / "wrong-shape.pth"
    torch.save(state, path)
    return path


@pytest.mark.parametrize("case", ["vgg16-for-vgg19", "vgg19-for-vgg16", "not-torch", "missing", "wrong-shape",
                                  "not-a-dict"])
def test_bad_weights(tmp_path, weights_file, case):
    arch = "vgg16" if case == "vgg19-for-vgg16" else "vgg19"
    if case == "vgg16-for-vgg19":
        weights = weights_file("vgg16")
    elif case == "vgg19-for-vgg16":
        weights = weights_file("vgg19")
    elif case == "not-torch":
        weights = tmp_path / "garbage.pth"
        weights.write_bytes(b"this is not a torch file\n\x00\x01\x02" * 10)
    elif case == "missing":
        weights = tmp_path / "nope.pth"
    elif case == "not-a-dict":
        weights = tmp_path / "tensor.pth"
        torch.save(torch.zeros(3), weights)
    else:
        weights = _wrong_shape_state(tmp_path)
    out = tmp_path / "out"
    with pytest.raises(ExportError) as excinfo:
        export_model(arch, out, weights=weights)
    message = _one_line(excinfo)
    if case == "wrong-shape":
        assert "features.5.weight" in message
    assert not out.exists()


def test_default_weights_without_network(tmp_path, monkeypatch):
    calls = []

    def offline(url, *args, **kwargs):
        calls.append(url)
        raise urllib.error.URLError("network is unreachable")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    out = tmp_path / "out"
    with pytest.raises(ExportError) as excinfo:
        export_model("vgg19", out)
    _one_line(excinfo, "--weights")
    assert calls and calls[0].startswith("https://")
    assert not out.exists()


def test_a_failed_download_leaves_no_empty_cache_directories(tmp_path, monkeypatch):
    def unreachable(url, dst, *args, **kwargs):  # torch.hub has made its checkpoints directory by now
        raise urllib.error.URLError("network is unreachable")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "cache" / "torch"))
    monkeypatch.setattr(torch.hub, "download_url_to_file", unreachable)
    (tmp_path / "cache").mkdir()
    with pytest.raises(ExportError):
        export_model("vgg19", tmp_path / "out")
    assert list((tmp_path / "cache").iterdir()) == []  # no torch/hub/checkpoints, nothing else


@pytest.mark.parametrize("opset", [exporter_module.MIN_OPSET - 1, onnx.defs.onnx_opset_version() + 1, 0])
def test_opset_out_of_range(tmp_path, weights_file, opset):
    out = tmp_path / "out"
    with pytest.raises(ExportError) as excinfo:
        export_model("vgg19", out, weights=weights_file("vgg19"), opset=opset)
    _one_line(excinfo, str(opset))
    assert not out.exists()


@pytest.mark.parametrize("kwargs", [{"arch": "vgg11"}, {"pooling": "min"}, {"preprocess": "bgr"}])
def test_unknown_arch_or_pooling(tmp_path, weights_file, kwargs):
    arch = kwargs.get("arch", "vgg19")
    out = tmp_path / "out"
    with pytest.raises(ExportError) as excinfo:
        export_model(arch, out, weights=weights_file("vgg19"), pooling=kwargs.get("pooling", "avg"),
                     preprocess=kwargs.get("preprocess", "torchvision"))
    _one_line(excinfo)
    assert not out.exists()


def test_custom_opset(tmp_path, weights_file):
    out = tmp_path / "out"
    result = export_model("vgg16", out, weights=weights_file("vgg16"), pooling="max", opset=18)
    assert result.path == out / "vgg16-max"
    for role in ("features", "vjp"):
        path = result.path / f"{role}.onnx"
        meta = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).get_modelmeta()
        assert meta.custom_metadata_map["opset"] == "18"
        model = onnx.load(str(path))
        assert [o.version for o in model.opset_import if o.domain == ""] == [18]
    assert _hidden(out) == []


def test_out_dir_is_a_file(tmp_path, weights_file):
    out = tmp_path / "file"
    out.write_text("x")
    with pytest.raises(ExportError) as excinfo:
        export_model("vgg19", out, weights=weights_file("vgg19"))
    _one_line(excinfo)
    assert out.read_text() == "x"
    assert sorted(os.listdir(tmp_path)) == ["file"]


# ------------------------------------------------------------------ Caffe preprocessing

CAFFE_MEAN_BGR = np.array([103.939, 116.779, 123.68])
TORCHVISION_MEAN = np.array([0.485, 0.456, 0.406])
TORCHVISION_STD = np.array([0.229, 0.224, 0.225])
REAL_WEIGHTS = Path(os.environ.get("NST_RT_REAL_WEIGHTS_DIR", "/work/weights"))


def fold_caffe_into_torchvision(state: dict) -> dict:
    """Caffe-form VGG weights (BGR, 0-255, minus the mean) with that preprocessing folded into conv1_1.

    The folded network takes torchvision's input; it equals the Caffe one except within one pixel of the
    border, where zero padding pads the other preprocessing's zero.
    """
    w = state["features.0.weight"].double().numpy()
    b = state["features.0.bias"].double().numpy()
    folded, offset = np.empty_like(w), np.empty(3)
    for r in range(3):  # RGB channel r is BGR channel 2 - r
        folded[:, r] = w[:, 2 - r] * 255 * TORCHVISION_STD[r]
        offset[2 - r] = 255 * TORCHVISION_MEAN[r] - CAFFE_MEAN_BGR[2 - r]
    out = dict(state)
    out["features.0.weight"] = torch.from_numpy(folded.astype(np.float32))
    out["features.0.bias"] = torch.from_numpy((b + np.einsum("okij,k->o", w, offset)).astype(np.float32))
    return out


def border_margins(arch: str) -> dict[str, int]:
    """Per ReLU layer, how far the one-pixel border where the two preprocessings differ has spread."""
    from nst_rt.model_format import Pool, layer_table

    margins, margin = {}, 0
    for layer in layer_table(arch):
        margin = -(-margin // 2) if isinstance(layer, Pool) else margin + 1
        if not isinstance(layer, Pool):
            margins[layer.name] = margin
    return margins


def _compare_caffe_with_folded(caffe_dir: Path, folded_dir: Path, arch: str, height: int, width: int):
    image = np.random.default_rng(5).random((1, 3, height, width), dtype=np.float32)
    caffe = _session(caffe_dir / "features.onnx")
    names = [o.name for o in caffe.get_outputs()]
    ours = dict(zip(names, caffe.run(None, {"image": image})))
    theirs = dict(zip(names, _session(folded_dir / "features.onnx").run(None, {"image": image})))
    margins = border_margins(arch)
    for name in names:
        m = margins[name]
        inner = (slice(None), slice(None), slice(m, -m), slice(m, -m))
        a, b = ours[name][inner], theirs[name][inner]
        assert a.size > 0, name
        assert np.abs(a - b).max() <= 1e-5 * np.abs(b).max(), (name, np.abs(a - b).max() / np.abs(b).max())
    # At the border the two differ: the Caffe graph pads after its own preprocessing, as torch does.
    first = names[0]
    assert np.abs(ours[first] - theirs[first]).max() > 1e-3 * np.abs(theirs[first]).max()


def test_caffe_export_equals_folded_torchvision_export(tmp_path):
    arch = "vgg16"
    state = random_state_dict(arch, 11)
    torch.save(state, tmp_path / "caffe.pth")
    torch.save(fold_caffe_into_torchvision(state), tmp_path / "folded.pth")
    # float32: rounding the folded weights to float16 would differ from rounding the unfolded ones
    caffe = export_model(arch, tmp_path, weights=tmp_path / "caffe.pth", preprocess="caffe", name="caffe",
                         weights_dtype="float32")
    folded = export_model(arch, tmp_path, weights=tmp_path / "folded.pth", name="folded", weights_dtype="float32")
    assert caffe.metadata["preprocess"] == "caffe" and folded.metadata["preprocess"] == "torchvision"
    assert all(check.ok for check in caffe.checks)  # validated against torch doing the same preprocessing
    _compare_caffe_with_folded(caffe.path, folded.path, arch, 176, 208)


@pytest.mark.skipif(not (REAL_WEIGHTS / "vgg16-caffe.pth").is_file()
                    or not (REAL_WEIGHTS / "vgg16-torchvision.pth").is_file(),
                    reason="real VGG-16 weights not found (set NST_RT_REAL_WEIGHTS_DIR)")
def test_real_caffe_weights_equal_their_folded_form(tmp_path):
    caffe = export_model("vgg16", tmp_path, weights=REAL_WEIGHTS / "vgg16-caffe.pth", preprocess="caffe",
                         name="caffe", weights_dtype="float32")
    folded = export_model("vgg16", tmp_path, weights=REAL_WEIGHTS / "vgg16-torchvision.pth", name="folded",
                          weights_dtype="float32")
    _compare_caffe_with_folded(caffe.path, folded.path, "vgg16", 176, 208)
