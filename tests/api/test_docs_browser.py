"""``/docs`` renders in headless Chromium with every other host unresolvable (an offline machine).

Skipped with a reason where chromium, chromedriver or selenium are missing (as tests/console's browser
tests are)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlparse

import pytest

from tests.helpers.browser import require_browser, start_chrome
from tests.helpers.hub import RunningHub, running_hub

require_browser()


#: every host name but the hub's address fails to resolve: what a machine without internet sees
OFFLINE = "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"
ARGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1400,1000", OFFLINE)  # fmt: skip


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHub]:
    with running_hub(tmp_path_factory.mktemp("docs-browser"), grpc=False, otlp_http=False) as h:
        yield h


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    driver = start_chrome(ARGS, "the page")
    yield driver
    driver.quit()


def test_docs_render_offline_from_this_hub_only(hub: RunningHub, browser: Any) -> None:
    browser.get(hub.api + "/docs")
    deadline = time.monotonic() + 20
    operations = 0
    while time.monotonic() < deadline and not operations:
        operations = browser.execute_script("return document.querySelectorAll('.opblock').length")
        time.sleep(0.05)
    assert operations > 20, "Swagger UI drew no operations"  # FastAPI's page drew nothing offline
    title = browser.execute_script("var t = document.querySelector('.info .title'); return t && t.textContent")
    assert title and title.startswith("LLM Analytics Hub")
    severe = [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert severe == []  # no blocked script, no CSP violation, no failed fetch
    loaded = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    hub_host = urlparse(hub.api).netloc
    assert loaded and all(urlparse(u).netloc == hub_host for u in loaded), loaded
    assert any(u.endswith("/openapi.json") for u in loaded)
