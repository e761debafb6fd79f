"""How an export stores its weights: once, in one external-data file both graphs read; float16 or float32 on
disk (float32 arithmetic either way); the sizes that follow; and models of the previous format."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest

from nst_rt.errors import ModelError
from nst_rt.export import export_model
from nst_rt.model_format import FORMAT_VERSION, WEIGHTS_FILE, convs
from nst_rt.network.model import load_model
from nst_rt.network.session import Network

KB = 1000
PAGE = 4096  # each stored tensor starts on a page


def parameters(arch: str) -> int:
    return sum(c.out_channels * (c.in_channels * 9 + 1) for c in convs(arch).values())


def _external(path: Path) -> dict[str, tuple[str, int, int]]:
    """Initializer name -> (location, offset, length) for every tensor the graph keeps outside itself."""
    found = {}
    for tensor in onnx.load(str(path), load_external_data=False).graph.initializer:
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            info = {e.key: e.value for e in tensor.external_data}
            found[tensor.name] = (info["location"], int(info["offset"]), int(info["length"]))
    return found


def _copy(export: Path, tmp_path: Path, name: str) -> Path:
    target = tmp_path / "models" / name
    shutil.copytree(export, target)
    return target


def _run(network: Network, image: np.ndarray) -> tuple[dict, np.ndarray]:
    """Both sessions: the activations of ``image`` and the gradient for cotangents equal to the activations."""
    acts = {n: a.copy() for n, a in network.forward(image).items()}
    cotangents = network.cotangents(set(network.layers))
    for n in network.layers:
        cotangents[n][...] = acts[n]
    return acts, network.backward().copy()


# ------------------------------------------------------------------ one weights file, read by both graphs


def test_both_graphs_reference_the_same_stored_tensors(export_path):
    path = export_path("vgg19")
    features, vjp = _external(path / "features.onnx"), _external(path / "vjp.onnx")
    stored = {f"{layer}.{kind}" for layer in convs("vgg19") for kind in ("weight", "bias")}
    assert set(features) == stored
    kernels = {n for n in stored if n.endswith(".weight")}
    assert set(vjp) == kernels  # the VJP needs no biases, and keeps no kernels of its own
    assert all(vjp[n] == features[n] for n in kernels)
    assert {location for location, _, _ in features.values()} == {WEIGHTS_FILE}
    assert all(offset % PAGE == 0 for _, offset, _ in features.values())
    for role in ("features", "vjp"):  # nothing large stays inside the graphs
        assert (path / f"{role}.onnx").stat().st_size < 20 * KB


def test_both_sessions_read_the_one_weights_file(export_path, tmp_path):
    """Zeroing conv1_1's kernel in weights.bin changes what both sessions compute: each reads the file (loaded
    without the sha256 check, which refuses a changed file: tests/test_model_files.py)."""
    original = load_model(export_path("vgg19"))
    changed = _copy(original.path, tmp_path, "vgg19")
    _, offset, length = _external(changed / "features.onnx")["relu1_1.weight"]
    with open(changed / WEIGHTS_FILE, "r+b") as handle:
        handle.seek(offset)
        handle.write(b"\0" * length)
    image = np.random.default_rng(0).random((1, 3, 32, 32), dtype=np.float32)
    acts, grad = _run(Network(original, "cpu", threads=1), image)
    changed_acts, changed_grad = _run(Network(load_model(changed, verify=False), "cpu", threads=1), image)
    assert np.abs(acts["relu1_1"]).max() > 0
    assert not np.allclose(acts["relu1_1"], changed_acts["relu1_1"])  # the features session read the zeros
    feeds_same = Network(load_model(changed, verify=False), "cpu", threads=1)
    feeds_same.forward(image)
    cot = feeds_same.cotangents(set(feeds_same.layers))
    for n in feeds_same.layers:  # the original activations and cotangents: only the VJP's kernels differ
        feeds_same._bound.activations[n][...] = acts[n]
        cot[n][...] = acts[n]
    assert np.abs(grad).max() > 0 and np.all(feeds_same.backward() == 0)  # conv1_1's backward kernel is zero
    assert changed_grad.shape == grad.shape


def test_a_moved_export_still_finds_its_weights(export_path, tmp_path):
    moved = _copy(export_path("vgg16"), tmp_path, "renamed")
    image = np.random.default_rng(1).random((1, 3, 16, 16), dtype=np.float32)
    ours = _run(Network(load_model(moved), "cpu", threads=1), image)
    theirs = _run(Network(load_model(export_path("vgg16")), "cpu", threads=1), image)
    assert np.array_equal(ours[1], theirs[1])


def test_an_export_without_its_weights_file_is_refused_with_the_command(export_path, tmp_path):
    broken = _copy(export_path("vgg16"), tmp_path, "vgg16")
    (broken / WEIGHTS_FILE).unlink()
    with pytest.raises(ModelError) as excinfo:
        load_model(broken)
    message = str(excinfo.value)
    assert WEIGHTS_FILE in message and f"`nst-rt export vgg16 --out {broken.parent} --force`" in message


# ------------------------------------------------------------------ float16 and float32 on disk, and the sizes


@pytest.mark.parametrize("arch,dtype,limit", [("vgg16", "float16", 21e6), ("vgg16", "float32", 41e6),
                                              ("vgg19", "float16", 30e6), ("vgg19", "float32", 56e6)])
def test_export_sizes(tmp_path, arch, dtype, limit):
    result = export_model(arch, tmp_path, random_seed=0, weights_dtype=dtype)
    size = {p.name: p.stat().st_size for p in result.files}
    assert sorted(size) == ["features.onnx", "objective.onnx", "vjp.onnx", WEIGHTS_FILE]
    stored = parameters(arch) * np.dtype(dtype).itemsize  # each weight once, in its dtype, page-aligned
    assert stored <= size[WEIGHTS_FILE] <= stored + 2 * len(convs(arch)) * PAGE
    assert sum(size.values()) <= limit
    assert result.metadata["weights_dtype"] == dtype
    assert load_model(result.path).weights_dtype == dtype


def test_float16_is_validated_against_torch_on_the_rounded_weights(tmp_path):
    lines: list[str] = []
    result = export_model("vgg16", tmp_path, random_seed=3, weights_dtype="float16", log=lines.append)
    assert all(check.ok for check in result.checks)  # 1e-5 against torch on the same float16-rounded weights
    # against the unrounded float32 weights the features differ by more than that tolerance, by less than 1e-3
    features = result.rounding[:-1]
    assert [c.output for c in features] == [c.output for c in result.checks[:len(features)]]  # the layers
    assert max(c.relative_error for c in features) > 1e-5
    assert max(c.relative_error for c in features) < 1e-3
    assert 0 < result.rounding[-1].relative_error < 1e-3  # the gradient
    assert any(line.startswith("float16 weights against the float32 ones") for line in lines), lines
    float32 = export_model("vgg16", tmp_path, random_seed=3, weights_dtype="float32", name="fp32")
    assert float32.rounding == []


def test_float16_graphs_compute_in_float32(export_path):
    for role in ("features", "vjp"):
        graph = onnx.load(str(export_path("vgg16") / f"{role}.onnx"), load_external_data=False).graph
        stored = {t.name for t in graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL}
        assert {t.data_type for t in graph.initializer if t.name in stored} == {onnx.TensorProto.FLOAT16}
        casts = [n for n in graph.node if n.op_type == "Cast"]
        assert casts and all(onnx.helper.get_attribute_value(n.attribute[0]) == onnx.TensorProto.FLOAT for n in casts)
        assert all(n.op_type not in ("Conv", "Mul") or not set(n.input) & stored for n in graph.node)


def test_unknown_weights_dtype(tmp_path):
    from nst_rt.errors import ExportError

    with pytest.raises(ExportError) as excinfo:
        export_model("vgg16", tmp_path, random_seed=0, weights_dtype="bfloat16")
    assert "float16, float32" in str(excinfo.value)
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ the previous format


def format_1(export: Path, target: Path) -> Path:
    """``export`` rewritten as the previous format wrote it: each graph self-contained, float32, no weights file."""
    target.mkdir(parents=True)
    for role in ("features", "vjp"):
        model = onnx.load(str(export / f"{role}.onnx"))  # reads the external data in
        for tensor in model.graph.initializer:
            tensor.data_location = onnx.TensorProto.DEFAULT
            del tensor.external_data[:]
        props = {p.key: p.value for p in model.metadata_props if p.key != "weights_dtype"}
        props["nst_rt.format"] = "1"
        onnx.helper.set_model_props(model, props)
        onnx.save_model(model, str(target / f"{role}.onnx"))
    return target


def test_a_format_1_export_still_loads_and_computes_the_same(export_path, tmp_path):
    old = load_model(format_1(export_path("vgg19"), tmp_path / "models" / "vgg19"))
    assert old.format == "1" and old.weights_dtype == "float32" and not (old.path / WEIGHTS_FILE).exists()
    assert [p.name for p in old.files] == ["features.onnx", "vjp.onnx"]
    image = np.random.default_rng(2).random((1, 3, 32, 48), dtype=np.float32)
    old_acts, old_grad = _run(Network(old, "cpu", threads=1), image)
    new_acts, new_grad = _run(Network(load_model(export_path("vgg19")), "cpu", threads=1), image)
    for name in new_acts:
        assert np.allclose(old_acts[name], new_acts[name], rtol=1e-5, atol=1e-6 * np.abs(new_acts[name]).max())
    assert np.linalg.norm(old_grad - new_grad) <= 1e-5 * np.linalg.norm(new_grad)


@pytest.mark.parametrize("version", ["0", str(int(FORMAT_VERSION) + 1)])
def test_an_unknown_format_is_refused_with_the_re_export_command(export_path, tmp_path, version):
    path = format_1(export_path("vgg19"), tmp_path / "models" / "vgg19")
    for role in ("features", "vjp"):
        model = onnx.load(str(path / f"{role}.onnx"))
        props = {p.key: p.value for p in model.metadata_props}
        onnx.helper.set_model_props(model, {**props, "nst_rt.format": version})
        onnx.save_model(model, str(path / f"{role}.onnx"))
    with pytest.raises(ModelError) as excinfo:
        load_model(path)
    message = str(excinfo.value)
    assert "\n" not in message and f"format {version}" in message
    assert f"`nst-rt export vgg19 --out {path.parent} --force`" in message
