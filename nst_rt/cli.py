"""The ``nst-rt`` command line: stylize, export, info. The only place that prints and exits.

Every default, choice list and check lives in the library (``Options``, ``PROVIDERS``, ...); the options
below only read them, so ``--help`` always shows what a run really uses.
"""

from __future__ import annotations

import dataclasses
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from . import __version__
from .errors import NstError, OptionError
from .interrupts import stop_signals
from .model_format import ARCHITECTURES, POOLINGS
from .models_dir import DEFAULT_MODEL, EXPORT_DESTINATION, SEARCH_ORDER
from .network import PROVIDERS
from .pipeline import INITS, OPTIMIZERS, Options

app = typer.Typer(
    name="nst-rt",
    help="Neural style transfer (Gatys et al.) on ONNX Runtime: export a VGG once, then stylize without torch.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

DEFAULTS = Options()
GIF_FRAMES = 40  # frames of --gif, evenly spaced over the whole run, the start image and the result included


def choices(name: str, values) -> type[Enum]:
    """A typer choice type made from one of the library's tuples."""
    return Enum(name, {value: value for value in values}, type=str)


Arch = choices("Arch", ARCHITECTURES)
Pooling = choices("Pooling", POOLINGS)
OptimizerName = choices("OptimizerName", OPTIMIZERS)
Provider = choices("Provider", PROVIDERS)


def fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"nst-rt: error: {message}", err=True)
    return typer.Exit(code)


def notice(message: str, code: int) -> typer.Exit:
    """A stop the user asked for (a signal): one line, not an error."""
    typer.echo(f"nst-rt: {message}", err=True)
    return typer.Exit(code)


def say(message: str, quiet: bool = False) -> None:
    if not quiet:
        typer.echo(message, err=True)


def split_names(value: str | None) -> list[str] | None:
    if value is None:
        return None
    names = [name.strip() for name in value.split(",") if name.strip()]
    if not names:
        raise OptionError("a layer list must name at least one layer, e.g. relu1_1,relu2_1")
    return names


def split_floats(value: str | None, what: str) -> list[float] | None:
    if value is None:
        return None
    try:
        return [float(v) for v in value.split(",")]
    except ValueError:
        raise OptionError(f"{what} must be comma-separated numbers, got {value!r}") from None


def version_callback(value: bool) -> None:
    if value:
        typer.echo(f"nst-rt {__version__}")
        raise typer.Exit()


@app.callback()
def root(version: Annotated[bool, typer.Option("--version", callback=version_callback, is_eager=True,
                                               help="Show the version and exit.")] = False) -> None:
    """Neural style transfer on ONNX Runtime."""


def frame_path(output: Path, scale: int, scales: int, iteration: int) -> Path:
    tag = f"_s{scale}" if scales > 1 else ""
    return output.with_name(f"{output.stem}{tag}_{iteration:04d}{output.suffix}")


def gif_steps(scales: int, iterations: int, frames: int = GIF_FRAMES) -> set[int]:
    """Steps of the whole run (0 = the start image, scales x iterations = the last) that become GIF frames."""
    total = scales * iterations
    count = min(frames, total + 1)
    return {round(k * total / (count - 1)) for k in range(count)} if count > 1 else {0}


def options_from(parameters: dict) -> Options:
    """The library's Options from a command's parameters of the same names (stylize's, which video shares)."""
    convert = {"content_layers": split_names, "style_layers": split_names,
               "style_blend_weights": lambda value: split_floats(value, "--style-blend-weights")}
    values = {}
    for field in dataclasses.fields(Options):
        if field.name not in parameters:  # a library setting without an option keeps its default
            continue
        value = parameters[field.name]
        value = value.value if isinstance(value, Enum) else value
        values[field.name] = convert[field.name](value) if field.name in convert else value
    return Options(**values).validated()


