"""The long-lived resources of one app instance, built in ``lifespan`` and handed to routes
through ``Depends``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request

from app.config import Settings
from app.metrics import ServiceMetrics
from app.rendering import EncoderPool
from app.worker import InferenceWorker
from gan.store import ModelStore

if TYPE_CHECKING:
    from app.jobs import JobManager
    from app.registry import ModelRegistry
    from app.restorer import RestorationWorker


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


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]
