"""Typed exceptions. The library raises these; only the CLI prints them and exits.

Every message is one line that says what is wrong and what to do about it.
"""


class NstError(Exception):
    """Base class of every error nst-rt raises on purpose."""


class MissingDependencyError(NstError):
    """A package the requested feature needs is not installed (the message names the extra)."""


def install_hint(extras: str) -> str:
    """The command that installs ``extras`` (e.g. "ray"): nst-rt is on no package index, so from a clone or a wheel."""
    return f"pip install -e '.[{extras}]' in a clone of nst-rt (pip install 'WHEEL[{extras}]' for a built wheel)"


class ModelNotFoundError(NstError):
    """No exported model where one was looked for (the message names the export command)."""


class ModelError(NstError):
    """An exported model is broken, incomplete or does not fit the request."""


class ProviderError(NstError):
    """The requested ONNX Runtime execution provider is not available."""


class ImageError(NstError):
    """An input image is missing, unreadable, too small, too large, or an output cannot be written."""


class OptionError(NstError, ValueError):
    """An option has a value that cannot work (negative weight, unknown layer, ...)."""


class CheckpointError(NstError):
    """A checkpoint is in the way, unreadable, or of another run (the message says what differs)."""


class MemoryLimitError(NstError):
    """A run would need more memory than the machine has (the message gives the estimate)."""


class ExportError(NstError):
    """Exporting a model failed: bad weights, unreachable download, failed validation, ..."""


class ClusterError(NstError):
    """Ray could not be started or its cluster reached (``--engine ray``)."""


class RandomWeightsNotice(UserWarning):
    """The model has random weights: the message names the settings that keep the content recognisable."""


class MemoryNotice(UserWarning):
    """A run was changed to fit in memory (e.g. a shorter L-BFGS history); the message says how."""


class DeviceNotice(UserWarning):
    """Said once when a run on a GPU keeps its optimiser on the host (CuPy missing); the message says why."""


class MaskNotice(UserWarning):
    """Said once before a run whose style masks leave a region uncovered (only content and tv act there)."""


class MaskShapeNotice(MaskNotice):
    """Said once before a run whose masks are of another aspect ratio than the content (they are stretched)."""
