"""The web page: ``GET /`` serves ``app/static/index.html``; its script and stylesheet are under
``/static/`` (mounted by ``app.main``). Plain files, no build step, nothing from a CDN."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
INDEX = STATIC_DIR / "index.html"

router = APIRouter(include_in_schema=False)


@router.get("/")
async def index() -> FileResponse:
    if not INDEX.is_file():  # an install that left the package data out
        raise HTTPException(404, f"the web page is not installed ({INDEX} is missing)")
    # no-cache: a new release of the page shows at once (it is a few kB).
    return FileResponse(INDEX, media_type="text/html", headers={"Cache-Control": "no-cache"})
