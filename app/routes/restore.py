"""POST /restore: a damaged digit and its mask in, the restored digit out (GAN inversion)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from app.applications.restorer import RestoreTask, restore_response, restored_png, summary_headers
from app.applications.uploads import read_restore_request
from app.deps import ServicesDep
from app.http.disconnect import cancel_on_disconnect
from app.http.negotiation import negotiate
from app.http.openapi import form_schema
from app.http.responses import BUSY
from app.limits import RESTORE_MAX_UPLOAD_BYTES
from app.schemas.applications import RestoreRequest, RestoreResponse, RestoreUpload
from app.schemas.common import ErrorResponse

router = APIRouter(tags=["applications"])


# The body is read by hand (JSON or a form, one route), so its schemas are given here.
REQUEST_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": RestoreRequest.model_json_schema()},
            "multipart/form-data": {"schema": form_schema(RestoreUpload.model_json_schema())},
        },
    }
}
RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"image/png": {}},
        "description": "base64 JSON, or image/png (format=png or Accept: image/png) with the "
        "digit, its score and the error in X-Digit, X-Digit-Score, X-Reconstruction-Error",
    },
    415: {"model": ErrorResponse, "description": "body neither JSON nor multipart/form-data"},
    431: {"model": ErrorResponse, "description": "a form Content-Type over 512 characters"},
    422: {
        "description": "a field malformed, unknown, of the wrong size or over a limit: not a "
        "PNG, not 28x28, a mask that covers every pixel, bad base64, an upload over "
        f"{RESTORE_MAX_UPLOAD_BYTES.env}...",
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/HTTPValidationError"}}
        },
    },
    **BUSY,
}


@router.post(
    "/restore",
    response_model=RestoreResponse,
    responses=RESPONSES,
    openapi_extra=REQUEST_BODY,
    summary="Restore a damaged digit",
)
async def restore(request: Request, services: ServicesDep) -> Response:
    parsed = await read_restore_request(request, services.settings)
    task = RestoreTask(
        parsed.image,
        parsed.missing,
        parsed.options.digit,
        parsed.steps,
        parsed.restarts,
        parsed.options.seed,
    )
    result = await cancel_on_disconnect(request, services.restorer.restore(task))
    headers = summary_headers(result, task)
    if (parsed.options.format or negotiate(request.headers.get("accept"))) == "png":
        png = await services.encoder.run(restored_png, result, task)
        return Response(png, media_type="image/png", headers=headers)
    payload = await services.encoder.run(restore_response, result, task)
    return Response(payload.model_dump_json(), media_type="application/json", headers=headers)
