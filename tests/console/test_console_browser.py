"""The console in headless Chromium (Selenium + chromedriver) against a seeded hub.

Every page loads without browser-console errors (load times go to ``artifacts/console/timings.json``;
their target, 1.5 s, is measured by ``benchmarks/console.py``, not asserted here), its charts hold data,
filters change what is shown, drill-down reaches the raw events, alerts can be acknowledged (when the
hub has an alerts API), hostile data stays text, the layout fits a phone. Screenshots of every page go
to ``artifacts/console/``.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlparse

import httpx
import pytest

from api.console.router import PAGES
from tests.console.conftest import PERIOD_MODELS, XSS, Periods, Seeded, post, seed
from tests.helpers.browser import require_browser, start_chrome
from tests.helpers.events import make_event, now_iso
from tests.helpers.hub import running_hub

require_browser()

from selenium.common.exceptions import StaleElementReferenceException  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402

ARGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1400,1700")  # fmt: skip
#: chart id -> must have data points (per page)
CHARTS = {
    "summary": ["c-requests"],
    "performance": ["c-latency", "c-histogram", "c-throughput", "c-heatmap"],
    "cost": ["c-spend", "c-by-model", "c-by-project", "c-by-team", "c-budget"],
    "security": ["c-threats", "c-levels", "c-actions"],
    "governance": ["c-compliance", "c-policies", "c-regulations"],
    "anomalies": ["c-anomaly"],
    "correlations": ["c-rca", "c-corr-graph", "c-deps"],
    "alerts": [],
    "events": [],
}


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    driver = start_chrome(ARGS, "the console")
    yield driver
    driver.quit()


def open_page(d: Any, url: str, timeout: float = 15.0) -> float:
    """Load ``url`` and wait until the page's loader finished; seconds from navigation to ready."""
    d.get_log("browser")  # drop what earlier pages logged
    t0 = time.monotonic()
    d.get(url)
    deadline = t0 + timeout
    while time.monotonic() < deadline:
        if d.execute_script("return !!(window.Hub && window.Hub.ready)"):
            return time.monotonic() - t0
        time.sleep(0.02)
    raise AssertionError(f"{url} did not finish loading in {timeout} s")


def until(check: Any, timeout: float = 10.0, every: float = 0.05) -> Any:
    """Poll ``check()`` until it returns something truthy (returned) or ``timeout`` passes (last value)."""
    deadline = time.monotonic() + timeout
    value = check()
    while not value and time.monotonic() < deadline:
        time.sleep(every)
        value = check()
    return value


def settle(d: Any, timeout: float = 20.0) -> None:
    """Wait for the page's slow extras (e.g. the forecast model call) too."""
    deadline = time.monotonic() + timeout
    while not d.execute_script("return !!Hub.settled") and time.monotonic() < deadline:
        time.sleep(0.05)


def problems(d: Any) -> list[str]:
    logs = [f"{e['level']}: {e['message']}" for e in d.get_log("browser") if e["level"] == "SEVERE"]
    return logs + [f"page error: {e}" for e in d.execute_script("return Hub.errors")]


def chart_points(d: Any, chart: str) -> int:
    return int(d.execute_script(
        """const c = Hub.charts[arguments[0]]; if (!c) return -1;
           return c.getOption().series.reduce((n, s) => n + ((s.data || []).length), 0);""", chart))  # fmt: skip


def test_every_page_loads_without_errors_and_with_data(seeded: Seeded, browser: Any, artifacts: Path) -> None:
    timings = {}
    # warm once: the first visit also parses the 1 MB ECharts bundle into the browser's cache, which every
    # page shares (each page is then loaded once, and that load is the one checked)
    open_page(browser, seeded.api + next(iter(PAGES.values())).path)
    for name, page in PAGES.items():
        url = seeded.api + page.path
        timings[name] = open_page(browser, url)  # recorded, not asserted (benchmarks/console.py measures)
        settle(browser)
        assert problems(browser) == [], name
        assert browser.find_elements(By.CSS_SELECTOR, ".error-box") == [], name
        for chart in CHARTS[name]:
            assert chart_points(browser, chart) > 0, (name, chart)
        time.sleep(0.2)  # let the canvas paint before the screenshot
        browser.save_screenshot(str(artifacts / f"{name}.png"))
    # Load times are recorded, not asserted (a shared CI machine makes any bound flaky): the 1.5 s
    # target is measured by benchmarks/console.py.
    (artifacts / "timings.json").write_text(json.dumps({k: round(v, 3) for k, v in timings.items()}, indent=1))


