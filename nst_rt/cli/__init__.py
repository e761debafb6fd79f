"""The ``nst-rt`` command line: the only place that prints and exits.

Every default, choice list and check lives in the library (``Options``, ``PROVIDERS``, ...); the command
modules only read them, so ``--help`` always shows what a run really uses. Importing this package registers
every command on ``app``.
"""

from __future__ import annotations

from . import commands, info, serve, video, web_bundle  # noqa: F401  (each registers its commands on app)
from .app import app


def main() -> None:
    """Entry point. click prints its own usage errors (exit code 2); the commands print everything else."""
    app(prog_name="nst-rt")
