"""The "Administration" panel in a real browser (tests/support/browser.py): a retraining job with
its time estimate, phases, loss chart and cancel; the confirmation before serving a version (the
candidate beside the served one, the failed gates named, force only when confirmed); the shipped
recipe preset; a finished job's Activate button; the panel hidden on a server without a token.
"""

from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Locator, Page, Response, Route, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from gan.store import ModelStore
from support.browser import (
    BROKEN_VERSION,
    DESKTOP,
    PHONE,
    TOKEN,
    assert_fits,
    coloured_pixels,
    get_json,
    open_page,
    running_server,
    save_screenshot,
    wait_for_images,
)

pytestmark = pytest.mark.slow

# Networks small enough to start at once; 5,000 steps is long enough to be cancelled mid-way.
# The twin from step 2: the page's newest lever, sent as the number typed.
TINY_JOB = {
    "latent_dim": "8",
    "embed_dim": "4",
    "g_channels": "8",
    "d_channels": "8",
    "eval_per_digit": "10",
    "twin_classifier_from": "2",
}
LOSS_D_RGB, LOSS_G_RGB = (0x0B, 0x5C, 0xAD), (0xC2, 0x41, 0x0C)  # chart.js's line colours


def test_admin_job_chart_cancel_and_activations(server: str, browser: Browser) -> None:
    with open_page(browser) as (page, _):
        page.goto(server + "/")
        expect(page.locator("#admin-body")).to_be_visible()
        expect(page.locator("#admin-off")).to_be_hidden()
        expect(page.locator("#job-estimate")).to_contain_text("type the admin token")
        admin_message = page.locator("#admin-message")
        # A wrong token is explained...
        page.get_by_label("Admin token", exact=True).fill("wrong")
        page.get_by_role("button", name="Start job", exact=True).click()
        expect(admin_message).to_contain_text("admin token was not accepted")
        page.get_by_label("Admin token", exact=True).fill(TOKEN)

        activates_a_better_version_after_a_plain_confirmation(page)
        runs_a_job_with_estimate_phases_and_chart_then_cancels_it(page, server)
        assert_fits(page, DESKTOP, "admin-desktop.png")
        assert_fits(page, PHONE, "admin-phone.png")
        page.set_viewport_size(DESKTOP)
        names_the_failed_gates_of_a_worse_version_and_forces_on_confirmation(page, server)
        sends_the_shipped_preset(page)
        explains_disabled_admin(page)
        settle_estimate(page)


def activates_a_better_version_after_a_plain_confirmation(page: Page) -> None:
    page.get_by_role("button", name="Refresh versions", exact=True).click()
    # A broken entry is listed with its problem, and cannot be activated.
    broken = page.locator("#models-body tr", has_text=BROKEN_VERSION)
    expect(broken).to_contain_text("broken: ")
    expect(broken.get_by_role("button")).to_be_disabled()
    shows_per_digit_metrics_in_the_versions_table(page)
    page.get_by_role("button", name="Activate version tiny-b", exact=True).click()
    dialog = page.locator("#activate-dialog")
    expect(dialog).to_be_visible()
    expect(page.locator("#activate-verdict")).to_contain_text("passes all")
    expect(page.locator("#activate-gates li")).to_have_count(0)
    expect(page.locator("#activate-confirm")).to_have_text("Activate")
    # Side by side: the candidate's metrics with their labels, the served one's, both grids.
    expect(page.locator("#activate-candidate-name")).to_have_text("tiny-b")
    expect(page.locator("#activate-active-name")).to_have_text("tiny (served)")
    accuracy = metric_row(page, "Conditional accuracy")
    expect(accuracy).to_contain_text("97.3 %")
    expect(accuracy.locator("td").nth(1)).to_have_text("—")  # tiny was never evaluated
    compares_per_digit_metrics(page)
    grids_loaded(page)
    with page.expect_request("**/models/tiny-b/activate") as request:
        page.locator("#activate-confirm").click()
    assert request.value.post_data_json == {"force": False}
    expect(dialog).to_be_hidden()
    # ...and it is served, with its metrics, and the page draws with it.
    expect(page.locator("#model-version")).to_have_text("tiny-b")
    expect(page.locator("#admin-message")).to_contain_text("tiny-b is now served")
    expect(page.locator("#results img").first).to_have_attribute(
        "src", re.compile("version=tiny-b")
    )
    wait_for_images(page, count=10, scale=3)
    metrics = page.locator("#model-metrics")
    for shown in ("97.3 %", "12.35", "0.812", "0.654", "0.988"):
        expect(metrics).to_contain_text(shown)
    # Human labels and units on the cards.
    fid = metrics.locator("div", has_text="FID")
    expect(fid).to_contain_text("12.35")
    expect(fid).to_contain_text("lower is better")
    expect(metrics.locator("div", has_text="Conditional accuracy")).to_contain_text("97.3 %")
    # The served version's per-digit table under its metrics.
    served = page.locator("#model-per-digit")
    expect(served).to_be_visible()
    expect(served.locator("caption")).to_have_text("Per digit")
    expect(served.locator("tbody tr")).to_have_count(10)
    expect(served.locator("tbody tr").nth(3)).to_have_text(re.compile(r"3\s*95\.6 %\s*12\.50"))


