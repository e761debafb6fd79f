"""The OpenVINO execution provider ('nst-rt[openvino]') and the choice of precision.

The provider tests run where onnxruntime offers OpenVINOExecutionProvider and skip cleanly elsewhere; the
choice of provider and precision, and the graph check below, run everywhere.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from nst_rt.model_format import cotangent_name
from nst_rt.network import session as network_module
from nst_rt.errors import OptionError, ProviderError
from nst_rt.network.session import CPU, CUDA, OPENVINO, Network, choose_providers
from nst_rt.objective.whole import Objective
from nst_rt.network.precision import choose_precision, cpu_bf16_flags, needs_probe

from synthetic import gradient, noise

HAS_OPENVINO = OPENVINO in ort.get_available_providers()
needs_openvino = pytest.mark.skipif(not HAS_OPENVINO, reason="onnxruntime-openvino is not installed")


def _cpuinfo(tmp_path, flags: str, vendor: str = "GenuineIntel"):
    path = tmp_path / "cpuinfo"
    path.write_text(f"processor\t: 0\nvendor_id\t: {vendor}\nmodel name\t: Some CPU\nflags\t\t: fpu sse2 {flags}\n\n"
                    f"processor\t: 1\n")
    return str(path)


@pytest.mark.parametrize("flags,probes", [
    ("avx512f avx512_bf16 amx_tile amx_bf16 amx_int8", True), ("avx512f avx512_bf16", True),
    ("avx2 avx512f avx512_vnni", False)])
def test_auto_on_openvino_is_measured_wherever_the_cpu_has_bf16_and_fp32_without_it(tmp_path, flags, probes):
    info = _cpuinfo(tmp_path, flags)
    assert needs_probe("auto", "openvino", info) is probes
    precision, why = choose_precision("auto", "openvino", info)
    assert precision == "fp32" and ("no bf16" in why) is not probes
    assert not needs_probe("fp32", "openvino", info) and not needs_probe("auto", "cpu", info)


@pytest.mark.parametrize("vendor,flags,verdict", [
    ("GenuineIntel", "avx512_bf16 amx_tile amx_bf16", "would likely be faster here in bf16"),
    ("AuthenticAMD", "avx512_bf16", "would likely be faster here in bf16"),
    ("GenuineIntel", "avx512_bf16", "would not be faster here"),  # bf16 measured slower without AMX
    ("GenuineIntel", "avx2 avx512f", "would not be faster here"),
    ("AuthenticAMD", "avx2", "would not be faster here"),
    ("CentaurHauls", "avx512_bf16", "measures whether bf16 is faster")])  # never measured: the probe says
def test_cpu_provider_says_whether_openvino_would_be_faster_on_this_cpu(tmp_path, vendor, flags, verdict):
    precision, why = choose_precision("auto", "cpu", _cpuinfo(tmp_path, flags, vendor))
    assert precision == "fp32" and verdict in why and "nst-rt[openvino]" in why and "\n" not in why


def test_explicit_precision_wins(tmp_path):
    assert choose_precision("fp32", "openvino", _cpuinfo(tmp_path, "avx512_bf16"))[0] == "fp32"
    assert choose_precision("bf16", "openvino", _cpuinfo(tmp_path, ""))[0] == "bf16"


@pytest.mark.parametrize("provider", ["cpu", "cuda"])
def test_other_providers_run_fp32(tmp_path, provider):
    assert choose_precision("auto", provider, _cpuinfo(tmp_path, "avx512_bf16"))[0] == "fp32"
    with pytest.raises(OptionError) as excinfo:
        choose_precision("bf16", provider)
    assert "openvino" in str(excinfo.value) and "\n" not in str(excinfo.value)


def test_unknown_precision():
    with pytest.raises(OptionError):
        choose_precision("fp16", "openvino")


def test_unreadable_cpuinfo_means_no_bf16(tmp_path):
    assert cpu_bf16_flags(str(tmp_path / "missing")) == []


@pytest.mark.parametrize("offered,expected", [([OPENVINO, CPU], [OPENVINO, CPU]), ([CUDA, OPENVINO, CPU], [CUDA, CPU]),
                                              ([CPU], [CPU])])
def test_auto_picks_openvino_when_installed(monkeypatch, offered, expected):
    monkeypatch.setattr(network_module, "available_providers", lambda: offered)
    assert choose_providers("auto") == expected


def test_openvino_not_installed(monkeypatch):
    monkeypatch.setattr(network_module, "available_providers", lambda: [CPU])
    with pytest.raises(ProviderError) as excinfo:
        choose_providers("openvino")
    assert "nst-rt[openvino]" in str(excinfo.value) and "\n" not in str(excinfo.value)


def test_graphs_never_share_an_initializer_between_conv_and_conv_transpose(vgg19):
    # OpenVINO has computed wrong results for graphs where they do (openvinotoolkit/openvino#33397).
    import onnx

    for path in (vgg19.features_path, vgg19.vjp_path):
        graph = onnx.load(str(path), load_external_data=False).graph
        # A kernel reaches its Conv through the casts, transposes and slices the graph derives it by: each
        # tensor is traced back to the stored weight it comes from.
        root = {i.name: i.name for i in graph.initializer}
        users: dict[str, set[str]] = {}
        for node in graph.node:
            if node.op_type in ("Cast", "Transpose", "Slice", "Identity") and node.input[0] in root:
                root[node.output[0]] = root[node.input[0]]
                continue
            for name in node.input:
                if name in root:
                    users.setdefault(root[name], set()).add(node.op_type)
        assert not [n for n, ops in users.items() if {"Conv", "ConvTranspose"} <= ops], path
        assert any("Conv" in ops for ops in users.values())


WEIGHTS = dict(content_weight=1.0, style_weight=10.0, tv_weight=10.0, normalize=True)


def _gradient(network, x):
    objective = Objective(network, gradient(48, 64), [noise(48, 48)], **WEIGHTS)
    for step in range(2):  # the second step must see its own image
        # Scaled, not shifted and clipped: clipped pixels make flat regions whose activations sit at 0, where
        # one ulp between providers flips a ReLU and the gradient, discontinuous there, jumps (by 1e-3 here).
        loss, grad = objective(x * (1 - 0.2 * step) + 0.1 * step)
    return loss, grad.copy()


def test_the_gradient_comparison_runs_on_the_cpu_provider(vgg19):
    # The OpenVINO tests below skip without onnxruntime-openvino; their helper runs everywhere, so an error in
    # it cannot hide until a machine with OpenVINO runs them.
    x = np.random.default_rng(8).random((1, 3, 48, 64))
    loss, grad = _gradient(Network(vgg19, "cpu"), x)
    assert np.isfinite(loss) and loss > 0 and np.linalg.norm(grad) > 0


@needs_openvino
@pytest.mark.parametrize("precision,tolerance", [("fp32", 1e-4), ("bf16", 5e-2)])
def test_openvino_gradient_matches_the_cpu_provider(vgg19, precision, tolerance):
    x = np.random.default_rng(8).random((1, 3, 48, 64))
    cpu_loss, cpu_grad = _gradient(Network(vgg19, "cpu"), x)
    network = Network(vgg19, "openvino", precision=precision)
    assert network.providers[0] == OPENVINO and network.precision == precision
    loss, grad = _gradient(network, x)
    assert np.linalg.norm(grad - cpu_grad) / np.linalg.norm(cpu_grad) < tolerance
    assert abs(loss - cpu_loss) / cpu_loss < tolerance


@needs_openvino
def test_openvino_features_and_vjp_match_the_cpu_provider_on_the_same_inputs(vgg19):
    # The VJP graph alone, fed one set of activations and cotangents: no ReLU can flip between providers.
    x = np.random.default_rng(8).random((1, 3, 48, 64)).astype(np.float32)
    cpu, openvino = Network(vgg19, "cpu"), Network(vgg19, "openvino", precision="fp32")
    activations = cpu.features(x)
    for layer, values in openvino.features(x).items():
        assert np.linalg.norm(values - activations[layer]) / np.linalg.norm(activations[layer]) < 1e-5, layer
    rng = np.random.default_rng(1)
    cotangents = {cotangent_name(l): rng.standard_normal(a.shape).astype(np.float32) for l, a in activations.items()}
    feed = {i.name: {**activations, **cotangents}[i.name] for i in cpu.vjp_session.get_inputs()}
    expected = cpu.vjp_session.run(None, feed)[0]
    got = openvino.vjp_session.run(None, feed)[0]
    assert np.linalg.norm(got - expected) / np.linalg.norm(expected) < 1e-5


@needs_openvino
def test_openvino_stylization_runs(models_dir, isolated):
    from nst_rt.pipeline.stylizer import Stylizer

    stylizer = Stylizer(size=48, iterations=5, models_dir=models_dir(), provider="openvino", precision="fp32",
                        threads=1)
    losses = []
    result = stylizer.run(gradient(), noise(), progress=lambda p: losses.append(p.loss))
    losses = [loss for loss in losses if np.isfinite(loss)]  # the start frame carries no loss yet
    assert result.loss < losses[0]
