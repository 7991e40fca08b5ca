"""The operations routes' bodies."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from app.schemas.common import METRICS_DESCRIPTION


class InfoResponse(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    model_version: str
    device: str
    dtype: str
    max_batch_images: int
    max_wait_ms: float
    max_queue_images: int
    max_n: int
    max_scale: int
    metrics: dict[str, object] = Field(description=METRICS_DESCRIPTION)
    admin_enabled: bool = Field(description="whether admin endpoints accept a token here")
    degraded: str | None = Field(
        None, description="why the version served is not the store's active one, if it is not"
    )
    worker: int = Field(
        0, description="which worker process answered (0 is the primary; GAN_WORKERS)"
    )
    workers: int = Field(1, description="worker processes serving this port")