def kpi(d: Any, key: str) -> int:
    return int(d.find_element(By.ID, f"kpi-{key}").text.replace(",", "") or 0)


def test_filters_change_what_is_shown_and_travel_in_links(seeded: Seeded, browser: Any) -> None:
    open_page(browser, seeded.api + "/")
    everything = kpi(browser, "requests")
    open_page(browser, seeded.api + "/?model=gpt-4o&compare=1&range=7d")
    only = kpi(browser, "requests")
    assert 0 < only < everything
    assert "previous" in browser.find_element(By.ID, "kpi-requests-delta").text
    nav = browser.find_element(By.CSS_SELECTOR, 'a[data-nav="performance"]').get_attribute("href")
    assert parse_qs(urlparse(nav).query) == {"model": ["gpt-4o"], "compare": ["1"], "range": ["7d"]}
    browser.get(nav)
    open_page(browser, nav)
    models = {
        r.find_elements(By.TAG_NAME, "td")[0].text for r in browser.find_elements(By.CSS_SELECTOR, "#t-models tbody tr")
    }
    assert models == {"gpt-4o"}
    # the filter form writes the URL
    open_page(browser, seeded.api + "/console/cost")
    field = browser.find_element(By.ID, "f-team")
    field.send_keys("research")
    browser.find_element(By.ID, "f-apply").click()
    until(lambda: "team=research" in browser.current_url)
    open_page(browser, browser.current_url)
    assert parse_qs(urlparse(browser.current_url).query)["team"] == ["research"]
    teams = browser.execute_script("return Hub.charts['c-by-team'].getOption().yAxis[0].data")
    assert teams == ["research"]


def test_csv_export_of_a_table(seeded: Seeded, browser: Any) -> None:
    open_page(browser, seeded.api + "/console/performance")
    csv = browser.execute_script("return Hub.csv('t-models')")
    lines = csv.strip().split("\r\n")
    assert lines[0] == "Model,Requests,p50,p95,p99,Error rate"
    assert len(lines) == 1 + len(browser.find_elements(By.CSS_SELECTOR, "#t-models tbody tr"))
    assert browser.execute_script("return Hub.csv('t-models')") == csv
    # numeric cells go out as numbers: the table shows "1,234" and "812 ms", the file 1234 and 812
    shown = browser.execute_script("return document.querySelector('#t-models tbody td.num').textContent")
    for row in lines[1:]:
        cells = row.split(",")
        assert all(float(x) >= 0 for x in cells[1:5] if x), (row, shown)