# tiny-b's metrics.per_digit (tests/support/browser.py): digit d has accuracy 0.95 + 0.002 d and
# FID 11 + 0.5 d, so digit 3 reads 95.6 % and 12.50.
def shows_per_digit_metrics_in_the_versions_table(page: Page) -> None:
    expect(page.locator("#model-per-digit")).to_be_hidden()  # tiny has no per-digit metrics

    def row(version: str) -> Locator:  # has_text="tiny-b" would match tiny-broken too
        return page.locator("#models-body tr").filter(has=page.get_by_text(version, exact=True))

    scored = row("tiny-b")
    expect(row("tiny-c").locator("details")).to_have_count(0)
    table = scored.locator("details.per-digit table")
    expect(table).to_be_hidden()  # folded until asked for
    scored.get_by_text("Per digit", exact=True).click()
    expect(table).to_be_visible()
    expect(table.locator("thead th")).to_have_text(["Digit", "Accuracy", "FID"])
    expect(table.locator("tbody tr")).to_have_count(10)
    expect(table.locator("tbody tr").first).to_have_text(re.compile(r"0\s*95\.0 %\s*11\.00"))
    expect(table.locator("tbody tr").nth(9)).to_have_text(re.compile(r"9\s*96\.8 %\s*15\.50"))


def compares_per_digit_metrics(page: Page) -> None:
    # The candidate's per-digit metrics beside the served version's (none: never evaluated).
    table = page.locator("#activate-per-digit table")
    expect(table).to_be_visible()
    expect(table.locator("tbody tr")).to_have_count(10)
    digit_3 = table.locator("tbody tr").nth(3).locator("th, td")
    expect(digit_3).to_have_text(["3", "95.6 %", "—", "12.50", "—"])


def grids_loaded(page: Page) -> None:
    """Both sample grids of the comparison are shown (the same layout: 280 x 280)."""
    page.wait_for_function(
        """() => ['activate-candidate-samples', 'activate-active-samples'].every((id) => {
            const img = document.getElementById(id);
            return img.complete && img.naturalWidth === 280;
        })"""
    )


def runs_a_job_with_estimate_phases_and_chart_then_cancels_it(page: Page, base: str) -> None:
    fill_job(page, 5000, 16)
    page.get_by_role("button", name="Start job", exact=True).click()
    admin_message = page.locator("#admin-message")
    expect(admin_message).to_contain_text("started")
    expect(admin_message).to_contain_text("5,000 steps; estimated ")
    try:
        page.wait_for_function(
            "() => document.getElementById('job-progress').value > 0", timeout=60_000
        )
    except PlaywrightTimeoutError:
        with urllib.request.urlopen(f"{base}/jobs", timeout=10) as response:
            job = json.loads(response.read())[0]
        raise AssertionError(f"no progress shown; the job: {job}") from None
    # The phase, and the ETA while training.
    expect(page.locator("#job-state")).to_have_text("running")
    expect(page.locator("#job-phase")).to_have_text("· training")
    expect(page.locator("#job-phases [aria-current=step]")).to_have_text("training")
    stats = page.locator("#job-stats")
    expect(stats).to_contain_text("of 5,000")
    expect(stats).to_contain_text(re.compile(r"about .* left"))
    # The loss chart: history and live reports, both losses drawn.
    page.wait_for_function(
        "() => Number(document.getElementById('job-chart').dataset.points) >= 2", timeout=60_000
    )
    expect(page.locator("#job-chart")).to_have_attribute("aria-label", re.compile("loss D"))
    assert coloured_pixels(page, "#job-chart", LOSS_D_RGB) > 20
    assert coloured_pixels(page, "#job-chart", LOSS_G_RGB) > 20
    save_screenshot(page, "job-running.png")
    # Cancelling says so, and leaves no ETA or step line behind.
    page.get_by_role("button", name="Cancel job", exact=True).click()
    expect(page.locator("#job-state")).to_have_text("cancelled", timeout=20_000)
    expect(admin_message).to_contain_text("cancelled")
    expect(stats).to_have_text("")
    expect(page.locator("#job-phase")).to_have_text("")
    expect(page.locator("#job-end")).to_have_text("cancelled")
    expect(page.locator("#job-phases .stopped")).to_have_text("training")
    expect(page.locator("#job-result")).to_contain_text("cancelled at step")


