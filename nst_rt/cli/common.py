"""What the commands share: one-line errors and notices, and the stylization options, declared once.

``stylize`` and ``batch`` take every option of ``options.Options`` through ``with_stylization_options``: the
declarations below are the only ones, and their defaults and choices are read from the library, so
``--help`` always shows what a run really uses.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import warnings
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import DeviceNotice, MaskNotice, MemoryNotice, NstError, OptionError, RandomWeightsNotice
from ..network.models_dir import DEFAULT_MODEL_HELP, SEARCH_ORDER, default_model_name
from ..network.providers import PROVIDERS
from ..pipeline.options import COLOR_TRANSFERS, INITS, OPTIMIZERS, ORIGINAL_COLORS_MODES, SETTLE_WINDOW, Options
from ..network.precision import PRECISIONS
from ..pipeline.schedule import COARSER_ITERATIONS, COARSEST, FULL_ITERATIONS_FROM, MAX_ITERATIONS_FACTOR
from ..model_format import STRIDE

DEFAULTS = Options()


def choices(name: str, values) -> type[Enum]:
    """A typer choice type made from one of the library's tuples."""
    return Enum(name, {value: value for value in values}, type=str)


OptimizerName = choices("OptimizerName", OPTIMIZERS)
Provider = choices("Provider", PROVIDERS)
Precision = choices("Precision", PRECISIONS)
ColorTransfer = choices("ColorTransfer", COLOR_TRANSFERS)
OriginalColorsMode = choices("OriginalColorsMode", ORIGINAL_COLORS_MODES)


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


@contextlib.contextmanager
def notices(quiet: bool = False):
    """Print the library's notices (MemoryNotice, MaskNotice, RandomWeightsNotice, DeviceNotice) as one line each
    while the block runs (a notice says how a run was changed to fit, that masks leave a region unstyled, why its
    picture will disappoint, or that a GPU run keeps its optimiser on the host, so it comes before the long part,
    not after). A mask, random-weights or device notice is said once, however many pictures or models a command
    runs."""
    with warnings.catch_warnings():
        warnings.simplefilter("always", MemoryNotice)
        warnings.simplefilter("always", MaskNotice)
        warnings.simplefilter("always", RandomWeightsNotice)
        warnings.simplefilter("always", DeviceNotice)
        previous = warnings.showwarning
        said = set()

        def show(message, category, *args, **kwargs):
            if issubclass(category, (MaskNotice, RandomWeightsNotice, DeviceNotice)):
                if category not in said:
                    say(f"nst-rt: note: {message}", quiet)
                said.add(category)
            elif issubclass(category, MemoryNotice):
                say(f"nst-rt: note: {message}", quiet)
            else:
                previous(message, category, *args, **kwargs)

        warnings.showwarning = show
        yield


def file_size(size: int) -> str:
    """A file size for people: 25.9 MB, 7.6 kB."""
    return f"{size / 1e6:.1f} MB" if size >= 1e5 else f"{size / 1e3:.1f} kB"


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


