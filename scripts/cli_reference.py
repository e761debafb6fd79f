"""Write docs/cli.md, the command reference, from the commands' own declarations (what ``--help`` shows).

    python scripts/cli_reference.py            # rewrite docs/cli.md
    python scripts/cli_reference.py --check    # exit 1 if docs/cli.md is not what this script writes

tests/test_docs.py runs the check, so the reference cannot drift from the code.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import typer.main

DOC = Path(__file__).resolve().parents[1] / "docs" / "cli.md"
HEADER = """# Command reference

Generated from the commands' own declarations by `python scripts/cli_reference.py` (a test checks that this
page is what it writes). `nst-rt COMMAND --help` prints the same. Errors are one line on stderr with exit
code 1; a malformed command line gets click's usage message and exit code 2.
"""


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _default(param) -> str:
    if param.param_type_name == "option" and param.is_flag and not param.secondary_opts:
        return "off" if not param.default else "on"
    if param.param_type_name == "option" and param.secondary_opts:
        return param.opts[0].lstrip("-") if param.default else param.secondary_opts[0].lstrip("-")
    if param.required:
        return "(required)"
    if param.param_type_name == "option" and isinstance(param.show_default, str):
        return param.show_default
    if param.default is None or param.default == () or param.default == []:
        return ""
    value = param.default
    if isinstance(value, (list, tuple)):
        value = ",".join(str(v) for v in value)
    return f"`{getattr(value, 'value', value)}`"


def _help_and_default(param) -> tuple[str, str]:
    help_text = param.help or ""
    default = _default(param)
    # A default the help states itself, as "[default: ...]", is taken from there.
    stated = re.search(r"\s*\[default: (.*?)\]\s*\.?\s*$", help_text, re.S)
    if stated:
        help_text, default = help_text[:stated.start()].rstrip(), stated.group(1)
        help_text += "" if help_text.endswith(".") else "."  # "(.png, .jpg).", never "(.png, .jpg).."
    return help_text.strip(), default


def command_section(name: str, command) -> str:
    ctx = command.context_class(command, info_name=f"nst-rt {name}")
    usage = " ".join(command.collect_usage_pieces(ctx))
    lines = [f"## `nst-rt {name} {usage}`", "", _cell(command.help or "").split("\f")[0], ""]
    arguments = [p for p in command.params if p.param_type_name == "argument"]
    if arguments:
        lines += ["| argument | meaning |", "|---|---|"]
        for p in arguments:
            lines.append(f"| `{(p.metavar or p.name.upper()) + ('...' if p.nargs == -1 else '')}` | "
                         f"{'one or more' if p.nargs == -1 else 'one'}{'' if p.required else ', optional'} |")
        lines.append("")
    lines += ["| option | default | meaning |", "|---|---|---|"]
    for p in command.params:
        if p.param_type_name != "option" or p.hidden:
            continue
        names = ", ".join(f"`{o}`" for o in (*p.opts, *p.secondary_opts))
        help_text, default = _help_and_default(p)
        lines.append(f"| {names} | {_cell(default)} | {_cell(help_text)} |")
    return "\n".join(lines) + "\n"


def render() -> str:
    from nst_rt.cli import app

    group = typer.main.get_command(app)
    sections = [command_section(name, group.commands[name]) for name in group.list_commands(group.context_class(group))]
    return HEADER + "\n" + "\n".join(sections)


def main() -> int:
    text = render()
    if "--check" in sys.argv[1:]:
        if not DOC.exists() or DOC.read_text() != text:
            print(f"{DOC} is out of date: run python scripts/cli_reference.py", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(text)
    print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