def fill_job_fields(page: Page, steps: int, batch_size: int) -> None:
    """The custom job's fields: its length, float32, TINY_JOB's networks and twin."""
    page.get_by_label("Steps", exact=True).fill(str(steps))
    page.get_by_label("Batch size", exact=True).fill(str(batch_size))
    page.locator("#job-form details summary").click()
    page.get_by_label("Precision", exact=True).select_option("float32")
    for name, value in TINY_JOB.items():
        page.locator(f"#job-form [name={name}]").fill(value)


def fill_job(page: Page, steps: int, batch_size: int) -> None:
    """Fills the custom job's fields, then waits for the estimate the page asked for them: the
    server's time (or "unknown") and its basis, shown as they are."""

    def for_these(response: Response) -> bool:  # the whole form, the last field included
        if not response.url.endswith("/jobs/estimate") or response.request.method != "POST":
            return False
        sent = json.loads(response.request.post_data or "{}")
        wanted = {"steps": steps, "batch_size": batch_size, "precision": "float32", **TINY_JOB}
        return all(str(sent.get(name)) == str(value) for name, value in wanted.items())

    with page.expect_response(for_these, timeout=120_000) as answer:
        fill_job_fields(page, steps, batch_size)
    body = answer.value.json()
    estimate = page.locator("#job-estimate")
    expect(estimate).not_to_contain_text("measuring")
    shown = "unknown" if body["seconds"] is None else "about"
    expect(estimate).to_contain_text(f"Estimated time: {shown}")
    expect(estimate).to_contain_text(body["basis"])


def names_the_failed_gates_of_a_worse_version_and_forces_on_confirmation(
    page: Page, base: str
) -> None:
    _, comparison = get_json(f"{base}/models/tiny-c/compare")
    failed = [gate for gate in comparison["gates"] if not gate["passed"]]
    assert len(failed) >= 2, comparison
    page.get_by_role("button", name="Activate version tiny-c", exact=True).click()
    dialog = page.locator("#activate-dialog")
    expect(page.locator("#activate-verdict")).to_contain_text(f"fails {len(failed)} of")
    gates = page.locator("#activate-gates li")
    expect(gates).to_have_count(len(failed))
    for gate in failed:
        expect(page.locator("#activate-gates")).to_contain_text(gate["text"])
    expect(gates.first).to_contain_text("Its conditional accuracy is below the minimum")
    expect(page.locator("#activate-gates")).to_contain_text("Its FID is worse (higher)")
    expect(page.locator("#activate-gates")).to_contain_text(
        "The independent judge finds its FID worse (higher)"
    )
    # All five are worse, and the three the judge scored (tests/support/browser.py) by it too.
    expect(page.locator("#activate-metrics td.worse")).to_have_count(8)
    expect(metric_row(page, "Judge: FID")).to_contain_text("0.50")
    expect(metric_row(page, "FID")).to_contain_text("30.50")
    grids_loaded(page)
    assert_fits(page, PHONE, "activate-phone.png")  # the dialog on a phone
    page.set_viewport_size(DESKTOP)
    # Cancel serves nothing...
    page.locator("#activate-cancel").click()
    expect(dialog).to_be_hidden()
    expect(page.locator("#model-version")).to_have_text("tiny-b")
    # ...and only "Activate anyway" sends force.
    page.get_by_role("button", name="Activate version tiny-c", exact=True).click()
    expect(page.locator("#activate-confirm")).to_have_text("Activate anyway")
    with page.expect_request("**/models/tiny-c/activate") as request:
        page.locator("#activate-confirm").click()
    assert request.value.post_data_json == {"force": True}
    expect(page.locator("#model-version")).to_have_text("tiny-c")
    expect(page.locator("#admin-message")).to_contain_text("tiny-c is now served")


