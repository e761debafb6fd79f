"""Flicker and speed of video stylization: each frame on its own against the temporal method, side by side.

    python benchmarks/video.py --weights /work/weights/vgg16-torchvision.pth --arch vgg16
    python benchmarks/video.py --quick          (seeded random VGG-19 weights, tiny: a smoke run)

The clip is synthetic: a camera panning and zooming over an example picture, rendered with known motion,
so that the ground-truth flow between frames is exact. Flicker of a stylized sequence is the mean, over
frames t >= 1, of the masked mean squared difference between output frame t and output frame t-1 warped to
it by the true flow (mask: pixels that were in view in both frames), on the saved 8-bit frames. Both
methods run the same iterations: ITERATIONS for the first frame, FRAME_ITERATIONS for each later one.
"temporal share" is the temporal term's part of the final loss of the later frames (mean over frames).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import nst_rt  # noqa: F401  (first: it sets OPENBLAS_THREAD_TIMEOUT before numpy loads OpenBLAS)
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PICTURE = ROOT / "examples" / "content" / "chelsea.png"
STYLE = ROOT / "examples" / "style" / "starry_night.jpg"
RATE = Fraction(12)  # frames per second of the synthetic clip


def camera(t: int, frames: int) -> tuple[float, float, float]:
    """Centre (x, y) and zoom of the view at frame t, in units of the picture's width and height."""
    s = t / max(frames - 1, 1)
    return 0.42 + 0.16 * s, 0.5 - 0.06 * s, 1.0 + 0.25 * s  # pan right and up while zooming in by 25%


def view_map(t: int, frames: int, size: tuple[int, int], picture_shape) -> tuple[np.ndarray, np.ndarray]:
    """Picture coordinates (x, y) that each pixel of frame t shows."""
    h, w = size
    ph, pw = picture_shape[:2]
    cx, cy, zoom = camera(t, frames)
    span = 0.55 * pw / zoom / w  # picture pixels per frame pixel: the view covers 55% of the width at zoom 1
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    return cx * pw + (xs - (w - 1) / 2) * span, cy * ph + (ys - (h - 1) / 2) * span


def render_clip(picture: np.ndarray, frames: int, size: tuple[int, int]) -> list[np.ndarray]:
    import cv2

    clip = []
    for t in range(frames):
        map_x, map_y = view_map(t, frames, size, picture.shape)
        frame = cv2.remap(picture, map_x.astype(np.float32), map_y.astype(np.float32), cv2.INTER_LINEAR)
        clip.append(np.clip(frame * 255 + 0.5, 0, 255).astype(np.uint8))
    return clip


def true_backward_flow(t: int, frames: int, size: tuple[int, int], picture_shape) -> np.ndarray:
    """Exact flow from frame t to frame t-1: where each pixel of frame t is in frame t-1."""
    h, w = size
    ph, pw = picture_shape[:2]
    px, py = view_map(t, frames, size, picture_shape)
    cx, cy, zoom = camera(t - 1, frames)
    span = 0.55 * pw / zoom / w
    qx = (px - cx * pw) / span + (w - 1) / 2
    qy = (py - cy * ph) / span + (h - 1) / 2
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    return np.stack([qx - xs, qy - ys], axis=-1).astype(np.float32)


