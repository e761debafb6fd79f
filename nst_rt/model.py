"""Find an exported model, read its metadata back through onnxruntime, and check it.

A model is a directory holding ``features.onnx`` and ``vjp.onnx`` (written by ``nst-rt export``).
Search order for a model given by name: ``models_dir`` when given, then ``$NST_RT_MODELS``, then ``./models``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from .errors import MissingDependencyError, ModelError, ModelNotFoundError
from .model_format import FEATURES_FILE, FORMAT_VERSION, REQUIRED_METADATA, VJP_FILE

ENV_MODELS_DIR = "NST_RT_MODELS"
DEFAULT_MODELS_DIR = Path("models")
DEFAULT_MODEL = "vgg19"


def import_onnxruntime():
    """Import onnxruntime, or say which extra installs it."""
    try:
        import onnxruntime
    except ImportError:
        raise MissingDependencyError(
            "onnxruntime is not installed: pip install 'nst-rt[cpu]' (or 'nst-rt[gpu]' for CUDA)"
        ) from None
    return onnxruntime


@dataclass
class ModelInfo:
    name: str
    path: Path
    metadata: dict[str, str] = field(repr=False)

    @property
    def architecture(self) -> str:
        return self.metadata["architecture"]

    @property
    def pooling(self) -> str:
        return self.metadata["pooling"]

    @property
    def layers(self) -> list[str]:
        return self.metadata["layers"].split(",")

    @property
    def cotangent_layers(self) -> list[str]:
        return self.metadata["cotangent_layers"].split(",")

    @property
    def features_path(self) -> Path:
        return self.path / FEATURES_FILE

    @property
    def vjp_path(self) -> Path:
        return self.path / VJP_FILE


def search_dirs(models_dir: str | os.PathLike | None = None) -> list[Path]:
    dirs = [Path(models_dir)] if models_dir else []
    if os.environ.get(ENV_MODELS_DIR):
        dirs.append(Path(os.environ[ENV_MODELS_DIR]))
    dirs.append(DEFAULT_MODELS_DIR)
    return list(dict.fromkeys(dirs))


def export_command(name: str, out: Path | None = None) -> str:
    """The ``nst-rt export`` command that writes the model called ``name``."""
    arch, _, pooling = name.partition("-")
    if arch not in ("vgg16", "vgg19"):
        arch, pooling = DEFAULT_MODEL, ""
    command = f"nst-rt export {arch}" + (f" --pooling {pooling}" if pooling else "")
    if out is not None and out != DEFAULT_MODELS_DIR:
        command += f" --out {out}"
    return command


def resolve_model(model: str | os.PathLike = DEFAULT_MODEL, models_dir: str | os.PathLike | None = None) -> Path:
    """The directory of ``model``: a path to an export directory, or a name looked up in the search dirs."""
    candidate = Path(model)
    if candidate.is_dir() or os.sep in str(model) or (os.altsep and os.altsep in str(model)):
        if not candidate.is_dir():
            raise ModelNotFoundError(f"model directory {candidate} does not exist; create it with nst-rt export vgg19 "
                                     f"--out {candidate.parent}")
        return candidate
    dirs = search_dirs(models_dir)
    for directory in dirs:
        if (directory / str(model)).is_dir():
            return directory / str(model)
    looked = ", ".join(str(d) for d in dirs)
    raise ModelNotFoundError(f"no exported model {str(model)!r} in {looked}; create it with "
                             f"`{export_command(str(model), dirs[0])}`")


def _read_metadata(path: Path, ort) -> dict[str, str]:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # only the metadata is read
    try:
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise ModelError(f"{path} is not a readable ONNX model ({str(exc).splitlines()[0][:160]}); "
                         f"re-export it with --force") from None
    return dict(session.get_modelmeta().custom_metadata_map)


def load_model(model: str | os.PathLike = DEFAULT_MODEL, models_dir: str | os.PathLike | None = None) -> ModelInfo:
    """Locate ``model`` and check that both graphs are present, readable and belong together."""
    ort = import_onnxruntime()
    path = resolve_model(model, models_dir)
    fix = f"re-export it with `{export_command(path.name, path.parent)} --force`"
    for file_name in (FEATURES_FILE, VJP_FILE):
        if not (path / file_name).is_file():
            raise ModelError(f"model {path} has no {file_name}; {fix}")
    features = _read_metadata(path / FEATURES_FILE, ort)
    vjp = _read_metadata(path / VJP_FILE, ort)
    missing = [key for key in REQUIRED_METADATA if key not in features]
    if missing:
        raise ModelError(f"{path / FEATURES_FILE} lacks the metadata {', '.join(missing)}; {fix}")
    if features["nst_rt.format"] != FORMAT_VERSION:
        raise ModelError(f"model {path} has format {features['nst_rt.format']}, this nst-rt reads {FORMAT_VERSION}; {fix}")
    for key in ("architecture", "pooling", "layers", "weights_sha256"):
        if vjp.get(key) != features[key]:
            raise ModelError(f"the two graphs of {path} come from different exports ({key} differs); {fix}")
    return ModelInfo(path.name, path, features)


def list_models(models_dir: str | os.PathLike | None = None) -> list[ModelInfo | tuple[Path, str]]:
    """Every export found in the search dirs: a ModelInfo, or (path, problem) for a broken one."""
    found: list[ModelInfo | tuple[Path, str]] = []
    for directory in search_dirs(models_dir):
        if not directory.is_dir():
            continue
        for path in sorted(p for p in directory.iterdir() if p.is_dir() and not p.name.startswith(".")):
            try:
                found.append(load_model(path))
            except (ModelError, ModelNotFoundError) as exc:
                found.append((path, str(exc)))
    return found
