"""The long-lived services of one app instance and the ``Annotated`` dependencies that hand them
to routes (FastAPI's ``api/deps.py``): ``ServicesDep`` for everything, ``AdminDep`` for the
bearer-token guard of the admin endpoints."""

from __future__ import annotations

import hmac
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Header, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.config import Settings
from app.limits import env_name
from app.metrics import ServiceMetrics
from app.serving.rendering import EncoderPool
from app.serving.worker import InferenceWorker
from gan.store import ModelStore

if TYPE_CHECKING:
    from app.applications.restorer import RestorationWorker
    from app.http.workers import WorkerRole
    from app.retraining.manager import JobManager
    from app.serving.registry import ModelRegistry


@dataclass
class Services:
    settings: Settings
    store: ModelStore
    worker: InferenceWorker
    metrics: ServiceMetrics
    registry: ModelRegistry
    jobs: JobManager | None  # None on a worker that is not the primary (app.http.workers)
    admin_token: str | None
    encoder: EncoderPool
    restorer: RestorationWorker
    draining: threading.Event  # SIGTERM arrived: not ready any more, still serving
    role: WorkerRole | None = None  # this worker's place among several; None: a lone server


# The dependencies below are ``async def`` although they never await: FastAPI runs a plain
# ``def`` dependency in the thread pool, two thread hops per request on the hot path (measured:
# 655 -> 841 requests/s at c=32, benchmarks/PROFILE.md).


async def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_jobs(services: ServicesDep) -> JobManager:
    """The job manager. Only the primary worker has one; the others relay every route that
    depends on this to it (``app.http.forwarding``), so they never get here."""
    if services.jobs is None:
        raise RuntimeError("job routes run on the primary worker only")
    return services.jobs


JobsDep = Annotated["JobManager", Depends(get_jobs)]

bearer = HTTPBearer(auto_error=False, description=f"the admin token ({env_name('admin_token')})")


Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


def _admin_refusal(
    services: Services, credentials: HTTPAuthorizationCredentials | None
) -> HTTPException | None:
    expected = services.admin_token
    if expected is None:
        return HTTPException(
            403,
            f"admin endpoints are disabled: set {env_name('admin_token')} or "
            f"{env_name('admin_token_file')} to enable them",
        )
    if credentials is None:
        return HTTPException(
            401,
            "missing admin token: send Authorization: Bearer <token>",
            headers={"WWW-Authenticate": "Bearer"},
        )
    # Constant-time comparison: the response time must not reveal how much of a guess was right.
    if not hmac.compare_digest(credentials.credentials.encode(), expected.encode()):
        return HTTPException(401, "invalid admin token", headers={"WWW-Authenticate": "Bearer"})
    return None


async def require_admin(services: ServicesDep, credentials: Credentials) -> None:
    refusal = _admin_refusal(services, credentials)
    if refusal is not None:
        raise refusal


async def is_admin(
    services: ServicesDep,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> bool:
    """Whether the request carries the admin token: public routes that show admins more (job
    logs) need no credential, so none is declared in their schema."""
    scheme, _, token = (authorization or "").partition(" ")
    credentials = (
        HTTPAuthorizationCredentials(scheme=scheme, credentials=token.strip())
        if scheme.lower() == "bearer" and token.strip()
        else None
    )
    return _admin_refusal(services, credentials) is None


AdminDep = Depends(require_admin)
IsAdminDep = Annotated[bool, Depends(is_admin)]


JSON_MEDIA_TYPES = ("application/json",)


async def require_json(request: Request) -> None:
    """415 for a body that does not say it is JSON (``curl -d`` sends a form by default), instead
    of a 422 that would blame the body's shape. A route whose body is optional accepts none."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    has_body = request.headers.get("content-length", "0") != "0" or "transfer-encoding" in (
        request.headers
    )
    if has_body and not (media_type in JSON_MEDIA_TYPES or media_type.endswith("+json")):
        shown = media_type or "none"
        raise HTTPException(
            415, f"send the body as JSON with Content-Type: application/json (got {shown})"
        )


JsonBodyDep = Depends(require_json)
