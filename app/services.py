"""The long-lived resources of one app instance, built in ``lifespan`` and handed to routes
through ``Depends``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from app.config import Settings
from app.metrics import ServiceMetrics
from app.worker import InferenceWorker
from gan.store import ModelStore


@dataclass
class Services:
    settings: Settings
    store: ModelStore
    worker: InferenceWorker
    metrics: ServiceMetrics


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]
