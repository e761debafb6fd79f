"""The ``nst-rt stylize``, ``export`` and ``info`` commands (``nst-rt batch`` is registered here too).

Every default, choice list and check lives in the library (``Options``, ``PROVIDERS``, ...); the options
below only read them, so ``--help`` always shows what a run really uses.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .app import PlainArguments, app
from .batch import Engine, batch
from .common import choices, fail, file_size, notice, notices, say, with_stylization_options
from ..errors import NstError, OptionError
from ..system.interrupts import signals_held, stop_signals
from ..model_format import (ARCHITECTURES, DEFAULT_PREPROCESS, DEFAULT_WEIGHTS_DTYPE, POOLINGS, PREPROCESSES,
                            WEIGHTS_DTYPES)
from ..network.models_dir import ENV_MODEL, EXPORT_DESTINATION, default_model_name
from ..pipeline.display import PRINT_EVERY
from ..pipeline.options import CHECKPOINT_EVERY, ENGINES, Options

GIF_FRAMES = 40  # frames of --gif, evenly spaced over the whole run, the start image and the result included


Arch = choices("Arch", ARCHITECTURES)
Pooling = choices("Pooling", POOLINGS)
PreprocessName = choices("PreprocessName", PREPROCESSES)
WeightsDtype = choices("WeightsDtype", WEIGHTS_DTYPES)




def frame_path(output: Path, scale: int, scales: int, iteration: int) -> Path:
    tag = f"_s{scale}" if scales > 1 else ""
    return output.with_name(f"{output.stem}{tag}_{iteration:04d}{output.suffix}")


def frame_paths(output: Path, stages, save_every: int) -> list[Path]:
    """Every --save-every snapshot a run of these stages writes."""
    return [frame_path(output, scale, len(stages), i) for scale, stage in enumerate(stages, start=1)
            for i in range(save_every, stage.iterations + 1, save_every)] if save_every else []


def gif_steps(total: int, frames: int = GIF_FRAMES) -> set[int]:
    """Steps of the whole run (0 = the start image, ``total`` iterations over all scales = the last) that become
    GIF frames."""
    count = min(frames, total + 1)
    return {round(k * total / (count - 1)) for k in range(count)} if count > 1 else {0}


@app.command(cls=PlainArguments)
@with_stylization_options
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
    options: Options = None,  # every stylization option, declared once: see with_stylization_options
    save_every: Annotated[int, typer.Option(help="Also save the image every N iterations as OUTPUT_NNNN.ext; "
                                                 "0 saves none.")] = 0,
    gif: Annotated[Optional[Path], typer.Option(
        help=f"Write an animated GIF of the progress here: {GIF_FRAMES} frames evenly spaced over the whole run, "
             "from the start image to the result [default: none].", show_default=False)] = None,
    checkpoint_every: Annotated[float, typer.Option(
        metavar="SECONDS", help="Save the run's state to OUTPUT.ckpt every SECONDS, for --resume after a kill or "
                                "a stop; deleted when the run completes. 0 saves none.")] = CHECKPOINT_EVERY,
    resume: Annotated[bool, typer.Option(help="Continue from OUTPUT.ckpt (refused if its inputs, options or model "
                                              "differ); without one, start from the beginning.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress display or summary.")] = False,
    engine: Annotated[Engine, typer.Option(help="local: in this process; ray: every scale in tiles, the tiles run by "
                                                "Ray actors (install the ray extra).")] = Engine(ENGINES[0]),
    address: Annotated[Optional[str], typer.Option(
        help="With --engine ray: the Ray cluster to join, e.g. auto or HEAD_IP:6379 [default: start a local Ray].",
        show_default=False)] = None,
    actors: Annotated[Optional[int], typer.Option(
        help="With --engine ray: the number of workers, each loading the model once and running --threads threads "
             "(1 when not given) [default: as many as the cluster's CPUs hold, or its GPUs with CUDA].",
        show_default=False)] = None,
    worker_memory: Annotated[Optional[str], typer.Option(
        help="With --engine ray: memory one worker may use, e.g. 16G; the tiles are sized by it [default: Ray's "
             "figure of the smallest node's memory over the workers it holds].", show_default=False)] = None,
    print_every: Annotated[Optional[int], typer.Option(
        metavar="N", help=f"Print a plain progress line (iteration, scale, loss, seconds) every N iterations; 0 "
                          f"prints none [default: {PRINT_EVERY} when stderr is not a terminal (a log, nohup), "
                          f"else 0: the progress bar].", show_default=False)] = None,
) -> None:
    """Stylize CONTENT with one or more STYLES and write the result to OUTPUT."""
    from ..pipeline import checkpoint, masks, stopped
    from ..io import image_load, image_save, images
    from ..model_format import MIN_SIZE
    from ..pipeline.precheck import check_run
    from ..pipeline.stylizer import Stylizer
    from .progress import ProgressDisplay

    bar = ProgressDisplay(enabled=False if quiet else None, print_every=0 if quiet else print_every)
    with stop_signals() as stop, notices(quiet):
        try:
            if print_every is not None and print_every < 0:
                raise OptionError(f"--print-every must be >= 0, got {print_every}")
            if output is None:
                output = Path(f"{content.stem}_{styles[0].stem}.png")
            if save_every < 0:
                raise OptionError(f"--save-every must be >= 0, got {save_every}")
            stylizer = Stylizer(options, engine=engine.value, address=address, actors=actors,
                                worker_memory=worker_memory)  # the model, then the inputs, then the outputs: a misspelt style
            # must not be reported as a clash with an existing output.
            content_image = image_load.load_image(content, role="content image", min_side=MIN_SIZE)
            style_images = [image_load.load_image(style, role=f"style image {i + 1}", min_side=MIN_SIZE)
                            for i, style in enumerate(styles)]
            masks.load(options, len(styles))  # a bad mask is refused before any work, as a bad image is
            check_run(options, stylizer.model.layers, content_image, style_images)  # every option, then the output
            saves = checkpoint.Checkpoint(checkpoint.path_for(output), checkpoint_every, resume=resume,
                                          overwrite=overwrite)
            # What the run being resumed wrote when it stopped is replaced (its checkpoint, or the record of a
            # stop before the first checkpoint, says which file that is); anything else only with --overwrite.
            replaces_stopped = resume and not saves.exists and stopped.is_stopped_output(output)
            overwrite = overwrite or saves.resuming or replaces_stopped
            # Check every path we will write before a long run, so a typo costs nothing.
            image_save.check_output_path(output, overwrite=overwrite, what="--output")
            if gif is not None:
                image_save.check_output_path(gif, overwrite=overwrite, gif=True, what="--gif")
            if resume and not saves.exists:
                again = f"; it replaces {output}, the best image of the stopped run" if replaces_stopped else ""
                say(f"nst-rt: no checkpoint yet ({saves.path}): the run starts again{again}", quiet)
            wanted_steps: set[int] = set()
            gif_frames: list[tuple[int, object]] = []  # (step of the run, 8-bit image)
            last_step = [-1]
            last_scale = [1]  # the scale a stopped run's image comes from
            stages = []

            def on_progress(p):
                if not stages:  # the first report (scale 1's start, or the first step after a checkpoint)
                    # The schedule is known once the images are loaded, before the first iteration.
                    stages.extend(p.stages)
                    for frame in frame_paths(output, p.stages, save_every):
                        image_save.check_output_path(frame, overwrite=overwrite, what="--save-every frame")
                    if gif is not None:
                        wanted_steps.update(gif_steps(sum(stage.iterations for stage in p.stages)))
                bar(p)
                # A later scale's start repeats the step that ended the scale before.
                step = sum(stage.iterations for stage in p.stages[: p.scale - 1]) + p.iteration
                last_step[0] = step
                last_scale[0] = p.scale
                save_frame = save_every and p.iteration and p.iteration % save_every == 0
                add_to_gif = step in wanted_steps and (p.iteration > 0 or p.scale == 1)
                if save_frame or add_to_gif:
                    image = p.image()  # built once: with --original-colors it costs a colour conversion
                    if save_frame:
                        image_save.save_image(image, frame_path(output, p.scale, len(p.stages), p.iteration),
                                              overwrite=overwrite)
                    if add_to_gif:
                        gif_frames.append((step, images.to_uint8(image)))

            try:
                result = stylizer.run(content, styles, progress=on_progress, checkpoint=saves, on_tile=bar.tile)
            finally:
                stylizer.close()
            stopped_while_saving = False
            bar.close({scale: "stopped early" for scale in result.stopped_early})
            if result.interrupted and result.iterations == 0:
                raise notice(f"{stop.what} before the first iteration finished; nothing was saved", stop.exit_code)
            try:
                with signals_held():  # a stop during the saves is delivered once they are whole
                    image_save.save_image(result.image, output, overwrite=overwrite)
                    if gif is not None:
                        # The result ends the GIF, in place of a frame of the same step (Adam returns its best point).
                        frames_out = [frame for step, frame in gif_frames if step != last_step[0]]
                        image_save.save_gif([*frames_out, images.to_uint8(result.image)], gif, overwrite=overwrite)
                    if result.interrupted:
                        stopped.record(output)
                    else:
                        saves.remove()
                        stopped.clear(output)
            except KeyboardInterrupt:
                stopped_while_saving = True
        except NstError as exc:
            bar.close()
            raise fail(str(exc)) from None
        except KeyboardInterrupt:
            bar.close()
            raise notice(f"{stop.what}; nothing was saved", stop.exit_code) from None
    if stopped_while_saving and not result.interrupted:
        raise notice(f"{stop.what} after the run finished; wrote {output} ({result.iterations} iterations)",
                     stop.exit_code)
    if result.interrupted:
        at = saves.position()
        later = f"; --resume continues from {saves.path} ({f'scale {at[0]}, ' if len(stages) > 1 else ''}" \
                f"iteration {at[1]})" if at else ""
        # Saved as computed, not upsampled: an enlarged coarse scale would pass for a finished run (docs/checkpoints.md).
        height, width = result.image.shape[:2]
        where = f", scale {last_scale[0]} of {len(stages)}" if len(stages) > 1 else ""
        raise notice(f"{stop.what} after {result.iterations} iterations; saved the best image so far "
                     f"({width}x{height}{where}) to {output}{later}", stop.exit_code)
    summary = (f"wrote {output} ({result.image.shape[1]}x{result.image.shape[0]}, {result.iterations} iterations, "
               f"{result.evaluations} evaluations, loss {result.loss:.4g}, {result.seconds:.1f} s)")
    say(summary + (f"; {result.message}" if result.message else ""), quiet)


app.command(cls=PlainArguments)(batch)


@app.command(cls=PlainArguments)
def export(
    arch: Annotated[Arch, typer.Argument(help=f"The network to export: {' or '.join(ARCHITECTURES)}.")],
    weights: Annotated[Optional[Path], typer.Option(
        help="A torchvision-format state dict to use instead of downloading torchvision's ImageNet weights "
             "(the offline path) [default: download].", show_default=False)] = None,
    random_weights: Annotated[Optional[int], typer.Option(
        help="Use seeded random weights with this seed instead: for trying nst-rt offline and for tests "
             "(every code path works, the pictures are cruder) [default: off].", show_default=False)] = None,
    pooling: Annotated[Pooling, typer.Option(help="Pooling layers: avg (smoother results) or max.")] = Pooling.avg,
    preprocess: Annotated[PreprocessName, typer.Option(
        help="The input transform the weights were trained with: torchvision, or caffe for Caffe-trained VGG "
             "files (BGR, 0-255, minus the mean). The graph takes [0,1] RGB either way and does it inside.")]
        = PreprocessName[DEFAULT_PREPROCESS],
    out: Annotated[Optional[Path], typer.Option(
        help=f"Directory that receives one subdirectory per model [default: {EXPORT_DESTINATION}].",
        show_default=False)] = None,
    name: Annotated[Optional[str], typer.Option(
        help="Name of the model's subdirectory [default: ARCH, or ARCH-max with --pooling max].",
        show_default=False)] = None,
    opset: Annotated[int, typer.Option(help="ONNX opset of the written graphs.")] = 17,
    weights_dtype: Annotated[WeightsDtype, typer.Option(
        help="How the weights are stored: float16 halves the model on disk; the graphs cast them to float32 when "
             "they load, so the arithmetic is float32 either way.")] = WeightsDtype[DEFAULT_WEIGHTS_DTYPE],
    force: Annotated[bool, typer.Option(help="Overwrite an existing export of the same name.")] = False,
) -> None:
    """Export ARCH to OUT/NAME/ (features.onnx, vjp.onnx, objective.onnx and the weights.bin they read),
    validated against torch (needs the export extra)."""
    from .exporter_loader import import_exporter
    from ..network.models_dir import absolute, default_dirs, export_dir, found_from

    with stop_signals() as stop:
        try:
            if name is not None and (not name or Path(name).name != name or name.startswith(".")):
                raise OptionError(f"--name must be a plain directory name (no path, not hidden), got {name!r}")
            export_model = import_exporter()
            destination = absolute(out) if out is not None else export_dir()
            result = export_model(arch.value, destination, weights=weights, random_seed=random_weights,
                                  pooling=pooling.value, preprocess=preprocess.value, name=name, opset=opset,
                                  weights_dtype=weights_dtype.value, force=force,
                                  log=lambda line: typer.echo(line, err=True))
        except NstError as exc:
            raise fail(str(exc)) from None
        except KeyboardInterrupt:
            raise notice(f"{stop.what}; no model was written", stop.exit_code) from None
    for path in result.files:
        typer.echo(f"wrote {path} ({file_size(path.stat().st_size)})", err=True)
    found = found_from(destination)
    typer.echo(f"exported {arch.value} ({pooling.value} pooling) to {result.path} in {result.seconds:.1f} s"
               f"{f'; {found}' if found else ''}", err=True)
    if destination not in default_dirs():  # not found by name unless the user says where
        typer.echo(f"use it with --models-dir {destination} --model {result.path.name}, or --model {result.path}",
                   err=True)
    elif result.path.name != default_model_name():
        typer.echo(f"use it with --model {result.path.name}, or make it the default model with "
                   f"{ENV_MODEL}={result.path.name}", err=True)
