"""The ``nst-rt`` typer application and its root options; the command modules register on it."""

from __future__ import annotations

from typing import Annotated

import typer

from .. import __version__

app = typer.Typer(
    name="nst-rt",
    help="Neural style transfer (Gatys et al.) on ONNX Runtime: export a VGG once, then stylize without torch.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def version_callback(value: bool) -> None:
    if value:
        typer.echo(f"nst-rt {__version__}")
        raise typer.Exit()


@app.callback()
def root(version: Annotated[bool, typer.Option("--version", callback=version_callback, is_eager=True,
                                               help="Show the version and exit.")] = False) -> None:
    """Neural style transfer on ONNX Runtime."""
