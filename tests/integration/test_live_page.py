"""The balancer's live page, in a real headless Chromium against real gunicorn processes."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from tests.helpers import call, wait_until

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# The README's screenshot; refreshed with `UPDATE_SCREENSHOTS=1 make test`, else written beside the test's logs.
README_SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "live-page.png"
LONG = {"TIME_SCALE": "1"}  # 11 kWh at 11 kW lasts an hour: nothing ends during a test
WAIT_MS = 5000  # the page refreshes every second; the balancer polls every 0.2 s in tests


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.fail(
            f"Chromium is missing at {CHROMIUM}: install it with `apt-get install chromium` "
            "(these tests use the system browser, never `playwright install`).",
            pytrace=False,
        )
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1200, "height": 700})
    yield context.new_page()
    context.close()


def card(page: Page, name: str):
    return page.locator(f'[data-substation="{name}"]')


def field(page: Page, name: str, key: str):
    return card(page, name).locator(f'[data-field="{key}"]')


def leading_int(text: str) -> int:
    return int(re.match(r"\s*(\d+)", text).group(1))


def test_live_page_shows_every_substation_and_follows_the_load(services, page, tmp_path):
    grid = services.grid(substation_env=LONG)
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(f"{grid.balancer.url}/")

    for name in grid.substations:
        expect(card(page, name)).to_be_visible(timeout=WAIT_MS)
        expect(card(page, name)).to_contain_text(name)
        expect(field(page, name, "health")).to_have_text("healthy")
        expect(field(page, name, "utilization")).to_have_text("0.0 %")
    expect(page.locator('[data-field="strategy"]')).to_have_text("least_utilization")
    before = {
        name: (field(page, name, "sessions").text_content(), field(page, name, "utilization").text_content())
        for name in grid.substations
    }
    assert sum(leading_int(sessions) for sessions, _ in before.values()) == 0

    replies = [call("POST", f"{grid.gateway.url}/initiate_energy_transfer") for _ in range(12)]
    assert [r.status for r in replies] == [201] * 12, [r.body for r in replies if r.status != 201]
    listed = wait_until(
        lambda: (
            (body := call("GET", f"{grid.balancer.url}/substations").body)
            and sum(s["active_sessions"] for s in body["substations"]) == 12
            and not any(s["pending_sessions"] for s in body["substations"])
            and body["substations"]
        ),
        timeout=5,
    )

    # The page catches up with the balancer's view: the same sessions and power on every card.
    for entry in listed:
        name = entry["name"]
        expect(field(page, name, "sessions")).to_have_text(f"{entry['active_sessions']} active", timeout=WAIT_MS)
        expect(field(page, name, "power")).to_have_text(
            f"{entry['load_kw']:.1f} / {entry['capacity_kw']:.1f} kW", timeout=WAIT_MS
        )
        expect(field(page, name, "utilization")).not_to_have_text("0.0 %", timeout=WAIT_MS)
        shown = float(field(page, name, "utilization").text_content().removesuffix("%"))
        assert shown == pytest.approx(entry["utilization"] * 100, abs=0.051)
        width = field(page, name, "bar").evaluate("bar => parseFloat(bar.style.width)")
        assert width == pytest.approx(entry["utilization"] * 100, abs=0.01), "the bar's width is the utilization"
    after = {name: field(page, name, "sessions").text_content() for name in grid.substations}
    assert sum(leading_int(text) for text in after.values()) == 12
    assert all(after[name] != before[name][0] for name in grid.substations), "every substation took sessions"
    expect(page.locator('[data-field="total-sessions"]')).to_have_text("12")
    expect(page.locator('[data-field="notice"]')).to_be_hidden()

    page.wait_for_timeout(600)  # let the bars' width transition (0.5 s) finish so the screenshot shows them
    screenshot = README_SCREENSHOT if os.environ.get("UPDATE_SCREENSHOTS") == "1" else tmp_path / "live-page.png"
    page.screenshot(path=screenshot)
    assert screenshot.stat().st_size > 10_000 and screenshot.read_bytes()[:4] == b"\x89PNG"

    assert requested, "the page made requests"
    outside = [url for url in requested if not url.startswith(f"{grid.balancer.url}/")]
    assert not outside, f"the page must work offline, yet it requested: {outside}"


def test_a_stopped_substation_shows_as_down_and_the_others_stay_healthy(services, page):
    grid = services.grid(substation_env=LONG)
    page.goto(f"{grid.balancer.url}/")
    for name in grid.substations:
        expect(field(page, name, "health")).to_have_text("healthy", timeout=WAIT_MS)

    grid.substations["substation1"].process.stop()

    expect(field(page, "substation1", "health")).to_have_text("down", timeout=WAIT_MS)
    expect(card(page, "substation1")).to_have_class(re.compile(r"\bdown\b"))
    for name in ("substation2", "substation3"):
        expect(field(page, name, "health")).to_have_text("healthy")
    expect(page.locator('[data-field="notice"]')).to_be_hidden()


def test_a_stopped_balancer_shows_a_notice_and_the_page_keeps_retrying(services, page):
    grid = services.grid({"only": 22}, substation_env=LONG)
    page.goto(f"{grid.balancer.url}/")
    expect(field(page, "only", "health")).to_have_text("healthy", timeout=WAIT_MS)

    grid.balancer.process.stop()
    notice = page.locator('[data-field="notice"]')
    expect(notice).to_be_visible(timeout=WAIT_MS)
    expect(notice).to_contain_text("unreachable, retrying", ignore_case=True)

    grid.balancer.process.start().wait_healthy()
    expect(notice).to_be_hidden(timeout=WAIT_MS)
    expect(field(page, "only", "health")).to_have_text("healthy", timeout=WAIT_MS)


def test_live_page_is_one_self_contained_html_file(services):
    grid = services.grid({"only": 22}, substation_env=LONG)
    reply = call("GET", f"{grid.balancer.url}/")
    assert reply.status == 200
    assert reply.content_type == "text/html; charset=utf-8"
    assert reply.headers["Cache-Control"] == "no-cache"
    html = reply.raw.decode()
    assert "<title>" in html and 'fetch("/substations"' in html
    assert "http://" not in html and "https://" not in html, "no absolute URL: nothing from other hosts"
    assert "cdn" not in html.lower()
    assert not re.search(r"<script[^>]*\ssrc\s*=", html, re.IGNORECASE), "scripts are inline"
    assert not re.search(r"@import|url\(", html, re.IGNORECASE), "no stylesheet pulls anything in"
    for target in re.findall(r"""\s(?:src|href)\s*=\s*["']?([^"'\s>]*)""", html, re.IGNORECASE):
        assert target.startswith("data:") or (target.startswith("/") and not target.startswith("//")), target
