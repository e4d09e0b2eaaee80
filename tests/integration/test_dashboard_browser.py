"""The worker's live dashboard in a real browser: Debian's headless Chromium, driven by
Playwright, against a real worker fed through ``segments replay``.

Skipped when no Chromium is installed (``make browser`` installs it), unless
SEGMENTS_REQUIRE_BROWSER=1 (CI), which turns the skip into a failure.
"""

from __future__ import annotations

import os
import tomllib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlsplit

import pytest

from stream.demo.cdnow import cdnow_orders, time_ordered, write_jsonl
from stream.demo.generate import generate_behaviour
from tests.integration.worker_harness import WorkerNamespace

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
UNTIL = "1998-07-01"
# A deadline for the page to catch up with the worker, not a measured time.
CATCH_UP_MS = 90_000


def _require_browser() -> None:
    problem = None
    if not CHROMIUM.is_file():
        problem = f"no Chromium at {CHROMIUM} (`make browser` installs Debian's chromium)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            problem = "the playwright package is missing (it is in the dev extras: pip install -e '.[dev]')"
    if problem is None:
        return
    if os.environ.get("SEGMENTS_REQUIRE_BROWSER") == "1":
        pytest.fail(f"SEGMENTS_REQUIRE_BROWSER=1 but {problem}")
    pytest.skip(problem)


@dataclass
class Browser:
    """A page in headless Chromium, with what it reported: script errors, failed
    requests and every host it talked to."""

    page: Any
    script_errors: list[str] = field(default_factory=list)
    failed_responses: list[tuple[int, str]] = field(default_factory=list)
    hosts: set[str] = field(default_factory=set)

    def watch(self) -> None:
        self.page.on("pageerror", lambda error: self.script_errors.append(str(error)))
        self.page.on("console", self._console)
        self.page.on("request", lambda request: self.hosts.add(urlsplit(request.url).netloc))
        self.page.on("response", self._response)

    def _console(self, message: Any) -> None:
        # Failed requests are checked one by one in failed_responses.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.script_errors.append(message.text)

    def _response(self, response: Any) -> None:
        if response.status >= 400:
            self.failed_responses.append((response.status, response.url))


@pytest.fixture
def browser() -> Iterator[Browser]:
    _require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True,
            args=["--headless", "--no-sandbox", "--disable-gpu"],
        )
        try:
            page = chromium.new_page(viewport={"width": 1440, "height": 900})
            page.set_default_timeout(CATCH_UP_MS)
            recorded = Browser(page)
            recorded.watch()
            yield recorded
        finally:
            chromium.close()


@pytest.fixture
def namespace(kafka_bootstrap: str, unique_name, tmp_path: Path) -> Iterator[WorkerNamespace]:
    ns = WorkerNamespace(kafka_bootstrap, unique_name("dash"), tmp_path)
    yield ns
    ns.close()


def _history(tmp_path: Path) -> Path:
    """60 CDNOW customers with generated carts, email opens, refunds and redeliveries
    (about a thousand events of every type)."""
    path = tmp_path / "history.jsonl"
    write_jsonl(generate_behaviour(time_ordered(list(cdnow_orders(limit_customers=60)))), path)
    return path


# What the page shows, as numbers (defined in the page as pageState()).
PAGE_STATE = """window.pageState = () => {
    const chart = (id) => {
        const data = document.getElementById(id).dataset;
        return {points: Number(data.points), samples: Number(data.samples), max: Number(data.max)};
    };
    return {
        status: document.getElementById("status").textContent,
        lag: chart("chart-lag"), rates: chart("chart-rates"), segments: chart("chart-segments"),
        matrixTotal: [...document.querySelectorAll("#transitions td.nonzero")]
            .reduce((sum, cell) => sum + Number(cell.dataset.count), 0),
        feedRows: document.querySelectorAll("#feed tbody tr").length,
    };
}"""


