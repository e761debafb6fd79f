"""The contract between the exporter and the runtime: file names, tensor names, metadata keys, and the layer
table of each architecture (names, channels, pooling depth), which both halves read instead of parsing names.

Kept free of heavy imports: both halves import it.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from functools import lru_cache

from .errors import ModelError, OptionError

# Format 2 stores the weights once, in WEIGHTS_FILE (ONNX external data that both graphs reference); format 1
# exports (each graph self-contained, float32) still load. Anything else is refused with the re-export command.
FORMAT_VERSION = "2"
READABLE_FORMATS = ("1", FORMAT_VERSION)
# The start of the ``weights_source`` metadata of an export made with ``--random-weights SEED``.
RANDOM_WEIGHTS_SOURCE = "random weights"
FEATURES_FILE = "features.onnx"
VJP_FILE = "vjp.onnx"
WEIGHTS_FILE = "weights.bin"
# The size and sha256 of WEIGHTS_FILE as written, in every graph's metadata (exports made before lack them).
WEIGHTS_FILE_SIZE, WEIGHTS_FILE_SHA256 = "weights_file_size", "weights_file_sha256"
MODEL_FILES = (FEATURES_FILE, VJP_FILE, WEIGHTS_FILE)  # what an export needs (format 1: the first two)
# The losses and their gradient in one graph (export/objective_graph.py). Optional: exports made before it lack
# it, and the runtime then computes the losses in numpy between the two graphs above.
OBJECTIVE_FILE = "objective.onnx"
WRITTEN_FILES = (FEATURES_FILE, VJP_FILE, OBJECTIVE_FILE, WEIGHTS_FILE)  # what `nst-rt export` writes
# How an export stores its weights; the graphs compute in float32 either way (a float16 tensor is cast in-graph).
WEIGHTS_DTYPES = ("float16", "float32")
DEFAULT_WEIGHTS_DTYPE = "float16"
IMAGE_INPUT = "image"
GRAD_OUTPUT = "grad_image"
STYLE_WEIGHTS, CONTENT_WEIGHTS = "style_weights", "content_weights"  # the objective graph's per-layer weights
STYLE_LOSS, CONTENT_LOSS = "style_loss", "content_loss"  # and its two loss outputs
REQUIRED_METADATA = ("nst_rt.format", "architecture", "pooling", "layers", "cotangent_layers",
                     "normalization_mean", "normalization_std", "weights_sha256", "weights_dtype", "opset",
                     "exporter_version")  # format 1 lacks weights_dtype

# torchvision's configurations "D" (VGG-16) and "E" (VGG-19): output channels per conv, "M" for a 2x2 pooling.
ARCHITECTURES = {
    "vgg16": (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"),
    "vgg19": (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
              512, 512, 512, 512, "M"),
}
POOLINGS = ("avg", "max")
DEFAULT_POOLING = "avg"
DEEPEST_LAYER = "relu5_1"  # the deepest layer any stylization uses; everything after it is dropped


@dataclass(frozen=True)
class Preprocess:
    """What the graph does to its [0, 1] RGB input before conv1_1 (and before conv1_1's zero padding)."""

    description: str
    channel_order: str  # the order conv1_1's input channels were trained in
    scale: float  # the pixels are multiplied by this ...
    mean: tuple[float, float, float]  # ... then this is subtracted, per channel in channel_order ...
    std: tuple[float, float, float]  # ... and the result divided by this


# The weights decide the preprocessing: torchvision's files expect the first, Caffe-trained files (the VGG
# files of neural-style and its ports) the second.
PREPROCESSES = {
    "torchvision": Preprocess("RGB in [0, 1], minus the ImageNet mean, over its std", "RGB", 1.0,
                              (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "caffe": Preprocess("RGB->BGR, x255, minus the mean 103.939, 116.779, 123.68", "BGR", 255.0,
                        (103.939, 116.779, 123.68), (1.0, 1.0, 1.0)),
}
DEFAULT_PREPROCESS = "torchvision"


@dataclass(frozen=True)
class Conv:
    name: str  # the ReLU that follows it, e.g. "relu3_2"
    index: int  # position in torchvision's ``features`` Sequential
    in_channels: int
    out_channels: int
    depth: int  # 2x2 poolings before it: its maps are the image's size halved (floor) this many times


@dataclass(frozen=True)
class Pool:
    name: str  # e.g. "pool2"
    index: int
    depth: int  # poolings before it (itself excluded)


@lru_cache(maxsize=None)
def layer_table(arch: str) -> tuple[Conv | Pool, ...]:
    """The truncated network as conv(+ReLU) and pooling layers, ending at relu5_1."""
    if arch not in ARCHITECTURES:
        raise ModelError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHITECTURES)}")
    layers: list[Conv | Pool] = []
    index, block, n, channels = 0, 1, 1, 3
    for item in ARCHITECTURES[arch]:
        if item == "M":
            layers.append(Pool(f"pool{block}", index, block - 1))
            index, block, n = index + 1, block + 1, 1
        else:
            layers.append(Conv(f"relu{block}_{n}", index, channels, item, block - 1))
            index, n, channels = index + 2, n + 1, item  # conv and ReLU take one slot each
            if layers[-1].name == DEEPEST_LAYER:
                return tuple(layers)
    raise AssertionError("unreachable: every table reaches relu5_1")


def relu_names(arch: str) -> list[str]:
    return [layer.name for layer in layer_table(arch) if isinstance(layer, Conv)]


def convs(arch: str) -> dict[str, Conv]:
    """The ReLU layers of ``arch`` by name."""
    return {layer.name: layer for layer in layer_table(arch) if isinstance(layer, Conv)}


def layer_depth(layer: str) -> int:
    """Poolings before ReLU ``layer``: the tables name layers by block, so every architecture agrees."""
    for arch in ARCHITECTURES:
        conv = convs(arch).get(layer)
        if conv is not None:
            return conv.depth
    raise ModelError(f"unknown layer {layer!r} in the model's metadata; re-export the model")


# The end of the default name of an export of random weights (``vgg19-random``), so that it is never taken for
# the real weights' export.
RANDOM_SUFFIX = "-random"


def model_name(arch: str, pooling: str, random_weights: bool = False) -> str:
    """The default name of an export: ``vgg19``, ``vgg19-max``, ``vgg19-random`` (random weights)."""
    return (arch if pooling == DEFAULT_POOLING else f"{arch}-{pooling}") + (RANDOM_SUFFIX if random_weights else "")


def weight_name(layer: str, kind: str) -> str:
    """Name of the stored tensor ``kind`` ("weight" or "bias") of the conv before ReLU ``layer``, in both graphs."""
    return f"{layer}.{kind}"


def cotangent_name(layer: str) -> str:
    """Name of the VJP graph's input that takes dL/d(layer)."""
    return f"grad_{layer}"


def gram_target_name(layer: str) -> str:
    """Name of the objective graph's input that takes the style target's Gram matrix at ``layer``."""
    return f"target_gram_{layer}"


def content_target_name(layer: str) -> str:
    """Name of the objective graph's input that takes the content target's activations at ``layer``."""
    return f"target_{layer}"


# The network's stride at its deepest layer, from the layer table (four 2x2 poolings before relu5_1: 16 px).
# Tiles start on it; below it the deepest layer would have no pixels left, so it is also the minimum size.
STRIDE = 1 << layer_depth(DEEPEST_LAYER)
MIN_SIZE = STRIDE


def check_tile(tile) -> int:
    """A tile size: a whole number of pixels, a multiple of the network's stride."""
    if isinstance(tile, bool) or not isinstance(tile, numbers.Integral) or tile < STRIDE or tile % STRIDE:
        raise OptionError(f"the tile size must be a multiple of {STRIDE} px (the network's stride at its deepest "
                          f"layer) and at least {STRIDE}, got {tile!r}; e.g. --tile 512")
    return int(tile)