def test_drill_down_from_a_chart_point_reaches_the_raw_events(seeded: Seeded, browser: Any) -> None:
    open_page(browser, seeded.api + "/")
    el = browser.find_element(By.ID, "c-requests")
    # the pixel of the biggest bar, from the chart itself
    x, y = browser.execute_script(
        """const c = Hub.charts['c-requests']; const d = c.getOption().series[0].data;
           const best = d.reduce((a, b) => (b[1] > a[1] ? b : a));
           const top = c.convertToPixel({seriesIndex: 0}, best), base = c.convertToPixel({seriesIndex: 0}, [best[0], 0]);
           return [top[0], (top[1] + base[1]) / 2];""")  # fmt: skip
    size = el.size
    ActionChains(browser).move_to_element_with_offset(
        el, int(x - size["width"] / 2), int(y - size["height"] / 2)
    ).click().perform()
    deadline = time.monotonic() + 10
    while "/console/events" not in browser.current_url and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "/console/events" in browser.current_url
    open_page(browser, browser.current_url)
    q = parse_qs(urlparse(browser.current_url).query)
    assert q["event_type"] == ["telemetry"] and q["range"] == ["custom"]
    rows = browser.find_elements(By.CSS_SELECTOR, "#t-events tbody tr")
    assert len(rows) > 1
    assert {r.find_elements(By.TAG_NAME, "td")[1].text for r in rows} == {"telemetry"}
    # cursor pagination
    nxt = browser.find_element(By.ID, "ev-next")
    if nxt.is_enabled():
        first = rows[0].text
        nxt.click()

        def first_row() -> str:
            try:
                return str(browser.find_elements(By.CSS_SELECTOR, "#t-events tbody tr")[0].text)
            except (IndexError, StaleElementReferenceException):
                return first

        assert until(lambda: first_row() != first)
        assert browser.find_element(By.ID, "ev-prev").is_enabled()
    # and from a table row: a model in the performance table
    open_page(browser, seeded.api + "/console/performance")
    row = browser.find_element(By.CSS_SELECTOR, "#t-models tbody tr")
    model = row.find_elements(By.TAG_NAME, "td")[0].text
    row.click()
    until(lambda: "model=" in browser.current_url)
    open_page(browser, browser.current_url)
    assert parse_qs(urlparse(browser.current_url).query)["model"] == [model]
    shown = {
        r.find_elements(By.TAG_NAME, "td")[5].text for r in browser.find_elements(By.CSS_SELECTOR, "#t-events tbody tr")
    }
    assert shown == {model}
    assert problems(browser) == []


def test_hostile_tag_values_are_shown_as_text(seeded: Seeded, browser: Any) -> None:
    open_page(browser, f"{seeded.api}/console/events?team={quote(XSS)}")
    cells = [c.text for c in browser.find_elements(By.CSS_SELECTOR, "#t-events tbody td")]
    assert XSS in cells, cells[:12]
    assert browser.execute_script("return window.__xss === undefined")
    assert browser.find_elements(By.CSS_SELECTOR, "#t-events img, #t-events script") == []
    # the same value as a chart label and a filter value on the cost page
    open_page(browser, seeded.api + "/console/performance?team=" + quote(XSS))
    assert browser.find_element(By.ID, "f-team").get_attribute("value") == XSS
    assert browser.execute_script("return window.__xss === undefined")
    assert problems(browser) == []


def test_live_summary_follows_new_events(seeded: Seeded, browser: Any) -> None:
    open_page(browser, seeded.api + "/")
    deadline = time.monotonic() + 12
    while "live" not in browser.find_element(By.ID, "live").text and time.monotonic() < deadline:
        time.sleep(0.1)
    assert browser.find_element(By.ID, "live").text.startswith("live"), browser.find_element(By.ID, "live").text
    before = kpi(browser, "requests")
    post(seeded.api, [make_event("telemetry", timestamp=now_iso(-5)) for _ in range(25)])
    seeded.hub.flush()
    deadline = time.monotonic() + 15
    while kpi(browser, "requests") < before + 25 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert kpi(browser, "requests") >= before + 25


def test_an_anomaly_can_be_marked_as_not_an_anomaly(seeded: Seeded, browser: Any) -> None:
    open_page(browser, seeded.api + "/console/anomalies?range=7d")
    settle(browser)
    buttons = browser.find_elements(By.CSS_SELECTOR, "#t-anomalies button[data-action='false-positive']")
    if not buttons:
        pytest.skip("the seeded data gave the hub's anomaly models no anomaly to mark")
    anomaly_id = buttons[0].get_attribute("data-anomaly")
    buttons[0].click()
    text = until(lambda: browser.find_element(By.ID, "t-anomalies-explain").text, timeout=60)
    assert text.startswith("Marked as not an anomaly"), text
    assert problems(browser) == []
    # the hub learned it: marking the same anomaly again is accepted and reports the feedback state
    r = httpx.post(f"{seeded.api}/api/v1/anomalies/{anomaly_id}/feedback", json={"label": "false_positive"}, timeout=60)
    assert r.status_code in (200, 404), r.text  # 404: re-scoring after the first mark dropped the point
    if r.status_code == 200:
        assert len(r.json()["feedback"]["history"]) >= 2


