"""Takes the README's screenshot of the live page: `python -m tools.live_page_screenshot` (about 4 minutes).

The default grid (150, 150 and 300 kW) in the evening, its background demand falling; cars arrive one by
one until the grid is full and one waits; the page is photographed in Debian's Chromium, driven by
Playwright, once the sparklines hold most of their five minutes.
"""

from __future__ import annotations

import json
import tempfile
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

from grid_common.simulated_time import SimulatedClock
from tools.processes import ROOT
from tools.stack import Stack

SCREENSHOT = ROOT / "docs" / "live-page.png"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip
TIME_SCALE = 60  # an hour a minute: the background's fall shows in the charts


def post(url: str, body: dict) -> int:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def main() -> None:
    evening = SimulatedClock(TIME_SCALE).phase_for(20.0, time.time())  # the simulated day is at 20:00 now
    with tempfile.TemporaryDirectory() as logs:
        stack = Stack(Path(logs), defaults={"balancer": {"POLL_INTERVAL_S": "0.2"}})
        try:
            grid = stack.grid(
                substation_env={
                    "TIME_SCALE": str(TIME_SCALE),
                    "BACKGROUND_PEAK_FRACTION": "0.4",
                    "BACKGROUND_PHASE_HOURS": f"{evening:.4f}",
                }
            )
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1200, "height": 660})
                page.emulate_media(reduced_motion="reduce")  # the live dot steady, not caught mid-pulse
                page.goto(f"{grid.balancer.url}/")
                print("the background alone for 45 s...", flush=True)
                page.wait_for_timeout(45_000)
                car = {"min_power_kw": 11, "max_power_kw": 11, "energy_kwh": 250}  # nothing ends within minutes
                for arrived in range(1, 61):
                    if post(f"{grid.gateway.url}/initiate_energy_transfer", car) == 503:
                        break
                    print(f"  car {arrived} charging", flush=True)
                    time.sleep(4)
                status = post(f"{grid.gateway.url}/initiate_energy_transfer", {**car, "wait": True})
                assert status == 202, f"the last car should wait, got {status}"
                expect(page.locator('[data-field="total-queued"]')).to_have_text("1", timeout=5000)
                page.wait_for_timeout(3000)  # a few polls after it, and the bars' transitions done
                page.screenshot(path=SCREENSHOT)
                browser.close()
        finally:
            stack.stop_all()
    print(f"wrote {SCREENSHOT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
