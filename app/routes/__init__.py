"""The HTTP routes, one module per area of the API. Each is a leaf: it parses the request, calls
the domain (``app.serving``, ``app.retraining``, ``app.applications``) and encodes the answer.
A route module never imports another route module; what several share lives in ``app.http``."""

from __future__ import annotations

from fastapi import APIRouter

from app.routes import datasets, digits, generate, jobs, models, openai_images, ops, restore, web

ROUTERS: tuple[APIRouter, ...] = (
    generate.router,
    digits.router,
    jobs.router,
    models.router,
    ops.router,
    web.router,
    datasets.router,
    restore.router,
    openai_images.router,
)
