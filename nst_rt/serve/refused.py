"""The one exception the routes answer with: a 4xx (or 403, 429) of ``{"error": message, "field": field}``."""

from __future__ import annotations


class Refused(Exception):
    """An answer of ``status`` ``{"error": message, "field": field}``: ``field`` is the form field or option at
    fault (``content``, ``style``, an option's name), or None."""

    def __init__(self, status: int, message: str, field: str | None = None):
        super().__init__(message)
        self.status, self.message, self.field = status, message, field
