"""``nst-rt export``: write the features and VJP graphs of a truncated VGG, validated, atomically."""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import onnx

from nst_rt.errors import ExportError
from nst_rt.model_format import (ARCHITECTURES, DEFAULT_PREPROCESS, DEFAULT_WEIGHTS_DTYPE, FEATURES_FILE,
                                  FORMAT_VERSION, OBJECTIVE_FILE, POOLINGS, PREPROCESSES, VJP_FILE, WEIGHTS_DTYPES,
                                  WEIGHTS_FILE, convs, model_name, relu_names, weight_name)
from nst_rt.network.models_dir import export_dir
from nst_rt.objective.defaults import DEFAULT_CONTENT_LAYERS, DEFAULT_STYLE_LAYERS

from . import external, graphs, objective_graph, validate, vgg

DEFAULT_OPSET = 17
MIN_OPSET = 13  # Resize/Pad with tensor inputs and Shape-based padding need 13


@dataclass
class ExportResult:
    path: Path
    files: list[Path]
    checks: list[validate.Check]
    seconds: float
    metadata: dict[str, str] = field(default_factory=dict)
    # float16 weights: the features and gradient against torch on the unrounded float32 weights (not a test)
    rounding: list[validate.Check] = field(default_factory=list)


def _metadata(arch: str, pooling: str, preprocess: str, opset: int, source: str, digest: str,
              weights_dtype: str) -> dict[str, str]:
    from nst_rt import __version__

    layers = ",".join(relu_names(arch))
    spec = PREPROCESSES[preprocess]
    return {
        "nst_rt.format": FORMAT_VERSION,
        "architecture": arch,
        "pooling": pooling,
        "layers": layers,
        "cotangent_layers": layers,
        "input": "image: float32 (1, 3, H, W), RGB in [0, 1], H and W >= 16",
        "preprocess": preprocess,
        "preprocess_steps": spec.description,
        "normalization_mean": ",".join(str(v) for v in spec.mean),
        "normalization_std": ",".join(str(v) for v in spec.std),
        "weights_source": source,
        "weights_sha256": digest,
        "weights_dtype": weights_dtype,
        "opset": str(opset),
        "exporter_version": __version__,
    }