@app.command()
def stylize(
    content: Annotated[Path, typer.Argument(help="The content image (any format Pillow reads).", show_default=False,
                                            metavar="CONTENT")],
    styles: Annotated[list[Path], typer.Argument(help="One or more style images.", show_default=False,
                                                 metavar="STYLE")],
    output: Annotated[Optional[Path], typer.Option(
        "--output", "-o", help="Where to write the result (.png, .jpg, .webp, .bmp, .tif). "
        "[default: CONTENT_STYLE.png in the current directory]", show_default=False)] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace OUTPUT (and frames) if they exist; without it an "
                                                 "existing file is never touched.")] = False,
    model: Annotated[str, typer.Option(help="Exported model: a name (vgg19, vgg16, vgg19-max) or a path.")]
        = DEFAULTS.model,
    models_dir: Annotated[Optional[Path], typer.Option(
        help=f"Where to look for models by name first [default: {SEARCH_ORDER}].", show_default=False)]
        = DEFAULTS.models_dir,
    size: Annotated[int, typer.Option(help="Longest side of the output in pixels.")] = DEFAULTS.size,
    iterations: Annotated[int, typer.Option(help="Optimiser iterations (at each scale).")] = DEFAULTS.iterations,
    content_weight: Annotated[float, typer.Option(help="Weight of the content loss.")] = DEFAULTS.content_weight,
    style_weight: Annotated[float, typer.Option(help="Weight of the style loss.")] = DEFAULTS.style_weight,
    tv_weight: Annotated[float, typer.Option(help="Weight of total-variation smoothing (mean squared neighbour "
                                                  "difference of [0,1] pixels); 0 turns it off.")]
        = DEFAULTS.tv_weight,
    content_layers: Annotated[str, typer.Option(help="Comma-separated content layers.")]
        = ",".join(DEFAULTS.content_layers),
    style_layers: Annotated[str, typer.Option(help="Comma-separated style layers.")]
        = ",".join(DEFAULTS.style_layers),
    style_blend_weights: Annotated[Optional[str], typer.Option(
        help="Comma-separated weight per style image [default: equal].", show_default=False)] = None,
    style_scale: Annotated[float, typer.Option(help="Style images are resized to SIZE x STYLE_SCALE "
                                                    "(longest side); smaller gives larger brush strokes.")]
        = DEFAULTS.style_scale,
    init: Annotated[str, typer.Option(help=f"Start image: {', '.join(INITS)}, or an image file.")] = DEFAULTS.init,
    noise_ratio: Annotated[float, typer.Option(help="Share (0-1) of seeded noise blended into the start image.")]
        = DEFAULTS.noise_ratio,
    seed: Annotated[int, typer.Option(help="Seed for --init noise and --noise-ratio.")] = DEFAULTS.seed,
    optimizer: Annotated[OptimizerName, typer.Option(help="lbfgs (best results) or adam (less memory).")]
        = OptimizerName(DEFAULTS.optimizer),
    learning_rate: Annotated[float, typer.Option(help="Adam's step size, in [0,1] pixel units.")]
        = DEFAULTS.learning_rate,
    history: Annotated[int, typer.Option(help="L-BFGS memory: pairs of vectors kept (memory grows with it).")]
        = DEFAULTS.history,
    bounds: Annotated[bool, typer.Option(help="Keep pixels in [0,1] while optimising (--no-bounds clamps only "
                                              "when saving).")] = DEFAULTS.bounds,
    original_colors: Annotated[bool, typer.Option(help="Keep the content's colours; transfer luminance only.")]
        = DEFAULTS.original_colors,
    scales: Annotated[int, typer.Option(help="Coarse-to-fine: optimise at SIZE/2^(N-1), ..., SIZE, each start "
                                             "upsampled from the last result.")] = DEFAULTS.scales,
    save_every: Annotated[int, typer.Option(help="Also save the image every N iterations as OUTPUT_NNNN.ext; "
                                                 "0 saves none.")] = 0,
    gif: Annotated[Optional[Path], typer.Option(
        help=f"Write an animated GIF of the progress here: {GIF_FRAMES} frames evenly spaced over the whole run, "
             "from the start image to the result [default: none].", show_default=False)] = None,
    provider: Annotated[Provider, typer.Option(help="ONNX Runtime execution provider: auto picks CUDA when "
                                                    "available.")] = Provider(DEFAULTS.provider),
    threads: Annotated[Optional[int], typer.Option(help="CPU threads for ONNX Runtime [default: all cores].",
                                                   show_default=False)] = DEFAULTS.threads,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress display or summary.")] = False,
) -> None:
    """Stylize CONTENT with one or more STYLES and write the result to OUTPUT."""
    parameters = dict(locals())
    from . import images
    from .pipeline import Stylizer
    from .progress import ProgressDisplay

    bar = ProgressDisplay(enabled=False if quiet else None)
    with stop_signals() as stop:
        try:
            if output is None:
                output = Path(f"{content.stem}_{styles[0].stem}.png")
            if save_every < 0:
                raise OptionError(f"--save-every must be >= 0, got {save_every}")
            options = options_from(parameters)
            # Check every path we will write before a long run, so a typo costs nothing.
            images.check_output_path(output, overwrite=overwrite)
            frames = [frame_path(output, s, scales, i) for s in range(1, scales + 1)
                      for i in range(save_every, iterations + 1, save_every)] if save_every else []
            for frame in frames:
                images.check_output_path(frame, overwrite=overwrite)
            if gif is not None:
                images.check_output_path(gif, overwrite=overwrite, gif=True)
            stylizer = Stylizer(options)
            wanted_steps = gif_steps(scales, iterations) if gif is not None else set()
            gif_frames: list[tuple[int, object]] = []  # (step of the run, 8-bit image)
            last_step = [-1]

            def on_progress(p):
                bar(p)
                step = (p.scale - 1) * p.iterations + p.iteration  # a later scale's start repeats the last step
                last_step[0] = step
                save_frame = save_every and p.iteration and p.iteration % save_every == 0
                add_to_gif = step in wanted_steps and (p.iteration > 0 or p.scale == 1)
                if save_frame or add_to_gif:
                    image = p.image()  # built once: with --original-colors it costs a colour conversion
                    if save_frame:
                        images.save_image(image, frame_path(output, p.scale, scales, p.iteration),
                                          overwrite=overwrite)
                    if add_to_gif:
                        gif_frames.append((step, images.to_uint8(image)))

            result = stylizer.run(content, styles, progress=on_progress)
            bar.close({scale: "stopped early" for scale in result.stopped_early})
            if result.interrupted and result.iterations == 0:
                raise notice(f"{stop.what} before the first iteration finished; nothing was saved", stop.exit_code)
            images.save_image(result.image, output, overwrite=overwrite)
            if gif is not None:
                # The result ends the GIF, in place of a frame of the same step (Adam returns its best point).
                frames_out = [frame for step, frame in gif_frames if step != last_step[0]]
                images.save_gif([*frames_out, images.to_uint8(result.image)], gif, overwrite=overwrite)
        except NstError as exc:
            bar.close()
            raise fail(str(exc)) from None
        except KeyboardInterrupt:
            bar.close()
            raise notice(f"{stop.what}; nothing was saved", stop.exit_code) from None
    if result.interrupted:
        raise notice(f"{stop.what} after {result.iterations} iterations; saved the best image so far to {output}",
                     stop.exit_code)
    summary = (f"wrote {output} ({result.image.shape[1]}x{result.image.shape[0]}, {result.iterations} iterations, "
               f"{result.evaluations} evaluations, loss {result.loss:.4g}, {result.seconds:.1f} s)")
    say(summary + (f"; {result.message}" if result.message else ""), quiet)


