"""``python -m app``: serve with uvicorn, configured from ``GAN_*`` settings.

Settings and the admin token are read and checked before anything heavy starts: a bad one is
one line on stderr and exit code 2.
"""

from __future__ import annotations

import sys

from pydantic import ValidationError

from app.config import ConfigError, Settings


def main() -> None:
    try:
        settings = Settings()
        from app.http.server import resolve_parser, serve

        resolve_parser(settings.http_parser)  # GAN_HTTP_PARSER=httptools without httptools
        from app.main import create_app  # torch and the app only once the settings are sound

        app = create_app(settings)
    except (ValidationError, ConfigError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    serve(app, settings, app.state.draining)


main()
