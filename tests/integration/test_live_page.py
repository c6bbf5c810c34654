"""The balancer's live page, in a real headless Chromium against real gunicorn processes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from load_tester.fleet.car import Car
from tests.chargers import ChargerLoop
from tests.helpers import call, wait_until
from tools.processes import free_port

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
LONG = {"TIME_SCALE": "1"}  # 11 kWh at 11 kW lasts an hour: nothing ends during a test
# Background demand on, at the wall clock's pace: it moves by less than 0.01 kW a second, so the page's numbers
# and the balancer's agree within rounding.
WITH_BACKGROUND = {**LONG, "BACKGROUND_PEAK_FRACTION": "0.3"}
# A car that starts only where 11 kW is free for it, and waits (202) when nowhere is.
WAITING_CAR = {"min_power_kw": 11, "max_power_kw": 11, "wait": True}
WAIT_MS = 5000  # the page refreshes every second; the balancer polls every 0.2 s in tests
CHART_WIDTH, CHART_HEIGHT = 300, 56  # the sparkline's viewBox
# An OCPP service quick to learn of sessions and to pass meters on; three chargers registered per substation.
OCPP = {"FEED_INTERVAL_S": "0.1", "METER_FLUSH_S": "0.2", "CHARGERS_PER_SUBSTATION": "3",
        "FLEET_CHARGERS_PER_SUBSTATION": "0"}  # fmt: skip


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


def shown_kw(page: Page, name: str, key: str) -> float:
    """The number in a field such as `35.7 kW` or `≈ 3.6 kW`."""
    text = field(page, name, key).text_content()
    match = re.fullmatch(r"(?:≈ )?(\d+\.\d) kW", text)
    assert match, f"{name}'s {key} shows {text!r}, not kW"
    return float(match.group(1))


def bar_width(page: Page, name: str, key: str) -> float:
    return field(page, name, key).evaluate("part => parseFloat(part.style.width)")


def chart_points(page: Page, name: str, series: str) -> list[tuple[float, float]]:
    """The (x, y) points of one path of a substation's sparkline, in the chart's viewBox."""
    d = card(page, name).locator(f'[data-series="{series}"]').get_attribute("d") or ""
    return [(float(x), float(y)) for x, y in re.findall(r"(-?[\d.]+),(-?[\d.]+)", d)]


def listing(grid) -> dict:
    return call("GET", f"{grid.balancer.url}/substations").body


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
    expect(page.locator('[data-field="strategy"]')).to_have_text(listing(grid)["strategy"])
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
        # No background demand here: the bar is EV power allocated, and the rest is free.
        expect(field(page, name, "ev-kw")).to_have_text(f"{entry['ev_power_kw']:.1f} kW")
        expect(field(page, name, "background-kw")).to_have_text("0.0 kW")
        expect(field(page, name, "free-kw")).to_have_text(f"{entry['capacity_kw'] - entry['load_kw']:.1f} kW")
        assert bar_width(page, name, "ev-bar") == pytest.approx(entry["utilization"] * 100, abs=0.01)
        assert bar_width(page, name, "background-bar") == 0
        expect(field(page, name, "queue")).to_have_text("empty")
    after = {name: field(page, name, "sessions").text_content() for name in grid.substations}
    assert sum(leading_int(text) for text in after.values()) == 12
    assert all(after[name] != before[name][0] for name in grid.substations), "every substation took sessions"
    expect(page.locator('[data-field="total-sessions"]')).to_have_text("12")
    expect(page.locator('[data-field="notice"]')).to_be_hidden()

    page.wait_for_timeout(600)  # let the bars' width transition (0.5 s) finish so the screenshot shows them
    screenshot = tmp_path / "live-page.png"
    page.screenshot(path=screenshot)
    assert screenshot.stat().st_size > 10_000 and screenshot.read_bytes()[:4] == b"\x89PNG"

    assert requested, "the page made requests"
    outside = [url for url in requested if not url.startswith(f"{grid.balancer.url}/")]
    assert not outside, f"the page must work offline, yet it requested: {outside}"


def test_the_bar_splits_the_capacity_and_a_waiting_car_shows_in_the_queue(services, page):
    grid = services.grid({"small": 22}, substation_env=WITH_BACKGROUND)
    page.goto(f"{grid.balancer.url}/")
    expect(field(page, "small", "health")).to_have_text("healthy", timeout=WAIT_MS)
    expect(field(page, "small", "queue")).to_have_text("empty")

    # One car takes 11 of the 22 kW; the background takes more than 2 kW, so the next one must wait.
    first = call("POST", f"{grid.gateway.url}/initiate_energy_transfer", WAITING_CAR)
    assert first.status == 201, first.body
    second = call("POST", f"{grid.gateway.url}/initiate_energy_transfer", WAITING_CAR)
    assert second.status == 202 and second.body["state"] == "queued", second.body
    wait_until(lambda: listing(grid)["substations"][0]["queued_sessions"] == 1, timeout=5)

    expect(field(page, "small", "queue")).to_have_text("1 waiting", timeout=WAIT_MS)
    expect(page.locator('[data-field="total-queued"]')).to_have_text("1")
    expect(field(page, "small", "sessions")).to_have_text("1 active")
    expect(field(page, "small", "allocation")).to_have_text("fair")
    # The page polls once a second and draws the newest sample at the chart's right edge.
    expect(field(page, "small", "sparkline")).to_have_attribute("data-samples", re.compile(r"^([3-9]|\d\d+)$"))

    entry = listing(grid)["substations"][0]
    capacity, background, ev = entry["capacity_kw"], entry["background_kw"], entry["ev_power_kw"]
    assert background > 2 and ev == 11, entry
    # The bar's parts, in kW and in width, are the balancer's numbers (within rounding: the background moves).
    expect(field(page, "small", "ev-kw")).to_have_text(f"{ev:.1f} kW")
    assert shown_kw(page, "small", "background-kw") == pytest.approx(background, abs=0.06)
    assert shown_kw(page, "small", "free-kw") == pytest.approx(capacity - background - ev, abs=0.06)
    assert bar_width(page, "small", "background-bar") == pytest.approx(background / capacity * 100, abs=0.1)
    assert bar_width(page, "small", "ev-bar") == pytest.approx(ev / capacity * 100, abs=0.01)
    assert shown_kw(page, "small", "newcomer") == pytest.approx(entry["newcomer_kw"], abs=0.06)
    # The sparkline: a point per poll, the newest at the right edge, as high as the load on a 0-to-capacity scale.
    points = chart_points(page, "small", "load")
    assert len(points) >= 3, points
    newest_x, newest_y = points[-1]
    assert newest_x == CHART_WIDTH
    assert newest_y == pytest.approx(CHART_HEIGHT * (1 - (background + ev) / capacity), abs=0.1)
    assert all(0 <= x <= CHART_WIDTH and 0 <= y <= CHART_HEIGHT for x, y in points)
    assert len(chart_points(page, "small", "background")) >= 3 and len(chart_points(page, "small", "ev")) >= 3
    label = field(page, "small", "sparkline").get_attribute("aria-label")
    assert "EV allocated" in label and "11.0 kW" in label, label


def test_paused_sessions_show_beside_the_active_ones(services, page):
    # Twelve simulated hours a minute, and a background that peaks at 95 % of 22 kW: a car drawing its 11 kW
    # minimum is paused whenever the background takes more than 11 kW, most of each 12-second "day".
    grid = services.grid({"small": 22}, substation_env={"TIME_SCALE": "7200", "BACKGROUND_PEAK_FRACTION": "0.95"})
    page.goto(f"{grid.balancer.url}/")
    expect(field(page, "small", "health")).to_have_text("healthy", timeout=WAIT_MS)

    # While the background alone leaves less than 11 kW and nothing charges, no start can be foreseen, and the
    # balancer refuses (503) even a car that would wait: ask again until it starts or queues.
    car = {**WAITING_CAR, "energy_kwh": 250}
    wait_until(
        lambda: call("POST", f"{grid.gateway.url}/initiate_energy_transfer", car).status in (201, 202),
        timeout=15,
        interval=0.5,
    )
    wait_until(lambda: listing(grid)["substations"][0]["paused_sessions"] == 1, timeout=20)

    expect(field(page, "small", "sessions")).to_have_text("1 active (1 paused)", timeout=WAIT_MS)
    expect(field(page, "small", "ev-kw")).to_have_text("0.0 kW")


def test_the_grid_operators_limit_shows_on_the_card_and_as_a_line_while_in_force(services, page):
    token = "a-grid-operator-token-for-tests"
    grid = services.grid({"only": 100}, substation_env={**LONG, "GRID_LIMIT_TOKEN": token})
    page.goto(f"{grid.balancer.url}/")
    expect(field(page, "only", "power")).to_have_text("0.0 / 100.0 kW", timeout=WAIT_MS)
    limit = page.locator('[data-substation="only"] [data-series="limit"]')
    assert (limit.get_attribute("d") or "") == ""
    window = {"limit_kw": 40, "duration_s": 4}
    auth = {"Authorization": f"Bearer {token}"}
    assert call("PUT", f"{grid.substations['only'].url}/grid_limit", window, headers=auth).status == 200
    expect(field(page, "only", "power")).to_have_text("0.0 / 100.0 kW, limited to 40.0 kW", timeout=WAIT_MS)
    expect(field(page, "only", "free-kw")).to_have_text("40.0 kW")  # free under the limit, not the rating
    # The line sits at 40 % of the chart's height from its floor (the scale runs to the 100 kW capacity).
    wait_until(lambda: re.search(r"M[\d.]+,([\d.]+)", limit.get_attribute("d") or ""), timeout=WAIT_MS / 1000)
    y = float(re.search(r"M[\d.]+,([\d.]+)", limit.get_attribute("d") or "")[1])
    assert y == pytest.approx(CHART_HEIGHT * (1 - 40 / 100), abs=0.2)
    expect(field(page, "only", "power")).to_have_text("0.0 / 100.0 kW", timeout=WAIT_MS + 4000)  # it lapsed


def test_a_substation_that_never_reported_shows_as_down_without_numbers(services, page):
    small = services.substation("small", 22, **LONG)
    closed = f"http://127.0.0.1:{free_port()}"
    balancer = services.balancer({"small": small, "ghost": closed})
    page.goto(f"{balancer.url}/")

    expect(field(page, "small", "health")).to_have_text("healthy", timeout=WAIT_MS)
    expect(field(page, "ghost", "health")).to_have_text("down")
    expect(card(page, "ghost")).to_have_class(re.compile(r"\bdown\b"))
    for key in ("background-kw", "ev-kw", "free-kw", "newcomer", "queue", "allocation"):
        expect(field(page, "ghost", key)).to_have_text("–")
    expect(field(page, "ghost", "updated")).to_have_text("never")
    expect(field(page, "ghost", "sparkline")).to_have_attribute("data-samples", "0")
    expect(field(page, "small", "sparkline")).not_to_have_attribute("data-samples", "0")
    expect(page.locator('[data-field="notice"]')).to_be_hidden()


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


def tile(page: Page, charger_id: str):
    return page.locator(f'[data-charger="{charger_id}"]')


def tile_field(page: Page, charger_id: str, key: str):
    return tile(page, charger_id).locator(f'[data-field="charger-{key}"]')


def test_each_card_shows_its_chargers_on_ocpp(services, page):
    substation = services.substation("s", 44, **LONG)
    ocpp = services.ocpp({"s": substation}, **OCPP)
    balancer = services.balancer({"s": substation}, OCPP_URL=ocpp.url)
    wait_until(lambda: call("GET", f"{ocpp.url}/readyz").status == 200, 10)
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    with ChargerLoop() as chargers:
        url = f"ws://127.0.0.1:{ocpp.port}/ocpp"
        charging = chargers.connect(url, "s-cp1", "1.6")
        chargers.connect(url, "s-cp2", "2.0.1")  # connected, no car: idle
        chargers.run(charging.plug(Car(phases=3, max_current_a=32, energy_need_wh=200_000)))

        def listed() -> dict:
            return {c["charger_id"]: c for c in call("GET", f"{balancer.url}/grid/chargers").body["chargers"]}

        entry = wait_until(lambda: (c := listed()["s-cp1"])["measured_kw"] and c["limit_kw"] and c, timeout=10)
        page.goto(f"{balancer.url}/")

        expect(field(page, "s", "chargers")).to_be_visible(timeout=WAIT_MS)
        expect(field(page, "s", "chargers-count")).to_have_text("2 of 3 connected")
        expect(tile_field(page, "s-cp1", "name")).to_have_text("cp1")
        expect(tile_field(page, "s-cp1", "protocol")).to_have_text("1.6")
        expect(tile_field(page, "s-cp1", "state")).to_have_text("charging")
        expect(tile(page, "s-cp1")).to_have_class(re.compile(r"\bcharging\b"))
        # Measured / limit, as the OCPP service says: the limit is the session's share, the meter what the car draws.
        expect(tile_field(page, "s-cp1", "power")).to_have_text(
            re.compile(rf"^\d+\.\d / {entry['limit_kw']:.1f} kW$"), timeout=WAIT_MS
        )
        measured = float(tile_field(page, "s-cp1", "power").text_content().split(" / ")[0])
        assert measured == pytest.approx(listed()["s-cp1"]["measured_kw"], abs=0.5)
        expect(tile_field(page, "s-cp2", "protocol")).to_have_text("2.0.1")
        expect(tile_field(page, "s-cp2", "state")).to_have_text("idle")
        expect(tile_field(page, "s-cp2", "power")).to_have_text("")
        expect(tile(page, "s-cp3")).to_have_count(0)  # registered, never connected: only counted

        # Its connection drops mid-transaction: the tile says so, the charger still listed.
        chargers.run(charging.disconnect())
        expect(tile_field(page, "s-cp1", "state")).to_have_text("offline", timeout=WAIT_MS)
        expect(tile(page, "s-cp1")).to_have_class(re.compile(r"\boffline\b"))
        expect(tile_field(page, "s-cp1", "protocol")).to_have_text("")
        expect(field(page, "s", "chargers-count")).to_have_text("1 of 3 connected")
    assert any(url == f"{balancer.url}/grid/chargers" for url in requested)
    assert not [url for url in requested if not url.startswith(f"{balancer.url}/")], "only the balancer is asked"


def test_without_an_ocpp_service_the_page_shows_no_chargers_and_stops_asking(services, page):
    substation = services.substation("s", 22, **LONG)
    balancer = services.balancer({"s": substation})
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(f"{balancer.url}/")
    expect(field(page, "s", "health")).to_have_text("healthy", timeout=WAIT_MS)
    page.wait_for_timeout(2500)  # a few refreshes
    expect(field(page, "s", "chargers")).to_be_hidden()
    assert requested.count(f"{balancer.url}/grid/chargers") == 1, "asked once: 404, no OCPP_URL"
    assert requested.count(f"{balancer.url}/substations") >= 2


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
