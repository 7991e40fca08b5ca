"""Stop waiting for a result the client will never read."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from starlette.requests import Request

T = TypeVar("T")
CLIENT_CLOSED_REQUEST = 499  # nginx's convention: the client went away before the answer


class ClientDisconnectedError(Exception):
    """The client closed the connection while its request was being served."""


async def cancel_on_disconnect(request: Request, work: Coroutine[Any, Any, T]) -> T:
    """Await ``work``, cancelling it if the client disconnects first (Starlette does not cancel
    handlers on disconnect, so a queued request would otherwise still cost a forward pass).
    A disconnect is ``ClientDisconnectedError``, which the request middleware records as 499.

    ``work`` runs in the calling task (no task of its own per request); a watcher task cancels
    that task when the disconnect arrives, which can only happen while ``work`` is suspended."""
    handler = asyncio.current_task()
    assert handler is not None
    disconnected = False

    async def watch() -> None:
        nonlocal disconnected
        while True:
            message = await request.receive()
            if message["type"] == "http.disconnect":
                disconnected = True
                handler.cancel()
                return

    watcher = asyncio.create_task(watch())
    try:
        return await work
    except asyncio.CancelledError:
        if disconnected:
            handler.uncancel()  # this cancellation is answered: later awaits are not cancelled
            raise ClientDisconnectedError("the client closed the connection") from None
        raise
    finally:
        watcher.cancel()
