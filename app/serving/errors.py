"""Why the serving layer could not answer a request. ``app.http.errors`` maps each to a status."""

from __future__ import annotations


class ServingError(Exception):
    """Base of the serving layer's refusals."""


class QueueFullError(ServingError):
    """Too many images are waiting: shed load instead of growing latency without bound."""


class DeadlineExceededError(ServingError):
    """The request's deadline passed before its images were ready."""


class ShuttingDownError(ServingError):
    """The server stopped accepting work (SIGTERM)."""


class VersionMismatchError(ServingError):
    """A request pinned a model version that this server is not serving."""


class ForwardProcessError(ServingError):
    """The inference process died or failed while drawing a batch (a new one draws the next)."""
