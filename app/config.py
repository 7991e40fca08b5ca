"""All service configuration: one pydantic-settings object, read from ``GAN_*`` environment
variables (and an optional ``.env`` file) when the app is created, never at import."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GAN_", env_file=".env", extra="ignore")

    # Model and device
    model_store: Path = Field(Path("model_store"), description="model store directory")
    device: str = Field("auto", description="auto (CUDA when available), cpu, cuda, cuda:N")
    dtype: Literal["float32", "bfloat16"] = Field(
        "float32", description="compute dtype; bfloat16 only takes effect on CUDA"
    )
    torch_threads: int = Field(0, ge=0, description="intra-op CPU threads; 0 = torch's default")

    # Dynamic batching and backpressure
    max_batch_images: int = Field(256, ge=1, description="most images in one forward pass")
    max_wait_ms: float = Field(2.0, ge=0, description="longest a batch waits to fill up")
    max_queue_images: int = Field(4096, ge=1, description="images waiting before 503")
    request_timeout_s: float = Field(10.0, gt=0, description="deadline of one request")
    retry_after_s: int = Field(1, ge=1, description="Retry-After sent with 503 when busy")
    warmup_batches: int = Field(2, ge=0, description="forward passes run before ready")

    # Request limits
    max_n: int = Field(256, ge=1, description="most images per request")
    max_scale: int = Field(16, ge=1, description="largest integer upscale factor")
    max_body_bytes: int = Field(16_384, ge=256, description="largest request body accepted")

    # HTTP
    cors_origins: list[str] = Field(default_factory=list, description="origins allowed by CORS")
    cache_max_age_s: int = Field(
        300, ge=0, description="browser cache life of seeded image URLs without a pinned version"
    )
    log_json: bool = Field(False, description="structured JSON-lines logs")
    log_level: str = Field("INFO", description="root log level")
    host: str = Field("127.0.0.1", description="bind address of python -m app")
    port: int = Field(8000, ge=1, le=65535, description="port of python -m app")
    graceful_shutdown_s: float = Field(
        15.0, ge=0, description="on SIGTERM, time to finish queued work"
    )

    # Administration
    admin_token: SecretStr | None = Field(None, description="bearer token of admin endpoints")
    admin_token_file: Path | None = Field(None, description="file holding the admin token")
