"""The README and docs stay true: their Python examples run as printed, the command reference matches
``--help``, every link resolves, and the README stays short.

The Python blocks run in-process on the session's random-weights VGG-19 (through $NST_RT_MODELS), from a
directory that holds the repository's ``examples/``, with their sizes and iteration counts made small.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import typer.main

import nst_rt.optimize
from nst_rt.cli import app

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
DOCS = {path.name: path.read_text() for path in sorted((ROOT / "docs").glob("*.md"))}
CLI_DOC = DOCS["cli.md"]
PYTHON_BLOCKS = [block for text in (README, DOCS["python-api.md"])
                 for block in re.findall(r"^```python\n(.*?)^```", text, re.M | re.S)]

# Small enough for a test, large enough for every image to stay above the network's 16 px.
SMALL = [(r"\bsize=\d+", "size=32"), (r"\biterations=\d+", "iterations=3"), (r'"maxiter": \d+', '"maxiter": 3')]


def test_the_readme_has_python_examples():
    assert len(PYTHON_BLOCKS) >= 3


@pytest.mark.parametrize("block", PYTHON_BLOCKS, ids=[f"block{k}" for k in range(len(PYTHON_BLOCKS))])
def test_each_python_example_runs_and_optimises(block, models, monkeypatch, tmp_path):
    small = block
    for pattern, replacement in SMALL:
        small = re.sub(pattern, replacement, small)
    assert small != block or "import" not in block  # every example that runs something is made small
    (tmp_path / "examples").symlink_to(ROOT / "examples", target_is_directory=True)
    monkeypatch.chdir(tmp_path)  # what the examples write lands here, not in the repository
    monkeypatch.setenv("NST_RT_MODELS", str(models))
    iterations = []
    real = nst_rt.optimize.minimize

    def recording(*args, **kwargs):
        result = real(*args, **kwargs)
        iterations.append(int(result.nit))
        return result

    monkeypatch.setattr(nst_rt.optimize, "minimize", recording)
    exec(compile(small, "README.md", "exec"), {"__name__": "readme_example"})
    assert iterations and all(n > 0 for n in iterations), iterations
    written = [p for p in tmp_path.rglob("*.png") if p.relative_to(tmp_path).parts[0] != "examples"]
    assert written  # each example saves its picture


def doc_table(heading: str) -> dict[str, str]:
    """``{option: default}`` of the option table under ``heading`` in docs/cli.md, backticks removed."""
    section = CLI_DOC.split(heading, 1)[1].split("\n#", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and cells[0].startswith("`-"):
            rows[cells[0].replace("`", "")] = cells[1].replace("`", "")
    return rows


def help_default(param) -> str:
    """The default as ``--help`` shows it: click's value, or the "[default: ...]" written in the help text."""
    if param.required:
        return "(required)"
    if not param.show_default:
        match = re.search(r"\[default: ([^\]]+)\]", param.help or "")
        assert match, f"{param.opts} hides its default without saying it in its help"
        return match.group(1)
    if param.is_flag:
        return (param.opts if param.default else param.secondary_opts or ["off"])[0].lstrip("-")
    default = param.default
    return str(getattr(default, "value", default))


def same_default(readme: str, shown: str) -> bool:
    if readme == shown or (readme == "off" and shown.startswith("no-")):
        return True
    try:
        return float(readme) == float(shown)
    except ValueError:
        return False


@pytest.mark.parametrize("command", ["stylize", "batch", "video", "export", "info"])
def test_the_command_reference_shows_the_defaults_help_shows(command):
    table = doc_table(f"## `nst-rt {command} ")
    params = [p for p in typer.main.get_command(app).commands[command].params
              if p.param_type_name == "option" and p.name != "help"]
    assert len(table) == len(params)
    for param in params:
        names = [f"{o}" for o in (*param.opts, *param.secondary_opts)]
        rows = [row for row in table if set(re.split(r"[ ,]+", row)) == set(names)]
        assert len(rows) == 1, (names, list(table))
        assert same_default(table[rows[0]], help_default(param)), (rows[0], table[rows[0]], help_default(param))


def test_the_command_reference_is_what_the_script_writes():
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "cli_reference.py"), "--check"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_the_command_reference_has_no_doubled_full_stop():
    assert not re.findall(r"[^.]\.\.(?![./\w])", CLI_DOC), re.findall(r".{40}[^.]\.\.(?![./\w])", CLI_DOC)


def test_the_docs_install_from_a_clone_or_its_wheel_as_the_readme_does():
    # nst-rt is not on a package index: `pip install 'nst-rt[...]'` would fail or install something else
    pages = {"README.md": README, **DOCS}
    assert not [name for name, text in pages.items() if re.search(r"pip install ['\"]?nst-rt\[", text)]


def _anchor(heading: str) -> str:
    text = re.sub(r"[^\w\- ]", "", heading.lstrip("#").strip().lower())
    return text.replace(" ", "-")


