"""The ``nst-rt`` command line: stylize, export, info. The only place that prints and exits."""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from . import __version__
from .errors import NstError, OptionError
from .models_dir import DEFAULT_MODEL, EXPORT_DESTINATION, SEARCH_ORDER

app = typer.Typer(
    name="nst-rt",
    help="Neural style transfer (Gatys et al.) on ONNX Runtime: export a VGG once, then stylize without torch.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

INTERRUPTED = 130  # the shell's code for a run stopped by Ctrl-C


class Arch(str, Enum):
    vgg16 = "vgg16"
    vgg19 = "vgg19"


class Pooling(str, Enum):
    avg = "avg"
    max = "max"


class OptimizerName(str, Enum):
    lbfgs = "lbfgs"
    adam = "adam"


class Provider(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


def fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"nst-rt: error: {message}", err=True)
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
    model: Annotated[str, typer.Option(help="Exported model: a name (vgg19, vgg16, vgg19-max) or a path.")] = "vgg19",
    models_dir: Annotated[Optional[Path], typer.Option(
        help=f"Where to look for models by name first; then {SEARCH_ORDER}.", show_default=False)] = None,
    size: Annotated[int, typer.Option(help="Longest side of the output in pixels.")] = 512,
    iterations: Annotated[int, typer.Option(help="Optimiser iterations (at each scale).")] = 300,
    content_weight: Annotated[float, typer.Option(help="Weight of the content loss.")] = 1.0,
    style_weight: Annotated[float, typer.Option(help="Weight of the style loss.")] = 1e6,
    tv_weight: Annotated[float, typer.Option(help="Weight of total-variation smoothing (mean squared neighbour "
                                                  "difference of [0,1] pixels); 0 turns it off.")] = 0.0,
    content_layers: Annotated[str, typer.Option(help="Comma-separated content layers.")] = "relu4_2",
    style_layers: Annotated[str, typer.Option(help="Comma-separated style layers.")] =
        "relu1_1,relu2_1,relu3_1,relu4_1,relu5_1",
    style_blend_weights: Annotated[Optional[str], typer.Option(
        help="Comma-separated weight per style image [default: equal].", show_default=False)] = None,
    style_scale: Annotated[float, typer.Option(help="Style images are resized to SIZE x STYLE_SCALE "
                                                    "(longest side); smaller gives larger brush strokes.")] = 1.0,
    init: Annotated[str, typer.Option(help="Start image: content, noise, style, or an image file.")] = "content",
    noise_ratio: Annotated[float, typer.Option(help="Share (0-1) of seeded noise blended into the start image.")]
        = 0.0,
    seed: Annotated[int, typer.Option(help="Seed for --init noise and --noise-ratio.")] = 0,
    optimizer: Annotated[OptimizerName, typer.Option(help="lbfgs (best results) or adam (less memory).")]
        = OptimizerName.lbfgs,
    learning_rate: Annotated[float, typer.Option(help="Adam's step size, in [0,1] pixel units.")] = 0.02,
    history: Annotated[int, typer.Option(help="L-BFGS memory: pairs of vectors kept (memory grows with it).")] = 100,
    bounds: Annotated[bool, typer.Option(help="Keep pixels in [0,1] while optimising (--no-bounds clamps only "
                                              "when saving).")] = True,
    original_colors: Annotated[bool, typer.Option(help="Keep the content's colours; transfer luminance only.")]
        = False,
    scales: Annotated[int, typer.Option(help="Coarse-to-fine: optimise at SIZE/2^(N-1), ..., SIZE, each start "
                                             "upsampled from the last result.")] = 1,
    save_every: Annotated[int, typer.Option(help="Also save the image every N iterations as OUTPUT_NNNN.ext; "
                                                 "0 saves none.")] = 0,
    gif: Annotated[Optional[Path], typer.Option(help="Write an animated GIF of the progress here.",
                                                show_default=False)] = None,
    provider: Annotated[Provider, typer.Option(help="ONNX Runtime execution provider: auto picks CUDA when "
                                                    "available.")] = Provider.auto,
    threads: Annotated[Optional[int], typer.Option(help="CPU threads for ONNX Runtime [default: all cores].",
                                                   show_default=False)] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress display or summary.")] = False,
) -> None:
    """Stylize CONTENT with one or more STYLES and write the result to OUTPUT."""
    from . import images
    from .progress import ProgressBar
    from .pipeline import Options, Stylizer

    bar = ProgressBar(enabled=False if quiet else None)
    try:
        if output is None:
            output = Path(f"{content.stem}_{styles[0].stem}.png")
        if save_every < 0:
            raise OptionError(f"--save-every must be >= 0, got {save_every}")
        options = Options(
            size=size, iterations=iterations, content_weight=content_weight, style_weight=style_weight,
            tv_weight=tv_weight, content_layers=split_names(content_layers), style_layers=split_names(style_layers),
            style_blend_weights=split_floats(style_blend_weights, "--style-blend-weights"), style_scale=style_scale,
            init=init, noise_ratio=noise_ratio, seed=seed, optimizer=optimizer.value, learning_rate=learning_rate,
            history=history, bounds=bounds, original_colors=original_colors, scales=scales, model=model,
            models_dir=models_dir, provider=provider.value, threads=threads,
        ).validated()
        # Check every path we will write before a long run, so a typo costs nothing.
        images.check_output_path(output, overwrite=overwrite)
        frames = [frame_path(output, s, scales, i) for s in range(1, scales + 1)
                  for i in range(save_every, iterations + 1, save_every)] if save_every else []
        for frame in frames:
            images.check_output_path(frame, overwrite=overwrite)
        if gif is not None:
            images.check_output_path(gif, overwrite=overwrite, gif=True)
        stylizer = Stylizer(options)
        gif_frames = []
        gif_every = save_every or max(1, iterations // 30)

        def on_progress(p):
            bar(p)
            save_frame = save_every and p.iteration % save_every == 0
            add_to_gif = gif is not None and p.iteration % gif_every == 0
            if save_frame or add_to_gif:
                image = p.image()  # built once: with --original-colors it costs a colour conversion
                if save_frame:
                    images.save_image(image, frame_path(output, p.scale, scales, p.iteration), overwrite=overwrite)
                if add_to_gif:
                    gif_frames.append(images.to_uint8(image))

        result = stylizer.run(content, styles, progress=on_progress)
        bar.close()
        images.save_image(result.image, output, overwrite=overwrite)
        if gif is not None:
            gif_frames.append(images.to_uint8(result.image))
            images.save_gif(gif_frames, gif, overwrite=overwrite)
    except NstError as exc:
        bar.close()
        raise fail(str(exc)) from None
    except KeyboardInterrupt:
        bar.close()
        raise fail("interrupted; nothing was written", INTERRUPTED) from None
    if result.interrupted:
        raise fail(f"interrupted after {result.iterations} iterations; saved the best image so far to {output}",
                   INTERRUPTED)
    say(f"wrote {output} ({result.image.shape[1]}x{result.image.shape[0]}, {result.iterations} iterations, "
        f"{result.evaluations} evaluations, loss {result.loss:.4g}, {result.seconds:.1f} s)", quiet)


@app.command()
def export(
    arch: Annotated[Arch, typer.Argument(help="The network to export.")],
    weights: Annotated[Optional[Path], typer.Option(
        help="A torchvision-format state dict to use instead of downloading torchvision's ImageNet weights "
             "(the offline path).", show_default=False)] = None,
    random_weights: Annotated[Optional[int], typer.Option(
        help="Use seeded random weights with this seed instead: for trying nst-rt offline and for tests "
             "(every code path works, the pictures are cruder).", show_default=False)] = None,
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
        raise fail("interrupted; no model was written", INTERRUPTED) from None
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
        help=f"Where to look for models first; then {SEARCH_ORDER}.", show_default=False)] = None) -> None:
    """Show the exported models found, their metadata, and the available execution providers."""
    from .model import ModelInfo, list_models
    from .models_dir import create_hint, search_dirs

    try:
        from .network import available_providers

        providers = available_providers()
        import onnxruntime

        typer.echo(f"nst-rt {__version__}, onnxruntime {onnxruntime.__version__}")
        typer.echo(f"execution providers: {', '.join(providers)}")
        typer.echo(f"model search path: {', '.join(str(d) for d in search_dirs(models_dir))}")
        found = list_models(models_dir)
    except NstError as exc:
        raise fail(str(exc)) from None
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


def main() -> None:
    """Entry point: usage errors (bad option values, missing arguments) become one line as well."""
    try:
        code = app(prog_name="nst-rt", standalone_mode=False)
    except Exception as exc:
        # click's exceptions (typer's own copy of click in recent typer): they carry the message and exit code.
        if not (hasattr(exc, "format_message") and hasattr(exc, "exit_code")):
            raise
        if type(exc).__name__ == "NoArgsIsHelpError":  # a bare `nst-rt`: the help is the answer
            typer.echo(exc.format_message(), err=True)
            sys.exit(exc.exit_code)
        context = getattr(exc, "ctx", None)
        command = context.command_path if context is not None else "nst-rt"
        typer.echo(f"nst-rt: error: {exc.format_message().rstrip('.')}; see '{command} --help'", err=True)
        sys.exit(exc.exit_code)
    except RuntimeError as exc:  # click's Abort (Ctrl-C outside a command's own handling) is a RuntimeError
        if type(exc).__name__ != "Abort":
            raise
        typer.echo("nst-rt: error: interrupted", err=True)
        sys.exit(INTERRUPTED)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
