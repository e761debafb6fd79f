"""Video stylization with temporal consistency (install the ``video`` extra: PyAV and OpenCV).

Modules: ``codec`` decodes and encodes (PyAV), ``flow`` estimates optical flow (OpenCV DIS), warps and
builds the consistency mask, ``temporal`` is the temporal loss, ``frames`` keeps finished frames so that an
interrupted run resumes, and ``stylize`` runs the frame loop.
"""

from __future__ import annotations

import importlib

from ..errors import MissingDependencyError, install_hint

# import name -> the pip package that provides it
PACKAGES = {"av": "av", "cv2": "opencv-python-headless"}


def require(name: str):
    """Import one of the video extra's packages, or say how to install it."""
    try:
        return importlib.import_module(name)
    except ImportError:
        raise MissingDependencyError(
            f"video needs the {PACKAGES[name]} package; install the video extra: {install_hint('video')}"
        ) from None


def available() -> bool:
    """Whether every package of the video extra imports."""
    try:
        for name in PACKAGES:
            importlib.import_module(name)
    except ImportError:
        return False
    return True
