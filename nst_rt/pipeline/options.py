"""Every setting of a stylization, with its default and its checks: the one home the CLI, the batch and
video commands and the Python API derive theirs from."""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..errors import OptionError
from ..network.models_dir import default_model_name
from ..objective.defaults import DEFAULT_CONTENT_LAYERS, DEFAULT_STYLE_LAYERS, check_weight
from ..optimize import DEFAULTS as OPTIMIZER_DEFAULTS
from ..optimize import METHODS as OPTIMIZERS
from ..model_format import MIN_SIZE, check_tile
from .schedule import COARSE_ITERATIONS, MAX_ITERATIONS_FACTOR

INITS = ("content", "noise", "style")
ENGINES = ("local", "ray")  # where a run evaluates: this process, or Ray actors (stylize and batch alike)
# Colour choices (their one home; nst_rt.io.colors implements them).
COLOR_TRANSFERS = ("none", "pca", "chol", "sym", "histogram")
ORIGINAL_COLORS_MODES = ("ycbcr", "lab", "histogram")
SETTLE_WINDOW = 10  # calm iterations in a row that end a scale under --settle (see nst_rt.pipeline.settle)
CHECKPOINT_EVERY = 60.0  # seconds between checkpoints of a run (--checkpoint-every)
# Words other programs use for an --init keyword: named in the error, not accepted silently.
INIT_HINTS = {"random": "; neural-style's 'random' is 'noise' here",
              "image": "; neural-style's 'image' is 'content' here"}


# Random filters respond to colour and fine texture only: at the normalised defaults the style swamps the content
# (the cat of examples/content/chelsea.png is lost), while the plain recipe at one scale keeps it recognisable
# (looked at at 256 px, VGG-19 --random-weights 0). A run on such a model says so, naming these.
RANDOM_WEIGHTS_SETTINGS = {"normalize": False, "style_weight": 1e6, "tv_weight": 0.0, "scales": 1}


def random_weights_note(model_name: str, weights_source: str) -> str:
    """One line: the model has random weights, and the settings that give a recognisable picture."""
    def number(v) -> str:
        return f"{v:g}".replace("e+0", "e").replace("e+", "e")

    settings = RANDOM_WEIGHTS_SETTINGS.items()
    flags = " ".join(f"--no-{k}" if v is False else f"--{k.replace('_', '-')} {number(v)}" for k, v in settings)
    python = ", ".join(f"{k}={v if isinstance(v, bool) else number(v)}" for k, v in settings)
    return (f"model {model_name} has {weights_source}, for trying nst-rt out: with normalised losses the content "
            f"is lost; {flags} keep it recognisable (Python: {python})")


def _finite_real(value) -> bool:
    """A finite number (int or float, not a bool)."""
    return not isinstance(value, bool) and isinstance(value, numbers.Real) and math.isfinite(value)