def export_model(arch: str, out_dir: Path | None = None, *, weights: Path | None = None,
                 random_seed: int | None = None, pooling: str = "avg", preprocess: str = DEFAULT_PREPROCESS,
                 opset: int = DEFAULT_OPSET, force: bool = False, name: str | None = None,
                 weights_dtype: str = DEFAULT_WEIGHTS_DTYPE,
                 log: Callable[[str], None] = lambda line: None) -> ExportResult:
    """Export ``arch`` to ``out_dir/<name>/{features,vjp}.onnx`` + ``weights.bin`` and validate it against torch.

    The weights are stored once, in ``weights_dtype`` (float16 halves the file; the graphs cast them to
    float32, so the arithmetic is float32 either way), in one external-data file both graphs reference.
    Validation runs torch on the same weights rounded to ``weights_dtype``; for float16 the result also
    carries the difference to the unrounded weights (``rounding``).

    ``out_dir`` defaults to where ``nst-rt export`` writes (``nst_rt.network.models_dir.export_dir``).

    Weights come from ``weights`` (a torchvision-format state dict), from ``random_seed`` (seeded random
    weights, for offline trials and tests), or by default from torchvision's published ImageNet file.
    ``preprocess`` is the input transform the weights were trained with (``caffe`` for Caffe-trained VGG
    files); the graphs take [0, 1] RGB either way and do it inside.

    The files are written into a hidden sibling directory and moved into place only once they have
    passed validation, so an interrupted or failed export never leaves a model that looks complete.
    """
    started = time.perf_counter()
    if arch not in ARCHITECTURES:
        raise ExportError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHITECTURES)}")
    if pooling not in POOLINGS:
        raise ExportError(f"unknown pooling {pooling!r}; choose one of {', '.join(POOLINGS)}")
    if preprocess not in PREPROCESSES:
        raise ExportError(f"unknown preprocessing {preprocess!r}; choose one of {', '.join(PREPROCESSES)}")
    if weights_dtype not in WEIGHTS_DTYPES:
        raise ExportError(f"unknown weights dtype {weights_dtype!r}; choose one of {', '.join(WEIGHTS_DTYPES)}")
    newest = onnx.defs.onnx_opset_version()
    if not MIN_OPSET <= opset <= newest:
        raise ExportError(f"opset {opset} is not supported; choose one from {MIN_OPSET} to {newest}")
    try:
        import onnxruntime  # noqa: F401  (validation runs the graphs)
    except ImportError:
        raise ExportError("the exporter validates with onnxruntime: pip install 'nst-rt[cpu]' (or [gpu])") from None

    out_dir = Path(out_dir) if out_dir is not None else export_dir()
    name = name or model_name(arch, pooling, random_weights=random_seed is not None)
    target = out_dir / name
    if target.exists() and not force:
        raise ExportError(f"{target} already exists; pass --force to overwrite it")
    if out_dir.exists() and not out_dir.is_dir():
        raise ExportError(f"{out_dir} is not a directory; choose another --out")

    if weights is not None and random_seed is not None:
        raise ExportError("pass either --weights FILE or --random-weights SEED, not both")
    params, source, digest = vgg.load_weights(arch, weights, random_seed)
    log(f"weights: {source} (sha256 {digest[:12]})")
    metadata = _metadata(arch, pooling, preprocess, opset, source, digest, weights_dtype)

    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(f"cannot create {out_dir}: {exc.strerror}; choose another --out") from None
    staging = out_dir / f".{name}.partial-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        staging.mkdir()
        models = {file_name: build(arch, params, pooling, opset, {**metadata, "role": role}, preprocess, weights_dtype)
                  for file_name, build, role in ((FEATURES_FILE, graphs.features_model, "features"),
                                                 (VJP_FILE, graphs.vjp_model, "vjp"),
                                                 (OBJECTIVE_FILE, objective_graph.objective_model, "objective"))}
        stored = {weight_name(layer, kind) for layer in convs(arch) for kind in ("weight", "bias")}
        files = [target / p.name for p in external.save_shared(models, staging, WEIGHTS_FILE, stored)]
        rounded = graphs.rounded_params(params, weights_dtype)
        reference = vgg.VGGFeatures(arch, rounded, pooling, preprocess)
        checks = validate.validate_export(staging / FEATURES_FILE, staging / VJP_FILE, reference)
        checks += validate.validate_objective(staging / OBJECTIVE_FILE, staging / FEATURES_FILE, staging / VJP_FILE,
                                              reference, DEFAULT_STYLE_LAYERS, DEFAULT_CONTENT_LAYERS)
        log(f"validated against torch on the same weights ({weights_dtype}):")
        for check in checks:
            log(f"  {check.output:<11} max abs error {check.max_abs_error:.2e}  relative {check.relative_error:.2e}"
                f"  (tolerance {check.tolerance:.0e}) {'ok' if check.ok else 'FAILED'}")
        failed = [c.output for c in checks if not c.ok]
        if failed:
            raise ExportError(f"the exported graphs disagree with torch on {', '.join(failed)}; nothing was written")
        rounding = []
        if weights_dtype != "float32":
            rounding = validate.validate_export(staging / FEATURES_FILE, staging / VJP_FILE,
                                                vgg.VGGFeatures(arch, params, pooling, preprocess))
            worst = max(rounding[:-1], key=lambda c: c.relative_error)
            log(f"{weights_dtype} weights against the float32 ones: features differ by at most "
                f"{worst.relative_error:.1e} relative ({worst.output}), the gradient by {rounding[-1].relative_error:.1e}")
        _replace_dir(staging, target)
    except OSError as exc:
        raise ExportError(f"cannot write the export into {out_dir}: {exc.strerror or exc}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return ExportResult(target, files, checks, time.perf_counter() - started, metadata, rounding)


def _replace_dir(new: Path, target: Path) -> None:
    """Move ``new`` to ``target``; an existing ``target`` is removed only after the move succeeded."""
    if not target.exists():
        new.rename(target)
        return
    old = target.with_name(f".{target.name}.old-{os.getpid()}")
    target.rename(old)
    try:
        new.rename(target)
    except OSError:
        old.rename(target)
        raise
    shutil.rmtree(old, ignore_errors=True)