def flicker(outputs: list[np.ndarray], flows: list[np.ndarray]) -> float:
    from nst_rt.video.flow import inside, warp

    values = []
    for t in range(1, len(outputs)):
        flow = flows[t]
        mask = inside(flow)
        diff = outputs[t] - warp(outputs[t - 1], flow)
        values.append(float(np.sum(diff[mask] ** 2)) / (3 * int(mask.sum())))
    return float(np.mean(values))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", type=Path, help="torchvision-format state dict [default: random weights]")
    parser.add_argument("--arch", default="vgg19", choices=["vgg16", "vgg19"])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--iterations", type=int, default=60)
    parser.add_argument("--frame-iterations", type=int, default=30)
    parser.add_argument("--temporal-weights", default="", help="comma-separated [default: the default only]")
    parser.add_argument("--gif", type=Path, help="also write the temporal result here as an animated GIF")
    parser.add_argument("--quick", action="store_true", help="48 px, 4 frames, 10/5 iterations")
    parser.add_argument("--save-clip", type=Path, help="only write the synthetic clip here (e.g. an .mp4) and stop")
    args = parser.parse_args()
    if args.quick:
        args.size, args.frames, args.iterations, args.frame_iterations = 48, 4, 10, 5

    from nst_rt.export import export_model
    from nst_rt.io.image_load import load_image
    from nst_rt.pipeline.options import Options
    from nst_rt.pipeline.stylizer import Stylizer
    from nst_rt.video import codec
    from nst_rt.video.frames import frames_dir
    from nst_rt.video.stylize import VideoOptions, stylize_video, working_size

    if args.save_clip:
        picture = load_image(PICTURE)
        size = working_size(*picture.shape[:2], args.size)
        codec.write_video(render_clip(picture, args.frames, size), args.save_clip, RATE, overwrite=True)
        print(f"wrote {args.save_clip}: {args.frames} frames of {size[1]}x{size[0]} at {RATE} fps")
        return
    load = os.getloadavg()
    print(f"machine: {os.cpu_count()} cores, load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} "
          f"(1, 5, 15 min) at the start")
    # 0 keeps the warped start and drops the temporal loss: what the start alone does.
    weights = [float(v) for v in args.temporal_weights.split(",") if v] or [VideoOptions().temporal_weight]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.weights:
            export_model(args.arch, tmp / "models", weights=args.weights)
        else:
            export_model(args.arch, tmp / "models", random_seed=0, name=args.arch)
        picture = load_image(PICTURE)
        size = working_size(*picture.shape[:2], args.size)
        clip = render_clip(picture, args.frames, size)
        source = tmp / "clip.mkv"
        codec.write_video(clip, source, RATE, overwrite=True)
        decoded = [f.astype(np.float32) / 255 for f in codec.read_frames(source)]
        flows = [None] + [true_backward_flow(t, args.frames, size, picture.shape) for t in range(1, args.frames)]
        options = Options(size=max(size), iterations=args.iterations, model=args.arch, models_dir=tmp / "models")
        print(f"clip: {args.frames} frames of {size[1]}x{size[0]} (pan and zoom over {PICTURE.name}), style "
              f"{STYLE.name}, {args.arch} {'weights ' + args.weights.name if args.weights else 'random weights'}, "
              f"{args.iterations} iterations for the first frame, {args.frame_iterations} for each later one")

        rows = []
        first = Stylizer(options)
        later = first.derive(iterations=args.frame_iterations)
        started = time.perf_counter()
        independent = [first.run(decoded[0], [STYLE]).image]
        independent += [later.run(frame, [STYLE]).image for frame in decoded[1:]]
        seconds = time.perf_counter() - started
        quantised = [np.round(np.clip(f, 0, 1) * 255) / 255 for f in independent]
        rows.append(("independent", None, flicker(quantised, flows), seconds / args.frames, 0.0))
        print(f"independent: flicker {rows[-1][2]:.5f}, {rows[-1][3]:.2f} s/frame", flush=True)

        for weight in weights:
            output = tmp / f"out_{weight:g}.mkv"
            video = VideoOptions(temporal_weight=weight, frame_iterations=args.frame_iterations, keep_frames=True)
            final_terms = {}  # frame -> terms of its last iteration

            def keep_terms(p, final_terms=final_terms):
                if p.step is not None and p.step.iteration > 0:
                    final_terms[p.frame] = (p.step.loss, p.step.terms)

            result = stylize_video(source, [STYLE], output, options, video, progress=keep_terms)
            share = np.mean([terms.get("temporal", 0.0) / loss for frame, (loss, terms) in final_terms.items()
                             if frame > 1])
            outputs = [load_image(frames_dir(output) / f"{i:06d}.png") for i in range(args.frames)]
            rows.append(("temporal", weight, flicker(outputs, flows), result.seconds / args.frames, share))
            print(f"temporal weight {weight:g}: flicker {rows[-1][2]:.5f}, {rows[-1][3]:.2f} s/frame, temporal "
                  f"share of the final loss {share:.3g}", flush=True)
            if args.gif and weight == weights[0]:
                from nst_rt.io.image_save import save_gif

                save_gif(outputs, args.gif, duration_ms=round(1000 / RATE), overwrite=True)
        baseline = rows[0][2]
        print(f"\n{'method':<12} {'temporal weight':>16} {'flicker':>10} {'vs independent':>15} {'s/frame':>8} "
              f"{'temporal share':>15}")
        for name, weight, value, per_frame, share in rows:
            print(f"{name:<12} {'-' if weight is None else f'{weight:g}':>16} {value:10.5f} "
                  f"{value / baseline:14.2f}x {per_frame:8.2f} {share:15.3g}")
    load = os.getloadavg()
    print(f"\nload average at the end: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")


if __name__ == "__main__":
    main()
