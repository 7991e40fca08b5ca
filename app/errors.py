"""Domain exceptions raised by the serving layer; ``app.main`` maps each to an HTTP status."""

from __future__ import annotations


class ServiceError(Exception):
    status_code = 500


class QueueFullError(ServiceError):
    """Too many images are waiting: shed load instead of growing latency without bound."""

    status_code = 503


class DeadlineExceededError(ServiceError):
    status_code = 503


class ShuttingDownError(ServiceError):
    status_code = 503


class NotReadyError(ServiceError):
    status_code = 503


class VersionMismatchError(ServiceError):
    """A URL pinned a model version that this server is not serving."""

    status_code = 404
