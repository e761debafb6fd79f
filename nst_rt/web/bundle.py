"""``nst-rt web-bundle``: write the static site that stylizes in the browser.

Layout of a bundle (every URL the page loads is relative and inside it):

  index.html, app.js, objective.js, lbfgs.js, linesearch.js, style.css   the page (``static/``)
  bundle.json                                             the model's facts and the page's defaults
  ort/                                                    onnxruntime-web's files and its licence note
  model/features.onnx, model/objective.onnx, model/weights.bin
  examples/content/*, examples/style/*                    the example pictures, when there are any

The site is written into a hidden folder beside ``out_dir`` and moved into place whole; an existing bundle there is
replaced, any other non-empty folder is refused.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from ..errors import ModelError, OptionError
from ..model_format import FEATURES_FILE, OBJECTIVE_FILE, WEIGHTS_FILE, layer_table
from ..pipeline.options import RANDOM_WEIGHTS_SETTINGS, Options
from ..serve import examples as example_pictures
from . import onnxruntime_web

STATIC = Path(__file__).parent / "static"
PAGE_FILES = ("index.html", "app.js", "objective.js", "lbfgs.js", "linesearch.js", "style.css")
MANIFEST = "bundle.json"
# The page's default size: one evaluation at 512 px takes about four times as long as at 256 px, too long to watch
# in a browser tab on a laptop CPU.
BROWSER_SIZE = 256


def page_defaults(random_weights: bool) -> dict:
    """The settings the page starts with: the Python runtime's (Options), at the browser's size."""
    o = Options()
    defaults = {"size": BROWSER_SIZE, "iterations": o.iterations, "content_weight": o.content_weight,
                "style_weight": o.style_weight, "tv_weight": o.tv_weight, "normalize": o.normalize,
                "history": o.history}
    if random_weights:  # the settings that keep the content recognisable on random filters
        defaults.update({k: v for k, v in RANDOM_WEIGHTS_SETTINGS.items() if k in defaults})
    return defaults


def manifest(model, examples: dict[str, list[str]]) -> dict:
    style_layers, content_layers = model.objective_layers
    channels = {layer.name: layer.out_channels for layer in layer_table(model.architecture)
                if hasattr(layer, "out_channels")}
    return {
        "model": {"name": model.name, "architecture": model.architecture, "pooling": model.pooling,
                  "weights_source": model.metadata.get("weights_source", ""), "random_weights": model.random_weights,
                  "objective_style_layers": style_layers, "objective_content_layers": content_layers,
                  "channels": {layer: channels[layer] for layer in [*style_layers, *content_layers]},
                  "files": {"features": f"model/{FEATURES_FILE}", "objective": f"model/{OBJECTIVE_FILE}",
                            "weights": f"model/{WEIGHTS_FILE}"}, "weights_file": WEIGHTS_FILE},
        "onnxruntime_web": onnxruntime_web.VERSION,
        "defaults": page_defaults(model.random_weights),
        "examples": examples,
    }


def write_bundle(out_dir: str | Path, model: str | Path | None = None, models_dir: str | Path | None = None,
                 onnxruntime_web_source: str | Path | None = None,
                 examples_dir: str | Path | None = None) -> dict[str, int]:
    """Write the site for ``model`` into ``out_dir``; returns its files' sizes (relative path -> bytes)."""
    from ..network.model import load_model

    out_dir = Path(out_dir).absolute()
    if out_dir.exists() and not (out_dir.is_dir() and (not any(out_dir.iterdir()) or (out_dir / MANIFEST).is_file())):
        raise OptionError(f"{out_dir} exists and is not a bundle nst-rt wrote; name a new or empty folder")
    info = load_model(model, models_dir)
    if info.objective_path is None or WEIGHTS_FILE not in {p.name for p in info.files}:
        raise ModelError(f"model {info.name} has no objective graph, which the page runs; re-export it with "
                         f"`nst-rt export {info.architecture} --force`")
    runtime = onnxruntime_web.files(onnxruntime_web_source)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        for name in PAGE_FILES:
            shutil.copyfile(STATIC / name, staging / name)
        (staging / "ort").mkdir()
        for name, data in runtime.items():
            (staging / "ort" / name).write_bytes(data)
        (staging / "model").mkdir()
        for name in (FEATURES_FILE, OBJECTIVE_FILE, WEIGHTS_FILE):
            shutil.copyfile(info.path / name, staging / "model" / name)
        shown = {}
        for kind, folder in example_pictures.folders(examples_dir).items():
            names = [entry["name"] for entry in example_pictures.listing({kind: folder})[kind]]
            (staging / "examples" / kind).mkdir(parents=True)
            for name in names:
                shutil.copyfile(folder / name, staging / "examples" / kind / name)
            shown[kind] = names
        (staging / MANIFEST).write_text(json.dumps(manifest(info, shown), indent=1))
        staging.chmod(0o755)
        _replace(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return {str(p.relative_to(out_dir)): p.stat().st_size for p in sorted(out_dir.rglob("*")) if p.is_file()}


def _replace(staging: Path, out_dir: Path) -> None:
    """Move ``staging`` to ``out_dir``; an earlier bundle (or empty folder) there goes only once the new one is in."""
    if not out_dir.exists():
        staging.rename(out_dir)
        return
    old = out_dir.with_name(f".{out_dir.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    out_dir.rename(old)
    staging.rename(out_dir)
    shutil.rmtree(old, ignore_errors=True)