def test_alerts_can_be_acknowledged(seeded: Seeded, browser: Any) -> None:
    paths = httpx.get(seeded.api + "/openapi.json").json()["paths"]
    if "/api/v1/alerts" not in paths:
        open_page(browser, seeded.api + "/console/alerts")
        assert browser.find_element(By.CSS_SELECTOR, "[data-unavailable='t-alerts']").text.startswith(
            "Not available yet"
        )
        pytest.skip("this hub has no alerts API yet (GET /api/v1/alerts): the page shows 'not available yet'")
    open_page(browser, seeded.api + "/console/alerts")
    buttons = browser.find_elements(By.CSS_SELECTOR, "#t-alerts button[data-action='ack']")
    if not buttons:
        pytest.skip("the alerts API has no open alert to acknowledge on the seeded data")
    alert_id = buttons[0].get_attribute("data-alert")
    buttons[0].click()
    deadline = time.monotonic() + 10
    state = ""
    while time.monotonic() < deadline:
        state = browser.execute_script(
            "const tr = document.querySelector(`#t-alerts tr[data-alert='${arguments[0]}']`); return tr ? tr.cells[0].textContent : '';",
            alert_id)  # fmt: skip
        if state == "acknowledged":
            break
        time.sleep(0.2)
    assert state == "acknowledged"


def test_inhibited_alerts_say_what_inhibits_them_and_are_counted(seeded: Seeded, browser: Any) -> None:
    """docs/alerting.md, Inhibition: a warning is inhibited while the critical of the same alertname and labels
    is open. The page counts them (``inhibited_count``), hides them as the API does, and on request shows
    each with "inhibited by <the critical>", linking to its row; a hostile alert name stays text."""
    paths = httpx.get(seeded.api + "/openapi.json").json()["paths"]
    if "/api/v1/alerts" not in paths:
        pytest.skip("this hub has no alerts API (GET /api/v1/alerts)")
    name = "Inhibit" + XSS
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 300))
    labels = {"alertname": name, "team": "inhibit-test"}
    alerts = [
        {"status": "firing", "labels": {**labels, "severity": sev}, "annotations": {"summary": f"{sev} one"},
         "startsAt": now, "fingerprint": f"console-inhibit-{sev}"}
        for sev in ("critical", "warning")
    ]  # fmt: skip
    hook = {"version": "4", "status": "firing", "receiver": "hub", "groupKey": "inhibit", "alerts": alerts}
    assert httpx.post(f"{seeded.api}/api/v1/alerts/alertmanager", json=hook, timeout=30).status_code == 200
    ans = httpx.get(f"{seeded.api}/api/v1/alerts", params={"inhibited": "true"}, timeout=30).json()
    warn = next(a for a in ans["alerts"] if a["fingerprint"] == "console-inhibit-warning")
    crit_id, count = warn["inhibited_by_id"], ans["inhibited_count"]
    assert crit_id and count >= 1

    open_page(browser, seeded.api + "/console/alerts")  # the default: hidden, as the API does, and counted
    assert browser.find_element(By.ID, "al-inhibited-count").text == f"Inhibited alerts: {count} (hidden)"
    assert browser.find_element(By.ID, "al-inhibited").get_attribute("value") == ""
    assert not browser.find_elements(By.CSS_SELECTOR, f"#t-alerts tr[data-alert='{warn['id']}']")
    assert browser.find_elements(By.CSS_SELECTOR, f"#t-alerts tr[data-alert='{crit_id}']")

    open_page(browser, seeded.api + "/console/alerts?inhibited=any")
    assert browser.find_element(By.ID, "al-inhibited-count").text == f"Inhibited alerts: {count}"
    row = browser.find_element(By.CSS_SELECTOR, f"#t-alerts tr[data-alert='{warn['id']}']")
    hint = row.find_element(By.CSS_SELECTOR, ".inhibited-by")
    assert hint.text.startswith(f"inhibited by {name} (critical, "), hint.text  # the name as text, not markup
    assert hint.get_attribute("title") == "fingerprint console-inhibit-critical"
    assert hint.find_element(By.TAG_NAME, "a").get_attribute("href").endswith(f"#alert-{crit_id}")
    assert "inhibited" in (row.get_attribute("class") or "")
    crit_row = browser.find_element(By.ID, f"alert-{crit_id}")  # the link's target: the critical, no hint
    assert not crit_row.find_elements(By.CSS_SELECTOR, ".inhibited-by")
    assert browser.execute_script("return window.__xss === undefined")
    csv = browser.execute_script("return Hub.csv('t-alerts')")
    assert f"(inhibited by {name} (critical, " in csv.replace('""', '"')

    open_page(browser, seeded.api + "/console/alerts?inhibited=true")  # only those
    shown = browser.execute_script(
        "return [...document.querySelectorAll('#t-alerts tbody tr')].map((tr) => [tr.dataset.alert, "
        "!!tr.querySelector('.inhibited-by')])")  # fmt: skip
    assert {a for a, _hint in shown} == {a["id"] for a in ans["alerts"]} and all(h for _a, h in shown)
    sel = browser.find_element(By.ID, "al-inhibited")
    assert sel.get_attribute("value") == "true"
    browser.execute_script("arguments[0].value = ''; arguments[0].dispatchEvent(new Event('change'))", sel)
    until(lambda: "inhibited=" not in browser.current_url)
    assert "inhibited=" not in browser.current_url
    assert problems(browser) == []