def test_every_relative_link_resolves():
    pages = {ROOT / "README.md": README, **{ROOT / "docs" / name: text for name, text in DOCS.items()}}
    anchors = {path.resolve(): {_anchor(h) for h in re.findall(r"^#+ .*$", text, re.M)} for path, text in pages.items()}
    broken = []
    for path, text in pages.items():
        prose = re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)
        for target in re.findall(r"\]\(([^)\s]+)\)", prose):
            if re.match(r"[a-z]+:", target):
                continue
            file, _, fragment = target.partition("#")
            resolved = (path.parent / file).resolve() if file else path.resolve()
            if not resolved.exists() or (fragment and fragment not in anchors.get(resolved, set())):
                broken.append(f"{path.name}: {target}")
    assert broken == []


def test_the_readme_reads_in_five_minutes():
    assert len(README.splitlines()) <= 250


@pytest.mark.slow  # an export in a fresh process, a stylization, then a test module in a nested pytest
@pytest.mark.timeout(900)
def test_the_offline_quick_start_then_the_tests_in_a_clean_home(tmp_path):
    """The README's offline quick start and then its test command, in that order, as a new user runs them: in a
    home of their own (no XDG variables, no $NST_RT_* but the $NST_RT_MODEL the README suggests), so the export
    lands in ~/.local/share/nst-rt/models.
    The install step is left out (this environment is installed), the stylization made small, a model named vgg19
    exported as the online quick start does, and the test
    command runs tests/test_serve_cli.py, whose model errors once started a real server when a user's model was
    found (the run then waited for ever)."""
    block = re.search(r"<!-- offline-quick-start -->\n```\n(.*?)\n```", README, re.S).group(1)
    commands = block.split(" && ")
    quick_start = " && ".join(c for c in commands if c.startswith("nst-rt "))
    assert quick_start.startswith("nst-rt export vgg19 --random-weights 0 && nst-rt stylize ")
    quick_start = re.sub(r"--size \d+ --iterations \d+", "--size 64 --iterations 2", quick_start)
    test_command = re.search(r"<!-- test-command -->\n```\n(.*?)\n```", README, re.S).group(1)
    assert test_command.endswith(" && python -m pytest")
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir(), work.mkdir()
    (work / "examples").symlink_to(ROOT / "examples", target_is_directory=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NST_RT_", "XDG_"))}
    env.update(HOME=str(home), PYTHONWARNINGS="ignore",
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}")
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", quick_start], cwd=work, env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert (home / ".local" / "share" / "nst-rt" / "models" / "vgg19-random" / "weights.bin").is_file()
    assert (work / "chelsea_starry_night.png").is_file()
    # The other quick start's `nst-rt export vgg19` (real weights, which need the internet) stands in here: a
    # user may have both, and a test that finds either of them in the user's home is not isolated.
    online = subprocess.run(["nst-rt", "export", "vgg19", "--random-weights", "1", "--name", "vgg19"], cwd=work,
                            env=env, capture_output=True, text=True, timeout=600)
    assert online.returncode == 0, online.stderr
    env["NST_RT_MODEL"] = "vgg19-random"  # as the README suggests after the offline quick start
    tests = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-o", "timeout=120",
                            "--basetemp",
                            str(tmp_path / "nested"), str(ROOT / "tests" / "test_serve_cli.py")], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=600)
    assert tests.returncode == 0, tests.stdout[-3000:]


def test_the_test_count_in_docs_testing_is_the_collected_count():
    root = Path(__file__).resolve().parent.parent
    said = re.search(r"runs the whole suite, (\d+)\s+tests", (root / "docs" / "testing.md").read_text())
    collected = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"],
                               cwd=root, capture_output=True, text=True, timeout=120)
    count = re.search(r"(\d+) tests? collected", collected.stdout)
    assert said and count, collected.stdout[-500:]
    assert int(said.group(1)) == int(count.group(1))


def test_the_default_schedule_the_readme_and_how_it_works_state_is_the_librarys():
    from nst_rt.pipeline.options import Options
    from nst_rt.pipeline.schedule import plan

    o = Options()
    at_512 = [s.iterations for s in plan(o.size, o.iterations, coarse_iterations=o.coarse_iterations)]
    at_256 = [s.iterations for s in plan(256, o.iterations, coarse_iterations=o.coarse_iterations)]
    at_1024 = [s.iterations for s in plan(1024, o.iterations, coarse_iterations=o.coarse_iterations)]
    readme, how = (" ".join(text.split()) for text in (README, DOCS["how-it-works.md"]))  # one line each
    three = r"(\d+) iterations at 128 px, (\d+) at 256 px and (\d+) at 512 px"
    for name, text in (("README.md", readme), ("how-it-works.md", how)):
        stated = re.findall(three, text)
        assert stated and all([int(n) for n in found] == at_512 for found in stated), (name, stated)
    two = re.search(r"`--size 256` runs (\d+) at 128 px and (\d+) at 256 px", how)
    assert two and [int(n) for n in two.groups()] == at_256
    four = re.search(r"`--size 1024` runs (\d+), (\d+), (\d+) and (\d+) at 128, 256, 512 and 1024 px", how)
    assert four and [int(n) for n in four.groups()] == at_1024