@dataclass
class Options:
    """Every setting of a stylization, with its default. The CLI exposes each one under the same name."""

    size: int = 512  # longest side of the output, in pixels
    iterations: int = 100  # optimiser iterations at the full size; coarser scales run more (see nst_rt.pipeline.schedule)
    # A scale ends early once the saved (8-bit) picture changed by less than this many grey levels (mean absolute)
    # per iteration for SETTLE_WINDOW iterations in a row; 0: every scale runs all its iterations.
    settle: float = 0.0
    # Weights of the normalised terms (relative errors), looked at on ImageNet VGG-16 at 256 px: style 10 keeps the
    # content recognisable under the style's strokes (100 loses it), tv 10 removes the pixel-level colour speckle.
    content_weight: float = 1.0
    style_weight: float = 10.0
    tv_weight: float = 10.0
    normalize: bool = True  # scale-free loss terms (see nst_rt.objective.whole); False: the plain recipe
    content_layers: Sequence[str] = DEFAULT_CONTENT_LAYERS
    style_layers: Sequence[str] = DEFAULT_STYLE_LAYERS
    style_blend_weights: Sequence[float] | None = None  # one per style image; normalised to sum 1
    style_scale: float = 1.0  # style images are resized to a longest side of size * style_scale
    init: str = "content"  # content, noise, style, or the path of an image
    noise_ratio: float = 0.0  # share of seeded uniform noise blended into the start image
    seed: int = 0
    optimizer: str = "lbfgs"
    learning_rate: float = OPTIMIZER_DEFAULTS["adam"]["lr"]  # Adam's step size in [0, 1] pixel units
    # L-BFGS memory (pairs of vectors). 25 reaches a lower loss than 100 at the same iteration of a 512 px run, and
    # each iteration passes over a quarter of the memory (docs/quality.md); nst_rt.minimize keeps SciPy's 100.
    history: int = 25
    bounds: bool = True  # keep pixels in [0, 1] during optimisation (else they are clamped when saved)
    # After the run: the result takes the content's colours, by original_colors_mode (ycbcr: luminance only).
    original_colors: bool = False
    original_colors_mode: str = "ycbcr"
    # Before the run: the style images recoloured to the content's colour statistics (see nst_rt.io.colors).
    color_transfer: str = "none"
    # One greyscale mask per style image (a path, or an image or array as for the images), white where the style
    # acts; a content mask weights the content term per region (see nst_rt.objective.guided).
    style_masks: Sequence[str | os.PathLike] | None = None
    content_mask: str | os.PathLike | None = None
    scales: int | None = None  # coarse-to-fine: optimise at size / 2^(scales-1), ..., size; None: from the size
    coarse_iterations: float = COARSE_ITERATIONS  # the scale below the full size runs this x iterations
    model: str | os.PathLike = field(default_factory=default_model_name)  # $NST_RT_MODEL, else vgg19
    models_dir: str | os.PathLike | None = None
    provider: str = "auto"
    precision: str = "auto"  # OpenVINO only: auto (bf16 where the probe measured it faster), fp32, bf16
    threads: int | None = None
    tile: int = 0  # evaluate the loss in tiles of this many pixels; 0: only where the whole image does not fit

    def validated(self) -> Options:
        positive_ints = {"size": self.size, "iterations": self.iterations, "history": self.history}
        if self.scales is not None:
            positive_ints["scales"] = self.scales
        for name, value in positive_ints.items():
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise OptionError(f"{name.replace('_', '-')} must be a whole number >= 1, got {value!r}")
        if self.scales is not None and self.size >> (self.scales - 1) < MIN_SIZE:  # the coarsest scale's side
            most = max(1, (self.size // MIN_SIZE).bit_length())
            raise OptionError(f"--scales {self.scales} with --size {self.size} makes the coarsest scale "
                              f"{self.size >> (self.scales - 1)} px, below the network's {MIN_SIZE} px; use "
                              f"--scales {most}{' or fewer' if most > 1 else ''}, or a larger --size")
        if not (_finite_real(self.settle) and 0 <= self.settle <= 255):
            raise OptionError(f"settle must be a number of grey levels per iteration between 0 and 255 (0: off), "
                              f"got {self.settle!r}")
        if not (_finite_real(self.coarse_iterations) and 0 < self.coarse_iterations <= MAX_ITERATIONS_FACTOR):
            raise OptionError(f"coarse iterations must be a multiple of --iterations above 0 and at most "
                              f"{MAX_ITERATIONS_FACTOR}, got {self.coarse_iterations!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, numbers.Integral) or self.seed < 0:
            raise OptionError(f"seed must be a whole number >= 0, got {self.seed!r}")
        for name in ("content_weight", "style_weight", "tv_weight"):
            check_weight(name.replace("_", " "), getattr(self, name))
        if not (math.isfinite(self.style_scale) and self.style_scale > 0):
            raise OptionError(f"style scale must be > 0, got {self.style_scale}")
        if not 0.0 <= self.noise_ratio <= 1.0:
            raise OptionError(f"noise ratio must be between 0 and 1, got {self.noise_ratio}")
        if not (math.isfinite(self.learning_rate) and self.learning_rate > 0):
            raise OptionError(f"learning rate must be > 0, got {self.learning_rate}")
        if self.tile != 0:
            check_tile(self.tile)
        if self.color_transfer not in COLOR_TRANSFERS:
            raise OptionError(f"unknown colour transfer {self.color_transfer!r}; choose one of "
                              f"{', '.join(COLOR_TRANSFERS)}")
        if self.original_colors_mode not in ORIGINAL_COLORS_MODES:
            raise OptionError(f"unknown original-colors mode {self.original_colors_mode!r}; choose one of "
                              f"{', '.join(ORIGINAL_COLORS_MODES)}")
        if isinstance(self.style_masks, (str, os.PathLike)):
            raise OptionError("style masks must be a list, one mask per style image")
        if self.style_masks is not None and not len(self.style_masks):
            raise OptionError("style masks must be a list of one mask per style image, or none")
        if self.optimizer not in OPTIMIZERS:
            raise OptionError(f"unknown optimizer {self.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
        return self


def optimizer_options(options: Options, iterations: int, history: int) -> dict:
    """``minimize``'s options for a scale of ``iterations`` iterations with an L-BFGS history of ``history``."""
    if options.optimizer == "lbfgs":
        # Run the iterations asked for: NST losses have no natural scale for an absolute tolerance.
        return {"maxiter": iterations, "maxcor": history, "maxfun": None, "gtol": 0.0, "ftol": 0.0}
    return {"maxiter": iterations, "lr": options.learning_rate}
