"""The exporter (installed as ``nst_rt.export``; needs the ``export`` extra: torch and onnx).

It turns a truncated VGG-16/19 into the two ONNX graphs the runtime uses; see ``exporter.export_model``.
"""

from __future__ import annotations

__all__ = ["export_model"]


def export_model(*args, **kwargs):
    """Lazy wrapper around :func:`nst_rt.export.exporter.export_model` (keeps ``import nst_rt.export`` light)."""
    from .exporter import export_model as _export_model

    return _export_model(*args, **kwargs)
