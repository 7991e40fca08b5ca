"""Retraining jobs: start (admin), watch (JSON, SSE, sample grid), cancel (admin)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Path, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from app.deps import AdminDep, IsAdminDep, JobsDep, JsonBodyDep, ServicesDep
from app.http.responses import ADMIN, NOT_JSON, UNREADABLE_BODY
from app.limits import check_fields
from app.retraining.database import TERMINAL_STATES, JobRecord
from app.retraining.manager import JobManager
from app.schemas.common import ErrorResponse
from app.schemas.jobs import Estimate, JobRequest, JobResponse
from gan.store import SAMPLES_FILE

router = APIRouter(prefix="/jobs", tags=["jobs"])
JobId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$", description="job id")]
KEEPALIVE_S = 15.0


def to_response(job: JobRecord, admin: bool) -> JobResponse:
    """A job as the API shows it; its log only to the admin (it may hold paths and errors)."""
    base = f"/jobs/{job.id}"
    return JobResponse(
        **job.model_dump(exclude={"idempotency_key", "pid", "pid_started", "log_tail"}),
        log_tail=job.log_tail if admin else None,
        links={"self": base, "events": f"{base}/events", "samples": f"{base}/samples.png"},
    )


def get_job(jobs: JobManager, job_id: str) -> JobRecord:
    job = jobs.db.get(job_id)
    if job is None:
        raise HTTPException(404, f"job {job_id} not found")
    return job


@router.post(
    "",
    status_code=202,
    response_model=JobResponse,
    dependencies=[AdminDep, JsonBodyDep],
    responses={
        409: {"model": ErrorResponse, "description": "a job is already running"},
        **UNREADABLE_BODY,
        **NOT_JSON,
        **ADMIN,
    },
    summary="Start a retraining job",
)
async def start_job(
    params: JobRequest,
    response: Response,
    services: ServicesDep,
    jobs: JobsDep,
    idempotency_key: Annotated[
        str | None,
        Header(pattern=r"^[A-Za-z0-9._:-]{1,128}$", description="makes retries safe"),
    ] = None,
) -> JobResponse:
    check_fields(params, services.settings)
    job, _ = await jobs.submit(job_parameters(params), idempotency_key)
    response.headers["Location"] = f"/jobs/{job.id}"
    return to_response(job, admin=True)


@router.get("", response_model=list[JobResponse], summary="List jobs, newest first")
async def list_jobs(jobs: JobsDep, admin: IsAdminDep) -> list[JobResponse]:
    return [to_response(job, admin) for job in jobs.db.recent()]


@router.post(
    "/estimate",
    response_model=Estimate,
    dependencies=[AdminDep, JsonBodyDep],
    responses={**ADMIN, **NOT_JSON, **UNREADABLE_BODY},
    summary="How long this job would take on this host, measured now, before starting it",
)
async def estimate_job(params: JobRequest, services: ServicesDep, jobs: JobsDep) -> Estimate:
    check_fields(params, services.settings)
    return Estimate(**await jobs.estimate(job_parameters(params)))


@router.api_route(
    "/estimate",
    methods=["GET", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS"],
    include_in_schema=False,
)
async def estimate_other_methods() -> None:
    """Without it, GET /jobs/estimate would reach GET /jobs/{job_id} (a 422 on the id) rather
    than say that this resource only takes POST."""
    raise HTTPException(405, "Method Not Allowed", headers={"Allow": "POST"})


def job_parameters(params: JobRequest) -> dict[str, object]:
    """What a job records and the training command receives: a preset alone, or every field."""
    return {"preset": params.preset} if params.preset else params.model_dump(exclude={"preset"})


@router.get(
    "/{job_id}",
    response_model=JobResponse,
    responses={404: {"model": ErrorResponse}},
    summary="One job's state and progress",
)
async def job_status(job_id: JobId, jobs: JobsDep, admin: IsAdminDep) -> JobResponse:
    return to_response(get_job(jobs, job_id), admin)


@router.get(
    "/{job_id}/history",
    response_model=list[dict[str, object]],
    responses={404: {"model": ErrorResponse}},
    summary="Every progress report of the job so far (step, losses, images/s), oldest first",
)
async def job_history(job_id: JobId, jobs: JobsDep) -> list[dict[str, object]]:
    get_job(jobs, job_id)
    return [
        {key: value for key, value in event.items() if key != "event"}
        for _, event in jobs.db.events_after(job_id, 0)
        if event.get("event") == "progress"
    ]


@router.get(
    "/{job_id}/events",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/event-stream": {}},
            "description": "progress as Server-Sent Events",
        },
        404: {"model": ErrorResponse},
    },
    summary="Live progress (Server-Sent Events)",
)
async def job_events(
    job_id: JobId,
    manager: JobsDep,
    last_event_id: Annotated[int, Header(ge=0, le=2**62)] = 0,  # an int in the schema, never null
) -> StreamingResponse:
    get_job(manager, job_id)

    async def stream() -> AsyncIterator[str]:
        seen = last_event_id or 0
        while True:
            generation = manager.generation  # read first: nothing recorded after it is missed
            for seq, event in manager.db.events_after(job_id, seen):
                seen = seq
                yield f"id: {seq}\nevent: {event['event']}\ndata: {json.dumps(event)}\n\n"
            job = manager.db.get(job_id)
            if job is None or (
                job.state in TERMINAL_STATES and not manager.db.events_after(job_id, seen)
            ):
                return
            if await manager.wait_for_events(generation, KEEPALIVE_S) == generation:
                yield ": keep-alive\n\n"

    return StreamingResponse(
        stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store"}
    )


@router.get(
    "/{job_id}/samples.png",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}, 404: {"model": ErrorResponse}},
    summary="The job's latest sample grid (rows are digits 0-9)",
)
async def job_samples(job_id: JobId, jobs: JobsDep) -> Response:
    get_job(jobs, job_id)
    path = jobs.run_dir(job_id) / SAMPLES_FILE
    try:
        # Read whole, at once: the running job replaces the file (atomically) as it trains, and
        # a FileResponse's length, taken from one file, could be served from the next.
        grid = await run_in_threadpool(path.read_bytes)
    except (FileNotFoundError, IsADirectoryError):
        raise HTTPException(404, f"job {job_id} has no sample grid yet") from None
    return Response(grid, media_type="image/png", headers={"Cache-Control": "no-store"})


@router.post(
    "/{job_id}/cancel",
    response_model=JobResponse,
    dependencies=[AdminDep],
    responses={
        404: {"model": ErrorResponse},
        409: {"model": ErrorResponse, "description": "the job is not running"},
        **ADMIN,
    },
    summary="Cancel a running job",
)
async def cancel_job(job_id: JobId, jobs: JobsDep) -> JobResponse:
    get_job(jobs, job_id)
    return to_response(await jobs.cancel(job_id), admin=True)