def test_phone_layout(seeded: Seeded, browser: Any, artifacts: Path) -> None:
    browser.set_window_size(390, 844)
    try:
        for name in ("summary", "cost"):
            open_page(browser, seeded.api + PAGES[name].path)
            assert browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth + 1")
            assert browser.find_element(By.ID, "nav-toggle").is_displayed()
            assert not browser.find_element(By.ID, "nav").is_displayed()
            browser.save_screenshot(str(artifacts / f"phone-{name}.png"))
        browser.find_element(By.ID, "nav-toggle").click()
        assert browser.find_element(By.CSS_SELECTOR, 'a[data-nav="alerts"]').is_displayed()
    finally:
        browser.set_window_size(1400, 1700)


def test_with_auth_the_key_is_asked_once_and_sent_as_bearer(tmp_path: Path, browser: Any) -> None:
    with running_hub(tmp_path, grpc=False, otlp_http=False, service__auth__enabled=True) as hub:
        store = hub.service.security.key_store
        assert store is not None
        seed(
            hub.api,
            days=0.05,
            events=200,
            headers={"Authorization": f"Bearer {store.create(tenant_id='acme', role='ingest').key}"},
        )
        hub.flush()
        viewer = store.create(tenant_id="acme", role="analytics_viewer").key
        try:
            open_page(browser, hub.api + "/")
            assert browser.find_element(By.ID, "key-dialog").get_attribute("open") is not None
            assert browser.find_elements(By.CSS_SELECTOR, ".error-box"), (
                "without a key the panels say why they are empty"
            )
            browser.find_element(By.ID, "key-input").send_keys(viewer)
            browser.find_element(By.ID, "key-save").click()
            time.sleep(0.3)
            open_page(browser, browser.current_url)
            assert kpi(browser, "requests") > 0
            assert browser.find_element(By.ID, "key-button").text == "API key ✓"
            assert problems(browser) == []
            browser.execute_script("sessionStorage.clear()")
        finally:
            # leave this hub's page before the hub stops: its live stream reconnects every 5 s, and a refused
            # reconnect logged ERR_CONNECTION_REFUSED into the next test's browser log (a failure there)
            browser.get("about:blank")


def table_rows(d: Any, table: str) -> list[list[str]]:
    return [
        [td.text for td in tr.find_elements(By.TAG_NAME, "td")]
        for tr in d.find_elements(By.CSS_SELECTOR, f"#{table} tbody tr")
    ]


