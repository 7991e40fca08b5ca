"""The model registry: list versions and activate one (admin). Rolling back is activating the
previous version."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import FileResponse

from app.deps import AdminDep, JsonBodyDep, ServicesDep
from app.http.responses import ADMIN, NOT_JSON, UNREADABLE_BODY
from app.retraining.promotion import check_activation, evaluate_gates
from app.schemas.common import ErrorResponse
from app.schemas.jobs import ActivateRequest, Comparison, GateResult, GatesRefusal, ModelVersion
from gan.store import SAMPLES_FILE, VERSION_PATTERN, Manifest, VersionNotFound

router = APIRouter(prefix="/models", tags=["models"])
Version = Annotated[str, Path(pattern=VERSION_PATTERN.pattern, description="model version")]


def describe(manifest: Manifest, active: str) -> ModelVersion:
    return ModelVersion(
        version=manifest.version,
        active=manifest.version == active,
        created_at=manifest.created_at,
        parent=manifest.parent,
        architecture=manifest.architecture,
        metrics=manifest.metrics,
        weights_sha256=manifest.weights_sha256,
        training=manifest.training,
        samples_url=f"/models/{manifest.version}/samples.png",
    )


@router.get(
    "",
    response_model=list[ModelVersion],
    summary="All versions; the served one is active, a broken one says its problem",
)
async def list_models(services: ServicesDep) -> list[ModelVersion]:
    active = services.worker.version
    good = [describe(manifest, active) for manifest in services.registry.versions()]
    broken = [
        ModelVersion(version=version, active=False, problem=problem)
        for version, problem in sorted(services.store.broken().items())
    ]
    return good + broken


@router.get(
    "/{version}/samples.png",
    response_class=FileResponse,
    responses={200: {"content": {"image/png": {}}}, 404: {"model": ErrorResponse}},
    summary="A version's sample grid",
)
async def model_samples(version: Version, services: ServicesDep) -> FileResponse:
    path = services.store.version_dir(version) / SAMPLES_FILE
    if not path.is_file():
        raise VersionNotFound(f"model version {version!r} has no sample grid")
    return FileResponse(path, media_type="image/png")


router.add_api_route(
    "/{version}/samples.png", model_samples, methods=["HEAD"], include_in_schema=False
)


@router.get(
    "/{version}/compare",
    response_model=Comparison,
    responses={404: {"model": ErrorResponse, "description": "no such version"}},
    summary="This version beside the active one: metrics, quality gates, sample grids",
)
async def compare(version: Version, services: ServicesDep) -> Comparison:
    candidate = services.store.manifest(version)
    active = services.worker.generator.manifest
    gates = evaluate_gates(services.settings, candidate.metrics, active.metrics)
    return Comparison(
        candidate=describe(candidate, active.version),
        active=describe(active, active.version),
        gates=[GateResult(name=g.name, passed=g.passed, text=g.text) for g in gates],
        passes=all(gate.passed for gate in gates),
    )


@router.post(
    "/{version}/activate",
    response_model=ModelVersion,
    dependencies=[AdminDep, JsonBodyDep],
    responses={
        404: {"model": ErrorResponse, "description": "no such version"},
        409: {
            "model": GatesRefusal,
            "description": "the version fails a quality gate against the active one (each "
            "failed gate listed; send force=true to override), or failed verification or loading",
        },
        **UNREADABLE_BODY,
        **NOT_JSON,
        **ADMIN,
    },
    summary="Serve this version (hot swap, no downtime) if it passes the quality gates",
)
async def activate(
    version: Version, services: ServicesDep, body: ActivateRequest | None = None
) -> ModelVersion:
    active = services.worker.generator.manifest
    if version != active.version and (body is None or not body.force):
        candidate = services.store.manifest(version)
        check_activation(services.settings, version, candidate.metrics, active.metrics)
    manifest = await services.registry.activate(version)
    return describe(manifest, services.worker.version)
