"""The settings each execution provider's sessions are created with, and the CUDA libraries loaded before them."""

from __future__ import annotations

import contextlib
import io
import json

from .precision import OPENVINO_HINT
from .providers import CUDA, OPENVINO


def provider_settings(provider: str, device_id: int = 0, precision: str = "fp32", threads: int | None = None) -> dict:
    """ONNX Runtime options for one execution provider."""
    if provider == OPENVINO:
        settings = {"device_type": "CPU",
                    "load_config": json.dumps({"CPU": {"INFERENCE_PRECISION_HINT": OPENVINO_HINT[precision]}})}
        if threads:
            settings["num_of_threads"] = str(threads)
        return settings
    if provider != CUDA:
        return {}
    return {
        "device_id": str(device_id),
        # One image size runs hundreds of passes: the one-time exhaustive search for each conv's fastest
        # cuDNN algorithm pays for itself (it is ORT's default; stated so that it stays).
        "cudnn_conv_algo_search": "EXHAUSTIVE",
        # Grow the arena by what is asked: the default doubling can reserve twice the activations at large sizes.
        "arena_extend_strategy": "kSameAsRequested",
        # float32 convolutions in float32, not TF32 (10-bit mantissa, onnxruntime's default on Ampere and later):
        # the gradient stays the CPU provider's to 1e-4, as L-BFGS's line search needs (docs/gpu.md); TF32 only
        # when asked for.
        "use_tf32": "1" if precision == "tf32" else "0",
    }


def load_cuda_libraries(ort) -> str:
    """Load CUDA and cuDNN from the nvidia-* pip packages where they are installed (`onnxruntime-gpu[cuda,cudnn]`)
    before the CUDA provider needs them; returns what onnxruntime said of the libraries it could not load.

    Without it the provider finds only the libraries on the loader's path (onnxruntime's CUDA documentation)."""
    # onnxruntime-gpu 1.31 warns on its default logger, at every session, that no plugin CUDA device is
    # registered before it takes its built-in CUDA provider: noise on the user's terminal. Errors still show.
    ort.set_default_logger_severity(3)
    preload = getattr(ort, "preload_dlls", None)  # onnxruntime-gpu >= 1.21
    if preload is None:
        return ""
    said = io.StringIO()
    with contextlib.redirect_stdout(said):  # it reports on stdout, which is the user's output
        try:
            preload()
        except (OSError, RuntimeError) as exc:
            print(f"Failed to load the CUDA libraries: {exc}")
    return said.getvalue()