@app.command()
def export(
    arch: Annotated[Arch, typer.Argument(help="The network to export.")],
    weights: Annotated[Optional[Path], typer.Option(
        help="A torchvision-format state dict to use instead of downloading torchvision's ImageNet weights "
             "(the offline path) [default: download].", show_default=False)] = None,
    random_weights: Annotated[Optional[int], typer.Option(
        help="Use seeded random weights with this seed instead: for trying nst-rt offline and for tests "
             "(every code path works, the pictures are cruder) [default: off].", show_default=False)] = None,
    pooling: Annotated[Pooling, typer.Option(help="Pooling layers: avg (smoother results) or max.")] = Pooling.avg,
    out: Annotated[Optional[Path], typer.Option(
        help=f"Directory that receives one subdirectory per model [default: {EXPORT_DESTINATION}].",
        show_default=False)] = None,
    name: Annotated[Optional[str], typer.Option(
        help="Name of the model's subdirectory [default: ARCH, or ARCH-max with --pooling max].",
        show_default=False)] = None,
    opset: Annotated[int, typer.Option(help="ONNX opset of the written graphs.")] = 17,
    force: Annotated[bool, typer.Option(help="Overwrite an existing export of the same name.")] = False,
) -> None:
    """Export ARCH to OUT/NAME/{features,vjp}.onnx, validated against torch (needs the export extra)."""
    from .exporter_loader import import_exporter
    from .models_dir import absolute, default_dirs, export_dir

    with stop_signals() as stop:
        try:
            if name is not None and (not name or Path(name).name != name or name.startswith(".")):
                raise OptionError(f"--name must be a plain directory name (no path, not hidden), got {name!r}")
            export_model = import_exporter()
            destination = absolute(out) if out is not None else export_dir()
            result = export_model(arch.value, destination, weights=weights, random_seed=random_weights,
                                  pooling=pooling.value, name=name, opset=opset, force=force,
                                  log=lambda line: typer.echo(line, err=True))
        except NstError as exc:
            raise fail(str(exc)) from None
        except KeyboardInterrupt:
            raise notice(f"{stop.what}; no model was written", stop.exit_code) from None
    for path in result.files:
        typer.echo(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)", err=True)
    typer.echo(f"exported {arch.value} ({pooling.value} pooling) to {result.path} in {result.seconds:.1f} s", err=True)
    if destination not in default_dirs():  # not found by name unless the user says where
        typer.echo(f"use it with --models-dir {destination} --model {result.path.name}, or --model {result.path}",
                   err=True)
    elif result.path.name != DEFAULT_MODEL:
        typer.echo(f"use it with --model {result.path.name}", err=True)


