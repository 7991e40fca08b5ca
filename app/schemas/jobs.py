"""Retraining jobs and model versions: the admin side of the API."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator, model_validator
from pydantic_core import PydanticCustomError

from app.limits import MAX_JOB_STEPS
from app.schemas.common import METRICS_DESCRIPTION, json_number
from gan.networks import Upsampling

# STEP:WEIGHT pairs, e.g. "0:0.1,18000:0.05"; the training CLI checks the rest (order, step 0).
SCHEDULE_PATTERN = r"^\d+:\d+(\.\d+)?(,\d+:\d+(\.\d+)?)*$"
RESTARTS_PATTERN = r"^(none|\d+(,\d+)*)$"
AUGMENT_PATTERN = r"^(none|(translation|cutout)(,(translation|cutout))?)$"


class JobParams(BaseModel):
    """Parameters of a retraining job. The data directory comes from settings, never a request.
    The defaults are the training CLI's (a test holds them equal), except for the job's length."""

    model_config = ConfigDict(
        extra="forbid",
        allow_inf_nan=False,
        json_schema_extra={"examples": [{"steps": 2000, "batch_size": 64, "loss": "hinge"}]},
    )

    steps: int = Field(2000, ge=1, description=f"optimizer steps (limit: {MAX_JOB_STEPS.env})")
    batch_size: int = Field(64, ge=2, le=1024)
    loss: Literal["bce", "hinge"] = Field(
        "hinge", description="hinge (the shipped recipe's) or the non-saturating minimax (bce)"
    )
    lr_g: float = Field(2e-4, gt=0, le=0.1)
    lr_d: float = Field(2e-4, gt=0, le=0.1)
    beta1: float = Field(0.5, ge=0, lt=1)
    beta2: float = Field(0.999, ge=0, lt=1)
    ema_decay: float = Field(0.999, ge=0, lt=1)
    mode_seeking: float = Field(0.25, ge=0, le=100, description="mode-seeking regulariser weight")
    aux_classifier: float | None = Field(
        None,
        ge=0,
        le=100,
        description="one AC-GAN weight for the whole run (replaces the schedule)",
    )
    aux_classifier_schedule: str = Field(
        "0:0.1,18000:0.05,22000:0.075,26000:0.125,36000:0.25",
        pattern=SCHEDULE_PATTERN,
        max_length=1000,
        description="AC-GAN weight from each step on, STEP:WEIGHT,... starting at step 0 (the "
        "shipped recipe's by default)",
    )
    twin_classifier_from: int | None = Field(
        36_000,
        ge=0,
        le=2**31 - 1,
        description="TAC-GAN: from this step on (0: the first) a twin digit head on the critic "
        "cancels the AC-GAN term's bias towards easy digits (the shipped recipe's 36000: a job "
        "that ends before it trains no twin); needs an AC-GAN weight above 0, without which the "
        "recipe's twin is left out (null: no twin)",
    )
    seed: int = Field(0, ge=0, le=2**31 - 1)
    latent_dim: int = Field(128, ge=1, le=512)
    embed_dim: int = Field(32, ge=1, le=512)
    g_channels: int = Field(128, ge=2, le=1024)
    upsampling: Upsampling = Field(
        "transpose", description="generator upsampling: transposed conv, or nearest + conv"
    )
    conditional_norm: StrictBool = Field(
        True, description="the digit scales and shifts every batch norm of the generator"
    )
    d_channels: int = Field(256, ge=2, le=1024)
    augment: str = Field(
        "none",
        pattern=AUGMENT_PATTERN,
        description="the critic's differentiable augmentation (DiffAugment): translation, "
        "cutout, both (comma-separated), or none",
    )
    r1_gamma: float = Field(
        0.0, ge=0, le=1000, description="R1 penalty on real images (gamma / 2 E|grad D|^2); 0 = off"
    )
    r1_every: int = Field(4, ge=1, le=1000, description="R1 every N steps (lazy regularisation)")
    lr_decay_start: int | None = Field(
        26_000,
        ge=0,
        le=2**31 - 1,
        description="from this step on both learning rates fall linearly to 0 at the last step "
        "(the shipped recipe's 26,000, which null also means: a job that ends before its "
        "start keeps its rates constant)",
    )
    lr_restarts: str = Field(
        "36000",
        pattern=RESTARTS_PATTERN,
        max_length=1000,
        description="warm restarts, STEP,... in increasing order after lr_decay_start: at each the "
        "rates return to full and fall linearly to 0 at the next or the last step (the shipped "
        "recipe's 36000; none: no restart; restarts at or after the job's last step do not happen)",
    )
    precision: Literal["auto", "float32", "bfloat16"] = Field(
        "auto",
        description="arithmetic of the forward passes: auto is bfloat16 autocast on CUDA and on "
        "a CPU with AVX512-BF16 or AMX (1.4-1.8x faster there), float32 elsewhere "
        "(training/README.md)",
    )
    eval_per_digit: int = Field(1000, ge=10, le=5000, description="samples per digit to evaluate")

    @model_validator(mode="after")
    def _twin_needs_aux(self) -> JobParams:
        # The recipe's twin goes with its AC-GAN term (the CLI leaves it out too); one asked for
        # without the term is refused.
        asked = "twin_classifier_from" in self.model_fields_set
        if asked and self.twin_classifier_from is not None and self.peak_aux_weight() == 0:
            raise PydanticCustomError(
                "twin_needs_aux",
                "twin_classifier_from needs the AC-GAN term: aux_classifier or a schedule "
                "weight > 0",
            )
        return self

    @model_validator(mode="after")
    def _restarts_after_the_decay(self) -> JobParams:
        if self.lr_restarts == "none":
            return self
        steps = [int(step) for step in self.lr_restarts.split(",")]
        if steps != sorted(set(steps)) or steps[0] < 1:
            raise PydanticCustomError(
                "restarts_order", "lr_restarts must be steps >= 1 in increasing order"
            )
        if self.lr_decay_start is not None and steps[0] <= self.lr_decay_start:
            raise PydanticCustomError(
                "restarts_after_decay",
                "lr_restarts must come after lr_decay_start ({start}), or be none",
                {"start": self.lr_decay_start},
            )
        return self

    def peak_aux_weight(self) -> float:
        if self.aux_classifier is not None:
            return self.aux_classifier
        return max(float(pair.split(":")[1]) for pair in self.aux_classifier_schedule.split(","))

    @field_validator(
        "steps", "batch_size", "lr_g", "lr_d", "beta1", "beta2", "ema_decay", "mode_seeking",
        "aux_classifier", "seed", "latent_dim", "embed_dim", "g_channels", "d_channels",
        "r1_gamma", "r1_every", "lr_decay_start", "twin_classifier_from", "eval_per_digit",
        mode="before",
    )  # fmt: skip
    @classmethod
    def _json_number(cls, value: object) -> object:
        return json_number(value)


class JobRequest(JobParams):
    """POST /jobs: the parameters, or a preset that stands for all of them."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"steps": 2000, "batch_size": 64}, {"preset": "shipped"}]},
    )

    preset: Literal["shipped"] | None = Field(
        None,
        description="shipped: train exactly the shipped model's recipe (its steps and schedules); "
        "no other parameter may be given with it",
    )

    @model_validator(mode="after")
    def _preset_alone(self) -> JobRequest:
        others = sorted(self.model_fields_set - {"preset"})
        if self.preset is not None and others:
            raise PydanticCustomError(
                "preset_alone", "a preset sets every parameter: drop {others}", {"others": others}
            )
        return self


