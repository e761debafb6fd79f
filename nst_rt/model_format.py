"""The contract between the exporter and the runtime: file names, tensor names, metadata keys.

Kept free of heavy imports: both halves import it.
"""

FORMAT_VERSION = "1"
FEATURES_FILE = "features.onnx"
VJP_FILE = "vjp.onnx"
IMAGE_INPUT = "image"
GRAD_OUTPUT = "grad_image"
# Four 2x2 poolings come before relu5_1: below 16 px the deepest layer would have no pixels left.
MIN_SIZE = 16
ARCHITECTURES = ("vgg16", "vgg19")  # torchvision's configurations "D" and "E"
POOLINGS = ("avg", "max")
REQUIRED_METADATA = ("nst_rt.format", "architecture", "pooling", "layers", "cotangent_layers",
                     "normalization_mean", "normalization_std", "weights_sha256", "opset", "exporter_version")


def cotangent_name(layer: str) -> str:
    """Name of the VJP graph's input that takes dL/d(layer)."""
    return f"grad_{layer}"