def table_head(d: Any, table: str) -> list[str]:
    return [th.text for th in d.find_elements(By.CSS_SELECTOR, f"#{table} thead th")]


def test_top_models_follow_the_selected_range(periods: Periods, browser: Any) -> None:
    # two disjoint custom windows with different top models: each table shows its own window's models,
    # as the requests chart of the same page does (before, the tables showed fixed 24 h / 7 d / 30 d)
    for day, (start, end) in (("a", periods.a), ("b", periods.b)):
        open_page(browser, f"{periods.api}/?range=custom&start={start}&end={end}")
        want = [(m, str(n)) for m, d, n in PERIOD_MODELS if d == day]
        assert [(r[0], r[1]) for r in table_rows(browser, "t-top-usage")] == want
        costs = [r[0] for r in table_rows(browser, "t-top-cost")]
        assert set(costs) - {"steady-model"} == {m for m, _ in want}, costs
        assert table_head(browser, "t-top-usage")[1].startswith(start.replace("T", " ")[:10])
        window = browser.execute_script("const w = Hub.window(); return [Hub.iso(w.start), Hub.iso(w.end)]")
        assert window == [start, end]
        requests = browser.execute_script("return Hub.charts['c-requests'].getOption().series[0].data")
        assert sum(v for _, v in requests) == sum(int(n) for _, n in want)
        assert problems(browser) == []
    open_page(browser, f"{periods.api}/?range=30d&compare=1")
    assert {r[0] for r in table_rows(browser, "t-top-usage")} == {"alpha-model", "beta-model", "gamma-model"}
    assert table_head(browser, "t-top-usage") == ["Model", "Last 30 d", "Previous period"]
    open_page(browser, periods.api + "/")  # the default 24 h: none of them
    assert table_rows(browser, "t-top-usage") == [["No data in this window."]]


def _daily_band(hourly: list[tuple[float, float, float]]) -> tuple[float, float, float]:
    """(yhat, lower, upper) of a day from its hours' (yhat, lower, upper): half-widths in quadrature."""
    y = sum(h[0] for h in hourly)
    lo = math.sqrt(sum((h[0] - h[1]) ** 2 for h in hourly))
    hi = math.sqrt(sum((h[2] - h[0]) ** 2 for h in hourly))
    return y, max(0.0, y - lo), y + hi


def test_daily_forecast_band_from_known_hourly_bounds(seeded: Seeded, browser: Any) -> None:
    open_page(browser, seeded.api + "/console/cost")
    day0 = "2030-01-07T00:00:00Z"
    # 24 hours of 2030-01-07 with known, asymmetric bounds; 6 hours of the next day (a partial day: left out)
    hours = [(1.0 + h / 10, 0.1 * (h % 4 + 1), 0.2 * (h % 3 + 1)) for h in range(30)]
    points = [{"timestamp": f"2030-01-{7 + h // 24:02d}T{h % 24:02d}:00:00Z", "yhat": y, "yhat_lower": y - lo,
               "yhat_upper": y + hi} for h, (y, lo, hi) in enumerate(hours)]  # fmt: skip
    days = browser.execute_script("return Hub.forecastMath.dailyFromHourly(arguments[0], 12)", points)
    assert len(days) == 1 and days[0]["n"] == 24
    assert days[0]["t"] == iso_ms(day0)
    first = [(p["yhat"], p["yhat_lower"], p["yhat_upper"]) for p in points[:24]]
    y, lower, upper = _daily_band(first)
    assert days[0]["yhat"] == pytest.approx(sum(p[0] for p in first)) == pytest.approx(y)
    assert (days[0]["lower"], days[0]["upper"]) == (pytest.approx(lower), pytest.approx(upper))
    # by hand: sum of 0.1*(h%4+1) squared over 24 hours = 6 * (0.01+0.04+0.09+0.16) = 1.8
    assert y - days[0]["lower"] == pytest.approx(math.sqrt(1.8))
    assert days[0]["upper"] - y == pytest.approx(math.sqrt(8 * (0.04 + 0.16 + 0.36)))
    summed = (sum(p[1] for p in first), sum(p[2] for p in first))  # the old band: far wider
    assert summed[0] < days[0]["lower"] < y < days[0]["upper"] < summed[1]
    # equal bounds: the half-width grows as sqrt(24), not 24
    flat = [
        {"timestamp": f"2030-01-07T{h:02d}:00:00Z", "yhat": 2.0, "yhat_lower": 1.0, "yhat_upper": 3.0}
        for h in range(24)
    ]
    [d] = browser.execute_script("return Hub.forecastMath.dailyFromHourly(arguments[0], 12)", flat)
    assert (d["yhat"], d["lower"], d["upper"]) == (
        48.0,
        pytest.approx(48 - math.sqrt(24)),
        pytest.approx(48 + math.sqrt(24)),
    )
    # hourly lower bounds clipped at 0 (a non-negative series): each side is combined on its own
    low = [
        {"timestamp": f"2030-01-07T{h:02d}:00:00Z", "yhat": 0.1, "yhat_lower": 0.0, "yhat_upper": 2.0}
        for h in range(24)
    ]
    [d] = browser.execute_script("return Hub.forecastMath.dailyFromHourly(arguments[0], 12)", low)
    assert d["lower"] == pytest.approx(2.4 - math.sqrt(24 * 0.1**2)) and d["upper"] == pytest.approx(
        2.4 + math.sqrt(24 * 1.9**2)
    )


