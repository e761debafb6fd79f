"""Find an exported model, read its metadata back through onnxruntime, and check it.

A model is a directory holding ``features.onnx``, ``vjp.onnx`` and the ``weights.bin`` both reference (written by
``nst-rt export``; a format-1 export has no weights file: each graph holds its own). A model is given by path,
or by name; names are looked up in the directories of :mod:`nst_rt.network.models_dir`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import MissingDependencyError, ModelError, ModelNotFoundError, install_hint
from ..io.digest import file_sha256
from ..model_format import (FEATURES_FILE, FORMAT_VERSION, MODEL_FILES, OBJECTIVE_FILE, RANDOM_WEIGHTS_SOURCE,
                            READABLE_FORMATS, REQUIRED_METADATA, VJP_FILE, WEIGHTS_FILE, WEIGHTS_FILE_SHA256,
                            WEIGHTS_FILE_SIZE)
from .onnx_props import read_props
from .models_dir import (DEFAULT_MODEL, ENV_MODELS_DIR, OFFLINE_HINT, absolute, create_hint, default_model_name,
                         export_command,
                         export_dir, is_model_dir, not_found_message, search_dirs)

__all__ = ["ENV_MODELS_DIR", "DEFAULT_MODEL", "ModelInfo", "load_model", "list_models", "resolve_model"]


def import_onnxruntime():
    """Import onnxruntime, or say which extra installs it."""
    try:
        import onnxruntime
    except ImportError:
        raise MissingDependencyError(
            "onnxruntime is not installed: install nst-rt with its cpu extra (gpu for CUDA, openvino for bf16 "
            f"on Intel CPUs), e.g. {install_hint('cpu')}"
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
    def random_weights(self) -> bool:
        """Was it exported with ``--random-weights`` (for trying nst-rt out, not for pictures)?"""
        return self.metadata.get("weights_source", "").startswith(RANDOM_WEIGHTS_SOURCE)

    @property
    def format(self) -> str:
        return self.metadata["nst_rt.format"]

    @property
    def weights_dtype(self) -> str:
        """How the export stores its weights (format 1 exports: float32)."""
        return self.metadata.get("weights_dtype", "float32")

    @property
    def files(self) -> list[Path]:
        """The files of the export (format 1: the two graphs; later formats add the shared weights file, and
        exports from the objective graph's introduction on that graph)."""
        return [self.path / name for name in _files(self.format)] + ([self.objective_path] if self.objective_path
                                                                      else [])

    @property
    def objective_path(self) -> Path | None:
        """The objective graph (losses and gradient in one graph), or None for an export made before it."""
        path = self.path / OBJECTIVE_FILE
        return path if path.is_file() else None

    @property
    def objective_layers(self) -> tuple[list[str], list[str]]:
        """The style and content layers the objective graph computes the losses of (empty without one)."""
        if "objective_style_layers" not in self.metadata:  # load_model merges them in from a checked objective graph
            return [], []
        return (self.metadata["objective_style_layers"].split(","),
                self.metadata["objective_content_layers"].split(","))

    @property
    def features_path(self) -> Path:
        return self.path / FEATURES_FILE

    @property
    def vjp_path(self) -> Path:
        return self.path / VJP_FILE


def _files(format_version: str) -> tuple[str, ...]:
    return (FEATURES_FILE, VJP_FILE) if format_version == "1" else MODEL_FILES


def _is_path(model: str | os.PathLike) -> bool:
    text = str(model)
    return Path(model).is_dir() or os.sep in text or bool(os.altsep and os.altsep in text)


def _check_model_path(path: Path) -> Path:
    """``path`` if it is an export; otherwise say what it is and what to pass or run instead."""
    if not path.is_dir():
        raise ModelNotFoundError(f"model directory {path} does not exist; {create_hint(path.name, path.parent)}")
    if is_model_dir(path):
        return path
    models = sorted(p.name for p in path.iterdir() if p.is_dir() and is_model_dir(p))
    if models:
        raise ModelNotFoundError(f"{path} holds models ({', '.join(models)}) but is not one; pass --models-dir "
                                 f"{path} --model {models[0]}, or --model {path / models[0]}")
    if any(path.iterdir()):  # an unrelated directory: never suggest an export that would replace it
        raise ModelNotFoundError(f"{path} is not an exported model (it has no {FEATURES_FILE}); pass the directory "
                                 f"of an export, such as {export_dir() / DEFAULT_MODEL}, which "
                                 f"`{export_command(DEFAULT_MODEL)}` writes")
    raise ModelNotFoundError(f"{path} is empty, not an exported model; {create_hint(path.name, path.parent, True)}")


def resolve_model(model: str | os.PathLike | None = None, models_dir: str | os.PathLike | None = None) -> Path:
    """The absolute directory of ``model``: a path to an export directory, or a name looked up in the search dirs
    (None: the default model, $NST_RT_MODEL or vgg19)."""
    model = default_model_name() if model is None else model
    if _is_path(model):
        return _check_model_path(absolute(model))
    dirs = search_dirs(models_dir)
    for directory in dirs:
        if (directory / str(model)).is_dir():
            return directory / str(model)
    raise ModelNotFoundError(not_found_message(str(model), dirs, models_dir_given=models_dir is not None))


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


def _check_weights_file(path: Path, fix: str, verify: bool) -> None:
    """``weights.bin`` against the size (and, if ``verify``, the sha256) the export recorded in its graphs' metadata,
    read before ONNX Runtime maps the file. Exports made before they were recorded are not checked."""
    try:
        recorded = read_props(path / FEATURES_FILE)
    except (OSError, ValueError, UnicodeDecodeError):
        return  # not an ONNX file: reading it through ONNX Runtime says so
    if WEIGHTS_FILE_SIZE not in recorded or recorded.get("nst_rt.format") != FORMAT_VERSION:
        return  # recorded only from format 2 on, and another format is refused by its own message below
    weights = path / WEIGHTS_FILE
    if not weights.is_file():
        raise ModelError(f"model {path} has no {WEIGHTS_FILE} (the weights both graphs read); {fix}")
    size, expected = weights.stat().st_size, int(recorded[WEIGHTS_FILE_SIZE])
    if size != expected:
        raise ModelError(f"{weights} is {size} bytes, the export wrote {expected} (truncated or replaced); {fix}")
    if verify and _sha256(weights) != recorded[WEIGHTS_FILE_SHA256]:
        raise ModelError(f"{weights} does not hold the bytes the export wrote (its sha256 differs: corrupt or "
                         f"replaced); {fix}")


_digests: dict[tuple, str] = {}  # (path, inode, size, mtime) -> sha256: a file loaded again is not read again


def _sha256(path: Path) -> str:
    """The sha256 of ``path``, computed once per process per version of the file (docs/models.md has its cost)."""
    stat = path.stat()
    key = (str(path), stat.st_ino, stat.st_size, stat.st_mtime_ns)
    if key not in _digests:
        _digests[key] = file_sha256(path)
    return _digests[key]


def load_model(model: str | os.PathLike | None = None, models_dir: str | os.PathLike | None = None,
               verify: bool = True) -> ModelInfo:
    """Locate ``model`` and check that both graphs are present, readable and belong together, and that
    ``weights.bin`` has the size and (with ``verify``) the sha256 the export wrote."""
    ort = import_onnxruntime()
    path = resolve_model(model, models_dir)
    fix = f"re-export it with `{export_command(path.name, path.parent, force=True)}` ({OFFLINE_HINT})"
    for file_name in (FEATURES_FILE, VJP_FILE):
        if not (path / file_name).is_file():
            raise ModelError(f"model {path} has no {file_name}; {fix}")
    _check_weights_file(path, fix, verify)
    try:
        features = _read_metadata(path / FEATURES_FILE, ort)
        vjp = _read_metadata(path / VJP_FILE, ort)
    except ModelError:
        if not (path / WEIGHTS_FILE).is_file():  # a graph that references the weights file cannot even open
            raise ModelError(f"model {path} has no {WEIGHTS_FILE} (the weights both graphs read); {fix}") from None
        raise
    version = features.get("nst_rt.format")
    if version is not None and version not in READABLE_FORMATS:
        raise ModelError(f"model {path} has format {version}, this nst-rt reads formats {', '.join(READABLE_FORMATS)} "
                         f"(it writes {FORMAT_VERSION}); {fix}")
    required = [key for key in REQUIRED_METADATA if version != "1" or key != "weights_dtype"]
    missing = [key for key in required if key not in features]
    if missing:
        raise ModelError(f"{path / FEATURES_FILE} lacks the metadata {', '.join(missing)}; {fix}")
    if version != "1" and not (path / WEIGHTS_FILE).is_file():
        raise ModelError(f"model {path} has no {WEIGHTS_FILE} (the weights both graphs read); {fix}")
    for key in ("architecture", "pooling", "layers", "weights_sha256", "weights_dtype"):
        if vjp.get(key) != features.get(key):
            raise ModelError(f"the two graphs of {path} come from different exports ({key} differs); {fix}")
    if (path / OBJECTIVE_FILE).is_file():
        objective = _read_metadata(path / OBJECTIVE_FILE, ort)
        for key in ("architecture", "pooling", "layers", "weights_sha256", "weights_dtype", "preprocess"):
            if objective.get(key) != features.get(key):
                raise ModelError(f"the graphs of {path} come from different exports ({key} differs in "
                                 f"{OBJECTIVE_FILE}); {fix}")
        features = {**features, **{k: v for k, v in objective.items() if k.startswith("objective_")}}
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
