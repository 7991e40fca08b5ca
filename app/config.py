"""All service configuration: one pydantic-settings object, read from ``GAN_*`` environment
variables (and an optional ``.env`` file) when the app is created, never at import."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from app import limits


class ConfigError(Exception):
    """A setting that validated but cannot be used (e.g. a token file that does not exist)."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=limits.ENV_PREFIX, env_file=".env", extra="ignore")

    # Model and device
    model_store: Path = Field(Path("model_store"), description="model store directory")
    device: str = Field("auto", description="auto (CUDA when available), cpu, cuda, cuda:N")
    dtype: Literal["float32", "bfloat16"] = Field(
        "float32", description="compute dtype; bfloat16 only takes effect on CUDA"
    )
    torch_threads: int = Field(
        0, ge=0, description="intra-op CPU threads; 0 = all cores but one (the event loop's)"
    )
    inference_process: bool | None = Field(
        None,
        description="draw queued batches in a child process of their own, away from the event "
        "loop's GIL (app/serving/forward_process.py); unset: for a lone server, not for each of "
        "several workers (they have a core each already); the idle fast path stays in-process",
    )

    # Dynamic batching and backpressure
    max_batch_images: int = Field(256, ge=1, description="most images in one forward pass")
    max_wait_ms: float = Field(
        0.0, ge=0, description="longest a batch waits to fill up; 0 = take what is queued"
    )
    inline_max_images: int = Field(
        4,
        ge=0,
        description="idle fast path: a request of at most this many images that finds nothing "
        "else in flight is drawn on the event loop at once, without thread hops; 0 = always queue",
    )
    max_queue_images: int = Field(4096, ge=1, description="images waiting before 503")
    request_timeout_s: float = Field(10.0, gt=0, description="deadline of one request")
    max_queue_wait_s: float = Field(
        2.0,
        gt=0,
        description="admission control: 503 at once when the queue ahead would take longer "
        "than this at the measured throughput",
    )
    admission_wait_s: float = Field(
        1.0,
        ge=0,
        description="admission control: how long a request waits, asleep, for room in the queue "
        "before its 503 (clients that retry at once then cost no CPU)",
    )
    retry_after_s: int = Field(1, ge=1, description="Retry-After sent with 503 when busy")
    warmup_batches: int = Field(2, ge=0, description="forward passes run before ready")
    encode_threads: int = Field(
        1, ge=1, description="threads that encode PNGs (few: they share the GIL with the loop)"
    )

    # Request limits
    max_n: int = limits.MAX_N.field()
    max_scale: int = limits.MAX_SCALE.field()
    max_body_bytes: int = limits.MAX_BODY_BYTES.field()

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
    drain_s: float = Field(
        0.0,
        ge=0,
        description="on SIGTERM, seconds to keep serving with /readyz at 503 before shutting "
        "down (let a load balancer stop sending first)",
    )
    http_parser: Literal["auto", "httptools", "h11"] = Field(
        "auto",
        description="HTTP/1.1 parser of python -m app: httptools (C, from uvicorn[standard]), h11 "
        "(pure Python, more CPU per request); auto = httptools when installed",
    )
    workers: int = Field(
        1,
        ge=0,
        le=256,
        description="processes of python -m app sharing its port, each with its own model and "
        "batcher (worker 0 runs the jobs and activations); 0 = one per CPU core",
    )
    max_header_bytes: int = limits.MAX_HEADER_BYTES.field()
    header_timeout_s: int = limits.HEADER_TIMEOUT_S.field()
    max_connections: int = limits.MAX_CONNECTIONS.field()

    # Administration
    admin_token: SecretStr | None = Field(None, description="bearer token of admin endpoints")
    admin_token_file: Path | None = Field(None, description="file holding the admin token")

    # Model registry and retraining jobs
    reload_interval_s: float = Field(
        5.0, ge=0, description="how often to follow the store's ACTIVE pointer; 0 = never"
    )
    state_dir: Path = Field(
        Path("var"), description="jobs database and job run directories (git-ignored in a checkout)"
    )
    data_dir: Path | None = Field(None, description="MNIST IDX directory used by retraining jobs")
    training_command: list[str] = Field(
        default_factory=lambda: ["{python}", "-m", "training"],
        description='argv that starts the training CLI; e.g. ["torchrun", '
        '"--nproc_per_node=4", "-m", "training"] for several GPUs',
    )
    max_job_steps: int = limits.MAX_JOB_STEPS.field()
    job_cancel_grace_s: float = Field(10.0, ge=0, description="SIGTERM-to-SIGKILL wait on cancel")
    promotion: Literal["manual", "auto"] = Field(
        "manual",
        description="auto: a finished job's version is activated if it passes the gates; "
        "manual: the operator activates (the gates apply to every activation, force overrides)",
    )
    gate_min_conditional_accuracy: float = Field(
        0.95, ge=0, le=1, description="quality gate: lowest conditional accuracy accepted"
    )
    gate_min_recall: float = Field(
        0.5, ge=0, le=1, description="quality gate: lowest recall accepted"
    )
    gate_max_fid_ratio: float = Field(
        1.1, gt=0, description="quality gate: new FID at most this times the active one's"
    )
    gate_tolerance: float = Field(
        0.005,
        ge=0,
        description="quality gate: accuracy, recall, diversity may drop this much below active",
    )

    # Synthetic data sets (POST /datasets)
    dataset_max_per_digit: int = limits.DATASET_MAX_PER_DIGIT.field()

    # Restoration of damaged digits (POST /restore)
    restore_steps: int = Field(
        100, ge=1, description="optimisation steps of a restoration that does not ask"
    )
    restore_max_steps: int = limits.RESTORE_MAX_STEPS.field()
    restore_restarts: int = Field(
        4, ge=1, description="latent restarts per digit of a restoration that does not ask"
    )
    restore_max_restarts: int = limits.RESTORE_MAX_RESTARTS.field()
    restore_timeout_s: float = Field(
        30.0, gt=0, description="deadline of one restoration, queue wait included (503 past it)"
    )
    restore_queue_depth: int = Field(
        8, ge=1, description="restorations waiting for the restoration thread before 503"
    )
    restore_max_upload_bytes: int = limits.RESTORE_MAX_UPLOAD_BYTES.field()

    def draws_in_child(self, workers: int) -> bool:
        """``inference_process``, or when unset: only for a lone server. Measured on 2 cores, a
        lone server's n=64 rose from ~75 % to 95 % of the raw forward pass with the child, while
        two workers with a child each (4 processes) lost at c=1 (benchmarks/README.md)."""
        return self.inference_process if self.inference_process is not None else workers == 1

    def worker_count(self) -> int:
        """``workers``, with 0 meaning one per core this process may run on."""
        return self.workers or len(os.sched_getaffinity(0))

    def resolved_admin_token(self) -> str | None:
        """The admin token from GAN_ADMIN_TOKEN or the file GAN_ADMIN_TOKEN_FILE, if any."""
        if self.admin_token is not None and self.admin_token.get_secret_value():
            return self.admin_token.get_secret_value()
        if self.admin_token_file is None:
            return None
        try:
            token = self.admin_token_file.read_text().strip()
        except (OSError, UnicodeDecodeError) as error:
            raise ConfigError(
                f"{limits.env_name('admin_token_file')}={self.admin_token_file}: cannot read "
                f"the admin token ({error.strerror if isinstance(error, OSError) else error})"
            ) from None
        return token or None