class Estimate(BaseModel):
    seconds: float | None = Field(description="training time: steps x images per step / images/s")
    images_per_s: float | None = Field(description="training throughput measured on this host now")
    steps: int | None
    basis: str = Field(description="how the estimate was made, and what it leaves out")


class JobResponse(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    id: str
    state: Literal["queued", "running", "succeeded", "failed", "cancelled", "interrupted"]
    phase: Literal["queued", "training", "evaluating", "publishing"] | None = Field(
        description="what a job that has not ended is doing; null once it ended"
    )
    params: dict[str, object]
    created_at: str
    started_at: str | None
    finished_at: str | None
    progress: dict[str, object] = Field(description="step, epoch, losses, images/s, ETA")
    version: str | None = Field(description="the version this job produces")
    parent: str | None = Field(description="the version active when the job started")
    metrics: dict[str, object] | None
    decision: dict[str, object] | None = Field(description="promotion decision and its reasons")
    error: str | None
    log_tail: str | None = Field(description="the training log's last lines (admin only)")
    links: dict[str, str]


class ModelVersion(BaseModel):
    """A version of the store; a broken entry (unreadable manifest, foreign or tampered
    content) has only its name and its ``problem``, and cannot be activated."""

    model_config = ConfigDict(protected_namespaces=())

    version: str
    active: bool
    created_at: str | None = None
    parent: str | None = None
    architecture: dict[str, object] = Field(default_factory=dict)
    metrics: dict[str, object] = Field(default_factory=dict, description=METRICS_DESCRIPTION)
    weights_sha256: str | None = None
    training: dict[str, object] = Field(default_factory=dict)
    samples_url: str | None = None
    problem: str | None = Field(None, description="why this entry cannot be served, if it cannot")


class ActivateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    force: StrictBool = Field(
        False, description="activate even if the version fails a quality gate (a rollback)"
    )


class GateResult(BaseModel):
    name: str
    passed: bool
    text: str = Field(description="the comparison with its numbers")


class GatesRefusal(BaseModel):
    detail: str
    gates: list[GateResult] = Field(default_factory=list, description="the gates that failed")


class Comparison(BaseModel):
    candidate: ModelVersion
    active: ModelVersion
    gates: list[GateResult]
    passes: bool = Field(description="whether activating the candidate needs no force")
