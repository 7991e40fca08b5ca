"""Bearer-token guard of the admin endpoints."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.services import ServicesDep

bearer = HTTPBearer(auto_error=False, description="the admin token (GAN_ADMIN_TOKEN)")


def require_admin(
    services: ServicesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    expected = services.admin_token
    if expected is None:
        raise HTTPException(
            403,
            "admin endpoints are disabled: set GAN_ADMIN_TOKEN or GAN_ADMIN_TOKEN_FILE "
            "to enable them",
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
