"""``nst-rt info``: the exported models found, the execution providers, and what a default run uses."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .. import __version__
from .app import app
from .common import fail, file_size, notice
from ..errors import NstError
from ..system.interrupts import stop_signals
from ..network.models_dir import SEARCH_ORDER, default_model


@app.command()
def info(models_dir: Annotated[Optional[Path], typer.Option(
        help=f"Where to look for models first [default: {SEARCH_ORDER}].", show_default=False)] = None,
         probe: Annotated[bool, typer.Option("--probe", help="Time fp32 against bf16 on OpenVINO now and cache "
                                             "the decision of --precision auto.")] = False) -> None:
    """Show the exported models found, their metadata, and the available execution providers."""
    from ..network.model import ModelInfo, list_models
    from ..network.models_dir import create_hint, search_dirs

    with stop_signals() as stop:
        try:
            from ..network.session import CUDA, CUDA_STATUS, NAMES, available_providers, choose_providers
            from ..network.precision import choose_precision, needs_probe

            providers = available_providers()
            import onnxruntime

            typer.echo(f"nst-rt {__version__}, onnxruntime {onnxruntime.__version__}")
            typer.echo(f"execution providers: {', '.join(providers)}")
            if CUDA in providers:
                typer.echo(f"CUDA provider: installed ({CUDA_STATUS}: see docs/gpu.md)")
            else:  # say what this machine has, not the GPU path's status
                typer.echo(f"CUDA provider: not installed here (this onnxruntime runs on "
                           f"{', '.join(NAMES.get(p, p) for p in providers if p in NAMES)}); for an NVIDIA GPU, "
                           f"install the gpu extra")
            chosen = NAMES[choose_providers("auto")[0]]
            precision, why = choose_precision("auto", chosen)
            found = list_models(models_dir)
            if needs_probe("auto", chosen):
                precision, why = _probed_precision(found, probe)
            elif probe and chosen == "openvino":
                raise fail(f"--probe times bf16 against fp32, and {why}")
            elif probe:
                raise fail(f"--probe times bf16 on the OpenVINO provider, and this install has {chosen}; "
                           f"install 'nst-rt[openvino]'")
            typer.echo(f"a run with the defaults uses: {chosen} provider, {precision} ({why})")
            typer.echo(f"model search path: {', '.join(str(d) for d in search_dirs(models_dir))}")
            model, source = default_model()
            typer.echo(f"default model: {model} ({source})")
            if not found:
                typer.echo(f"no exported models found; {create_hint(model, models_dir)}")
            for item in found:
                if isinstance(item, ModelInfo):
                    mark = ("  [random weights: for trying nst-rt out, not for pictures]" if item.random_weights
                            else "")
                    typer.echo(f"\n{item.name}  ({item.path}){mark}")
                    for key, value in sorted({"weights_dtype": item.weights_dtype, **item.metadata}.items()):
                        typer.echo(f"  {key}: {value}")
                    sizes = {p.name: p.stat().st_size for p in item.files if p.is_file()}
                    typer.echo(f"  files: {', '.join(f'{n} {file_size(b)}' for n, b in sizes.items())} "
                               f"({file_size(sum(sizes.values()))} in all)")
                else:
                    path, problem = item
                    typer.echo(f"\n{path.name}  ({path}): unusable: {problem}")
        except NstError as exc:
            raise fail(str(exc)) from None
        except KeyboardInterrupt:
            raise notice(stop.what, stop.exit_code) from None


def _probed_precision(found: list, refresh: bool) -> tuple[str, str]:
    """--precision auto on OpenVINO: the cached probe's decision (probing now when asked or when none is cached)."""
    from ..network.model import ModelInfo
    from ..network.probe import auto_precision, cache_path, describe, load_cached, machine_key, probe
    from ..network.session import Network

    cached = None if refresh else load_cached(machine_key())
    if cached is not None:
        return cached["precision"], f"{describe(cached)}; cached in {cache_path()}"
    models = [m for m in found if isinstance(m, ModelInfo)]
    if not models:
        return "auto", f"not probed yet (no exported model to time); the first run probes and caches in {cache_path()}"
    decision, _ = auto_precision(models[0], refresh=True, run_probe=lambda m, t: probe(m, t, network=Network))
    return decision["precision"], f"{describe(decision)}; probed now on {models[0].name}, cached in {cache_path()}"