def sends_the_shipped_preset(page: Page) -> None:
    """The preset goes alone; the request is answered here (no 26,000-step job on CI)."""
    sent: list[Any] = []

    def busy(route: Route) -> None:
        sent.append(route.request.post_data_json)
        route.fulfill(status=503, json={"detail": "simulated"})

    page.route("**/jobs", busy)
    page.get_by_label("Reproduce the shipped recipe").check()
    expect(page.get_by_label("Steps", exact=True)).to_be_disabled()
    page.get_by_role("button", name="Start job", exact=True).click()
    expect(page.locator("#admin-message")).to_contain_text("busy: simulated")
    assert sent == [{"preset": "shipped"}]
    page.unroute("**/jobs")
    page.get_by_label("Custom parameters").check()
    expect(page.get_by_label("Steps", exact=True)).to_be_enabled()


def explains_disabled_admin(page: Page) -> None:
    """Another server's answer, simulated: admin disabled (403)."""
    page.route(
        "**/jobs",
        lambda route: route.fulfill(status=403, json={"detail": "admin endpoints are disabled"}),
    )
    page.get_by_role("button", name="Start job", exact=True).click()
    expect(page.locator("#admin-message")).to_contain_text(
        "Administration is disabled on this server"
    )
    page.unroute("**/jobs")


def test_a_finished_job_offers_its_version_for_activation(server: str, browser: Browser) -> None:
    """A short job to the end: its result names the new version and the gates in words (no API
    instructions) and its Activate button opens the same confirmation."""
    with open_page(browser) as (page, _):
        page.goto(server + "/")
        page.get_by_label("Admin token", exact=True).fill(TOKEN)
        fill_job_fields(page, 8, 16)
        page.get_by_role("button", name="Start job", exact=True).click()
        expect(page.locator("#job-state")).to_have_text("succeeded", timeout=120_000)
        result = page.locator("#job-result")
        expect(result).to_contain_text("New version g")
        expect(result).to_contain_text("Not activated")
        text = result.inner_text()
        assert "{" not in text and "POST" not in text and "force" not in text, text
        expect(page.locator("#job-phases li.done")).to_have_count(4)
        expect(page.locator("#job-end")).to_have_text("succeeded")
        save_screenshot(page, "job-finished.png")
        activate = page.locator("#job-result button")
        expect(activate).to_have_attribute("aria-label", re.compile(r"Activate version g"))
        activate.click()
        expect(page.locator("#activate-dialog")).to_be_visible()
        expect(page.locator("#activate-candidate-name")).to_have_text(re.compile(r"^g\d"))
        page.locator("#activate-cancel").click()
        settle_estimate(page)


def settle_estimate(page: Page) -> None:
    """Waits out the estimate the page asked for last: the server times it in a subprocess, which
    should not outlive the test's server."""
    page.wait_for_timeout(1000)  # past the page's debounce
    expect(page.locator("#job-estimate")).not_to_contain_text("measuring", timeout=120_000)


def test_admin_panel_hidden_without_a_token(
    browser_store: ModelStore, tmp_path: Path, browser: Browser
) -> None:
    with (
        running_server(browser_store, tmp_path / "state", admin_token=None) as base,
        open_page(browser, PHONE) as (page, _),
    ):
        page.goto(base + "/")
        off = page.locator("#admin-off")
        expect(off).to_be_visible()
        expect(off).to_contain_text("GAN_ADMIN_TOKEN")
        expect(page.locator("#admin-body")).to_be_hidden()
        wait_for_images(page, count=10, scale=3)
        # One line, said once: no error message besides it.
        assert page.locator("#admin").inner_text().count("Administration is off") == 1
        expect(page.locator("#admin .message.error")).to_have_count(0)
        assert_fits(page, PHONE)


def metric_row(page: Page, label: str) -> Locator:
    """The activation dialog's row of one metric, by its exact label ("FID", not "Judge: FID")."""
    header = page.get_by_role("rowheader", name=label, exact=True)
    return page.locator("#activate-metrics tr").filter(has=header)