def stylization_options(
    model: Annotated[Optional[str], typer.Option(
        help=f"Exported model: a name (vgg19, vgg16, vgg19-max) or a path [default: {DEFAULT_MODEL_HELP}].",
        show_default=False)] = None,
    models_dir: Annotated[Optional[Path], typer.Option(
        help=f"Where to look for models by name first [default: {SEARCH_ORDER}].", show_default=False)]
        = DEFAULTS.models_dir,
    size: Annotated[int, typer.Option(help="Longest side of the output in pixels.")] = DEFAULTS.size,
    iterations: Annotated[int, typer.Option(help="Optimiser iterations at the full size; the scale below runs "
                                                 "--coarse-iterations x ITERATIONS, each coarser one "
                                                 f"{COARSER_ITERATIONS}x the next finer one's, at most "
                                                 f"{MAX_ITERATIONS_FACTOR}x ITERATIONS; the coarsest, and any of "
                                                 f"{FULL_ITERATIONS_FROM} px or more, at least ITERATIONS.")]
        = DEFAULTS.iterations,
    coarse_iterations: Annotated[float, typer.Option(
        help="Iterations of the scale below the full size, as a multiple of ITERATIONS (above 0, at most "
             f"{MAX_ITERATIONS_FACTOR}).", metavar="MULTIPLE")] = DEFAULTS.coarse_iterations,
    settle: Annotated[float, typer.Option(
        help="End a scale early once the saved (8-bit) picture changes by less than this many grey levels per "
             f"iteration (mean absolute change) for {SETTLE_WINDOW} iterations in a row; ITERATIONS stays the most a "
             "scale runs. 0: every scale runs all its iterations.", metavar="GREY_LEVELS")] = DEFAULTS.settle,
    content_weight: Annotated[float, typer.Option(help="Weight of the content loss.")] = DEFAULTS.content_weight,
    style_weight: Annotated[float, typer.Option(help="Weight of the style loss.")] = DEFAULTS.style_weight,
    tv_weight: Annotated[float, typer.Option(help="Weight of total-variation smoothing (mean squared neighbour "
                                                  "difference of [0,1] pixels); 0 turns it off.")]
        = DEFAULTS.tv_weight,
    normalize: Annotated[bool, typer.Option(help="Divide each layer's loss by its target's mean square, so the "
                                                 "weights mean the same for any weights file and image "
                                                 "(--no-normalize: the plain Gatys recipe).")] = DEFAULTS.normalize,
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
    original_colors: Annotated[bool, typer.Option(
        help="After the run, give the result the content's colours (how: --original-colors-mode); the style's "
             "brush strokes and contrast stay. See also --color-transfer, which acts before the run.")]
        = DEFAULTS.original_colors,
    original_colors_mode: Annotated[OriginalColorsMode, typer.Option(
        help="How --original-colors works: ycbcr keeps the result's luminance and the content's chroma, lab its "
             "L* and the content's a*b*, histogram matches each channel's histogram to the content's.")]
        = OriginalColorsMode(DEFAULTS.original_colors_mode),
    color_transfer: Annotated[ColorTransfer, typer.Option(
        help="Before the run, recolour the style images to the content's colours: pca, chol, sym match mean and "
             "colour covariance (eigendecomposition, Cholesky, symmetric square root), histogram each channel's "
             "histogram. The style is then learnt in the content's palette; --original-colors instead recolours "
             "the result afterwards. The two compose.")] = ColorTransfer(DEFAULTS.color_transfer),
    style_masks: Annotated[Optional[list[Path]], typer.Option(
        "--style-mask", help="A greyscale mask per style image, in the styles' order (repeat the option): white where that "
             "style acts, black where not, grey in proportion. Where no mask is white only content and tv act "
             "[default: every style everywhere].", show_default=False, metavar="FILE")] = None,
    content_mask: Annotated[Optional[Path], typer.Option(
        help="A greyscale mask that weights the content term per region (white: full weight) [default: none].",
        show_default=False, metavar="FILE")] = DEFAULTS.content_mask,
    scales: Annotated[Optional[int], typer.Option(
        help="Coarse-to-fine: optimise at SIZE/2^(N-1), ..., SIZE, each start upsampled from the last result; 1 "
             f"runs at SIZE only [default: halvings of SIZE down to {COARSEST} px or more].", show_default=False)]
        = DEFAULTS.scales,
    provider: Annotated[Provider, typer.Option(help="ONNX Runtime execution provider: auto picks CUDA, else "
                                                    "OpenVINO, when installed.")] = Provider(DEFAULTS.provider),
    precision: Annotated[Precision, typer.Option(help="OpenVINO's arithmetic: auto is bf16 where a timed probe "
                                                      "(once per machine) finds it faster, else fp32. tf32: TF32 "
                                                      "convolutions on CUDA (never auto's choice). A bf16 or tf32 "
                                                      "scale goes on in fp32 once its line searches struggle.")] = Precision(DEFAULTS.precision),
    threads: Annotated[Optional[int], typer.Option(help="CPU threads for ONNX Runtime [default: all cores].",
                                                   show_default=False)] = DEFAULTS.threads,
    tile: Annotated[int, typer.Option(help=f"Evaluate the loss in tiles of N px (a multiple of {STRIDE}): any size "
                                           "fits in memory, the result is the same. 0: tiles only where the whole "
                                           "image does not fit.", metavar="N")] = DEFAULTS.tile,
) -> Options:
    """The validated ``Options`` of the command line's values; its parameters are the options' declarations."""
    return Options(
        size=size, iterations=iterations, settle=settle, content_weight=content_weight, style_weight=style_weight,
        tv_weight=tv_weight, content_layers=split_names(content_layers), style_layers=split_names(style_layers),
        style_blend_weights=split_floats(style_blend_weights, "--style-blend-weights"), style_scale=style_scale,
        init=init, noise_ratio=noise_ratio, seed=seed, optimizer=optimizer.value, learning_rate=learning_rate,
        history=history, bounds=bounds, original_colors=original_colors, scales=scales,
        coarse_iterations=coarse_iterations, model=model or default_model_name(),
        models_dir=models_dir, provider=provider.value, precision=precision.value, threads=threads,
        normalize=normalize, tile=tile, original_colors_mode=original_colors_mode.value,
        color_transfer=color_transfer.value, style_masks=style_masks or None, content_mask=content_mask,
    ).validated()


SHARED = inspect.signature(stylization_options, eval_str=True).parameters


def with_stylization_options(command):
    """Give ``command`` every stylization option in place of its ``options`` parameter, which then receives
    the validated ``Options`` (a bad value ends the command with a one-line error, before any work)."""
    own = inspect.signature(command, eval_str=True)
    params = []
    for param in own.parameters.values():
        params.extend(SHARED.values() if param.name == "options" else [param])

    @functools.wraps(command)
    def wrapper(**values):
        shared = {name: values.pop(name) for name in SHARED}
        try:
            options = stylization_options(**shared)
        except NstError as exc:
            raise fail(str(exc)) from None
        return command(options=options, **values)

    wrapper.__signature__ = own.replace(parameters=params)
    wrapper.__annotations__ = {p.name: p.annotation for p in params}
    return wrapper
