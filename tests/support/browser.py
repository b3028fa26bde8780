"""A real headless Chromium (Debian `chromium` + `chromium-driver`) driven by selenium.

Nothing is downloaded at run time: the driver and browser binaries are the Debian
ones (selenium's own driver manager is never asked, as both paths are given), and
the browser starts with a fresh profile and every background network feature off.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.servers import require_binary

CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)


@contextmanager
def chromium(profile: Path, width: int = 1920, height: int = 1080) -> Iterator[object]:
    """A selenium WebDriver on a fresh `profile` dir, window `width` x `height` (1080p)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser = require_binary("chromium", "/usr/bin/chromium", "apt-get install chromium")
    driver_bin = require_binary(
        "chromedriver", "/usr/bin/chromedriver", "apt-get install chromium-driver"
    )
    os.environ.setdefault("SE_OFFLINE", "true")  # selenium manager: never go online
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for arg in CHROMIUM_ARGS:
        options.add_argument(arg)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument(f"--window-size={width},{height}")
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_bin))
    try:
        driver.set_page_load_timeout(30)
        yield driver
    finally:
        driver.quit()