def test_forecast_plan_asks_for_daily_steps_with_enough_history(seeded: Seeded, browser: Any) -> None:
    open_page(browser, seeded.api + "/console/cost")
    plan = browser.execute_script(
        """const day = 864e5, today = Date.UTC(2030, 0, 31), M = Hub.forecastMath;
           const run = (n, from) => Array.from({length: n}, (_, k) => [today - (k + (from || 1)) * day, 1.5]);
           return [M.forecastPlan(run(40), today), M.forecastPlan(run(M.DAILY_MIN_DAYS + 1), today),
                   M.forecastPlan(run(M.DAILY_MIN_DAYS), today), M.forecastPlan([], today),
                   M.forecastPlan(run(2).concat(run(30, 10)), today), M.forecastPlan(run(2).concat(run(30, 5)), today),
                   M.forecastPlan(run(200), today)];""")  # fmt: skip
    steps = [(p["step"], p["history"]) for p in plan]
    assert steps[0] == ("1d", "39d")  # the first day of the history counts as partial
    assert steps[1] == ("1d", "21d") and steps[2] == ("1h", "14d") and steps[3] == ("1h", "14d")
    assert steps[4] == ("1h", "14d"), "7 days without spend break the history"
    assert steps[5] == ("1d", "33d"), "shorter gaps do not"
    assert steps[6] == ("1d", "90d")


def iso_ms(ts: str) -> float:
    """Epoch milliseconds of an ISO 8601 UTC timestamp."""
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp() * 1000


def _api_forecast(api: str, step: str, history: str) -> list[dict[str, Any]]:
    spec = {"event_type": "cost", "field": "value", "aggregation": "sum", "step": step, "filters": []}
    r = httpx.get(f"{api}/api/v1/forecast", params={"query": json.dumps(spec), "horizon": "30d", "level": 95,
                                                    "history": history}, timeout=120)  # fmt: skip
    assert r.status_code == 200, r.text
    return list(r.json()["series"][0]["points"])


def _spend_band(d: Any) -> list[tuple[float, float, float, float]]:
    """(t ms, yhat, lower, upper) of the cost page's forecast, from the chart."""
    series = {s["name"]: s["data"] for s in d.execute_script("return Hub.charts['c-spend'].getOption().series")}
    return [(lo[0], y[1], lo[1], lo[1] + w[1])
            for lo, w, y in zip(series["band lower"], series["forecast band"], series["forecast"], strict=True)]  # fmt: skip


