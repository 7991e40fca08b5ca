"""/docs and /redoc render in Chromium with the network cut off from everything but the service:
their assets come from the service itself (fastapi-offline), not from a CDN."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Route, sync_playwright

from gan.store import ModelStore
from support.process import ServerProcess, running_server

pytestmark = pytest.mark.slow
CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture
def live(tiny_store: ModelStore, tmp_path: Path) -> Iterator[ServerProcess]:
    with running_server(tiny_store.root, tmp_path) as server:
        yield server


@pytest.mark.parametrize(("path", "rendered"), [("/docs", ".opblock"), ("/redoc", "h2")])
def test_the_docs_render_offline(live: ServerProcess, path: str, rendered: str) -> None:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium chromium-driver")
    service = urlsplit(live.base).netloc
    blocked: list[str] = []

    def only_the_service(route: Route) -> None:
        if urlsplit(route.request.url).netloc == service:
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            page = browser.new_page()
            page.route("**/*", only_the_service)
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(live.base + path)
            page.wait_for_selector(rendered, timeout=20_000)
            text = page.inner_text("body")
        finally:
            browser.close()
    assert "/generate" in text or "Generate digit images" in text
    assert errors == []
    # Nothing the pages need comes from elsewhere; ReDoc's bundle asks for its own footer logo,
    # which is blocked here and missed by nobody.
    assert all(url.endswith(".svg") for url in blocked), blocked
