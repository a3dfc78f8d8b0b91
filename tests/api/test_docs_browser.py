"""``/docs`` renders in headless Chromium with every other host unresolvable (an offline machine).

Skipped with a reason where chromium, chromedriver or selenium are missing (as tests/console's browser
tests are)."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from tests.helpers.hub import RunningHub, running_hub

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
selenium = pytest.importorskip("selenium", reason="selenium is not installed (pip install selenium)")
if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
    pytest.skip(
        "chromium/chromedriver are not installed (apt-get install chromium chromium-driver)", allow_module_level=True
    )

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402

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
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ARGS:
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    try:
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    except Exception as exc:  # a broken browser install is a skip, not a failure of the page
        pytest.skip(f"headless chromium did not start: {exc}")
    driver.set_page_load_timeout(30)
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
