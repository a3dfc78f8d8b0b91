"""Headless Chromium for the browser tests (Selenium + chromedriver), shared by tests/console and tests/api.

    from tests.helpers.browser import require_browser, start_chrome
    require_browser()          # at module level: skips the module, with the reason, when a piece is missing

    @pytest.fixture(scope="module")
    def browser() -> Iterator[Any]:
        driver = start_chrome(("--headless", "--no-sandbox"), "the console")
        yield driver
        driver.quit()
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


def require_browser() -> None:
    """Skip the calling test module (with the reason) when selenium, chromium or chromedriver is missing."""
    pytest.importorskip("selenium", reason="selenium is not installed (pip install selenium)")
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.skip(
            "chromium/chromedriver are not installed (apt-get install chromium chromium-driver)",
            allow_module_level=True,
        )


def start_chrome(args: tuple[str, ...], what: str) -> Any:
    """A headless Chromium driver with ``args`` and the browser console's log kept (page load timeout 30 s);
    a browser that does not start skips the test: a broken install is no failure of ``what``."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in args:
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    try:
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    except Exception as exc:
        pytest.skip(f"headless chromium did not start: {exc}")
    driver.set_page_load_timeout(30)
    return driver
