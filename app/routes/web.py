"""The web page: ``GET /`` serves ``app/static/index.html``; its script and stylesheet are under
``/static/`` (mounted by ``app.main``). Plain files, no build step, nothing from a CDN."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
INDEX = STATIC_DIR / "index.html"


class RevalidatedStaticFiles(StaticFiles):
    """The page and its script and stylesheet, revalidated on every use (a 304 when unchanged):
    a new release shows at once and never runs an old script against a new page."""

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers["Cache-Control"] = "no-cache"
        return response


# One instance serves both `/` and the `/static` mount (app.main); building it touches no files.
PAGE_FILES = RevalidatedStaticFiles(directory=STATIC_DIR, check_dir=False)
router = APIRouter(include_in_schema=False)


@router.get("/")
async def index(request: Request) -> Response:
    if not INDEX.is_file():  # an install that left the package data out
        raise HTTPException(404, f"the web page is not installed ({INDEX} is missing)")
    return await PAGE_FILES.get_response(INDEX.name, request.scope)
