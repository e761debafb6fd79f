"""``nst-rt web-bundle``: write the static site that stylizes in the browser (docs/browser.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .app import PlainArguments, app
from .common import fail, file_size, say
from ..network.models_dir import DEFAULT_MODEL_HELP, default_model_name
from ..web.onnxruntime_web import PACKAGE, VERSION


def web_bundle(
    out_dir: Annotated[Path, typer.Argument(help="The folder to write the site into (new, empty, or an earlier "
                                                 "bundle, which is replaced).", show_default=False,
                                            metavar="OUT_DIR")],
    model: Annotated[Optional[str], typer.Option(
        help=f"The model the page runs: a name or an export's directory [default: {DEFAULT_MODEL_HELP}].",
        show_default=False)] = None,
    models_dir: Annotated[Optional[Path], typer.Option(help="Where to look for exported models.")] = None,
    onnxruntime_web: Annotated[Optional[Path], typer.Option(
        "--onnxruntime-web", help=f"The {PACKAGE} {VERSION} npm package, packed (.tgz) or unpacked [default: "
                                  f"nst-rt's cache, filled once by `npm pack {PACKAGE}@{VERSION}`].",
        show_default=False)] = None,
    examples_dir: Annotated[Optional[Path], typer.Option(
        help="A folder with content/ and style/ pictures the page offers [default: a source checkout's examples/].",
        show_default=False)] = None,
) -> None:
    """Write a static site that stylizes in the visitor's browser on onnxruntime-web (docs/browser.md)."""
    from ..errors import NstError
    from ..web.bundle import write_bundle

    try:
        sizes = write_bundle(out_dir, model or default_model_name(), models_dir, onnxruntime_web, examples_dir)
    except NstError as exc:
        raise fail(str(exc)) from None
    say(f"wrote {out_dir} ({len(sizes)} files, {file_size(sum(sizes.values()))}); serve it with "
        f"`python -m http.server -d {out_dir}` or `nst-rt serve --browser {out_dir}`")


app.command("web-bundle", cls=PlainArguments)(web_bundle)