@app.command()
def info(models_dir: Annotated[Optional[Path], typer.Option(
        help=f"Where to look for models first [default: {SEARCH_ORDER}].", show_default=False)] = None) -> None:
    """Show the exported models found, their metadata, and the available execution providers."""
    from .model import ModelInfo, list_models
    from .models_dir import create_hint, search_dirs

    with stop_signals() as stop:
        try:
            from .network import available_providers

            providers = available_providers()
            import onnxruntime

            typer.echo(f"nst-rt {__version__}, onnxruntime {onnxruntime.__version__}")
            typer.echo(f"execution providers: {', '.join(providers)}")
            typer.echo(f"model search path: {', '.join(str(d) for d in search_dirs(models_dir))}")
            found = list_models(models_dir)
            if not found:
                typer.echo(f"no exported models found; {create_hint(DEFAULT_MODEL, models_dir)}")
            for item in found:
                if isinstance(item, ModelInfo):
                    typer.echo(f"\n{item.name}  ({item.path})")
                    for key, value in sorted(item.metadata.items()):
                        typer.echo(f"  {key}: {value}")
                else:
                    path, problem = item
                    typer.echo(f"\n{path.name}  ({path}): unusable: {problem}")
        except NstError as exc:
            raise fail(str(exc)) from None
        except KeyboardInterrupt:
            raise notice(stop.what, stop.exit_code) from None


from . import cli_video  # noqa: E402,F401  (registers `nst-rt video`, which reuses stylize's options)


def main() -> None:
    """Entry point. click prints its own usage errors (exit code 2); the commands print everything else."""
    app(prog_name="nst-rt")


if __name__ == "__main__":
    main()
