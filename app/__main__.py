"""``python -m app``: serve with uvicorn, configured from ``GAN_*`` settings.

Settings and the admin token are read and checked before anything heavy starts: a bad one is
one line on stderr and exit code 2. With ``GAN_WORKERS`` above 1 this process only supervises
that many workers, each ``python -m app --worker I/N ...`` (``app.http.workers``).
"""

from __future__ import annotations

import sys

from pydantic import ValidationError

from app.config import ConfigError, Settings
from app.http.workers import CONFIG_ERROR, supervise, worker_arguments, worker_sockets


def main() -> None:
    started_as = worker_arguments(sys.argv[1:])
    try:
        settings = Settings()
        from app.http.server import resolve_parser, serve

        resolve_parser(settings.http_parser)  # GAN_HTTP_PARSER=httptools without httptools
        settings.resolved_admin_token()  # a missing token file: refused before any worker starts
        if started_as is None and settings.worker_count() > 1:
            sys.exit(supervise(settings))
        from app.main import create_app  # torch and the app only once the settings are sound

        role = started_as[0] if started_as else None
        app = create_app(settings, role=role)
    except (ValidationError, ConfigError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(CONFIG_ERROR)
    sockets = worker_sockets(*started_as) if started_as else None
    serve(app, settings, app.state.draining, sockets)


if __name__ == "__main__":
    main()
