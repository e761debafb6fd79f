"""Where the bundle's onnxruntime-web comes from: the npm package at one pinned version, given as a path (a packed
``.tgz`` or an unpacked package folder), else from nst-rt's cache, else fetched once with ``npm pack`` into it."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

from ..errors import MissingDependencyError, OptionError
from ..system.user_dirs import user_dir

VERSION = "1.31.1"  # the one version the page is tested with
PACKAGE = "onnxruntime-web"
# The files the page loads, from the package's dist/: the WASM-only build (imported where the browser has no WebGPU
# adapter) and the WebGPU build (its WASM backend also runs the CPU path), each with its compiled runtime.
FILES = ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm",
         "ort.webgpu.min.mjs", "ort-wasm-simd-threaded.asyncify.mjs", "ort-wasm-simd-threaded.asyncify.wasm")
NOTICE = "NOTICE.txt"  # the package ships no licence file: its package.json names the licence


def tarball_name() -> str:
    return f"{PACKAGE}-{VERSION}.tgz"


def cached_tarball() -> Path:
    return user_dir("cache") / "npm" / tarball_name()


def _hint() -> str:
    return (f"pass --onnxruntime-web PATH (a packed or unpacked {PACKAGE} {VERSION} package; "
            f"`npm pack {PACKAGE}@{VERSION}` writes one)")


def files(source: str | Path | None = None) -> dict[str, bytes]:
    """The vendored files (name -> bytes: ``FILES`` and a licence notice) of onnxruntime-web ``VERSION``, from
    ``source`` or the cache (filled by ``npm pack`` when empty)."""
    if source is None:
        source = cached_tarball()
        if not source.is_file():
            _npm_pack(source)
    source = Path(source)
    if source.is_dir():
        root = source / "package" if (source / "package" / "package.json").is_file() else source
        read = lambda name: (root / name).read_bytes() if (root / name).is_file() else None  # noqa: E731
    elif source.is_file():
        try:
            archive = tarfile.open(source, "r:gz")
        except (tarfile.TarError, OSError) as exc:
            raise OptionError(f"--onnxruntime-web {source} is not a readable .tgz ({exc}); {_hint()}") from None
        members = {m.name.removeprefix("package/"): m for m in archive.getmembers() if m.isfile()}
        read = lambda name: archive.extractfile(members[name]).read() if name in members else None  # noqa: E731
    else:
        raise OptionError(f"--onnxruntime-web {source} does not exist; {_hint()}")
    manifest = read("package.json")
    try:
        package = json.load(io.BytesIO(manifest)) if manifest else {}
    except ValueError:
        package = {}
    if package.get("name") != PACKAGE or package.get("version") != VERSION:
        found = f"{package.get('name')} {package.get('version')}" if package else "no package.json"
        raise OptionError(f"{source} holds {found}, not {PACKAGE} {VERSION}; {_hint()}")
    out = {}
    for name in FILES:
        data = read(f"dist/{name}")
        if data is None:
            raise OptionError(f"{source} lacks dist/{name}; {_hint()}")
        out[name] = data
    repository = (package.get("repository") or {}).get("url", "")
    out[NOTICE] = (f"{PACKAGE} {VERSION}, from the npm registry; licence: {package.get('license')}; "
                   f"source: {repository}\n").encode()
    return out


def _npm_pack(destination: Path) -> None:
    """``npm pack onnxruntime-web@VERSION`` into ``destination`` (written whole or not at all)."""
    npm = shutil.which("npm")
    if npm is None:
        raise MissingDependencyError(f"npm is not installed to fetch {PACKAGE} {VERSION}; install Node.js, or "
                                     + _hint())
    destination.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=destination.parent) as folder:
        done = subprocess.run([npm, "pack", f"{PACKAGE}@{VERSION}", "--pack-destination", folder, "--silent"],
                              capture_output=True, text=True)
        packed = Path(folder) / tarball_name()
        if done.returncode != 0 or not packed.is_file():
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise MissingDependencyError(f"npm pack {PACKAGE}@{VERSION} failed ({last}); {_hint()}")
        packed.replace(destination)
