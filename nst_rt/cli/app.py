"""The ``nst-rt`` typer application and its root options; the command modules register on it."""

from __future__ import annotations

from typing import Annotated

import typer
from typer.core import TyperArgument, TyperCommand

from .. import __version__


class PlainArguments(TyperCommand):
    """A command whose positional arguments read as a user writes them: ``Usage: ... CONTENT STYLE...`` and
    ``STYLE...`` in the argument list, without typer's braces and Python types (``{STYLE}...``, ``<list[Path]>``)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for param in self.params:
            if isinstance(param, TyperArgument):
                _plain(param)


def _plain(param: TyperArgument) -> None:
    shown = (param.metavar or param.name.upper()) + ("..." if param.nargs != 1 else "")
    usage = shown if param.required else f"[{shown}]"
    # Instance attributes in place of typer's methods of the same names (typer >= 0.20 renders through them;
    # earlier releases take click's metavar, which is already plain).
    param._usage_display_name = lambda: usage
    param._rich_display_name = lambda: shown
    param.display_type_rich = lambda ctx: None
    param.make_metavar = lambda ctx=None: shown

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
