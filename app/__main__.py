"""``python -m app``: serve with uvicorn, configured from ``GAN_*`` settings."""

from __future__ import annotations

import uvicorn

from app.config import Settings


def main() -> None:
    settings = Settings()
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        timeout_graceful_shutdown=int(settings.graceful_shutdown_s),
        access_log=False,  # the app logs its own access lines, with request ids
        log_config=None,
    )


main()
