"""The long-lived services of one app instance and the ``Annotated`` dependencies that hand them
to routes (FastAPI's ``api/deps.py``): ``ServicesDep`` for everything, ``AdminDep`` for the
bearer-token guard of the admin endpoints."""

from __future__ import annotations

import hmac
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.config import Settings
from app.limits import env_name
from app.metrics import ServiceMetrics
from app.serving.rendering import EncoderPool
from app.serving.worker import InferenceWorker
from gan.store import ModelStore

if TYPE_CHECKING:
    from app.applications.restorer import RestorationWorker
    from app.retraining.manager import JobManager
    from app.serving.registry import ModelRegistry


@dataclass
class Services:
    settings: Settings
    store: ModelStore
    worker: InferenceWorker
    metrics: ServiceMetrics
    registry: ModelRegistry
    jobs: JobManager
    admin_token: str | None
    encoder: EncoderPool
    restorer: RestorationWorker
    draining: threading.Event  # SIGTERM arrived: not ready any more, still serving


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]

bearer = HTTPBearer(auto_error=False, description=f"the admin token ({env_name('admin_token')})")


def require_admin(
    services: ServicesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    expected = services.admin_token
    if expected is None:
        raise HTTPException(
            403,
            f"admin endpoints are disabled: set {env_name('admin_token')} or "
            f"{env_name('admin_token_file')} to enable them",
        )
    if credentials is None:
        raise HTTPException(
            401,
            "missing admin token: send Authorization: Bearer <token>",
            headers={"WWW-Authenticate": "Bearer"},
        )
    # Constant-time comparison: the response time must not reveal how much of a guess was right.
    if not hmac.compare_digest(credentials.credentials.encode(), expected.encode()):
        raise HTTPException(401, "invalid admin token", headers={"WWW-Authenticate": "Bearer"})


AdminDep = Depends(require_admin)