def test_cost_forecast_uses_daily_steps_when_the_history_allows(periods: Periods, browser: Any) -> None:
    open_page(browser, periods.api + "/console/cost")
    settle(browser, 60)
    note = browser.find_element(By.ID, "c-spend-explain").text
    history = f"{periods.steady_days - 1}d"
    assert f"daily steps over {history} of history" in note, note
    band = _spend_band(browser)
    points = _api_forecast(periods.api, "1d", history)[: len(band)]
    assert len(band) == len(points) > 20
    for (t, y, lo, hi), p in zip(band, points, strict=True):
        assert t == pytest.approx(iso_ms(p["timestamp"]))
        assert (y, lo, hi) == (pytest.approx(max(0, p["yhat"]), abs=1e-3), pytest.approx(max(0, p["yhat_lower"]), abs=1e-3),
                               pytest.approx(p["yhat_upper"], abs=1e-3))  # fmt: skip
    assert problems(browser) == []


def test_cost_forecast_from_hourly_steps_combines_the_hours(seeded: Seeded, browser: Any) -> None:
    # two days of history: hourly steps, each day's band = the hours' half-widths in quadrature
    open_page(browser, seeded.api + "/console/cost")
    settle(browser, 60)
    note = browser.find_element(By.ID, "c-spend-explain").text
    assert "hourly steps summed per day" in note and "independent hourly errors" in note, note
    band = _spend_band(browser)
    by_day: dict[float, list[tuple[float, float, float]]] = {}
    for p in _api_forecast(seeded.api, "1h", "14d"):
        by_day.setdefault(iso_ms(p["timestamp"]) // 86_400_000 * 86_400_000, []).append(
            (p["yhat"], p["yhat_lower"], p["yhat_upper"])
        )
    want = [(t, *_daily_band(h)) for t, h in sorted(by_day.items()) if len(h) >= 12][: len(band)]
    assert len(band) == len(want) > 20
    for (t, y, lo, hi), (t2, y2, lo2, hi2) in zip(band, want, strict=True):
        assert t == t2
        assert (y, lo, hi) == (
            pytest.approx(max(0, y2), abs=1e-3),
            pytest.approx(lo2, abs=1e-3),
            pytest.approx(hi2, abs=1e-3),
        )
    assert problems(browser) == []


def test_a_large_incident_graph_is_drawn_by_module_and_signal(seeded: Seeded, browser: Any) -> None:
    """205 findings of one kind were 205 overlapping nodes; now the root cause and one node "x204" (a multiplication sign)."""
    open_page(browser, seeded.api + "/console/correlations")

    def node(i: int, signal: str = "security:prompt_injection", module: str = "llm-sentinel") -> dict[str, Any]:
        return {"id": f"e{i}", "ts": f"2030-01-01T00:00:{i % 60:02d}.{i:03d}Z", "signal": signal, "component": module,
                "score": 0.5 if i else 0.9, "abnormal": True}  # fmt: skip

    big = {"nodes": [node(i) for i in range(205)] + [node(900, "cost:spend", "llm-costops")],
           "edges": [{"source": "e0", "target": f"e{i}", "weight": 0.5} for i in range(1, 205)]
           + [{"source": "e5", "target": "e900", "weight": 0.8}, {"source": "e6", "target": "e900", "weight": 0.3}]}  # fmt: skip
    out = browser.execute_script("return Hub.rcaGraph(arguments[0], 'e0')", big)
    assert out["collapsed"] is True
    names = [n["name"] for n in out["nodes"]]
    assert names == ["security:prompt_injection", "security:prompt_injection \u00d7204", "cost:spend"]
    assert out["nodes"][0]["itemStyle"]["color"] == "#c62828"  # the root cause keeps its own red node
    edges = {(e["source"], e["target"]): e["value"] for e in out["edges"]}
    assert len(edges) == 2 and max(edges.values()) == 0.8  # merged, strongest weight kept, no self-loops
    small = {"nodes": [node(i) for i in range(10)], "edges": [{"source": "e0", "target": "e1", "weight": 1}]}
    out = browser.execute_script("return Hub.rcaGraph(arguments[0], 'e0')", small)
    assert out["collapsed"] is False and len(out["nodes"]) == 10 and len(out["edges"]) == 1