def _wait_until(page: Any, tmp_path: Path, condition: str, arg: Any) -> None:
    """Wait for ``condition`` (a JS function of ``arg``) to hold; on the deadline, fail
    with what the page shows and a screenshot."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page.evaluate(PAGE_STATE)
    try:
        page.wait_for_function(condition, arg=arg)
    except PlaywrightTimeout:
        shot = tmp_path / "dashboard-timeout.png"
        page.screenshot(path=str(shot), full_page=True)
        pytest.fail(f"the page did not catch up (expected {arg!r}): {page.evaluate('pageState()')}; see {shot}")


# Saturated pixels of a chart's canvas: axes and grid are grey, so coloured pixels are
# drawn series (defined in the page as colouredPixels(element)).
COLOURED_PIXELS = """() => { window.colouredPixels = (chart) => {
    const canvas = chart.querySelector("canvas");
    let coloured = 0;
    if (canvas) {
        const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
        for (let i = 0; i < pixels.length; i += 4) {
            const [r, g, b, a] = [pixels[i], pixels[i + 1], pixels[i + 2], pixels[i + 3]];
            if (a > 0 && Math.max(r, g, b) - Math.min(r, g, b) > 60) coloured++;
        }
    }
    return coloured;
}; }"""


def _chart(page: Any, chart_id: str) -> dict:
    """What a chart holds (its data attributes) and how many coloured pixels it drew."""
    page.evaluate(COLOURED_PIXELS)
    return page.evaluate(
        """(id) => {
            const chart = document.getElementById(id);
            return {points: Number(chart.dataset.points), max: Number(chart.dataset.max), coloured: colouredPixels(chart)};
        }""",
        chart_id,
    )


def _drawn(page: Any, series: list[dict]) -> int:
    """Coloured pixels of a new chart (the dashboard's own TimeChart) given ``series``
    over three samples."""
    page.evaluate(COLOURED_PIXELS)
    return page.evaluate(
        """async (series) => {
            const box = el("div", {class: "chart"});
            const legend = el("ul");
            document.body.append(box, legend);
            try {
                new TimeChart(box, legend).update([1e9, 1e9 + 2, 1e9 + 4], series);
                // uPlot draws a new chart after the current task.
                await new Promise((resolve) => setTimeout(resolve, 50));
                return colouredPixels(box);
            } finally {
                box.remove();
                legend.remove();
            }
        }""",
        series,
    )


def _chart_data(page: Any, chart_id: str) -> dict:
    """The x values and series a chart was given, for failure messages."""
    name = chart_id.removeprefix("chart-")
    return page.evaluate(
        "(name) => ({xs: charts[name].xs, series: charts[name].series.map((s) => [s.label, s.values])})", name,
    )


def test_dashboard_follows_the_worker_live(namespace: WorkerNamespace, browser: Browser, tmp_path: Path) -> None:
    page = browser.page
    port = tomllib.loads(namespace.config.read_text())["worker"]["web_port"]
    namespace.start_worker()
    page.goto(f"http://127.0.0.1:{port}/dashboard/")
    page.wait_for_function("document.getElementById('status').dataset.state === 'ready'")
    assert page.locator("#app-id").inner_text() == namespace.prefix
    # Marks this document: if it is still there at the end, nothing reloaded the page.
    page.evaluate("window.sameDocument = true")
    # A first sample, taken before any event: the baseline of the events/s differences.
    _wait_until(page, tmp_path, "() => pageState().segments.points > 0", None)

    history = _history(tmp_path)
    namespace.cli("replay", str(history), "--until", UNTIL, "--wait", "--timeout", "240")
    changes = [change for by_customer in namespace.changes_by_customer().values() for change in by_customer]
    segment_changes = [change for change in changes if change["kind"] == "segment"]
    assert segment_changes, "the replay produced no segment change"

    # The page catches up by polling: charts, matrix and feed fill in.
    _wait_until(page, tmp_path, """(expected) => {
        const state = pageState();
        return state.lag.points > 0 && state.rates.max > 0 && state.segments.max > 0
            && state.matrixTotal === expected && state.feedRows > 0;
    }""", len(segment_changes))
    assert page.evaluate("window.sameDocument === true"), "the page reloaded instead of updating itself"

    # Lag is known from the first sample after the replay: lines need a second one.
    _wait_until(page, tmp_path, "() => pageState().lag.samples >= 2", None)
    for chart_id in ("chart-lag", "chart-rates", "chart-segments"):
        chart = _chart(page, chart_id)
        assert chart["points"] > 0, (chart_id, chart)
        assert chart["coloured"] > 50, f"{chart_id}: no series drawn on the canvas ({chart}): {_chart_data(page, chart_id)}"
    # A value no line reaches is drawn as a dot (without one, each showed as a speck of
    # about 11 pixels; a dot has about 50).
    lone = [{"label": f"alone {value}", "color": "#d62728", "values": [None, None, value]} for value in (1, 4, 7, 10)]
    assert _drawn(page, lone) > 120
    # Every segment change of the replay is one count in the from → to matrix.
    expected_cells = Counter((c["from"] or "none", c["to"] or "none") for c in segment_changes)
    shown_cells = Counter({
        (cell["from"], cell["to"]): cell["count"]
        for cell in page.evaluate(
            "[...document.querySelectorAll('#transitions td.nonzero')]"
            ".map((td) => ({from: td.dataset.from, to: td.dataset.to, count: Number(td.dataset.count)}))"
        )
    })
    assert shown_cells == expected_cells
    # The feed lists records of the changes topic.
    feed_ids = page.evaluate("[...document.querySelectorAll('#feed tbody tr')].map((tr) => tr.dataset.changeId)")
    assert set(feed_ids) <= {change["change_id"] for change in changes}
    assert 0 < len(feed_ids) <= 50

    # Clicking a customer in the feed looks it up.
    link = page.locator("#feed tbody tr a.customer-link").first
    clicked = link.inner_text()
    link.click()
    page.wait_for_function("(id) => document.querySelector('#profile .profile-id')?.textContent === id", arg=clicked)
    assert page.locator("#lookup-id").input_value() == clicked

    # Looking up a known customer shows its current segment and its history, newest first.
    by_customer: dict[str, list[dict]] = {}
    for change in changes:
        by_customer.setdefault(change["customer_id"], []).append(change)
    customer, own = next(
        (customer, own) for customer, own in sorted(by_customer.items())
        if 2 <= len(own) <= 12 and own[-1]["segment"] is not None and customer != clicked
    )
    page.fill("#lookup-id", customer)
    page.click("#lookup button[type=submit]")
    page.wait_for_function("(id) => document.querySelector('#profile .profile-id')?.textContent === id", arg=customer)
    assert page.locator("#profile-segment").inner_text() == own[-1]["segment"]
    rows = page.locator("#history tbody tr")
    assert rows.count() == len(own)
    assert rows.first.locator("td").first.inner_text() == own[-1]["at"][:19].replace("T", " ")

    screenshot = tmp_path / "dashboard.png"
    page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.stat().st_size > 10_000

    # An unknown id says so.
    page.fill("#lookup-id", "nobody-by-this-id")
    page.click("#lookup button[type=submit]")
    page.wait_for_selector("#lookup-result[data-state='not-found']")
    assert "No customer “nobody-by-this-id” is known" in page.locator("#lookup-result").inner_text()

    # Offline: everything came from the worker; nothing failed but the unknown customer.
    assert browser.hosts == {f"127.0.0.1:{port}"}
    assert [url for _, url in browser.failed_responses if not url.endswith("/api/customers/nobody-by-this-id")] == []
    assert browser.script_errors == []


def test_dashboard_asks_for_the_bearer_token(namespace: WorkerNamespace, browser: Browser) -> None:
    """With a token configured the API answers 401 until the page sends it; the page asks
    for it once, keeps it for the tab and sends it as ``Authorization: Bearer``."""
    page = browser.page
    config = namespace.config.read_text()
    namespace.config.write_text(config.replace("[worker]\n", '[worker]\nweb_token = "open-sesame"\n', 1))
    port = tomllib.loads(namespace.config.read_text())["worker"]["web_port"]
    namespace.start_worker()

    # The page and its assets load without the token: only the API needs it.
    assert page.goto(f"http://127.0.0.1:{port}/dashboard/").status == 200
    page.wait_for_selector("#auth:not([hidden])")
    assert page.locator("#status").get_attribute("data-state") == "auth"

    page.fill("#auth-token", "not-the-token")
    page.click("#auth button[type=submit]")
    page.wait_for_function("document.getElementById('auth-message').textContent.includes('rejected')")

    page.fill("#auth-token", "open-sesame")
    page.click("#auth button[type=submit]")
    page.wait_for_function("document.getElementById('status').dataset.state === 'ready'")
    assert page.locator("#app-id").inner_text() == namespace.prefix
    assert page.evaluate("sessionStorage.getItem('segments.dashboard.token')") == "open-sesame"

    page.fill("#lookup-id", "nobody-by-this-id")
    page.click("#lookup button[type=submit]")
    page.wait_for_selector("#lookup-result[data-state='not-found']")
    assert page.locator("#auth").is_hidden()
    assert browser.script_errors == []
